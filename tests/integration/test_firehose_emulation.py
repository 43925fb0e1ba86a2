"""Firehose emulation: Kinesis source, buffering by size and by interval, S3 keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream_local.aws import local_client
from clickstream_local.firehose import DeliveryStreamConfig, FirehoseEmulator
from clickstream_local.provision import Provisioner
from tests.factories import wait_for

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
