"""Static security and wiring checks on template.yaml: S3, Kinesis, Firehose, search, schedule."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

from tests.support.template_documents import as_list, of_type

ROOT = Path(__file__).resolve().parents[2]


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


def test_generator_schedule_is_opt_in(template: dict[str, Any]) -> None:
    # GIVEN the schedule's switch in the template, and the deploy defaults of samconfig.toml
    parameter = template["Parameters"]["GeneratorScheduleEnabled"]
    schedule = template["Resources"]["GeneratorFunction"]["Properties"]["Events"]["Schedule"]
    with (ROOT / "samconfig.toml").open("rb") as handle:
        deploy = tomllib.load(handle)["default"]["deploy"]["parameters"]
    # WHEN a stack is deployed without naming it (overrides: a list, or a string as --guided saves)
    items = deploy.get("parameter_overrides", [])
    items = shlex.split(items) if isinstance(items, str) else items
    overrides = dict(item.split("=", 1) for item in items)
    # THEN the schedule is off: the template's default, which samconfig.toml does not turn on
    assert parameter["Default"] == "false"
    assert schedule["Properties"]["Enabled"] == {"Fn::If": ["ScheduleEnabled", True, False]}
    assert overrides.get("GeneratorScheduleEnabled", "false") == "false"


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
    assert source["DestinationConfig"]["OnFailure"] == {
        "Type": "S3",
        "Destination": {"Fn::GetAtt": ["FailedBatchBucket", "Arn"]},
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
