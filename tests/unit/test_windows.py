"""Tumbling windows, watermarks, late events and batch aggregates.

(docs/architecture.md, Stream semantics: Windows; Watermark and lateness)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.core.windows import (
    END_OF_STREAM,
    TOP_SOURCES,
    UNIQUE_USERS,
    WINDOW_SIZES,
    BatchAggregate,
    WindowKey,
    advance_idle,
    aggregate,
    is_final,
    is_late,
    later_watermark,
    rank_sources,
    watermark_of,
    window_end,
    window_keys,
    window_start,
)
from tests.factories import at, make_event


@pytest.mark.parametrize(
    ("moment", "size", "expected"),
    [
        ("2026-03-07T14:04:15.000000", 15, "2026-03-07T14:04:15.000000"),
        ("2026-03-07T14:04:14.999999", 15, "2026-03-07T14:04:00.000000"),
        ("2026-03-07T14:04:29.999999", 15, "2026-03-07T14:04:15.000000"),
        ("2026-03-07T14:05:00.000000", 60, "2026-03-07T14:05:00.000000"),
        ("2026-03-07T14:04:59.999999", 60, "2026-03-07T14:04:00.000000"),
        ("2026-03-07T23:59:59.999999", 15, "2026-03-07T23:59:45.000000"),
        ("2026-03-08T00:00:00.000000", 60, "2026-03-08T00:00:00.000000"),
        ("2026-03-07T14:59:59.999999", 60, "2026-03-07T14:59:00.000000"),
        ("1969-12-31T23:59:59.500000", 15, "1969-12-31T23:59:45.000000"),
    ],
)
def test_window_start_is_epoch_aligned_and_exact(moment: str, size: int, expected: str) -> None:
    # GIVEN an event time WHEN its window is computed
    start = window_start(at(moment), size)
    # THEN the window starts on the floor multiple of the size, edges belonging to the new window
    assert start == at(expected)
    assert start.tzinfo is UTC


def test_window_end_crosses_hour_and_day_boundaries() -> None:
    # GIVEN the last microsecond of a day
    moment = at("2026-03-07T23:59:59.999999")
    # WHEN the ends of its windows are computed
    ends = [window_end(moment, size) for size in WINDOW_SIZES]
    # THEN both windows end at midnight of the next day
    assert ends == [at("2026-03-08T00:00:00"), at("2026-03-08T00:00:00")]
    assert window_end(at("2026-03-07T14:59:50"), 15) == at("2026-03-07T15:00:00")
    assert window_end(at("2026-03-07T15:00:00"), 15) == at("2026-03-07T15:00:15")


def test_window_start_rejects_naive_datetimes_and_bad_sizes() -> None:
    # GIVEN a naive datetime or a non-positive size THEN the call is refused
    with pytest.raises(ValueError, match="timezone-aware"):
        window_start(datetime(2026, 3, 7, 14, 4), 15)
    with pytest.raises(ValueError, match="positive"):
        window_start(at("2026-03-07T14:04:00"), 0)


def test_window_key_knows_its_end() -> None:
    # GIVEN a one-minute window key
    key = WindowKey(TOP_SOURCES, 60, at("2026-03-07T23:59:00"), "google")
    # THEN its end is one minute later
    assert key.window_end == at("2026-03-08T00:00:00")


def test_window_keys_cover_both_metrics_and_sizes() -> None:
    # GIVEN one event
    event = make_event(at("2026-03-07T14:04:20"), url="beer_cart", trafficfrom="Alexa")
    # WHEN its windows are listed
    keys = window_keys(event)
    # THEN unique users is counted per 15 s and 60 s, top sources per minute only
    assert keys == [
        WindowKey(UNIQUE_USERS, 15, at("2026-03-07T14:04:15"), "beer_cart"),
        WindowKey(UNIQUE_USERS, 60, at("2026-03-07T14:04:00"), "beer_cart"),
        WindowKey(TOP_SOURCES, 60, at("2026-03-07T14:04:00"), "Alexa"),
    ]


def test_watermark_is_max_event_time_less_lateness() -> None:
    # GIVEN a latest event time and an allowed lateness
    # WHEN the watermark is derived THEN it is the difference
    assert watermark_of(at("2026-03-07T14:04:20"), timedelta(seconds=5)) == at(
        "2026-03-07T14:04:15"
    )


def test_window_is_final_exactly_when_the_watermark_reaches_its_end() -> None:
    # GIVEN the 15 s window starting at 14:04:00, which ends at 14:04:15
    start = at("2026-03-07T14:04:00")
    # THEN it is open one microsecond before its end and final exactly at its end
    assert not is_final(start, 15, at("2026-03-07T14:04:14.999999"))
    assert is_final(start, 15, at("2026-03-07T14:04:15"))
    assert is_final(start, 15, at("2026-03-07T14:04:15.000001"))
    # AND nothing is final before any event was seen
    assert not is_final(start, 15, None)


def test_end_of_stream_makes_every_window_final() -> None:
    # GIVEN windows, including the very last one representable
    # THEN the end-of-stream watermark closes them without overflowing
    assert is_final(at("2026-03-07T14:04:00"), 60, END_OF_STREAM)
    assert is_final(at("9999-12-31T23:59:59.999999"), 60, END_OF_STREAM)


def test_event_is_late_when_its_window_is_final() -> None:
    # GIVEN a watermark exactly on a 15 s edge
    watermark = at("2026-03-07T14:04:15")
    # THEN an event 1 µs before the edge is late for 15 s, not for 60 s
    assert is_late(at("2026-03-07T14:04:14.999999"), 15, watermark)
    assert not is_late(at("2026-03-07T14:04:14.999999"), 60, watermark)
    # AND an event exactly on the edge belongs to an open window
    assert not is_late(at("2026-03-07T14:04:15"), 15, watermark)


def test_later_watermark_never_goes_back() -> None:
    # GIVEN two watermarks, either possibly unknown
    early, late = at("2026-03-07T14:04:00"), at("2026-03-07T14:05:00")
    # THEN the later one wins and None means "nothing yet"
    assert later_watermark(late, early) == late
    assert later_watermark(early, late) == late
    assert later_watermark(None, early) == early
    assert later_watermark(early, None) == early
    assert later_watermark(None, None) is None


def test_idle_stream_keeps_its_watermark_until_the_idle_timeout_passes() -> None:
    # GIVEN a stream last fed 10 s ago (processing time) with a 10 s idle timeout
    seen_at = at("2026-05-01T09:00:00")
    # WHEN it has been idle for exactly the timeout
    watermark = advance_idle(
        max_event_time=at("2026-03-07T14:04:20"),
        last_event_seen_at=seen_at,
        now=seen_at + timedelta(seconds=10),
        idle_timeout=timedelta(seconds=10),
        allowed_lateness=timedelta(seconds=5),
    )
    # THEN the watermark is still the plain one
    assert watermark == at("2026-03-07T14:04:15")


def test_idle_stream_advances_with_processing_time_not_wall_clock() -> None:
    # GIVEN a replay of historical events, idle for 10 s + 1 µs with a 10 s timeout
    seen_at = at("2026-05-01T09:00:00")
    # WHEN the idle watermark is computed
    watermark = advance_idle(
        max_event_time=at("2026-03-07T14:04:20"),
        last_event_seen_at=seen_at,
        now=seen_at + timedelta(seconds=10, microseconds=1),
        idle_timeout=timedelta(seconds=10),
        allowed_lateness=timedelta(seconds=5),
    )
    # THEN event time moved on by the idle time only, far from the wall clock
    assert watermark == at("2026-03-07T14:04:25.000001")


def test_idle_stream_closes_windows_no_event_passed() -> None:
    # GIVEN a stream whose last event at 14:04:20 left the 14:04:15 window open
    seen_at = at("2026-05-01T09:00:00")
    last_event = at("2026-03-07T14:04:20")
    lateness = timedelta(seconds=5)
    assert not is_final(at("2026-03-07T14:04:15"), 15, watermark_of(last_event, lateness))
    # WHEN it stays idle for 15 s with a 10 s idle timeout
    watermark = advance_idle(
        last_event, seen_at, seen_at + timedelta(seconds=15), timedelta(seconds=10), lateness
    )
    # THEN the window is final
    assert watermark == at("2026-03-07T14:04:30")
    assert is_final(at("2026-03-07T14:04:15"), 15, watermark)


def test_aggregate_counts_distinct_users_and_each_event_once() -> None:
    # GIVEN a batch with two users on one url and a repeated event
    repeated = make_event(at("2026-03-07T14:04:01"), custid=1, trafficfrom="google")
    events = [
        repeated,
        make_event(at("2026-03-07T14:04:02"), custid=1, trafficfrom="google"),
        make_event(at("2026-03-07T14:04:03"), custid=2, trafficfrom="Alexa"),
        repeated,
    ]
    # WHEN the batch is aggregated
    result = aggregate(events, watermark_before=None)
    # THEN the duplicate is dropped once and counted
    assert result.duplicates == 1
    minute = at("2026-03-07T14:04:00")
    assert result.unique_users[WindowKey(UNIQUE_USERS, 15, minute, "beer_vitrine_nav")] == {1, 2}
    assert result.unique_users[WindowKey(UNIQUE_USERS, 60, minute, "beer_vitrine_nav")] == {1, 2}
    assert len(result.source_events[WindowKey(TOP_SOURCES, 60, minute, "google")]) == 2
    assert result.source_events[WindowKey(TOP_SOURCES, 60, minute, "Alexa")] == {events[2].event_id}
    assert result.late_events == {}
    assert result.max_event_time == at("2026-03-07T14:04:03")
    assert result.watermark == at("2026-03-07T14:04:03")


def test_aggregate_marks_events_late_against_the_watermark_before_the_batch() -> None:
    # GIVEN a watermark that has closed the 14:04:00 15 s window but not its minute
    watermark_before = at("2026-03-07T14:04:15")
    late = make_event(at("2026-03-07T14:04:14.999999"), custid=7)
    # WHEN a batch brings an event of that window
    result = aggregate([late], watermark_before)
    # THEN it is late for the 15 s window only and still counts for the minute
    start = at("2026-03-07T14:04:00")
    assert result.late_counts == {WindowKey(UNIQUE_USERS, 15, start, "beer_vitrine_nav"): 1}
    assert result.unique_users == {WindowKey(UNIQUE_USERS, 60, start, "beer_vitrine_nav"): {7}}
    assert result.source_events == {WindowKey(TOP_SOURCES, 60, start, "google"): {late.event_id}}
    # AND the watermark does not go back
    assert result.watermark == watermark_before


def test_aggregate_raises_the_watermark_after_each_event() -> None:
    # GIVEN zero lateness and an event on a 15 s edge followed by one 1 µs earlier
    first = make_event(at("2026-03-07T14:04:15"))
    second = make_event(at("2026-03-07T14:04:14.999999"))
    # WHEN they are aggregated in that order
    result = aggregate([first, second], watermark_before=None)
    # THEN the first is on time (an event never makes itself late) and the second is late
    start = at("2026-03-07T14:04:00")
    assert result.late_events == {
        WindowKey(UNIQUE_USERS, 15, start, "beer_vitrine_nav"): {second.event_id}
    }
    assert WindowKey(UNIQUE_USERS, 15, at("2026-03-07T14:04:15"), "beer_vitrine_nav") in (
        result.unique_users
    )


def test_aggregate_allowed_lateness_keeps_out_of_order_events_on_time() -> None:
    # GIVEN the same out-of-order pair with 1 s of allowed lateness
    events = [make_event(at("2026-03-07T14:04:15")), make_event(at("2026-03-07T14:04:14.999999"))]
    # WHEN aggregated
    result = aggregate(events, watermark_before=None, allowed_lateness=timedelta(seconds=1))
    # THEN nothing is late and the watermark trails the latest event by the lateness
    assert result.late_events == {}
    assert result.watermark == at("2026-03-07T14:04:14")


def test_empty_batch_keeps_the_watermark() -> None:
    # GIVEN no events WHEN aggregated THEN nothing changes
    watermark = at("2026-03-07T14:04:00")
    assert aggregate([], watermark) == BatchAggregate(watermark=watermark)


def test_batches_merge_by_union_and_redelivery_changes_nothing() -> None:
    # GIVEN random events of one minute split into batches, one batch delivered twice
    rng = random.Random(7)
    minute = at("2026-03-07T14:04:00")
    events = [
        make_event(
            minute + timedelta(microseconds=rng.randrange(60_000_000)),
            custid=rng.randint(1, 5),
            url=rng.choice(["beer_cart", "beer_checkout"]),
            trafficfrom=rng.choice(["google", "Alexa", "twitter.com"]),
        )
        for _ in range(200)
    ]
    batches = [events[:70], events[70:140], events[70:140], events[140:]]
    lateness = timedelta(minutes=5)
    # WHEN each batch is aggregated and the sets are merged by union
    merged_users: dict[WindowKey, set[int]] = {}
    merged_sources: dict[WindowKey, set[str]] = {}
    watermark = None
    for batch in batches:
        result = aggregate(batch, watermark, lateness)
        watermark = result.watermark
        for key, users in result.unique_users.items():
            merged_users.setdefault(key, set()).update(users)
        for key, event_ids in result.source_events.items():
            merged_sources.setdefault(key, set()).update(event_ids)
    # THEN the counts equal processing every event exactly once
    whole = aggregate(events, None, lateness)
    assert merged_users == whole.unique_users
    assert merged_sources == whole.source_events
    assert sum(len(ids) for ids in merged_sources.values()) == len(events)


def test_rank_sources_orders_by_count_then_name_with_ordinal_ranks() -> None:
    # GIVEN counts with ties
    counts = {"twitter.com": 3, "Alexa": 5, "google": 5, "amazon.com": 3, "BeerHug_TV": 1}
    # WHEN ranked
    ranking = rank_sources(counts)
    # THEN higher counts come first, ties by name, ranks 1, 2, 3, ...
    assert ranking == [
        (1, "Alexa", 5),
        (2, "google", 5),
        (3, "amazon.com", 3),
        (4, "twitter.com", 3),
        (5, "BeerHug_TV", 1),
    ]
    assert rank_sources({}) == []
