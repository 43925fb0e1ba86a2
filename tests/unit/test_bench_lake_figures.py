"""The lake benchmark's figures for the cost model: the sessionizer's output as its Firehose
adapters send it, and the flat figures of ``bench/results/lake.json``."""

from __future__ import annotations

from datetime import timedelta

from bench.bench_lake import CountingFirehose, lake_figures
from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.core.sessions import gap_sessions, minute_sessions
from tests.factories import at, make_event


def test_the_minute_sink_sends_what_the_counting_client_counts() -> None:
    # GIVEN 1,200 per-minute rows of 1,200 customers (about 130 KB of CSV lines), and a few
    # rows of another minute
    start = at("2026-03-07T14:00:00")
    events = [make_event(start + timedelta(seconds=n % 60), custid=n + 1) for n in range(1200)]
    rows = minute_sessions(events)
    later = minute_sessions([make_event(start + timedelta(minutes=1), custid=n) for n in (1, 2)])
    client = CountingFirehose()
    sink = FirehoseMinuteSessionSink(client, "aggregated", sleep=lambda _: None)
    # WHEN the Firehose adapter puts them in two puts, then nothing
    for put in (rows, later, []):
        sink.put(put)
    # THEN each put's lines were packed into one record, sent in one call
    assert (client.calls, client.records) == (2, 2)
    # AND the rows and their bytes are counted as written
    assert client.lines == 1202
    assert client.bytes == sum(len(row.to_csv_line().encode()) for row in [*rows, *later])


def test_the_gap_sink_sends_what_the_counting_client_counts_repeats_included() -> None:
    # GIVEN the gap sessions of two customers
    start = at("2026-03-07T14:00:00")
    sessions = gap_sessions([make_event(start, custid=1), make_event(start, custid=2)])
    client = CountingFirehose()
    sink = FirehoseGapSessionSink(client, "sessions", sleep=lambda _: None)
    # WHEN a commit emits them, is retried with the same records, and another closes nothing
    sink.put(sessions, "shard-0", "1", "9")
    sink.put(sessions, "shard-0", "1", "9")
    sink.put([], "shard-0", "10", "12")
    # THEN each emission is one call of one record, and the retry is delivered again
    assert (client.calls, client.records, client.lines) == (2, 2, 4)
    assert client.bytes == 2 * sum(len(session.to_json_line().encode()) for session in sessions)


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
        "sessions": {"gap_session_records_per_1000_events": 8.0},
    }
    figures = lake_figures(results)
    assert figures["raw_json_bytes_per_event"] == 200
    assert figures["curated_events_zstd_bytes_per_event"] == 25
    assert figures["curated_events_zstd_percent_of_raw"] == 12.5
    assert figures["events_job_incremental_run_seconds"] == 3.0
    assert figures["events_job_incremental_run_objects_written"] == 2
    assert figures["gap_session_records_per_1000_events"] == 8.0
    assert all(isinstance(value, int | float) for value in figures.values())
