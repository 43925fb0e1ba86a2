"""Every path of the local stack runs under its template roles, and every grant is needed.

One stack runs ingestion (the generator function), the three stream consumers with malformed
records to quarantine, the finalizer's idle close and end of stream, search, and the three Glue
jobs. Then the endpoint's audit must show no refusal, and each role's granted actions must be
exactly the actions it used here plus those only AWS's own services call for it (listed below
with the reason). A grant nobody uses fails the test as surely as a call nobody granted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.generator.producer import send_records
from clickstream.ports import StreamRecord
from clickstream_cli.traffic import FINALIZER, invoke_function
from clickstream_local.aws import iam_audit
from clickstream_local.glue_local import run_in_subprocess, template_jobs
from clickstream_local.iam import Decision, Permission, RolePolicies, evaluate, template_roles
from clickstream_local.stack import LocalStack, StackState
from tests.factories import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAMBDA_SERVICE = "the Lambda service's enhanced fan-out poller, on AWS; the local runner reads"
FIREHOSE_DESTINATION = "Firehose's S3 destination on AWS; the local emulation only puts objects"
NOT_CALLED_LOCALLY: dict[str, str] = {
    "logs:CreateLogStream": "Lambda and Glue write logs on AWS; locally logs are files",
    "logs:PutLogEvents": "Lambda, Glue and Firehose write logs on AWS; locally logs are files",
    "logs:CreateLogGroup": "Glue creates its account-wide log groups on AWS",
    "xray:PutTraceSegments": "the X-Ray daemon of Lambda on AWS",
    "xray:PutTelemetryRecords": "the X-Ray daemon of Lambda on AWS",
    "kinesis:SubscribeToShard": LAMBDA_SERVICE + " with GetRecords",
    "kinesis:DescribeStreamConsumer": LAMBDA_SERVICE + " with GetRecords",
    "kinesis:DescribeStream": "the Lambda and Firehose pollers' stream checks on AWS",
    "kinesis:DescribeStreamSummary": "the Lambda and Firehose pollers' stream checks on AWS",
    "s3:GetBucketLocation": "Firehose's and Glue's bucket checks on AWS",
    "s3:ListBucketMultipartUploads": "Firehose's and Glue's multipart clean-up on AWS",
    "s3:AbortMultipartUpload": "multipart uploads, which local objects are too small for",
    "s3:ListMultipartUploadParts": "multipart uploads, which local objects are too small for",
    "glue:GetDatabase": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:GetTable": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:GetTables": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:GetPartition": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:GetPartitions": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:CreateTable": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:UpdateTable": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:DeleteTable": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:CreatePartition": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:BatchCreatePartition": "the Glue Data Catalog; locally the catalog is a Hive metastore",
    "glue:NotifyEvent": "EventBridge, which the local trigger checks in process (glue_trigger)",
    "cloudwatch:PutMetricData": "Glue's job metrics on AWS",
}
"""Granted actions that only AWS's own services call for any role, and why."""

FIREHOSE_ERRORS = "Firehose writes records it could not deliver under its error prefix"
GLUE_CODE = "Glue loads the script and --extra-py-files; locally the code is the repository's"
KEPT_BATCH = (
    "a batch the mapping gives up on, kept in the failed-batch bucket with the function's role:"
    " tests/e2e/test_hostile_input.py keeps the window counter's and the sessionizer's,"
    " tests/integration/test_event_source_runner.py one with a role SAM generates"
)
ROLE_GRANTS_NOT_CALLED_LOCALLY: dict[tuple[str, str, str], str] = {
    ("RawDeliveryRole", "s3:GetObject", ""): FIREHOSE_DESTINATION,
    ("RawDeliveryRole", "s3:ListBucket", ""): FIREHOSE_DESTINATION,
    ("RawDeliveryRole", "s3:PutObject", "/errors/"): FIREHOSE_ERRORS,
    ("AggregatedDeliveryRole", "s3:GetObject", ""): FIREHOSE_DESTINATION,
    ("AggregatedDeliveryRole", "s3:ListBucket", ""): FIREHOSE_DESTINATION,
    ("AggregatedDeliveryRole", "s3:PutObject", "/errors/"): FIREHOSE_ERRORS,
    ("SessionsDeliveryRole", "s3:GetObject", ""): FIREHOSE_DESTINATION,
    ("SessionsDeliveryRole", "s3:ListBucket", ""): FIREHOSE_DESTINATION,
    ("SessionsDeliveryRole", "s3:PutObject", "/errors/"): FIREHOSE_ERRORS,
    ("GlueJobRole", "s3:GetObject", "/_glue/"): GLUE_CODE,
    ("GlueJobRole", "s3:GetObject", "samclisourcebucket"): GLUE_CODE,
    **{
        (role, action, part): KEPT_BATCH
        for role in ("WindowCounterRole", "SessionizerRole", "SearchIndexerRole")
        for action, part in (("s3:PutObject", "/aws/lambda/"), ("s3:ListBucket", "failed-batches"))
    },
}
"""Grants (role, action, a part of the resource) that only AWS's own services use, and why."""

NOT_STARTED_LOCALLY = {"DashboardReaderRole": "a person's role for OpenSearch Dashboards"}
"""Roles nothing assumes locally."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, StackState]]:
    """A whole local stack whose idle shards advance after 5 s, with 5 s of lateness."""
    local = LocalStack(home=tmp_path_factory.mktemp("iam-stack"))
    parameters = {"IdleTimeoutSeconds": "5", "AllowedLatenessSeconds": "5", "ShardCount": "2"}
    state, _ = local.up(parameters)
    yield local, state
    local.down(keep_lake=False)


def old_events(count: int) -> list[StreamRecord]:
    """Valid events of ``count`` customers over the last two hours, evenly apart.

    A batch of them changes more than 99 window items, which the window counter commits in
    several transactions guarded by a condition check (``ConditionCheckItem``).
    """
    start = datetime.now(UTC) - timedelta(hours=2)
    step = timedelta(hours=2) / count
    events = [make_event(start + step * i, custid=1 + i) for i in range(count)]
    return [StreamRecord(e.to_json_line(), e.partition_key, e.event_id) for e in events]


def idle_close_committed_session_state(state: StackState) -> bool:
    """Whether a finalizer run (invoked, or the daemon's schedule) closed open sessions: it
    read the sessionizer's log and committed to the session state table."""
    template = state.template()
    finalizer, table = template.arn("FinalizerRole"), template.arn("SessionStateTable")
    return any(
        d["role"] == finalizer and d["action"] == "dynamodb:PutItem" and d["resource"] == table
        for d in iam_audit(state.endpoint_url)["decisions"]
    )


def exercise_every_path(local: LocalStack, state: StackState) -> None:
    """Run each path of the stack once."""
    stream = state.template().resource("ClickstreamStream").physical_id
    malformed = [StreamRecord(b"not json\n", "1"), StreamRecord(b'{"event_id": "x"}\n', "2")]
    report = send_records(
        [*old_events(300), *malformed], KinesisRecordStream(state.client("kinesis"), stream)
    )
    assert report.unaccepted == []
    local.drain()
    # Only these events so far: their last minute closes once the idle shards' event time has
    # moved on with the clock past its end and the lateness (at most about 70 s), in a
    # finalizer run this test invokes or the one the daemon schedules every minute.
    deadline = time.monotonic() + 240
    while not idle_close_committed_session_state(state):
        assert time.monotonic() < deadline, "no idle close committed session state within 240 s"
        invoke_function(state, FINALIZER, {})
    assert local.run_glue(), "no Glue run"
    invoke_function(state, "GeneratorFunction", {"mode": "count", "count": 50, "seed": 7})
    local.drain()
    invoke_function(state, FINALIZER, {"close_all": True})
    local.drain()
    # Traffic after the end of the stream: every event is late, and the sessionizer reads the
    # log of its state (strongly consistent) for open keys to close.
    invoke_function(state, "GeneratorFunction", {"mode": "count", "count": 10, "seed": 8})
    local.drain()
    assert local.run_glue(), "no second Glue run"  # reads the first run's ledger entries
    jobs = template_jobs(state.template(), local.root)
    run_in_subprocess(
        [jobs["InferSchemasJob"]],
        state.endpoint_url,
        local.home / "metastore",
        local.logs / "glue.log",
    )


def test_every_path_runs_with_its_roles_and_every_grant_is_used(
    stack: tuple[LocalStack, StackState],
) -> None:
    # GIVEN a stack enforcing the template's roles
    local, state = stack
    # WHEN ingestion, the consumers, idle close, end of stream, search and the jobs all run
    exercise_every_path(local, state)
    # THEN the endpoint refused nothing
    audit = iam_audit(state.endpoint_url)
    refused = [d for d in audit["decisions"] if d["decision"] != "allow"]
    assert refused == []
    # AND every role used each action on each resource it is granted, but for those only AWS's
    # services call
    assert unused_grants(audit, template_roles(state.template())) == {}


def unused_grants(audit: dict[str, Any], roles: dict[str, RolePolicies]) -> dict[str, list[str]]:
    """Per role, each granted (action, resource pattern) no allowed call of the audit matched."""
    used: dict[str, list[tuple[str, str]]] = {}
    for decision in audit["decisions"]:
        used.setdefault(decision["role"], []).append((decision["action"], decision["resource"]))
    unused: dict[str, list[str]] = {}
    for arn, role in roles.items():
        if role.logical_id in NOT_STARTED_LOCALLY:
            continue
        for document in role.documents:
            for statement in as_list(document["Statement"]):
                for action in as_list(statement["Action"]):
                    if action in NOT_CALLED_LOCALLY:
                        continue
                    for pattern in as_list(statement["Resource"]):
                        if any(
                            (role.logical_id, action) == (owner, granted) and part in pattern
                            for owner, granted, part in ROLE_GRANTS_NOT_CALLED_LOCALLY
                        ):
                            continue
                        grant = {
                            "Statement": [{**statement, "Action": action, "Resource": pattern}]
                        }
                        if not any(
                            called == action
                            and evaluate([grant], Permission(action, resource)) is Decision.ALLOW
                            for called, resource in used.get(arn, [])
                        ):
                            unused.setdefault(role.logical_id, []).append(f"{action} on {pattern}")
    return unused


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]
