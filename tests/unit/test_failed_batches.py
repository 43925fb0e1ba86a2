"""Batches kept in the failed-batch bucket: as the runner writes them, as a redrive reads them.

The local runner's S3 destination and the read side's redrive on in-memory S3 and functions.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.kept_batches import KeptBatch, is_redrive
from clickstream_analytics.failed_batches import (
    kept_batches,
    payload_parts,
    read_kept,
    redrive,
)
from clickstream_analytics.stack import AnalyticsError
from clickstream_local.esm import FailureDestination, failure_object_key
from tests.factories import at, make_event
from tests.support.lambda_events import kinesis_event, kinesis_record

BUCKET = "stack-failed-batches"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-window-counter"
SHARD = "shardId-000000000000"
ARRIVED = at("2026-03-07T14:04:59")


class MemoryS3:
    """The S3 calls of the runner's destination and of a redrive, on a dict of objects."""

    class exceptions:  # boto3 names it so
        class NoSuchKey(Exception):
            pass

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []

    def list_objects_v2(self, Bucket: str, Prefix: str = "", MaxKeys: int = 1000) -> Any:
        self.calls.append(("ListObjectsV2", Prefix))
        keys = sorted(key for key in self.objects if key.startswith(Prefix))[:MaxKeys]
        return {"Contents": [{"Key": key} for key in keys]} if keys else {}

    def get_paginator(self, operation: str) -> Any:
        s3 = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[Any]:
                return [s3.list_objects_v2(Bucket=Bucket, Prefix=Prefix)]

        return Paginator()

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.calls.append(("PutObject", Key))
        self.objects[Key] = Body

    def get_object(self, Bucket: str, Key: str) -> Any:
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[Key])}

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str]) -> None:
        self.objects[Key] = self.objects[CopySource["Key"]]

    def delete_object(self, Bucket: str, Key: str) -> None:
        del self.objects[Key]


class MemoryStack:
    """A stack with only the failed-batch bucket."""

    stack_name = "stack"

    def __init__(self, s3: MemoryS3) -> None:
        self.s3 = s3

    def physical_id(self, logical_id: str) -> str:
        assert logical_id == "FailedBatchBucket"
        return BUCKET

    def has_resource(self, logical_id: str) -> bool:
        return logical_id == "FailedBatchBucket"

    def client(self, service: str) -> Any:
        assert service == "s3"
        return self.s3

    def sql_folder(self) -> Path:
        return Path("sql")

    def search_client(self) -> Any:
        return None


def metadata(first: str, last: str, size: int) -> dict[str, Any]:
    """The invocation record's metadata, as Lambda sends it for a Kinesis batch."""
    return {
        "requestContext": {
            "requestId": "r-1",
            "functionArn": FUNCTION_ARN,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 11,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "PartialBatchFailure",
        },
        "version": "1.0",
        "timestamp": "2026-03-07T14:06:00.000Z",
        "KinesisBatchInfo": {
            "shardId": SHARD,
            "startSequenceNumber": first,
            "endSequenceNumber": last,
            "approximateArrivalOfFirstRecord": "2026-03-07T14:04:59.000Z",
            "approximateArrivalOfLastRecord": "2026-03-07T14:04:59.000Z",
            "batchSize": size,
            "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/stack-clickstream",
        },
    }


def keep(s3: MemoryS3, *sequence_numbers: str) -> str:
    """Keep a batch of one event per sequence number, as the runner's S3 destination does."""
    event = kinesis_event(
        *(kinesis_record(SHARD, seq, make_event(ARRIVED), ARRIVED) for seq in sequence_numbers)
    )
    key = failure_object_key("5f0c", SHARD, datetime(2026, 3, 7, 14, 6, tzinfo=UTC))
    destination = FailureDestination(f"arn:aws:s3:::{BUCKET}", lambda service: s3)
    destination.send(
        metadata(sequence_numbers[0], sequence_numbers[-1], len(sequence_numbers)), event, key
    )
    return key


class Functions:
    """Invoked functions: each call recorded, each answered with ``responses`` in turn."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, function_arn: str, event: dict[str, Any]) -> Any:
        self.calls.append((function_arn, event))
        return self.responses.pop(0) if self.responses else {"batchItemFailures": []}


def test_the_runner_keeps_the_batch_with_its_event_under_lambdas_key_layout() -> None:
    # GIVEN the runner's S3 destination
    s3 = MemoryS3()
    # WHEN it keeps a batch of two records
    key = keep(s3, "11", "12")
    # THEN the key follows aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>
    assert re.fullmatch(
        rf"aws/lambda/5f0c/{SHARD}/2026/03/07/2026-03-07T14\.06\.00-[0-9a-f-]{{36}}", key
    )
    # AND it listed the object's folder first (s3:ListBucket, as Lambda needs it), then put it
    assert s3.calls == [("ListObjectsV2", key.rsplit("/", 1)[0] + "/"), ("PutObject", key)]
    # AND the object is the invocation record with the event as a JSON string
    document = json.loads(s3.objects[key])
    assert isinstance(document["payload"], str)
    kept = KeptBatch.from_document(key, document)
    assert [record["kinesis"]["sequenceNumber"] for record in kept.records] == ["11", "12"]
    assert (kept.function_name, kept.shard_id, kept.batch_size) == (
        "stack-window-counter",
        SHARD,
        2,
    )
    assert (kept.first_sequence_number, kept.last_sequence_number) == ("11", "12")


def test_an_invocation_record_without_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="has no payload"):
        KeptBatch.from_document("k", metadata("1", "1", 1))


def test_a_redrive_event_is_the_batch_marked_with_its_source() -> None:
    # GIVEN a kept batch
    s3 = MemoryS3()
    kept = read_kept(MemoryStack(s3), keep(s3, "11"))
    # WHEN its redrive event is made
    event = kept.redrive_event("s3://bucket/key")
    # THEN it holds the same records, marked as a redrive
    assert event["Records"] == kept.records and is_redrive(event)
    assert not is_redrive({"Records": kept.records})


def test_kept_batches_are_listed_and_redriven_then_moved() -> None:
    # GIVEN two kept batches of one shard
    s3 = MemoryS3()
    stack = MemoryStack(s3)
    later, earlier = keep(s3, "30", "31"), keep(s3, "11")
    # WHEN they are listed THEN they come by shard and first sequence number
    assert [batch.key for batch in kept_batches(stack)] == [earlier, later]
    # WHEN every kept batch is redriven
    functions = Functions()
    results = [redrive(stack, batch, functions) for batch in kept_batches(stack)]
    # THEN each function was invoked with its records, marked as a redrive of its object
    assert [
        (arn, [r["kinesis"]["sequenceNumber"] for r in event["Records"]])
        for arn, event in functions.calls
    ] == [
        (FUNCTION_ARN, ["11"]),
        (FUNCTION_ARN, ["30", "31"]),
    ]
    assert functions.calls[0][1]["redrive"] == {"source": f"s3://{BUCKET}/{earlier}"}
    # AND each object moved under redriven/: a second redrive finds nothing
    assert [(r.redriven, r.moved_to) for r in results] == [
        (True, f"redriven/{earlier}"),
        (True, f"redriven/{later}"),
    ]
    assert kept_batches(stack) == []
    assert sorted(s3.objects) == sorted([f"redriven/{earlier}", f"redriven/{later}"])


def test_a_batch_its_function_still_fails_on_stays_kept() -> None:
    # GIVEN a kept batch whose function still fails on its second record
    s3 = MemoryS3()
    stack = MemoryStack(s3)
    key = keep(s3, "11", "12")
    functions = Functions({"batchItemFailures": [{"itemIdentifier": "12"}]})
    # WHEN it is redriven
    (batch,) = kept_batches(stack)
    result = redrive(stack, batch, functions)
    # THEN it is reported with the record it resumes at, and its object stays
    assert (result.redriven, result.resumes_at, result.moved_to) == (False, "12", None)
    assert list(s3.objects) == [key]


def test_reading_a_batch_that_is_not_kept_says_so() -> None:
    with pytest.raises(AnalyticsError, match="no kept batch"):
        read_kept(MemoryStack(MemoryS3()), "aws/lambda/none")


def test_large_batches_are_redriven_in_invocations_under_the_payload_limit() -> None:
    # GIVEN five records of about 100 bytes each
    records = [{"kinesis": {"data": "x" * 80, "sequenceNumber": str(n)}} for n in range(5)]
    size = len(json.dumps(records[0])) + 2
    # WHEN they are cut for invocations of at most two records' size
    parts = payload_parts(records, max_bytes=2 * size)
    # THEN every record is in one part, in order
    assert [[r["kinesis"]["sequenceNumber"] for r in part] for part in parts] == [
        ["0", "1"],
        ["2", "3"],
        ["4"],
    ]
    assert payload_parts([]) == []
