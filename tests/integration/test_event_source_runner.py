"""The local event-source-mapping runner against a real moto server and a real worker process."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.kept_batches import KeptBatch
from clickstream_local.aws import iam_audit, local_client
from clickstream_local.cfn import Template
from clickstream_local.provision import Provisioner
from clickstream_local.services import StackServices
from tests.factories import wait_for

from .conftest import FIXTURES

pytestmark = pytest.mark.integration


class ProbeStack:
    """The probe template provisioned on moto, with its runner started on demand."""

    def __init__(
        self,
        endpoint: str,
        stack_name: str,
        probe_dir: Path,
        template: str = "runner_template.yaml",
        **parameters: str,
    ) -> None:
        self.template = Template.load(
            FIXTURES / template,
            stack_name=stack_name,
            parameter_overrides={"ProbeDir": str(probe_dir), **parameters},
        )
        Provisioner(self.template, endpoint).provision()
        self.endpoint = endpoint
        self.probe_dir = probe_dir
        self.kinesis = local_client("kinesis", endpoint)
        self.sqs = local_client("sqs", endpoint)
        self.stream = self.template.resource("Stream").physical_id
        self.services: StackServices | None = None

    def put(self, documents: list[dict[str, Any]]) -> list[str]:
        """Put records in one call on one shard; returns their sequence numbers."""
        response = self.kinesis.put_records(
            StreamName=self.stream,
            Records=[{"Data": json.dumps(d).encode(), "PartitionKey": "same"} for d in documents],
        )
        assert response["FailedRecordCount"] == 0
        return [entry["SequenceNumber"] for entry in response["Records"]]

    def start(self) -> StackServices:
        self.services = StackServices(self.template, FIXTURES, self.endpoint)
        self.services.start()
        return self.services

    def poller_status(self) -> dict[str, Any]:
        assert self.services is not None
        (status,) = self.services.status()["pollers"]
        return status

    def invocations(self) -> list[list[int]]:
        log = self.probe_dir / "log.jsonl"
        if not log.exists():
            return []
        return [json.loads(line)["ids"] for line in log.read_text().splitlines()]

    def failure_messages(self) -> list[dict[str, Any]]:
        url = self.sqs.get_queue_url(QueueName=self.template.resource("FailureQueue").physical_id)
        messages = self.sqs.receive_message(QueueUrl=url["QueueUrl"], MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def probe(moto_endpoint: str, stack_name: str, tmp_path: Path) -> Iterator[ProbeStack]:
    stack = ProbeStack(moto_endpoint, stack_name, tmp_path / "probe")
    yield stack
    if stack.services is not None:
        stack.services.stop()


def test_mapping_is_read_from_the_template(probe: ProbeStack) -> None:
    # GIVEN the probe template WHEN the runner is built from it
    services = probe.start()
    # THEN there is one poller per shard, configured from the function's Kinesis event
    (poller,) = services.pollers
    mapping = poller.mapping
    assert (mapping.batch_size, mapping.batching_window_seconds) == (10, 1.0)
    assert mapping.starting_position == "TRIM_HORIZON"
    assert mapping.report_batch_item_failures and mapping.bisect_on_error
    assert mapping.maximum_retry_attempts == 2
    assert mapping.on_failure_arn == probe.template.arn("FailureQueue")


def test_partial_failure_retries_from_the_first_failed_sequence_number(probe: ProbeStack) -> None:
    # GIVEN five records of which the third is reported failed once by the function
    documents = [{"id": i} for i in range(1, 6)]
    documents[2]["fail_times"] = 1
    sequence_numbers = probe.put(documents)
    # WHEN the runner processes them
    probe.start()
    wait_for(lambda: probe.poller_status()["records_done"] == 5)
    # THEN the retry starts at the failed record, records before it are not redelivered,
    # and the checkpoint ends on the last record
    assert probe.invocations() == [[1, 2, 3, 4, 5], [3, 4, 5]]
    status = probe.poller_status()
    assert status["partial_failures"] == 1 and status["retries"] == 1
    assert status["checkpoint"] == sequence_numbers[-1]
    assert status["records_to_destination"] == 0
    assert probe.failure_messages() == []


def test_bisect_isolates_a_poison_record_and_sends_it_to_the_on_failure_queue(
    probe: ProbeStack,
) -> None:
    # GIVEN eight records, the sixth of which makes the function raise
    documents = [{"id": i} for i in range(1, 9)]
    documents[5]["poison"] = True
    sequence_numbers = probe.put(documents)
    # WHEN the runner processes them
    probe.start()
    wait_for(lambda: probe.poller_status()["records_to_destination"] == 1)
    wait_for(lambda: probe.poller_status()["records_done"] == 7)
    # THEN the batch is halved down to the poison record, which is retried twice and then
    # reported to the on-failure queue; every other record succeeds exactly once
    invocations = probe.invocations()
    assert invocations[:4] == [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4], [5, 6, 7, 8], [5, 6]]
    assert invocations[4:] == [[5], [6], [6], [6], [7, 8]]
    succeeded = [ids for ids in invocations if 6 not in ids]
    assert sorted(i for ids in succeeded for i in ids) == [1, 2, 3, 4, 5, 7, 8]
    (message,) = probe.failure_messages()
    batch = message["KinesisBatchInfo"]
    assert batch["startSequenceNumber"] == batch["endSequenceNumber"] == sequence_numbers[5]
    assert batch["batchSize"] == 1
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert probe.poller_status()["checkpoint"] == sequence_numbers[-1]


def test_without_bisect_the_whole_batch_goes_to_the_queue_after_its_retries(
    moto_endpoint: str, stack_name: str, tmp_path: Path
) -> None:
    # GIVEN bisect off, one retry, and a batch of three with a poison record
    stack = ProbeStack(
        moto_endpoint, stack_name, tmp_path / "probe", Bisect="false", RetryAttempts="1"
    )
    sequence_numbers = stack.put([{"id": 1}, {"id": 2, "poison": True}, {"id": 3}])
    try:
        # WHEN the runner processes them
        stack.start()
        wait_for(lambda: stack.poller_status()["records_to_destination"] == 3)
        # THEN the batch is invoked twice (one retry), then reported whole
        assert stack.invocations() == [[1, 2, 3], [1, 2, 3]]
        (message,) = stack.failure_messages()
        assert message["KinesisBatchInfo"]["startSequenceNumber"] == sequence_numbers[0]
        assert message["KinesisBatchInfo"]["endSequenceNumber"] == sequence_numbers[-1]
        assert message["KinesisBatchInfo"]["batchSize"] == 3
    finally:
        if stack.services is not None:
            stack.services.stop()


def test_records_put_later_are_delivered_and_reported_caught_up(probe: ProbeStack) -> None:
    # GIVEN a running runner with nothing to read
    probe.start()
    wait_for(lambda: probe.poller_status()["caught_up_at"] > 0)
    # WHEN records arrive
    before = time.time()
    probe.put([{"id": i} for i in range(1, 4)])
    # THEN they are processed and a later empty poll marks the poller caught up again
    wait_for(lambda: probe.poller_status()["records_done"] == 3)
    wait_for(lambda: probe.poller_status()["caught_up_at"] > before)
    assert sorted(i for ids in probe.invocations() for i in ids) == [1, 2, 3]


def test_an_s3_destination_keeps_the_batch_itself_with_the_functions_role(
    moto_endpoint: str, stack_name: str, tmp_path: Path
) -> None:
    # GIVEN an S3 on-failure bucket, one retry, and a batch of three with a poison record
    stack = ProbeStack(moto_endpoint, stack_name, tmp_path / "probe", "runner_s3_template.yaml")
    sequence_numbers = stack.put([{"id": 1}, {"id": 2, "poison": True}, {"id": 3}])
    bucket = stack.template.resource("FailedBatchBucket").physical_id
    s3 = local_client("s3", moto_endpoint)
    try:
        # WHEN the runner gives up on it
        services = stack.start()
        wait_for(lambda: stack.poller_status()["records_to_destination"] == 3)
    finally:
        if stack.services is not None:
            stack.services.stop()
    # THEN one object is kept under AWS's key layout for the mapping and the shard
    (poller,) = services.pollers
    (key,) = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    layout = (
        rf"aws/lambda/{poller.mapping.uuid}/{poller.shard_id}/\d{{4}}/\d{{2}}/\d{{2}}/"
        r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}-[0-9a-f-]{36}"
    )
    assert re.fullmatch(layout, key), key
    # AND it holds the invocation record with the batch's event as its payload
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 2
    assert document["requestContext"]["functionArn"] == poller.mapping.function.arn
    info = document["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        sequence_numbers[0],
        sequence_numbers[-1],
        3,
    )
    kept = KeptBatch.from_document(key, document)
    assert [r["kinesis"]["sequenceNumber"] for r in kept.records] == sequence_numbers
    data = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in kept.records]
    assert data == [{"id": 1}, {"id": 2, "poison": True}, {"id": 3}]
    # AND the function's role (SAM's, for an S3 destination) listed the bucket and put the object
    # (the audit counts objects by their first two folders)
    role = stack.template.arn("ProbeFunctionRole")
    decisions = {
        (d["action"], d["resource"], d["decision"])
        for d in iam_audit(moto_endpoint)["decisions"]
        if d["role"] == role and d["action"].startswith("s3:")
    }
    assert decisions == {
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}", "allow"),
        ("s3:PutObject", f"arn:aws:s3:::{bucket}/aws/lambda/*", "allow"),
    }
