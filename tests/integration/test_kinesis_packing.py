"""Packed records on the local Kinesis API: each event lands on the shard its custid hashes to."""

from __future__ import annotations

import uuid
from typing import Any

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.core.records import ShardRecord, split_record
from clickstream.core.shard_map import hash_key
from clickstream.generator import generate, send_events
from clickstream_local.aws import local_client
from tests.factories import at


def read_shard(kinesis: Any, stream: str, shard_id: str) -> list[ShardRecord]:
    """Every record of one shard, from its start."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[ShardRecord] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        records += [ShardRecord(shard_id, r["SequenceNumber"], r["Data"]) for r in page["Records"]]
        if not page["Records"]:
            return records
        iterator = page["NextShardIterator"]


def test_packed_events_reach_the_shard_of_their_custid_in_order(moto_endpoint: str) -> None:
    # GIVEN a stream of four shards
    kinesis = local_client("kinesis", moto_endpoint)
    name = f"packing-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=4)
    kinesis.get_waiter("stream_exists").wait(StreamName=name)
    stream = KinesisRecordStream(kinesis, name)
    # WHEN 3,000 realistic events are sent
    events = list(
        generate("realistic", seed=11, start=at("2026-03-07T14:00:00"), rate=100, count=3000)
    )
    report = send_events(events, stream)
    # THEN all were accepted, in far fewer records than events
    assert (report.sent, report.accepted) == (3000, 3000)
    assert report.put_calls < 10
    shards = stream.shard_map()
    by_line = {event.to_json_line().rstrip(b"\n"): event for event in events}
    seen = []
    record_count = 0
    for hash_range in shards.ranges:
        records = read_shard(kinesis, name, hash_range.shard_id)
        record_count += len(records)
        lines = [part.data.rstrip(b"\n") for r in records for part in split_record(r)]
        held = [by_line[line] for line in lines]
        # ... each event on the shard its custid hashes to, in the order it was generated
        assert all(hash_range.start <= hash_key(e.partition_key) <= hash_range.end for e in held)
        assert held == [e for e in events if shards.range_for(e.partition_key) == hash_range]
        seen += held
    assert sorted(e.event_id for e in seen) == sorted(e.event_id for e in events)
    assert record_count < len(events) / 20
