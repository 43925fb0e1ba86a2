"""Events at the edges of the supported event-time range run through every consumer and the lake.

The parser accepts 2020-01-01T00:00:00.000000 to 2099-12-31T23:59:59.999999
(``clickstream.core.schema.EVENT_TIME``). An event at either edge must be counted, sessionised,
indexed, finalised and curated without an error, its windows ending at most at 2100-01-01.
"""

from __future__ import annotations

import json
from datetime import timedelta

from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers import sessionizer, window_counter
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord
from clickstream.core.schema import EVENT_TIME, INT32_MAX
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream.ports import SessionizerPorts
from clickstream.settings import SessionizerSettings, WindowCounterSettings
from clickstream_glue.records import gap_session_row, micros, minute_session_row
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
    MemoryWindowResults,
    memory_window_counter_ports,
)
from tests.support.lambda_events import kinesis_event, kinesis_record
from tests.support.search_indexer import FakeIndex, FakeQuarantine
from tests.support.search_indexer import index_batch as index_lambda_records

FIRST = EVENT_TIME.earliest
LAST = EVENT_TIME.latest
SHARDS = ["shardId-0", "shardId-1"]
NOW = at("2026-11-30T16:00:00")
"""Processing time: the edges are far from it, which must not matter."""
LATER = timedelta(minutes=2)
WINDOW_SETTINGS = WindowCounterSettings.from_env(
    {
        "STATE_TABLE": "state",
        "RESULTS_TABLE": "results",
        "STREAM_NAME": "stream",
        "QUARANTINE_BUCKET": "lake",
    }
)
SESSION_SETTINGS = SessionizerSettings.from_env(
    {
        "STATE_TABLE": "sessions",
        "STREAM_NAME": "stream",
        "AGGREGATED_DELIVERY_STREAM": "aggregated",
        "SESSIONS_DELIVERY_STREAM": "sessions",
        "LAKE_BUCKET": "lake",
    }
)
EDGE_EVENTS = [
    make_event(FIRST, custid=1, url="beer_home", trafficfrom="google"),
    make_event(LAST, custid=INT32_MAX, url="beer_checkout", trafficfrom="Alexa"),
]


def lambda_batch(events: list[Event]) -> dict[str, list[ParsedRecord]]:
    """Each event on its own shard, arrived exactly at its own time, read by the inbound adapter."""
    records = [
        kinesis_record(shard, "1", event, event.trans_timestamp)
        for shard, event in zip(SHARDS, events, strict=True)
    ]
    batch = records_by_shard(kinesis_event(*records))
    assert all(parsed.event is not None for records in batch.values() for parsed in records)
    return batch


def windows(results: MemoryWindowResults, metric: str, size: int) -> list[tuple[object, ...]]:
    """(start, end, key, value, final) of each row, in time order."""
    rows = sorted(results.rows(metric, size), key=lambda row: row.window_start)
    return [(r.window_start, r.window_end, r.key, r.value, r.final) for r in rows]


def test_the_window_counter_counts_and_closes_windows_at_both_edges() -> None:
    # GIVEN the window counter on in-memory ports
    results, quarantine = MemoryWindowResults(), MemoryQuarantine()
    ports = memory_window_counter_ports(SHARDS, results=results, quarantine=quarantine)
    # WHEN a batch holds an event at each edge, the shards go idle, and the stream ends
    window_counter.handle_batch(
        lambda_batch(EDGE_EVENTS), settings=WINDOW_SETTINGS, ports=ports, now=NOW
    )
    window_counter.finalize(
        settings=WINDOW_SETTINGS, ports=ports, shard_ids=SHARDS, now=NOW + LATER
    )
    window_counter.finalize(
        settings=WINDOW_SETTINGS, ports=ports, shard_ids=SHARDS, now=NOW + LATER, close_all=True
    )
    # THEN each event is counted in its windows, the last ones ending at the first instant of 2100
    end_of_range = LAST + timedelta(microseconds=1)
    assert end_of_range == at("2100-01-01T00:00:00")
    assert windows(results, UNIQUE_USERS, 15) == [
        (FIRST, FIRST + timedelta(seconds=15), "beer_home", 1, True),
        (end_of_range - timedelta(seconds=15), end_of_range, "beer_checkout", 1, True),
    ]
    assert windows(results, TOP_SOURCES, 60) == [
        (FIRST, FIRST + timedelta(seconds=60), "google", 1, True),
        (end_of_range - timedelta(seconds=60), end_of_range, "Alexa", 1, True),
    ]
    assert quarantine.records == []


def test_the_sessionizer_emits_sessions_at_both_edges_that_the_lake_curates() -> None:
    # GIVEN the sessionizer on in-memory ports
    state, minutes, gaps = MemorySessionState(), MemoryMinuteSink(), MemoryGapSink()
    quarantine = MemoryQuarantine()
    ports = SessionizerPorts(state.checkpoints, state, minutes, gaps, quarantine)
    # WHEN a batch holds an event at each edge, and the stream ends
    sessionizer.handle_batch(
        lambda_batch(EDGE_EVENTS), settings=SESSION_SETTINGS, ports=ports, now=NOW
    )
    sessionizer.finalize_sessions(
        settings=SESSION_SETTINGS,
        ports=ports,
        shard_ids=SHARDS,
        now=NOW + LATER,
        close_everything=True,
    )
    # THEN one per-minute row and one gap session per event are emitted
    assert sorted(row.minute for row in minutes.rows) == [FIRST, at("2099-12-31T23:59:00")]
    assert sorted((s.start, s.end) for s in gaps.sessions) == [(FIRST, FIRST), (LAST, LAST)]
    assert quarantine.records == []
    # AND the Glue jobs curate each of them, times intact
    minute_times = sorted(minute_session_row(row.to_csv_line())[3] for row in minutes.rows)
    assert minute_times == [micros(FIRST), micros(at("2099-12-31T23:59:00"))]
    gap_rows = sorted(gap_session_row(json.dumps(s.to_dict())) for s in gaps.sessions)
    assert [(row[3], row[4]) for row in gap_rows] == [
        (micros(FIRST), micros(FIRST)),
        (micros(LAST), micros(LAST)),
    ]


def test_the_search_indexer_indexes_both_edges_into_their_daily_indices() -> None:
    # GIVEN Lambda records of an event at each edge, arrived at their own times
    records = [
        kinesis_record("shardId-0", str(n), event, event.trans_timestamp)
        for n, event in enumerate(EDGE_EVENTS, 1)
    ]
    index, quarantine = FakeIndex(), FakeQuarantine()
    # WHEN the indexer takes them
    outcome = index_lambda_records(records, index, quarantine)
    # THEN both are indexed, each in the index of its own day
    assert outcome.indexed == 2
    assert quarantine.records == []
    (call,) = index.calls
    assert [action["_index"] for action in call] == [
        "clickstream-events-2020.01.01",
        "clickstream-events-2099.12.31",
    ]
