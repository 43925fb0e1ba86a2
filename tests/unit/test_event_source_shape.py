"""Pure parts of the event-source runner: the Kinesis event shape and partial batch responses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickstream_local.esm import KinesisMapping, failed_sequence_numbers, kinesis_event
from clickstream_local.lambda_worker import LocalFunction

FUNCTION = LocalFunction(
    logical_id="Consumer",
    name="clickstream-consumer",
    arn="arn:aws:lambda:us-east-1:123456789012:function:clickstream-consumer",
    code_dir=Path("."),
    handler="app.lambda_handler",
    environment={},
    timeout_seconds=3,
    memory_mb=128,
)
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream-clickstream"


def test_kinesis_event_has_the_lambda_shape() -> None:
    # GIVEN one record as GetRecords returns it
    arrival = datetime(2026, 3, 7, 14, 4, 56, 500000, tzinfo=UTC)
    record = {
        "SequenceNumber": "42",
        "PartitionKey": "7",
        "Data": b'{"a":1}\n',
        "ApproximateArrivalTimestamp": arrival,
    }
    mapping = KinesisMapping(FUNCTION, "Stream", STREAM_ARN, "clickstream-clickstream")
    # WHEN it is wrapped into an invocation event
    (wrapped,) = kinesis_event([record], mapping, "shardId-000000000001", "us-east-1")["Records"]
    # THEN it carries the fields Lambda sets, with base64 data and epoch seconds
    assert wrapped["kinesis"] == {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "7",
        "sequenceNumber": "42",
        "data": base64.b64encode(b'{"a":1}\n').decode(),
        "approximateArrivalTimestamp": arrival.timestamp(),
    }
    assert wrapped["eventSource"] == "aws:kinesis"
    assert wrapped["eventID"] == "shardId-000000000001:42"
    assert wrapped["eventName"] == "aws:kinesis:record"
    assert wrapped["eventSourceARN"] == STREAM_ARN
    assert wrapped["awsRegion"] == "us-east-1"


def test_consumer_arn_source_reads_the_underlying_stream() -> None:
    # GIVEN an enhanced fan-out consumer as the event source
    consumer = f"{STREAM_ARN}/consumer/indexer:1700000000"
    mapping = KinesisMapping.from_event(
        FUNCTION, "Stream", {"Type": "Kinesis", "Properties": {"Stream": consumer}}
    )
    # THEN it polls the stream the consumer belongs to, with Lambda's defaults
    assert mapping.stream_name == "clickstream-clickstream"
    assert mapping.stream_arn == STREAM_ARN
    assert (mapping.batch_size, mapping.maximum_retry_attempts) == (100, -1)
    assert not mapping.report_batch_item_failures and not mapping.bisect_on_error


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(None, [], id="no-payload-means-success"),
        pytest.param({"batchItemFailures": []}, [], id="empty-list"),
        pytest.param({"batchItemFailures": None}, [], id="null-list"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "9"}]}, ["9"], id="one-failure"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, None, id="empty-id"),
        pytest.param({"batchItemFailures": [{"wrong": "9"}]}, None, id="missing-id"),
        pytest.param({"batchItemFailures": "9"}, None, id="not-a-list"),
        pytest.param("ok", None, id="not-an-object"),
    ],
)
def test_partial_batch_responses(payload: object, expected: list[str] | None) -> None:
    # WHEN a handler's return value is read as a partial batch response
    # THEN valid ones give the failed ids and malformed ones give None (whole batch retried)
    assert failed_sequence_numbers(payload) == expected
