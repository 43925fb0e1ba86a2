"""Every path of the local stack runs under its template roles, and every grant is needed.

One stack runs ingestion (the generator function), the three stream consumers with malformed
records to quarantine, the finalizer's idle close and end of stream, search, and the three Glue
jobs. Then the endpoint's audit must show no refusal, and each role's granted actions must be
exactly the actions it used here plus those only AWS's own services call for it (listed below
with the reason). A grant nobody uses fails the test as surely as a call nobody granted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickstream.generator.producer import send_records
from clickstream.streams import KinesisRecordStream, StreamRecord
from clickstream_local.aws import iam_audit
from clickstream_local.cli import FINALIZER, invoke_function
from clickstream_local.glue_local import run_in_subprocess, template_jobs
from clickstream_local.iam import template_roles
from clickstream_local.stack import LocalStack, StackState
from tests.factories import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAMBDA_SERVICE = "the Lambda service's enhanced fan-out poller, on AWS; the local runner reads"
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
    "sqs:SendMessage": (
        "a batch that exhausts its retries; tests/integration/test_event_source_runner.py "
        "sends one with the function's role"
    ),
    "es:ESHttpGet": "OpenSearch Service's SigV4 access; the local node has no security plugin",
    "es:ESHttpHead": "OpenSearch Service's SigV4 access; the local node has no security plugin",
    "es:ESHttpPost": "OpenSearch Service's SigV4 access; the local node has no security plugin",
    "es:ESHttpPut": "OpenSearch Service's SigV4 access; the local node has no security plugin",
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
"""Granted actions that only AWS's own services call for a role, and why."""

NOT_STARTED_LOCALLY = {"DashboardReaderRole": "a person's role for OpenSearch Dashboards"}
"""Roles nothing assumes locally."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, StackState]]:
    """A whole local stack whose idle shards advance after 5 s."""
    local = LocalStack(home=tmp_path_factory.mktemp("iam-stack"))
    state, _ = local.up({"IdleTimeoutSeconds": "5", "ShardCount": "2"})
    yield local, state
    local.down(keep_lake=False)


def old_events(count: int) -> list[StreamRecord]:
    """Valid events two hours ago: the idle close finds their minutes past."""
    start = datetime.now(UTC) - timedelta(hours=2)
    events = [make_event(start + timedelta(seconds=i), custid=1 + i % 7) for i in range(count)]
    return [StreamRecord(e.to_json_line(), e.partition_key, e.event_id) for e in events]


def exercise_every_path(local: LocalStack, state: StackState) -> dict[str, Any]:
    """Run each path of the stack once; the finalizer's idle-close report."""
    stream = state.template().resource("ClickstreamStream").physical_id
    malformed = [StreamRecord(b"not json\n", "1"), StreamRecord(b'{"event_id": "x"}\n', "2")]
    report = send_records(
        [*old_events(20), *malformed], KinesisRecordStream(state.client("kinesis"), stream)
    )
    assert report.unaccepted == []
    local.drain()
    # Only old events so far: their minutes close when the idle shards' time moves on.
    idle: dict[str, Any] = {"minute_sessions_closed": 0}
    deadline = time.monotonic() + 120
    while idle["minute_sessions_closed"] == 0:
        assert time.monotonic() < deadline, f"no idle close within 120 s: {idle}"
        idle = invoke_function(state, FINALIZER, {})
    invoke_function(state, "GeneratorFunction", {"mode": "count", "count": 50, "seed": 7})
    local.drain()
    invoke_function(state, FINALIZER, {"close_all": True})
    local.drain()
    assert local.run_glue(), "no Glue run"
    jobs = template_jobs(state.template(), local.root)
    run_in_subprocess(
        [jobs["InferSchemasJob"]],
        state.endpoint_url,
        local.home / "metastore",
        local.logs / "glue.log",
    )
    return idle


def test_every_path_runs_with_its_roles_and_every_grant_is_used(
    stack: tuple[LocalStack, StackState],
) -> None:
    # GIVEN a stack enforcing the template's roles
    local, state = stack
    # WHEN ingestion, the consumers, idle close, end of stream, search and the jobs all run
    idle = exercise_every_path(local, state)
    assert idle["minute_sessions_closed"] > 0
    # THEN the endpoint refused nothing
    audit = iam_audit(state.endpoint_url)
    refused = [d for d in audit["decisions"] if d["decision"] != "allow"]
    assert refused == []
    # AND every role used each action it is granted, but for those only AWS's services call
    used: dict[str, set[str]] = {}
    for decision in audit["decisions"]:
        used.setdefault(decision["role"], set()).add(decision["action"])
    unexplained: dict[str, list[str]] = {}
    for arn, role in template_roles(state.template()).items():
        if role.logical_id in NOT_STARTED_LOCALLY:
            continue
        granted = role.granted_actions()
        idle_grants = granted - used.get(arn, set()) - set(NOT_CALLED_LOCALLY)
        if idle_grants:
            unexplained[role.logical_id] = sorted(idle_grants)
    assert unexplained == {}, json.dumps(unexplained, indent=1)
