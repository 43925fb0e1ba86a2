"""IAM policy evaluation, the permissions each request needs, and the template's roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.cfn import Template
from clickstream_local.iam import (
    BASIC_EXECUTION_POLICY,
    Decision,
    Permission,
    evaluate,
    function_role_arn,
    template_roles,
)
from clickstream_local.iam_requests import (
    AwsRequest,
    UnknownOperation,
    required_permissions,
    stream_of_iterator,
)

ROOT = Path(__file__).resolve().parents[2]
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/state"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    """A policy document of ``statements``."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    """An Allow statement."""
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# ---------------------------------------------------------------------------- evaluation


def test_an_allow_on_the_exact_resource_allows_and_nothing_else_does() -> None:
    # GIVEN a policy allowing PutItem on one table
    documents = [policy(allow("dynamodb:PutItem", TABLE))]
    # WHEN PutItem there, PutItem elsewhere and GetItem there are evaluated
    # THEN only the first is allowed; the others are implicitly denied
    assert evaluate(documents, Permission("dynamodb:PutItem", TABLE)) is Decision.ALLOW
    assert evaluate(documents, Permission("dynamodb:PutItem", TABLE + "x")) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(documents, Permission("dynamodb:GetItem", TABLE)) is Decision.IMPLICIT_DENY


def test_actions_match_without_case_and_resources_with_case_and_wildcards() -> None:
    # GIVEN wildcards in actions and resources
    documents = [policy(allow("S3:Put*", "arn:aws:s3:::lake/quarantine/?/*"))]
    # WHEN actions differ in case and keys in depth
    # THEN actions ignore case, `?` is one character and `*` any run, resources keep case
    assert (
        evaluate(documents, Permission("s3:PutObject", "arn:aws:s3:::lake/quarantine/a/b/c"))
        is Decision.ALLOW
    )
    assert (
        evaluate(documents, Permission("s3:putobject", "arn:aws:s3:::lake/quarantine/a/x"))
        is Decision.ALLOW
    )
    assert (
        evaluate(documents, Permission("s3:PutObject", "arn:aws:s3:::lake/quarantine/ab/x"))
        is Decision.IMPLICIT_DENY
    )
    assert (
        evaluate(documents, Permission("s3:PutObject", "arn:aws:s3:::lake/Quarantine/a/x"))
        is Decision.IMPLICIT_DENY
    )


def test_an_explicit_deny_wins_over_any_allow() -> None:
    # GIVEN an allow on everything and a deny on one table
    documents = [
        policy(allow("dynamodb:*", "*")),
        policy({"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE}),
    ]
    # WHEN DeleteItem on that table and on another are evaluated
    # THEN the deny wins there, the allow elsewhere
    assert evaluate(documents, Permission("dynamodb:DeleteItem", TABLE)) is Decision.EXPLICIT_DENY
    assert evaluate(documents, Permission("dynamodb:DeleteItem", "other")) is Decision.ALLOW


def test_not_action_and_not_resource_match_everything_but_what_they_name() -> None:
    # GIVEN NotAction and NotResource statements
    documents = [policy({"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": "b"})]
    # WHEN actions and resources inside and outside them are evaluated
    # THEN only what neither names is allowed
    assert evaluate(documents, Permission("s3:GetObject", "a")) is Decision.ALLOW
    assert evaluate(documents, Permission("s3:DeleteObject", "a")) is Decision.IMPLICIT_DENY
    assert evaluate(documents, Permission("s3:GetObject", "b")) is Decision.IMPLICIT_DENY


def test_conditions_hold_on_the_request_context() -> None:
    # GIVEN ListBucket allowed only for prefixes under rawdata/
    condition = {"StringLike": {"s3:prefix": ["rawdata/*"]}}
    documents = [policy(allow("s3:ListBucket", "arn:aws:s3:::lake", Condition=condition))]
    bucket = "arn:aws:s3:::lake"
    # WHEN listings with several prefixes, and none, are evaluated
    # THEN only the matching prefix is allowed; a missing key does not satisfy StringLike
    listing = Permission("s3:ListBucket", bucket, {"s3:prefix": "rawdata/2026/"})
    assert evaluate(documents, listing) is Decision.ALLOW
    assert evaluate(documents, Permission("s3:ListBucket", bucket, {"s3:prefix": "sessions/"})) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(documents, Permission("s3:ListBucket", bucket)) is Decision.IMPLICIT_DENY


def test_an_unknown_condition_operator_never_makes_the_local_check_more_permissive() -> None:
    # GIVEN an allow and a deny, each under an operator the evaluator does not know
    unknown = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    allowing = [policy(allow("s3:GetObject", "*", Condition=unknown))]
    denying = [
        policy(allow("s3:GetObject", "*")),
        policy({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*", "Condition": unknown}),
    ]
    # WHEN GetObject is evaluated under each
    # THEN the allow does not apply and the deny does
    assert evaluate(allowing, Permission("s3:GetObject", "x")) is Decision.IMPLICIT_DENY
    assert evaluate(denying, Permission("s3:GetObject", "x")) is Decision.EXPLICIT_DENY


# ---------------------------------------------------------------------------- requests


def json_request(service: str, target: str, body: dict[str, Any]) -> AwsRequest:
    """A JSON-protocol request."""
    return AwsRequest(
        service=service,
        method="POST",
        path="/",
        query={},
        headers={"x-amz-target": f"Prefix_20120810.{target}"},
        body=json.dumps(body).encode(),
        region="us-east-1",
    )


def s3_request(method: str, path: str, query: str = "", **headers: str) -> AwsRequest:
    """A path-style S3 request."""
    from urllib.parse import parse_qs

    return AwsRequest(
        service="s3",
        method=method,
        path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers=headers,
        body=b"",
        region="us-east-1",
    )


def test_a_dynamodb_transaction_needs_each_items_own_action_and_no_transaction_action() -> None:
    # GIVEN a TransactWriteItems with a put, an update, a delete and a condition check
    body = {
        "TransactItems": [
            {"Put": {"TableName": "state"}},
            {"Update": {"TableName": "state"}},
            {"Delete": {"TableName": "other"}},
            {"ConditionCheck": {"TableName": "state"}},
        ]
    }
    # WHEN its permissions are listed
    permissions = required_permissions(json_request("dynamodb", "TransactWriteItems", body))
    # THEN each item needs its own item action on its own table, as on AWS
    assert [(p.action, p.resource.rsplit("/", 1)[1]) for p in permissions] == [
        ("dynamodb:PutItem", "state"),
        ("dynamodb:UpdateItem", "state"),
        ("dynamodb:DeleteItem", "other"),
        ("dynamodb:ConditionCheckItem", "state"),
    ]


def test_batch_reads_need_batch_get_item_per_table_and_index_queries_the_index() -> None:
    # GIVEN a BatchGetItem over two tables and a Query on an index
    batch = json_request("dynamodb", "BatchGetItem", {"RequestItems": {"a": {}, "b": {}}})
    query = json_request("dynamodb", "Query", {"TableName": "a", "IndexName": "by-time"})
    # WHEN their permissions are listed
    # THEN BatchGetItem is checked once per table, and the query on the index's ARN
    assert [p.action for p in required_permissions(batch)] == ["dynamodb:BatchGetItem"] * 2
    assert required_permissions(query)[0].resource.endswith(":table/a/index/by-time")


def test_get_records_is_checked_on_the_stream_its_iterator_reads() -> None:
    # GIVEN an iterator as the local endpoint issues it (base64 of stream:shard:sequence)
    import base64

    iterator = base64.encodebytes(b"clicks:shardId-000000000000:0").decode()
    # WHEN GetRecords' permissions are listed
    permissions = required_permissions(
        json_request("kinesis", "GetRecords", {"ShardIterator": iterator})
    )
    # THEN it is kinesis:GetRecords on that stream
    assert stream_of_iterator(iterator) == "clicks"
    assert permissions == [
        Permission("kinesis:GetRecords", "arn:aws:kinesis:us-east-1:123456789012:stream/clicks")
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "/lake", "list-type=2&prefix=rawdata%2F", {}, [("s3:ListBucket", "lake")]),
        ("HEAD", "/lake", "", {}, [("s3:ListBucket", "lake")]),
        ("GET", "/lake", "location", {}, [("s3:GetBucketLocation", "lake")]),
        ("GET", "/lake/a/b.json", "", {}, [("s3:GetObject", "lake/a/b.json")]),
        ("HEAD", "/lake/a%20b", "", {}, [("s3:GetObject", "lake/a b")]),
        ("PUT", "/lake/k", "", {}, [("s3:PutObject", "lake/k")]),
        ("PUT", "/lake/k", "partNumber=1&uploadId=u", {}, [("s3:PutObject", "lake/k")]),
        ("POST", "/lake/k", "uploads", {}, [("s3:PutObject", "lake/k")]),
        ("DELETE", "/lake/k", "uploadId=u", {}, [("s3:AbortMultipartUpload", "lake/k")]),
        ("GET", "/lake/k", "uploadId=u", {}, [("s3:ListMultipartUploadParts", "lake/k")]),
        ("DELETE", "/lake/k", "", {}, [("s3:DeleteObject", "lake/k")]),
        (
            "PUT",
            "/lake/new",
            "",
            {"x-amz-copy-source": "/other/old%20key"},
            [("s3:PutObject", "lake/new"), ("s3:GetObject", "other/old key")],
        ),
    ],
)
def test_s3_requests_need_the_actions_the_service_reference_names(
    method: str, path: str, query: str, headers: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    # GIVEN a path-style S3 request
    request = s3_request(method, path, query, **headers)
    # WHEN its permissions are listed
    permissions = required_permissions(request)
    # THEN they are the actions AWS checks, on the bucket or object ARNs
    assert [(p.action, p.resource.removeprefix("arn:aws:s3:::")) for p in permissions] == expected


def test_a_listing_carries_its_prefix_as_the_condition_key() -> None:
    # GIVEN a ListObjectsV2 with a prefix
    request = s3_request("GET", "/lake", "list-type=2&prefix=rawdata%2F2026")
    # WHEN its permission is listed
    # THEN s3:prefix is in its context, for policies conditioned on it
    assert required_permissions(request)[0].context == {"s3:prefix": "rawdata/2026"}


def test_a_multi_object_delete_needs_delete_object_on_every_key() -> None:
    # GIVEN a DeleteObjects body with two keys
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>events/a</Key></Object><Object><Key>events/b</Key></Object></Delete>"
    )
    request = AwsRequest("s3", "POST", "/lake", {"delete": [""]}, {}, body, "us-east-1")
    # WHEN its permissions are listed
    # THEN each key needs s3:DeleteObject
    assert [p.resource for p in required_permissions(request)] == [
        "arn:aws:s3:::lake/events/a",
        "arn:aws:s3:::lake/events/b",
    ]


def test_queues_are_named_by_their_url_and_unknown_operations_are_refused() -> None:
    # GIVEN an SQS SendMessage by queue URL, and a DynamoDB request without an operation
    send = json_request("sqs", "SendMessage", {"QueueUrl": "http://h/123456789012/failures"})
    broken = AwsRequest("dynamodb", "POST", "/", {}, {}, b"{}", "us-east-1")
    # WHEN their permissions are listed
    # THEN the queue's ARN is the resource, and the request without an operation is refused
    assert required_permissions(send) == [
        Permission("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:failures")
    ]
    with pytest.raises(UnknownOperation):
        required_permissions(broken)


# ---------------------------------------------------------------------------- template roles


def test_every_function_runs_with_a_role_the_template_declares() -> None:
    # GIVEN the project's template
    template = Template.load(ROOT / "template.yaml")
    roles = template_roles(template)
    # WHEN each function's role is looked up
    # THEN it is one of the template's roles, with at least one policy
    for function in template.resources("AWS::Serverless::Function"):
        role = roles[function_role_arn(template, function)]
        assert role.documents, function.logical_id


def test_finalizer_may_read_the_session_log_and_window_counter_may_not() -> None:
    # GIVEN the project's roles
    template = Template.load(ROOT / "template.yaml")
    roles = template_roles(template)
    table = template.arn("SessionStateTable")
    # WHEN Query on the session state, and BatchGetItem the log layout needs no more, are
    # evaluated for two roles
    finalizer = roles[template.arn("FinalizerRole")]
    counter = roles[template.arn("WindowCounterRole")]
    # THEN only the finalizer (which replays the log to close idle sessions) may query it
    assert finalizer.decide(Permission("dynamodb:Query", table)) is Decision.ALLOW
    assert counter.decide(Permission("dynamodb:Query", table)) is Decision.IMPLICIT_DENY
    # AND neither may batch-read or delete there: the log is only appended to
    for role in (finalizer, counter):
        assert role.decide(Permission("dynamodb:BatchGetItem", table)) is Decision.IMPLICIT_DENY
        assert role.decide(Permission("dynamodb:DeleteItem", table)) is Decision.IMPLICIT_DENY


def test_gap_sessions_are_written_through_the_sessions_delivery_stream_only() -> None:
    # GIVEN the project's roles, the two Direct PUT streams and the raw bucket
    template = Template.load(ROOT / "template.yaml")
    roles = template_roles(template)
    aggregated = template.arn("AggregatedDeliveryStream")
    sessions = template.arn("SessionsDeliveryStream")
    bucket = template.arn("RawBucket")
    # WHEN the functions that close sessions put records and objects
    for role_name in ("SessionizerRole", "FinalizerRole"):
        role = roles[template.arn(role_name)]
        # THEN they may put record batches to both streams, and to no other stream
        for stream in (aggregated, sessions):
            assert role.decide(Permission("firehose:PutRecordBatch", stream)) is Decision.ALLOW
        assert role.decide(Permission("firehose:PutRecord", sessions)) is Decision.IMPLICIT_DENY
        raw = template.arn("RawDeliveryStream")
        assert role.decide(Permission("firehose:PutRecordBatch", raw)) is Decision.IMPLICIT_DENY
        # AND neither may write under sessions/ itself: only the stream's role does
        key = f"{bucket}/sessions/2026/03/07/14/x"
        assert role.decide(Permission("s3:PutObject", key)) is Decision.IMPLICIT_DENY
    # AND the sessionizer still writes its quarantine, which the finalizer never writes
    sessionizer = roles[template.arn("SessionizerRole")]
    finalizer = roles[template.arn("FinalizerRole")]
    quarantined = Permission("s3:PutObject", f"{bucket}/quarantine/sessionizer/2026/x.jsonl")
    assert sessionizer.decide(quarantined) is Decision.ALLOW
    assert finalizer.decide(quarantined) is Decision.IMPLICIT_DENY
    # AND the stream's own role writes sessions/ and errors/sessions/ only
    delivery = roles[template.arn("SessionsDeliveryRole")]
    for key in ("sessions/2026/03/07/14/x", "errors/sessions/x"):
        assert delivery.decide(Permission("s3:PutObject", f"{bucket}/{key}")) is Decision.ALLOW
    for key in ("aggregated/2026/03/07/14/x", "rawdata/2026/03/07/14/x", "quarantine/x"):
        assert delivery.decide(Permission("s3:PutObject", f"{bucket}/{key}")) is (
            Decision.IMPLICIT_DENY
        )


def test_a_function_without_a_role_gets_the_role_sam_would_generate(tmp_path: Path) -> None:
    # GIVEN a function with inline policies, a Kinesis event with an SQS on-failure destination,
    # tracing on and no Role
    document = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}},
            "Failures": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "fn/",
                    "Handler": "app.handler",
                    "Tracing": "Active",
                    "Policies": [{"Statement": [allow("s3:GetObject", "arn:aws:s3:::b/*")]}],
                    "Events": {
                        "Stream": {
                            "Type": "Kinesis",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["Stream", "Arn"]},
                                "StartingPosition": "LATEST",
                                "DestinationConfig": {
                                    "OnFailure": {
                                        "Type": "SQS",
                                        "Destination": {"Fn::GetAtt": ["Failures", "Arn"]},
                                    }
                                },
                            },
                        }
                    },
                },
            },
        },
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(document))
    template = Template.load(path, stack_name="s")
    # WHEN its roles are read
    role = template_roles(template)[template.arn("FnRole")]
    # THEN the generated role has SAM's managed policies, the inline statements and the
    # destination's SendMessage
    logs = Permission("logs:CreateLogGroup", "arn:aws:logs:us-east-1:123456789012:log-group:x")
    assert role.decide(logs) is Decision.ALLOW
    assert role.decide(Permission("xray:PutTraceSegments", "*")) is Decision.ALLOW
    assert role.decide(Permission("kinesis:GetRecords", template.arn("Stream"))) is Decision.ALLOW
    assert role.decide(Permission("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.ALLOW
    assert role.decide(Permission("sqs:SendMessage", template.arn("Failures"))) is Decision.ALLOW
    assert role.decide(Permission("s3:PutObject", "arn:aws:s3:::b/k")) is Decision.IMPLICIT_DENY
    assert BASIC_EXECUTION_POLICY.endswith("AWSLambdaBasicExecutionRole")


def test_a_generated_role_may_list_and_write_its_s3_on_failure_bucket(tmp_path: Path) -> None:
    # GIVEN a function without a Role whose Kinesis event keeps failed batches in a bucket
    document = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}},
            "Kept": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "kept"}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "fn/",
                    "Handler": "app.handler",
                    "Events": {
                        "Stream": {
                            "Type": "Kinesis",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["Stream", "Arn"]},
                                "StartingPosition": "LATEST",
                                "DestinationConfig": {
                                    "OnFailure": {
                                        "Type": "S3",
                                        "Destination": {"Fn::GetAtt": ["Kept", "Arn"]},
                                    }
                                },
                            },
                        }
                    },
                },
            },
        },
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(document))
    template = Template.load(path, stack_name="s")
    # WHEN its generated role is read
    role = template_roles(template)[template.arn("FnRole")]
    # THEN it may list the bucket and put objects in it, as SAM grants, and nothing more there
    assert role.decide(Permission("s3:ListBucket", "arn:aws:s3:::kept")) is Decision.ALLOW
    assert role.decide(Permission("s3:PutObject", "arn:aws:s3:::kept/aws/lambda/x")) is (
        Decision.ALLOW
    )
    assert role.decide(Permission("s3:GetObject", "arn:aws:s3:::kept/aws/lambda/x")) is (
        Decision.IMPLICIT_DENY
    )
