"""The lake benchmark's figures for the cost model: the sessionizer's output as its adapters would
send it, and the flat figures of ``bench/results/lake.json``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.bench_lake import CountingGapSink, CountingMinuteSink, lake_figures
from clickstream.adapters.aws.firehose import FirehoseMinuteSessionSink
from clickstream.adapters.aws.s3 import gap_sessions_body
from clickstream.core.sessions import gap_sessions, minute_sessions
from tests.factories import at, make_event


class RecordingFirehose:
    """A Firehose client accepting every record, keeping each call's records."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> Any:
        self.calls.append([record["Data"] for record in Records])
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}


def test_the_minute_sink_counts_the_records_and_calls_the_firehose_adapter_sends() -> None:
    # GIVEN 1,200 per-minute rows of 1,200 customers (about 130 KB of CSV lines), and a few
    # rows of another minute
    start = at("2026-03-07T14:00:00")
    events = [make_event(start + timedelta(seconds=n % 60), custid=n + 1) for n in range(1200)]
    rows = minute_sessions(events)
    later = minute_sessions([make_event(start + timedelta(minutes=1), custid=n) for n in (1, 2)])
    sink, client = CountingMinuteSink(), RecordingFirehose()
    adapter = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN both sinks get them in two puts, then nothing
    for put in (rows, later, []):
        sink.put(put)
        adapter.put(put)
    # THEN the count is what the adapter sent: each put's lines packed into one record, one call
    assert (sink.calls, sink.records) == (len(client.calls), sum(map(len, client.calls))) == (2, 2)
    # AND the rows and their bytes are counted as written
    assert sink.rows == 1202
    assert sink.bytes == sum(len(record) for call in client.calls for record in call)


def test_the_gap_sink_counts_one_object_per_key_with_its_bytes() -> None:
    # GIVEN the gap sessions of two customers
    start = at("2026-03-07T14:00:00")
    sessions = gap_sessions([make_event(start, custid=1), make_event(start, custid=2)])
    sink = CountingGapSink()
    # WHEN a commit emits them, is retried with the same records, and another commits nothing
    sink.put(sessions, "shard-0", "1", "9")
    sink.put(sessions, "shard-0", "1", "9")
    sink.put([], "shard-0", "10", "12")
    # THEN one object holds them, as the S3 adapter writes it
    assert list(sink.objects.values()) == [len(gap_sessions_body(sessions))]
    assert sink.sessions == 4  # the retry emitted them again


def test_lake_figures_are_flat_and_per_event() -> None:
    results = {
        "machine": {"events": 1000},
        "setup": {"raw_bytes": 200_000},
        "codecs": {
            "zstd": {
                "curated_bytes": 25_000,
                "rows_per_s_wall": 500.0,
                "report_seconds": 1.5,
            }
        },
        "copy": {"rows_per_s_inferred_schema": 900.0},
        "queries": {
            "top_products": {"parquet_seconds": 0.5, "raw_seconds": 2.0, "raw_over_parquet": 4.0}
        },
        "median_raw_over_parquet": 4.0,
        "incremental": {
            "rows": 100,
            "report_seconds": 3.0,
            "wall_seconds": 3.5,
            "objects_written": 2,
            "bytes_written": 4000,
        },
        "sessions": {"gap_session_objects_per_1000_events": 8.0},
    }
    figures = lake_figures(results)
    assert figures["raw_json_bytes_per_event"] == 200
    assert figures["curated_events_zstd_bytes_per_event"] == 25
    assert figures["curated_events_zstd_percent_of_raw"] == 12.5
    assert figures["events_job_incremental_run_seconds"] == 3.0
    assert figures["events_job_incremental_run_objects_written"] == 2
    assert figures["gap_session_objects_per_1000_events"] == 8.0
    assert all(isinstance(value, int | float) for value in figures.values())
