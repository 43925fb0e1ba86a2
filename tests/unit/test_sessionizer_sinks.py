"""The sessionizer's output adapters without I/O: Firehose batches and retries, S3 keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.firehose import (
    DeliveryFailed,
    FirehoseMinuteSessionSink,
    record_batches,
)
from clickstream.adapters.aws.s3 import gap_sessions_key
from clickstream.core.sessions import UnwritableCsvValue, gap_sessions, minute_sessions
from tests.factories import make_event
from tests.support.sessionizer import SHARD, T0

# --- Adapter rules without I/O ----------------------------------------------------------------


def test_record_batches_respect_both_limits() -> None:
    # GIVEN 1200 small records and 3 large ones
    small = [b"x" * 10] * 1200
    large = [b"y" * 1000] * 3
    # WHEN cut into calls THEN no call has over 500 records or the byte budget
    assert [len(batch) for batch in record_batches(small)] == [500, 500, 200]
    assert [len(batch) for batch in record_batches(large, max_bytes=2500)] == [2, 1]


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


def test_firehose_sink_writes_csv_lines_and_retries_refused_entries() -> None:
    # GIVEN two rows and a stream that refuses one entry once
    rows = minute_sessions([make_event(T0, custid=1), make_event(T0, custid=2)])
    client = FlakyFirehose()
    sink = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN delivered
    sink.put(rows)
    # THEN the refused line alone is sent again
    lines = [row.to_csv_line().encode() for row in rows]
    assert client.calls == [lines, lines[:1]]


def test_firehose_sink_sends_nothing_when_a_row_cannot_be_written() -> None:
    # GIVEN a good row and a row whose url holds a newline (the parser never lets one through)
    rows = minute_sessions([make_event(T0, custid=1), make_event(T0, custid=2, url="beer\ncart")])
    client = FlakyFirehose(refusals=0)
    sink = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN delivered THEN the call fails, naming the column, and no line was sent
    with pytest.raises(UnwritableCsvValue, match=r"^beginurl: control character U\+000A"):
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


def test_gap_sessions_key_depends_on_the_content_only() -> None:
    # GIVEN closed sessions ending at 14:59
    sessions = gap_sessions([make_event(T0), make_event(T0 + timedelta(minutes=59))])
    # WHEN keyed THEN the hour is that of the latest end
    assert gap_sessions_key(sessions, SHARD, "10", "20") == (
        f"sessions/2026/03/07/14/{SHARD}-10-20.jsonl"
    )
