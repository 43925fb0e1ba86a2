"""Firehose emulation: Kinesis source, buffering by size and by interval, S3 keys; and Direct
PUT calls held to AWS's size limits on the local endpoint, for the per-minute rows and the gap
sessions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream_local.aws import local_client, role_credentials
from clickstream_local.firehose import DeliveryStreamConfig, FirehoseEmulator
from clickstream_local.provision import Provisioner
from tests.factories import at, make_event, wait_for

from .conftest import project_template

pytestmark = pytest.mark.integration


def start_emulator(
    endpoint: str, stack_name: str, **parameters: str
) -> tuple[FirehoseEmulator, Any]:
    template = project_template(stack_name, ShardCount="2", **parameters)
    Provisioner(template, endpoint).provision()
    config = DeliveryStreamConfig.from_resource(template.resource("RawDeliveryStream"))
    assert config is not None
    emulator = FirehoseEmulator(
        config, local_client("kinesis", endpoint), local_client("s3", endpoint)
    )
    emulator.start()
    return emulator, local_client("kinesis", endpoint)


def put_lines(kinesis: Any, stream: str, count: int, padding: int = 0) -> None:
    for start in range(0, count, 500):
        records = [
            {
                "Data": (json.dumps({"n": n, "pad": "x" * padding}) + "\n").encode(),
                "PartitionKey": str(n),
            }
            for n in range(start, min(count, start + 500))
        ]
        assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def objects(endpoint: str, bucket: str) -> list[tuple[str, bytes]]:
    s3 = local_client("s3", endpoint)
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [(o["Key"], s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listing]


def test_buffer_flushes_by_size(moto_endpoint: str, stack_name: str) -> None:
    # GIVEN a 1 MiB size hint and an interval too long to matter
    emulator, kinesis = start_emulator(
        moto_endpoint, stack_name, RawBufferSizeMB="1", RawBufferIntervalSeconds="900"
    )
    try:
        # WHEN about 1.5 MiB of records arrive
        put_lines(kinesis, f"{stack_name}-clickstream", 1500, padding=1000)
        wait_for(lambda: emulator.status.records_in == 1500)
        # THEN one object was written because the buffer reached 1 MiB, and the rest waits
        status = emulator.snapshot()
        assert status["flushes_by_size"] == 1 and status["flushes_by_interval"] == 0
        ((key, body),) = objects(moto_endpoint, emulator.config.bucket)
        assert len(body) <= 1024 * 1024
        assert status["buffered_records"] == 1500 - body.count(b"\n")
        assert key.startswith("rawdata/") and f"/{stack_name}-raw-1-" in key
    finally:
        emulator.stop()
    # AND stopping flushes the remainder: every record delivered exactly once
    lines = [
        line
        for _, body in objects(moto_endpoint, emulator.config.bucket)
        for line in body.splitlines()
    ]
    assert sorted(json.loads(line)["n"] for line in lines) == list(range(1500))


def test_buffer_flushes_by_interval(moto_endpoint: str, stack_name: str) -> None:
    # GIVEN a one-second interval and a large size hint
    emulator, kinesis = start_emulator(
        moto_endpoint, stack_name, RawBufferSizeMB="64", RawBufferIntervalSeconds="1"
    )
    try:
        # WHEN a few small records arrive
        put_lines(kinesis, f"{stack_name}-clickstream", 10)
        # THEN they are written as one object after about a second, under rawdata/YYYY/MM/DD/HH/
        wait_for(lambda: emulator.status.objects_written == 1, timeout=20)
        assert emulator.status.flushes_by_interval == 1 and emulator.status.flushes_by_size == 0
        ((key, body),) = objects(moto_endpoint, emulator.config.bucket)
        assert body.count(b"\n") == 10
        parts = key.split("/")
        assert parts[0] == "rawdata" and len(parts[1]) == 4 and all(len(p) == 2 for p in parts[2:5])
    finally:
        emulator.stop()


def direct_put(
    endpoint: str,
    stack_name: str,
    delivery: str = "AggregatedDeliveryStream",
    role: str = "SessionizerRole",
) -> tuple[Any, str, str]:
    """A Firehose client with the credentials of ``role`` (the sessionizer's), the Direct PUT
    stream ``delivery`` (the aggregated one) and the bucket it writes, provisioned from the
    project's template."""
    template = project_template(stack_name)
    Provisioner(template, endpoint).provision()
    credentials = role_credentials(endpoint, template.arn(role))
    stream = template.resource(delivery).physical_id
    return (
        local_client("firehose", endpoint, credentials),
        stream,
        template.resource("RawBucket").physical_id,
    )


def refusal(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    return error["Code"], error["Message"]


def test_direct_put_calls_beyond_aws_size_limits_are_refused_and_deliver_nothing(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the aggregated delivery stream and the sessionizer's role
    firehose, stream, bucket = direct_put(moto_endpoint, stack_name)

    def put(*sizes: int) -> Any:
        records = [{"Data": b"x" * (size - 1) + b"\n"} for size in sizes]
        return lambda: firehose.put_record_batch(DeliveryStreamName=stream, Records=records)

    # WHEN a record is one byte over 1,000 KiB THEN AWS's validation error names it
    code, message = refusal(put(10, 1_024_001))
    assert code == "ValidationException"
    assert "'records.2.member.data'" in message and "less than or equal to 1024000" in message
    # WHEN a call carries 501 records THEN it is refused the same way
    code, message = refusal(put(*[10] * 501))
    assert code == "ValidationException" and "'records'" in message
    # WHEN a call's records hold 5,000,000 bytes, each within its limit THEN it is refused
    assert refusal(put(*[1_000_000] * 5)) == (
        "InvalidArgumentException",
        "Records size exceeds 4 MB limit",
    )
    # WHEN the administrator, whom IAM lets do everything, puts a record over 1,000 KiB
    administrator = local_client("firehose", moto_endpoint)
    code, _ = refusal(
        lambda: administrator.put_record(
            DeliveryStreamName=stream, Record={"Data": b"x" * 1_024_001}
        )
    )
    # THEN the limit holds for it too
    assert code == "ValidationException"
    # THEN nothing of any refused call reached aggregated/
    assert objects(moto_endpoint, bucket) == []


def test_direct_put_calls_at_aws_size_limits_are_delivered_byte_for_byte(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the aggregated delivery stream and the sessionizer's role
    firehose, stream, bucket = direct_put(moto_endpoint, stack_name)
    # WHEN a call carries exactly 4 MiB: four records of 1,000 KiB and the rest
    sizes = [1_024_000] * 4 + [4 * 1024 * 1024 - 4 * 1_024_000]
    records = [bytes([65 + n]) * (size - 1) + b"\n" for n, size in enumerate(sizes)]
    response = firehose.put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": record} for record in records]
    )
    # THEN every record is accepted and aggregated/ holds them, concatenated as sent
    assert response["FailedPutCount"] == 0
    ((key, body),) = objects(moto_endpoint, bucket)
    assert key.startswith("aggregated/") and body == b"".join(records)


def test_the_sessionizer_sink_packs_rows_into_records_firehose_accepts(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN 12,000 per-minute rows (about 1.3 MB of CSV lines: two 1,000 KiB records)
    firehose, stream, bucket = direct_put(moto_endpoint, stack_name)
    start = at("2026-03-07T14:00:00")
    events = [make_event(start + timedelta(seconds=n % 60), custid=n + 1) for n in range(12_000)]
    rows = minute_sessions(events)
    # WHEN the sessionizer's sink puts them with its role
    FirehoseMinuteSessionSink(firehose, stream).put(rows)
    # THEN aggregated/ holds every row's line once, in order, byte for byte
    ((_, body),) = objects(moto_endpoint, bucket)
    assert body == b"".join(row.to_csv_line().encode("utf-8") for row in rows)


@pytest.mark.parametrize("role", ["SessionizerRole", "FinalizerRole"])
def test_gap_sessions_go_through_the_sessions_stream_into_its_hourly_folders(
    moto_endpoint: str, stack_name: str, role: str
) -> None:
    # GIVEN the sessions delivery stream, and the role of a function that closes gap sessions
    firehose, stream, bucket = direct_put(moto_endpoint, stack_name, "SessionsDeliveryStream", role)
    sessions = gap_sessions(
        [make_event(at("2026-03-07T14:00:00"), custid=n) for n in range(1, 301)]
    )
    # WHEN its gap sink delivers the sessions one commit closed
    FirehoseGapSessionSink(firehose, stream).put(sessions, "shardId-000000000000", "1", "9")
    # THEN sessions/YYYY/MM/DD/HH/ (the arrival hour, which the sessions table projects) holds
    # one compact JSON line per session, in order, byte for byte
    ((key, body),) = objects(moto_endpoint, bucket)
    parts = key.split("/")
    assert parts[0] == "sessions" and len(parts[1]) == 4 and all(len(p) == 2 for p in parts[2:5])
    assert body == b"".join(session.to_json_line().encode("utf-8") for session in sessions)
    assert [json.loads(line) for line in body.splitlines()] == [s.to_dict() for s in sessions]


@pytest.mark.parametrize("role", ["SessionizerRole", "FinalizerRole"])
def test_the_functions_that_close_gap_sessions_may_not_write_sessions_objects_themselves(
    moto_endpoint: str, stack_name: str, role: str
) -> None:
    # GIVEN the sessionizer's or the finalizer's role
    template = project_template(stack_name)
    Provisioner(template, moto_endpoint).provision()
    bucket = template.resource("RawBucket").physical_id
    s3 = local_client("s3", moto_endpoint, role_credentials(moto_endpoint, template.arn(role)))
    # WHEN it puts an object under sessions/ directly
    code, _ = refusal(
        lambda: s3.put_object(Bucket=bucket, Key="sessions/2026/03/07/14/direct.jsonl", Body=b"{}")
    )
    # THEN the endpoint refuses it, as IAM would: only the delivery stream writes there
    assert code == "AccessDenied"
    assert objects(moto_endpoint, bucket) == []
