"""Static security and wiring checks on template.yaml, plus the local-only policy and prefixes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.cfn import load_template_document
from clickstream_local.firehose import render_prefix
from clickstream_local.provision import local_bucket_policy

ROOT = Path(__file__).resolve().parents[2]
DATA_PLANE_SERVICES = ("kinesis", "s3", "dynamodb", "sqs", "firehose", "es")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The project's template.yaml as a plain document (intrinsics unresolved)."""
    return load_template_document(ROOT / "template.yaml")


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical id."""
    return {
        logical_id: spec
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == kind
    }


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def bucket_arn_target(value: Any, bucket: str) -> str | None:
    """``bucket`` or ``objects`` when ``value`` is that bucket's ARN or ``ARN/*``, else None."""
    if value in ({"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::GetAtt": f"{bucket}.Arn"}):
        return "bucket"
    if value == {"Fn::Sub": f"${{{bucket}.Arn}}/*"}:
        return "objects"
    if value == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}"}:
        return "bucket"
    if value == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}/*"}:
        return "objects"
    return None


def permission_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permission statement of IAM roles and SAM function policies, with its owner."""
    for logical_id, spec in of_type(template, "AWS::IAM::Role").items():
        for policy in spec.get("Properties", {}).get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield logical_id, statement
    for logical_id, spec in of_type(template, "AWS::Serverless::Function").items():
        for policy in as_list(spec.get("Properties", {}).get("Policies", [])):
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in as_list(policy["Statement"]):
                    yield logical_id, statement


# ---------------------------------------------------------------------------- S3


def test_template_declares_buckets_and_a_stream(template: dict[str, Any]) -> None:
    # GIVEN the project's template
    # WHEN its resources are listed by type
    # THEN the checks below have something to check
    assert of_type(template, "AWS::S3::Bucket")
    assert of_type(template, "AWS::Kinesis::Stream")
    assert of_type(template, "AWS::KinesisFirehose::DeliveryStream")


def test_every_bucket_is_encrypted(template: dict[str, Any]) -> None:
    # GIVEN every bucket
    for logical_id, spec in of_type(template, "AWS::S3::Bucket").items():
        # WHEN its encryption configuration is read
        rules = spec["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        # THEN each rule sets a server-side encryption algorithm
        assert rules, logical_id
        for rule in rules:
            algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            assert algorithm in ("AES256", "aws:kms", "aws:kms:dsse"), logical_id


def test_every_bucket_blocks_public_access(template: dict[str, Any]) -> None:
    # GIVEN every bucket
    for logical_id, spec in of_type(template, "AWS::S3::Bucket").items():
        # WHEN its public access block is read
        block = spec["Properties"]["PublicAccessBlockConfiguration"]
        # THEN all four flags are on
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id


def test_every_bucket_denies_insecure_transport(template: dict[str, Any]) -> None:
    # GIVEN every bucket and every bucket policy
    policies = of_type(template, "AWS::S3::BucketPolicy").values()
    for bucket in of_type(template, "AWS::S3::Bucket"):
        # WHEN the statements of the policies attached to it are collected
        statements = [
            statement
            for policy in policies
            if policy["Properties"]["Bucket"] == {"Ref": bucket}
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        ]
        # THEN one denies every s3 action to everyone on the bucket and its objects without TLS
        denied: set[str | None] = set()
        for statement in statements:
            condition = statement.get("Condition", {}).get("Bool", {})
            if (
                statement["Effect"] == "Deny"
                and statement["Principal"] in ("*", {"AWS": "*"})
                and "s3:*" in as_list(statement["Action"])
                and str(condition.get("aws:SecureTransport")).lower() == "false"
            ):
                denied |= {bucket_arn_target(r, bucket) for r in as_list(statement["Resource"])}
        assert {"bucket", "objects"} <= denied, bucket


# ---------------------------------------------------------------------------- Kinesis


def test_stream_is_kms_encrypted_with_a_parameterised_shard_count(
    template: dict[str, Any],
) -> None:
    # GIVEN every Kinesis stream
    for logical_id, spec in of_type(template, "AWS::Kinesis::Stream").items():
        properties = spec["Properties"]
        # WHEN its encryption and capacity are read
        encryption = properties["StreamEncryption"]
        shards = properties["ShardCount"]
        # THEN it is KMS-encrypted with a key, and the shard count is a template parameter
        assert encryption["EncryptionType"] == "KMS", logical_id
        assert encryption["KeyId"], logical_id
        assert set(shards) == {"Ref"}, logical_id
        parameter = template["Parameters"][shards["Ref"]]
        assert parameter["Type"] == "Number"
        assert int(parameter["MinValue"]) >= 1


# ---------------------------------------------------------------------------- IAM


def test_iam_statements_exist(template: dict[str, Any]) -> None:
    # GIVEN the project's template
    # WHEN its permission statements are collected
    owners = {owner for owner, _ in permission_statements(template)}
    # THEN both role policies and SAM function policies are found
    assert {"RawDeliveryRole", "GeneratorFunction"} <= owners


def test_no_statement_allows_every_action(template: dict[str, Any]) -> None:
    # GIVEN every Allow statement
    for owner, statement in permission_statements(template):
        if statement["Effect"] != "Allow":
            continue
        # WHEN its actions are read
        actions = as_list(statement["Action"])
        # THEN none is "*" or a whole service ("service:*"), and NotAction is not used
        assert "NotAction" not in statement, owner
        for action in actions:
            assert isinstance(action, str), owner
            assert action != "*", owner
            assert not action.endswith(":*"), f"{owner}: {action}"


def test_data_plane_actions_are_scoped_to_resources(template: dict[str, Any]) -> None:
    # GIVEN every Allow statement with data-plane actions
    for owner, statement in permission_statements(template):
        services = {action.split(":", 1)[0] for action in as_list(statement["Action"])}
        if statement["Effect"] != "Allow" or not services & set(DATA_PLANE_SERVICES):
            continue
        # WHEN its resources are read
        resources = as_list(statement["Resource"])
        # THEN each is a specific resource, never "*" or an ARN wildcard for a whole service
        assert "NotResource" not in statement, owner
        for resource in resources:
            assert resource != "*", f"{owner}: {sorted(services)}"
            if isinstance(resource, str):
                assert not resource.endswith(":*"), f"{owner}: {resource}"


# ---------------------------------------------------------------------------- Firehose, schedule


def test_raw_delivery_reads_the_stream_and_writes_rawdata(template: dict[str, Any]) -> None:
    # GIVEN the raw Firehose delivery stream
    spec = template["Resources"]["RawDeliveryStream"]
    properties = spec["Properties"]
    destination = properties["ExtendedS3DestinationConfiguration"]
    # WHEN its source and destination are read
    source_arn = properties["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]
    # THEN it reads the Kinesis stream
    assert spec["Type"] == "AWS::KinesisFirehose::DeliveryStream"
    assert properties["DeliveryStreamType"] == "KinesisStreamAsSource"
    stream = source_arn["Fn::GetAtt"][0]
    assert template["Resources"][stream]["Type"] == "AWS::Kinesis::Stream"
    # AND it writes the raw bucket under rawdata/, buffered, with errors kept apart
    assert destination["BucketARN"] == {"Fn::GetAtt": ["RawBucket", "Arn"]}
    assert destination["Prefix"].startswith("rawdata/")
    assert set(destination["BufferingHints"]) == {"IntervalInSeconds", "SizeInMBs"}
    error_prefix = destination["ErrorOutputPrefix"]
    assert "!{firehose:error-output-type}" in error_prefix
    assert not error_prefix.startswith("rawdata/"), "errors would land in the raw table"


def test_generator_runs_on_a_schedule(template: dict[str, Any]) -> None:
    # GIVEN the generator function
    events = template["Resources"]["GeneratorFunction"]["Properties"]["Events"]
    # WHEN its event sources are read
    schedules = [event for event in events.values() if event["Type"] == "Schedule"]
    # THEN one is a schedule driven by the GeneratorSchedule parameter
    assert len(schedules) == 1
    assert schedules[0]["Properties"]["Schedule"] == {"Ref": "GeneratorSchedule"}


# ---------------------------------------------------------------------------- local policy


TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
READ_ONLY = {
    "Sid": "AllowRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::b/*",
}
DENY_DELETE = {
    "Sid": "DenyDeleteFromOutside",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:DeleteObject",
    "Resource": "arn:aws:s3:::b/*",
    "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}},
}


def test_local_bucket_policy_drops_only_the_secure_transport_statement() -> None:
    # GIVEN a policy with a TLS-only deny between two other statements
    document = {"Version": "2012-10-17", "Statement": [READ_ONLY, TLS_ONLY, DENY_DELETE]}
    original = copy.deepcopy(document)
    # WHEN it is adapted for the plain-HTTP local endpoint
    local = local_bucket_policy(document)
    # THEN only the TLS statement is gone, in order, and the input is unchanged
    assert local == {"Version": "2012-10-17", "Statement": [READ_ONLY, DENY_DELETE]}
    assert document == original


def test_local_bucket_policy_accepts_a_single_statement() -> None:
    # GIVEN policies whose Statement is a single object
    # WHEN they are adapted
    # THEN a TLS-only statement leaves an empty list, any other is kept as a list
    assert local_bucket_policy({"Statement": TLS_ONLY})["Statement"] == []
    assert local_bucket_policy({"Statement": READ_ONLY})["Statement"] == [READ_ONLY]


def test_local_bucket_policy_of_the_project_bucket_is_empty(template: dict[str, Any]) -> None:
    # GIVEN the project's raw bucket policy, which only requires TLS
    document = template["Resources"]["RawBucketPolicy"]["Properties"]["PolicyDocument"]
    # WHEN it is adapted
    local = local_bucket_policy(document)
    # THEN nothing is left to apply locally, and the version is kept
    assert local == {"Version": "2012-10-17", "Statement": []}


# ---------------------------------------------------------------------------- prefixes


ARRIVAL = datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prefix", "error_type", "expected"),
    [
        (
            "rawdata/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
            None,
            "rawdata/2026/03/07/04/",
        ),
        (
            "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/",
            None,
            "errors/processing-failed/2026/03/",
        ),
        (
            "errors/!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/",
            "format-conversion-failed",
            "errors/format-conversion-failed/2026-03-07/",
        ),
        ("rawdata/", None, "rawdata/2026/03/07/04/"),
        ("", None, "2026/03/07/04/"),
        ("at/!{timestamp:HH:mm:ss}/", None, "at/04:05:06/"),
    ],
    ids=[
        "hourly-partitions",
        "default-error-type",
        "given-error-type",
        "no-expression",
        "empty",
        "minutes-seconds",
    ],
)
def test_render_prefix(prefix: str, error_type: str | None, expected: str) -> None:
    # GIVEN a Firehose prefix and an arrival time in UTC
    # WHEN it is rendered
    rendered = render_prefix(prefix, ARRIVAL, error_type)
    # THEN expressions are evaluated, and a prefix without any gets YYYY/MM/DD/HH/ appended
    assert rendered == expected


def test_render_prefix_of_the_project_template(template: dict[str, Any]) -> None:
    # GIVEN the raw delivery stream's prefixes
    destination = template["Resources"]["RawDeliveryStream"]["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    # WHEN they are rendered for one arrival time
    data = render_prefix(destination["Prefix"], ARRIVAL)
    errors = render_prefix(destination["ErrorOutputPrefix"], ARRIVAL, "processing-failed")
    # THEN data lands in the hourly partition the Glue table projects, errors elsewhere
    assert data == "rawdata/2026/03/07/04/"
    assert errors == "errors/rawdata/processing-failed/2026/03/07/04/"


def test_render_prefix_rejects_unknown_expressions() -> None:
    # GIVEN a prefix with an expression Firehose does not define
    # WHEN it is rendered
    # THEN it fails naming the expression
    with pytest.raises(ValueError, match=r"!\{partitionKeyFromQuery:custid\}"):
        render_prefix("x/!{partitionKeyFromQuery:custid}/", ARRIVAL)


def test_secure_transport_statements_are_dropped_whatever_the_key_case() -> None:
    # GIVEN a TLS-only statement whose condition key is spelled in lower case (IAM ignores case)
    document = {
        "Statement": [
            {"Effect": "Deny", "Condition": {"Bool": {"aws:securetransport": "false"}}},
            {"Effect": "Allow", "Action": "s3:GetObject"},
        ]
    }
    # WHEN the local form is computed THEN only the TLS statement is dropped
    assert local_bucket_policy(document)["Statement"] == [
        {"Effect": "Allow", "Action": "s3:GetObject"}
    ]


def test_search_domain_is_encrypted_https_only_and_open_to_two_roles_only(
    template: dict[str, Any],
) -> None:
    # GIVEN the OpenSearch Service domain
    (domain,) = of_type(template, "AWS::OpenSearchService::Domain").values()
    properties = domain["Properties"]
    # THEN data is encrypted at rest and between nodes, and only HTTPS with TLS 1.2+ is served
    assert properties["EncryptionAtRestOptions"] == {"Enabled": True}
    assert properties["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert properties["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert "TLS-1-2" in properties["DomainEndpointOptions"]["TLSSecurityPolicy"]
    # AND instance type and count are parameters
    assert properties["ClusterConfig"]["InstanceType"] == {"Ref": "SearchInstanceType"}
    assert properties["ClusterConfig"]["InstanceCount"] == {"Ref": "SearchInstanceCount"}
    # AND the access policy names exactly the indexer's role and the dashboard reader role
    statements = properties["AccessPolicies"]["Statement"]
    principals = {str(s["Principal"]["AWS"]) for s in statements}
    assert principals == {
        str({"Fn::GetAtt": ["SearchIndexerRole", "Arn"]}),
        str({"Fn::GetAtt": ["DashboardReaderRole", "Arn"]}),
    }
    assert all(s["Effect"] == "Allow" and "*" not in as_list(s["Action"]) for s in statements)
    assert all(a.startswith("es:ESHttp") for s in statements for a in as_list(s["Action"]))


def test_the_indexer_reads_through_its_own_enhanced_fan_out_consumer(
    template: dict[str, Any],
) -> None:
    # GIVEN the search indexer function
    function = template["Resources"]["SearchIndexerFunction"]["Properties"]
    (event,) = function["Events"].values()
    source = event["Properties"]
    # THEN it reads through a registered stream consumer, with the error handling of a consumer
    assert source["Stream"] == {"Fn::GetAtt": ["SearchIndexerConsumer", "ConsumerARN"]}
    consumer = template["Resources"]["SearchIndexerConsumer"]
    assert consumer["Type"] == "AWS::Kinesis::StreamConsumer"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    assert 0 < source["MaximumRetryAttempts"] <= 10
    assert source["MaximumRecordAgeInSeconds"] > 0
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ConsumerFailureQueue", "Arn"]
    }


def test_stream_consumers_have_explicit_roles_without_managed_wildcard_policies(
    template: dict[str, Any],
) -> None:
    # GIVEN every function triggered by the stream
    functions = of_type(template, "AWS::Serverless::Function")
    consumers = {
        logical_id: spec["Properties"]
        for logical_id, spec in functions.items()
        if any(e["Type"] == "Kinesis" for e in spec["Properties"].get("Events", {}).values())
    }
    assert consumers
    # THEN each uses its own role, so SAM attaches no AWSLambdaKinesisExecutionRole (Resource *)
    for logical_id, properties in consumers.items():
        role = properties.get("Role")
        assert isinstance(role, dict) and "Fn::GetAtt" in role, logical_id
        assert "Policies" not in properties, logical_id
        role_id = role["Fn::GetAtt"][0]
        assert template["Resources"][role_id]["Type"] == "AWS::IAM::Role"
        assert not template["Resources"][role_id]["Properties"].get("ManagedPolicyArns")
