"""The sessionizer's output adapters without I/O: lines packed into Firehose records, batches and
retries, for the per-minute rows and the gap sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.firehose import (
    FIREHOSE_MAX_RECORD_BYTES,
    DeliveryFailed,
    FirehoseGapSessionSink,
    FirehoseMinuteSessionSink,
    pack_lines,
    record_batches,
)
from clickstream.core.sessions import UnwritableCsvValue, gap_sessions, minute_sessions
from tests.factories import at, make_event
from tests.support.sessionizer import SHARD, T0

# --- Adapter rules without I/O ----------------------------------------------------------------


def test_record_batches_respect_both_limits() -> None:
    # GIVEN 1200 small records and 3 large ones
    small = [b"x" * 10] * 1200
    large = [b"y" * 1000] * 3
    # WHEN cut into calls THEN no call has over 500 records or the byte budget
    assert [len(batch) for batch in record_batches(small)] == [500, 500, 200]
    assert [len(batch) for batch in record_batches(large, max_bytes=2500)] == [2, 1]


def test_lines_are_packed_in_order_into_records_whose_concatenation_is_the_lines() -> None:
    # GIVEN the CSV lines of 3,000 per-minute rows (about 320 KB)
    start = at("2026-03-07T14:00:00")
    events = [make_event(start + timedelta(seconds=n % 60), custid=n + 1) for n in range(3000)]
    lines = [row.to_csv_line().encode("utf-8") for row in minute_sessions(events)]
    # WHEN packed into records of at most 10,000 bytes
    records = pack_lines(lines, max_record_bytes=10_000)
    # THEN the records, concatenated, are the lines byte for byte, in order, one row per line
    assert b"".join(records) == b"".join(lines)
    assert b"".join(records).splitlines(keepends=True) == lines
    # AND every record ends with a whole line and stays within the limit
    assert all(record.endswith(b"\n") and len(record) <= 10_000 for record in records)
    # AND no record could have taken the next record's first line: as few records as possible
    firsts = [record.splitlines(keepends=True)[0] for record in records[1:]]
    assert all(
        len(record) + len(first) > 10_000 for record, first in zip(records, firsts, strict=False)
    )


def test_a_line_exactly_at_the_record_limit_is_one_record_and_a_longer_one_is_refused() -> None:
    # GIVEN a line of exactly 1,024,000 bytes between two short lines
    short = b"1_mob_1772892000,1\n"
    full = b"x" * (FIREHOSE_MAX_RECORD_BYTES - 1) + b"\n"
    # WHEN packed with Firehose's record limit
    records = pack_lines([short, full, short])
    # THEN it is a record of its own, and its neighbours are records of their own
    assert records == [short, full, short]
    # WHEN a line is one byte longer THEN packing fails, naming the size and the limit
    with pytest.raises(ValueError, match=r"^a line of 1024001 bytes exceeds the 1024000-byte"):
        pack_lines([short, b"x" + full])


def test_a_line_without_its_newline_is_refused_rather_than_merged_with_the_next() -> None:
    # GIVEN a line that lost its newline
    # WHEN packed THEN packing fails rather than gluing it to the next row
    with pytest.raises(ValueError, match="must end with a newline"):
        pack_lines([b"a,b\n", b"c,d", b"e,f\n"])


def test_the_packed_records_fill_put_record_batch_calls_within_4_mib() -> None:
    # GIVEN 10,000 lines of 1,000 bytes (10 MB)
    lines = [b"x" * 999 + b"\n"] * 10_000
    # WHEN packed into 1,000 KiB records and cut into calls
    records = pack_lines(lines)
    batches = record_batches(records)
    # THEN 1,024 lines fill each record, and 4 records each call of at most 4 MiB
    assert [len(record) for record in records] == [1_024_000] * 9 + [784_000]
    assert [len(batch) for batch in batches] == [4, 4, 2]
    assert all(sum(len(record) for record in batch) <= 4 * 1024 * 1024 for batch in batches)


@dataclass
class FlakyFirehose:
    """A Firehose client refusing the first record once, then accepting everything."""

    calls: list[list[bytes]] = field(default_factory=list)
    refusals: int = 1

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> Any:
        self.calls.append([record["Data"] for record in Records])
        failed = 1 if self.refusals else 0
        self.refusals = max(0, self.refusals - 1)
        entries = [{"RecordId": "r"} for _ in Records]
        if failed:
            entries[0] = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow"}
        return {"FailedPutCount": failed, "RequestResponses": entries}


def test_firehose_sink_packs_the_csv_lines_of_a_put_into_one_record() -> None:
    # GIVEN two rows and a stream that accepts everything
    rows = minute_sessions([make_event(T0, custid=1), make_event(T0, custid=2)])
    client = FlakyFirehose(refusals=0)
    sink = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN delivered
    sink.put(rows)
    # THEN one call carries one record: both CSV lines, in order
    lines = [row.to_csv_line().encode() for row in rows]
    assert client.calls == [[b"".join(lines)]]


def test_firehose_sink_sends_a_refused_packed_record_again_whole() -> None:
    # GIVEN six rows, records of at most two lines, and a stream that refuses the first record
    # of the first call
    rows = minute_sessions([make_event(T0, custid=n) for n in range(1, 7)])
    lines = [row.to_csv_line().encode() for row in rows]
    limit = max(len(lines[n]) + len(lines[n + 1]) for n in range(5)) + 1
    client = FlakyFirehose()
    sink = FirehoseMinuteSessionSink(
        client, "aggregated", sleep=lambda _: None, max_record_bytes=limit
    )
    # WHEN delivered
    sink.put(rows)
    # THEN the first call carries three records of two lines, the second the refused one, whole
    records = [lines[0] + lines[1], lines[2] + lines[3], lines[4] + lines[5]]
    assert client.calls == [records, records[:1]]
    # AND what Firehose accepted is every line exactly once
    accepted = b"".join(client.calls[0][1:] + client.calls[1])
    assert sorted(accepted.splitlines()) == sorted(b"".join(records).splitlines())


def test_firehose_sink_sends_nothing_when_a_row_cannot_be_written() -> None:
    # GIVEN a good row and a row whose url holds a newline (the parser never lets one through)
    rows = minute_sessions([make_event(T0, custid=1), make_event(T0, custid=2, url="beer\ncart")])
    client = FlakyFirehose(refusals=0)
    sink = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN delivered THEN the call fails, naming the column, and no line was sent
    with pytest.raises(UnwritableCsvValue, match=r"^beginurl: control character U\+000A"):
        sink.put(rows)
    assert client.calls == []


def test_firehose_sink_sends_nothing_when_a_line_exceeds_the_record_limit() -> None:
    # GIVEN two rows and records too small for the second row's line
    rows = minute_sessions([make_event(T0, custid=1), make_event(T0, custid=22222, url="x" * 200)])
    limit = len(rows[0].to_csv_line().encode())
    client = FlakyFirehose(refusals=0)
    sink = FirehoseMinuteSessionSink(
        client, "aggregated", sleep=lambda _: None, max_record_bytes=limit
    )
    # WHEN delivered THEN the call fails, naming the line's size, and nothing was sent
    with pytest.raises(ValueError, match=rf"exceeds the {limit}-byte record limit"):
        sink.put(rows)
    assert client.calls == []


def test_firehose_sink_gives_up_after_its_attempts() -> None:
    # GIVEN a stream that always refuses
    client = FlakyFirehose(refusals=99)
    sink = FirehoseMinuteSessionSink(client, "aggregated", max_attempts=3, sleep=lambda _: None)
    # WHEN delivering THEN it raises after three calls
    with pytest.raises(DeliveryFailed):
        sink.put(minute_sessions([make_event(T0)]))
    assert len(client.calls) == 3


def test_gap_sink_sends_each_session_as_one_compact_json_line() -> None:
    # GIVEN a closed session whose exit page has an accented url, and a stream that accepts all
    sessions = gap_sessions(
        [
            make_event(T0, custid=7, url="beer_vitrine_nav"),
            make_event(T0 + timedelta(seconds=90, microseconds=250), custid=7, url="bière"),
        ]
    )
    client = FlakyFirehose(refusals=0)
    sink = FirehoseGapSessionSink(client, "sessions", sleep=lambda _: None)
    # WHEN the commit that closed it delivers it
    sink.put(sessions, SHARD, "10", "20")
    # THEN one record carries its line: compact JSON in the field order of sessions/, non-ASCII
    # escaped, the timestamps as events write them, ending with a newline
    assert client.calls == [
        [
            b'{"session_id":"7_bro_1772892000000000","custid":7,"device":"browser",'
            b'"start":"2026-03-07T14:00:00.000000","end":"2026-03-07T14:01:30.000250",'
            b'"trafficfrom":"google","entry_url":"beer_vitrine_nav","exit_url":"bi\\u00e8re",'
            b'"page_count":2,"duration_seconds":90.00025,"reached_checkout":false}\n'
        ]
    ]
    assert json.loads(client.calls[0][0]) == sessions[0].to_dict()


def test_gap_sink_packs_the_sessions_of_a_put_in_order_and_sends_nothing_for_none() -> None:
    # GIVEN the sessions of 2,000 customers (about 500 KB of JSON lines)
    sessions = gap_sessions([make_event(T0, custid=n) for n in range(1, 2001)])
    lines = [session.to_json_line().encode() for session in sessions]
    client = FlakyFirehose(refusals=0)
    sink = FirehoseGapSessionSink(client, "sessions", sleep=lambda _: None)
    # WHEN a commit delivers them, and another commit closes nothing
    sink.put(sessions, SHARD, "1", "500")
    sink.put([], SHARD, "501", "900")
    # THEN one call carries one record holding every line once, in order
    assert client.calls == [[b"".join(lines)]]
    # WHEN the records are limited to 100,000 bytes
    limited = FlakyFirehose(refusals=0)
    FirehoseGapSessionSink(limited, "sessions", max_record_bytes=100_000).put(
        sessions, SHARD, "1", "500"
    )
    # THEN the lines fill as few records as fit, and read back whole and in order
    (records,) = limited.calls
    assert len(records) == -(-sum(map(len, lines)) // 100_000)
    assert all(len(record) <= 100_000 for record in records)
    assert b"".join(records).splitlines(keepends=True) == lines


def test_gap_sink_sends_a_refused_record_again_whole_and_a_repeated_put_again() -> None:
    # GIVEN the sessions of four customers, records of at most two lines, and a stream that
    # refuses the first record of the first call
    sessions = gap_sessions([make_event(T0, custid=n) for n in range(1, 5)])
    lines = [session.to_json_line().encode() for session in sessions]
    limit = max(len(lines[n]) + len(lines[n + 1]) for n in range(3)) + 1
    client = FlakyFirehose()
    sink = FirehoseGapSessionSink(client, "sessions", sleep=lambda _: None, max_record_bytes=limit)
    # WHEN delivered
    sink.put(sessions, SHARD, "1", "4")
    # THEN the refused record is sent again whole, and every session is accepted once
    records = [lines[0] + lines[1], lines[2] + lines[3]]
    assert client.calls == [records, records[:1]]
    accepted = b"".join(client.calls[0][1:] + client.calls[1])
    assert sorted(accepted.splitlines(keepends=True)) == sorted(lines)
    # WHEN the same commit delivers them again (it crashed before committing)
    sink.put(sessions, SHARD, "1", "4")
    # THEN they are sent again, with the same ids: delivery is at least once
    assert client.calls[2] == records


def test_gap_sink_gives_up_after_its_attempts() -> None:
    # GIVEN a stream that always refuses
    client = FlakyFirehose(refusals=99)
    sink = FirehoseGapSessionSink(client, "sessions", max_attempts=2, sleep=lambda _: None)
    # WHEN delivering THEN it raises, naming the stream, after two calls
    with pytest.raises(DeliveryFailed, match="refused by sessions after 2 attempts"):
        sink.put(gap_sessions([make_event(T0)]), SHARD, "1", "1")
    assert len(client.calls) == 2
