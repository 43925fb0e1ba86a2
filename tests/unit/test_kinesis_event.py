"""The inbound adapter: a Lambda Kinesis event into parsed records, by shard, parsed once."""

from __future__ import annotations

from clickstream.adapters.kinesis_event import (
    NOT_BASE64,
    UNKNOWN_SHARD,
    parse_lambda_record,
    records_by_shard,
)
from clickstream.core.records import ShardRecord
from tests.factories import at, make_event
from tests.support.lambda_events import kinesis_event, kinesis_record

ARRIVED = at("2026-03-07T14:05:00")


def test_records_are_grouped_by_shard_in_order_and_parsed_once() -> None:
    # GIVEN a batch interleaving two shards, with one invalid record
    first, second, third = (make_event(at(f"2026-03-07T14:0{n}:00")) for n in range(3))
    event = kinesis_event(
        kinesis_record("shardId-1", "10", first, ARRIVED),
        kinesis_record("shardId-0", "7", second, ARRIVED),
        kinesis_record("shardId-1", "11", b"[]", ARRIVED),
        kinesis_record("shardId-1", "12", third, ARRIVED),
    )
    # WHEN it is read
    by_shard = records_by_shard(event)
    # THEN each shard keeps its records in order, with the event or the rejection of each
    assert {shard: [p.sequence_number for p in ps] for shard, ps in by_shard.items()} == {
        "shardId-1": ["10", "11", "12"],
        "shardId-0": ["7"],
    }
    assert [p.event for p in by_shard["shardId-1"]] == [first, None, third]
    rejection = by_shard["shardId-1"][1].rejection
    assert rejection is not None
    assert rejection.reason == "expected a JSON object, got list"
    assert rejection.record == ShardRecord("shardId-1", "11", b"[]", ARRIVED)


def test_data_that_is_not_base64_is_rejected_without_parsing() -> None:
    # GIVEN a record whose data is not base64, and one without an event id
    broken = kinesis_record("shardId-0", "1", b"", ARRIVED)
    broken["kinesis"]["data"] = "not base64!"
    anonymous = kinesis_record("shardId-0", "2", make_event(ARRIVED), ARRIVED)
    del anonymous["eventID"]
    # WHEN they are read
    (parsed,), (unknown,) = parse_lambda_record(broken), parse_lambda_record(anonymous)
    # THEN the first is rejected with its data kept as text
    assert parsed.rejection is not None and parsed.rejection.reason == NOT_BASE64
    assert parsed.record.data == b"not base64!"
    # AND the second still parses, on a shard named as unknown
    assert unknown.event is not None and unknown.record.shard_id == UNKNOWN_SHARD
