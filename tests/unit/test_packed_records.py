"""Packed Kinesis records: one record per event, positions, and where a retry starts."""

from __future__ import annotations

from datetime import timedelta

from clickstream.adapters.kinesis_event import parse_lambda_record
from clickstream.core.batch_failures import partial_batch_response
from clickstream.core.checkpoints import ShardCheckpoint, sequence_key
from clickstream.core.records import (
    ShardRecord,
    event_position,
    record_sequence_number,
    split_record,
)
from tests.factories import at, make_event
from tests.support.lambda_events import kinesis_record

SHARD = "shardId-000000000000"
SEQ = "49590338271490256608559692538361571095921575989136588898"
NEXT = "49590338271490256608559692538361571095921575989136588899"
ARRIVED = at("2026-03-07T14:00:05")


def test_a_record_of_several_lines_is_one_record_per_line_at_its_position() -> None:
    # GIVEN a record of three lines, a blank one among them
    record = ShardRecord(SHARD, SEQ, b"a\n\nb\nc\n", ARRIVED)
    # WHEN it is split
    events = split_record(record)
    # THEN each non-blank line is a record at its line's position, with the shard and arrival
    assert events == [
        ShardRecord(SHARD, SEQ, b"a", ARRIVED),
        ShardRecord(SHARD, f"{SEQ}.2", b"b", ARRIVED),
        ShardRecord(SHARD, f"{SEQ}.3", b"c", ARRIVED),
    ]


def test_a_record_of_one_line_or_none_is_kept_whole() -> None:
    # GIVEN records of one line with and without its newline, an empty and a blank one
    # WHEN they are split THEN each is returned as it is, for parsing to judge its whole data
    for data in (b'{"a": 1}\n', b'{"a": 1}', b"", b" \n\n"):
        record = ShardRecord(SHARD, SEQ, data, ARRIVED)
        assert split_record(record) == [record]


def test_positions_sort_by_record_then_line() -> None:
    # GIVEN positions of two records, lines 0, 1, 2 and 10 of the first
    positions = [NEXT, event_position(SEQ, 10), SEQ, event_position(SEQ, 2), f"{SEQ}.1"]
    # WHEN sorted by their key THEN the record comes first, then its lines in number order
    assert sorted(positions, key=sequence_key) == [SEQ, f"{SEQ}.1", f"{SEQ}.2", f"{SEQ}.10", NEXT]
    # AND a shorter sequence number still sorts as the smaller number
    assert sequence_key("99.5") < sequence_key("100")
    # AND each maps back to its Kinesis record
    assert {record_sequence_number(p) for p in positions} == {SEQ, NEXT}


def test_a_checkpoint_within_a_packed_record_skips_only_the_lines_applied() -> None:
    # GIVEN a checkpoint at line 1 of a packed record
    checkpoint = ShardCheckpoint("window_counter", SHARD, sequence_number=f"{SEQ}.1")
    # WHEN the record is redelivered whole
    # THEN its lines 0 and 1 count as applied, line 2 and the next record do not
    assert checkpoint.applied(SEQ) and checkpoint.applied(f"{SEQ}.1")
    assert not checkpoint.applied(f"{SEQ}.2") and not checkpoint.applied(NEXT)


def test_the_partial_batch_response_names_kinesis_records_once_each() -> None:
    # GIVEN failures at line 3 of a record, at the next record and at line 0 of the first
    # WHEN the Lambda response is built
    response = partial_batch_response([f"{SEQ}.3", NEXT, SEQ])
    # THEN it names each Kinesis record once, as Lambda knows them
    assert response == {"batchItemFailures": [{"itemIdentifier": SEQ}, {"itemIdentifier": NEXT}]}


def test_a_packed_lambda_record_parses_each_line_and_rejects_only_the_bad_one() -> None:
    # GIVEN a Lambda record packing an event, a malformed line and an event too far ahead
    good = make_event(at("2026-03-07T14:00:00"), custid=1)
    ahead = make_event(at("2026-03-07T15:00:00"), custid=2)
    data = good.to_json_line() + b"{not json\n" + ahead.to_json_line()
    # WHEN it is read with a 300 s clock skew
    parsed = parse_lambda_record(kinesis_record(SHARD, SEQ, data, ARRIVED), timedelta(seconds=300))
    # THEN there are three records at their positions: the event, and two rejections with reasons
    assert [p.sequence_number for p in parsed] == [SEQ, f"{SEQ}.1", f"{SEQ}.2"]
    assert parsed[0].event == good
    assert parsed[1].rejection is not None
    assert parsed[1].rejection.reason.startswith("malformed JSON")
    assert parsed[1].record.data == b"{not json"
    assert parsed[2].rejection is not None and "ahead of its arrival" in parsed[2].rejection.reason
