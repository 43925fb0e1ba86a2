"""Seed-compatible per-minute sessions and inactivity-gap sessions.

(docs/architecture.md, Stream semantics: Sessions)
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.core.events import DEVICES, Event
from clickstream.core.sessions import (
    DEFAULT_INACTIVITY_TIMEOUT,
    DEFAULT_MAX_DURATION,
    AddOutcome,
    GapSession,
    GapSessionizer,
    MinuteSession,
    gap_sessions,
    minute_sessions,
)
from tests.factories import MICROSECOND, at, make_event

T0 = datetime(2026, 3, 7, 14, 4, 10, tzinfo=UTC)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch."""
    return int(moment.timestamp())


# --- Per-minute sessions ----------------------------------------------------------------------


def test_minute_session_row_has_the_seed_columns() -> None:
    # GIVEN three events of one user and device within one minute
    events = [
        make_event(at("2026-03-07T14:04:03.899999"), custid=42, url="beer_cart"),
        make_event(at("2026-03-07T14:04:01.900000"), custid=42, url="beer_vitrine_nav"),
        make_event(at("2026-03-07T14:04:02.000000"), custid=42, url="beer_product_detail"),
    ]
    # WHEN they are sessionised per minute
    (session,) = minute_sessions(events)
    # THEN the row follows the old SQL, with whole seconds rounded down (1.999999 s -> 1)
    minute = epoch_seconds(at("2026-03-07T14:04:00"))
    assert session.row() == (
        f"42_bro_{minute}",
        42,
        "browser",
        "2026-03-07 14:04:00",
        3,
        "beer_vitrine_nav",
        "beer_cart",
        "04:01",
        "04:03",
        1,
    )
    assert session.to_csv_line() == (
        f"42_bro_{minute},42,browser,2026-03-07 14:04:00,3,"
        "beer_vitrine_nav,beer_cart,04:01,04:03,1\n"
    )


def test_minute_sessions_split_at_the_minute_edge() -> None:
    # GIVEN events 1 µs before and exactly at a minute edge, across an hour boundary
    events = [
        make_event(at("2026-03-07T14:59:59.999999"), custid=5),
        make_event(at("2026-03-07T15:00:00.000000"), custid=5),
    ]
    # WHEN sessionised per minute
    sessions = minute_sessions(events)
    # THEN there are two one-event sessions, one per minute
    assert [s.aggreg_time for s in sessions] == ["2026-03-07 14:59:00", "2026-03-07 15:00:00"]
    assert [s.events for s in sessions] == [1, 1]
    assert [(s.begin_min_ss, s.end_min_ss, s.totaltime_sec) for s in sessions] == [
        ("59:59", "59:59", 0),
        ("00:00", "00:00", 0),
    ]
    assert sessions[0].sessionid != sessions[1].sessionid


def test_app_mobile_and_app_tablet_get_distinct_sessionids() -> None:
    # GIVEN one customer on each device within the same minute
    events = [make_event(T0, custid=7, device=device) for device in DEVICES]
    # WHEN sessionised per minute
    sessions = minute_sessions(events)
    # THEN each device has its own session id of the old shape
    minute = epoch_seconds(at("2026-03-07T14:04:00"))
    assert sorted(s.sessionid for s in sessions) == [
        f"7_bro_{minute}",
        f"7_mob_{minute}",
        f"7_tab_{minute}",
    ]


def test_minute_session_ties_and_duplicates_are_deterministic() -> None:
    # GIVEN two events at the same instant (ordered by event_id) and a repeated event
    low = make_event(T0, url="beer_cart", event_id=str(uuid.UUID(int=1)))
    high = make_event(T0, url="beer_checkout", event_id=str(uuid.UUID(int=2)))
    # WHEN sessionised in either arrival order
    forward = minute_sessions([low, high, low])
    backward = minute_sessions([high, low, high])
    # THEN the duplicate counts once and begin/end follow the event_id order
    assert forward == backward
    (session,) = forward
    assert (session.events, session.beginurl, session.endurl) == (2, "beer_cart", "beer_checkout")


def test_minute_session_csv_quotes_only_when_needed() -> None:
    # GIVEN a url holding a comma and a quote
    session = MinuteSession(
        userid=3,
        device="app_tablet",
        minute=at("2026-03-07T14:04:00"),
        events=1,
        beginurl='beer_"special",page',
        endurl="beer_cart",
        first_event_time=at("2026-03-07T14:04:05"),
        last_event_time=at("2026-03-07T14:04:05"),
    )
    # WHEN written as CSV THEN only that field is quoted, quotes doubled
    line = session.to_csv_line()
    assert ',"beer_""special"",page",beer_cart,' in line
    assert line.startswith("3_tab_") and line.endswith(",04:05,04:05,0\n")


def test_row_id_is_stable_for_a_redelivery_and_changes_with_a_revision() -> None:
    # GIVEN a minute session computed twice, and once more with a late event of the minute
    events = [make_event(T0), make_event(T0 + timedelta(seconds=3))]
    (first,) = minute_sessions(events)
    (again,) = minute_sessions(list(reversed(events)))
    (revised,) = minute_sessions([*events, make_event(T0 + timedelta(seconds=9))])
    # THEN the redelivery keeps the row id; the revision keeps the sessionid under a new row id
    assert first.row_id == again.row_id
    assert first.row_id.startswith(f"{first.sessionid}-")
    assert revised.sessionid == first.sessionid
    assert revised.row_id != first.row_id


# --- Gap sessions -----------------------------------------------------------------------------


def test_gap_equal_to_the_timeout_stays_in_the_session() -> None:
    # GIVEN two events exactly 30 minutes apart
    events = [make_event(T0), make_event(T0 + DEFAULT_INACTIVITY_TIMEOUT)]
    # WHEN sessionised THEN they share one session
    (session,) = gap_sessions(events)
    assert session.page_count == 2
    assert session.duration_seconds == 1800.0


def test_gap_one_microsecond_over_the_timeout_starts_a_new_session() -> None:
    # GIVEN two events 30 minutes and 1 µs apart
    events = [make_event(T0), make_event(T0 + DEFAULT_INACTIVITY_TIMEOUT + MICROSECOND)]
    # WHEN sessionised THEN each starts its own session
    sessions = gap_sessions(events)
    assert [s.page_count for s in sessions] == [1, 1]
    assert [s.start for s in sessions] == [e.trans_timestamp for e in events]


def test_session_is_capped_at_max_duration() -> None:
    # GIVEN activity every 20 minutes for 24 hours, then once 1 µs before the cap of a new run
    steady = [make_event(T0 + timedelta(minutes=20 * step)) for step in range(73)]
    # WHEN sessionised with the 24 h cap
    sessions = gap_sessions(steady)
    # THEN the event exactly 24 h after the start opens a new session
    assert [s.page_count for s in sessions] == [72, 1]
    assert sessions[1].start == T0 + DEFAULT_MAX_DURATION
    assert sessions[0].end == T0 + timedelta(hours=23, minutes=40)


def test_event_one_microsecond_before_the_cap_stays_in_the_session() -> None:
    # GIVEN events 10 min apart up to 1 µs before the cap, with a 1 h cap
    cap = timedelta(hours=1)
    events = [make_event(T0 + timedelta(minutes=10 * step)) for step in range(6)]
    events.append(make_event(T0 + cap - MICROSECOND))
    # WHEN sessionised
    (session,) = gap_sessions(events, max_duration=cap)
    # THEN it is one session of 3599.999999 s
    assert session.page_count == 7
    assert session.duration_seconds == 3599.999999


def test_gap_session_carries_source_entry_exit_and_checkout() -> None:
    # GIVEN a funnel that reaches checkout, arriving out of order, with a repeat
    first = make_event(T0, custid=9, url="beer_vitrine_nav", trafficfrom="email_MyFirstBeer")
    middle = make_event(T0 + timedelta(seconds=20), custid=9, url="beer_checkout")
    last = make_event(T0 + timedelta(seconds=41.5), custid=9, url="beer_product_detail")
    # WHEN sessionised
    (session,) = gap_sessions([last, middle, first, middle])
    # THEN the session describes the visit
    assert session == GapSession(
        session_id=f"9_bro_{epoch_seconds(T0) * 1_000_000}",
        custid=9,
        device="browser",
        start=T0,
        end=T0 + timedelta(seconds=41.5),
        trafficfrom="email_MyFirstBeer",
        entry_url="beer_vitrine_nav",
        exit_url="beer_product_detail",
        page_count=3,
        duration_seconds=41.5,
        reached_checkout=True,
    )
    assert session.to_dict()["start"] == "2026-03-07T14:04:10.000000"


def test_sessions_are_per_custid_and_device_and_checkout_defaults_false() -> None:
    # GIVEN the same moment for two devices and two customers
    events = [
        make_event(T0, custid=1, device="app_mobile"),
        make_event(T0, custid=1, device="app_tablet"),
        make_event(T0, custid=2, device="app_mobile"),
    ]
    # WHEN sessionised THEN there are three sessions, none reaching checkout
    sessions = gap_sessions(events)
    assert [(s.custid, s.device) for s in sessions] == [
        (1, "app_mobile"),
        (1, "app_tablet"),
        (2, "app_mobile"),
    ]
    assert not any(s.reached_checkout for s in sessions)
    assert len({s.session_id for s in sessions}) == 3


def test_sessionizer_closes_exactly_when_the_gap_can_no_longer_close() -> None:
    # GIVEN an open session whose last event is at T0
    sessionizer = GapSessionizer()
    assert sessionizer.add(make_event(T0)) is AddOutcome.ADDED
    # WHEN the watermark reaches last event + timeout THEN a later event could still join
    assert sessionizer.close_expired(T0 + DEFAULT_INACTIVITY_TIMEOUT) == []
    # WHEN it passes it by 1 µs THEN the session is closed
    (closed,) = sessionizer.close_expired(T0 + DEFAULT_INACTIVITY_TIMEOUT + MICROSECOND)
    assert closed.start == T0
    assert sessionizer.open_event_count == 0


def test_sessionizer_closes_at_the_cap() -> None:
    # GIVEN a busy session with a 1 h cap
    sessionizer = GapSessionizer(max_duration=timedelta(hours=1))
    for step in range(4):
        sessionizer.add(make_event(T0 + timedelta(minutes=15 * step)))
    # WHEN the watermark is 1 µs short of the cap THEN it stays open
    assert sessionizer.close_expired(T0 + timedelta(hours=1) - MICROSECOND) == []
    # WHEN it reaches the cap THEN the session closes although the gap is short
    (closed,) = sessionizer.close_expired(T0 + timedelta(hours=1))
    assert closed.page_count == 4


def test_sessionizer_rejects_duplicates_and_late_events() -> None:
    # GIVEN a sessionizer that has closed everything before a watermark
    sessionizer = GapSessionizer()
    event = make_event(T0)
    sessionizer.add(event)
    # THEN a repeat of an open event is a duplicate
    assert sessionizer.add(event) is AddOutcome.DUPLICATE
    watermark = T0 + timedelta(hours=1)
    sessionizer.close_expired(watermark)
    # AND an event before the watermark (or a repeat of a closed one) is late
    assert sessionizer.add(event) is AddOutcome.LATE
    assert sessionizer.add(make_event(watermark - MICROSECOND)) is AddOutcome.LATE
    assert sessionizer.add(make_event(watermark)) is AddOutcome.ADDED


def test_close_all_flushes_every_open_session() -> None:
    # GIVEN two open sessions of one key
    sessionizer = GapSessionizer()
    events = [make_event(T0), make_event(T0 + timedelta(hours=2))]
    for event in events:
        sessionizer.add(event)
    # WHEN the stream ends
    closed = sessionizer.close_all()
    # THEN both are closed and nothing more is accepted
    assert closed == gap_sessions(events)
    assert sessionizer.open_event_count == 0
    assert sessionizer.add(make_event(T0 + timedelta(days=1))) is AddOutcome.LATE


def test_state_round_trips_through_json() -> None:
    # GIVEN a sessionizer with open events and a watermark
    sessionizer = GapSessionizer(timedelta(minutes=5), timedelta(hours=2))
    for step in range(5):
        sessionizer.add(make_event(T0 + timedelta(minutes=step), custid=1 + step % 2))
    sessionizer.close_expired(T0)
    # WHEN its state is written as JSON and read back
    state = json.loads(json.dumps(sessionizer.to_dict()))
    restored = GapSessionizer.from_dict(state)
    # THEN the restored state is identical and closes the same sessions
    assert restored.to_dict() == sessionizer.to_dict()
    assert restored.close_all() == sessionizer.close_all()


def test_state_of_another_version_is_refused() -> None:
    # GIVEN a state in an unknown format THEN it is not read
    state = {**GapSessionizer().to_dict(), "version": 99}
    with pytest.raises(ValueError, match="version"):
        GapSessionizer.from_dict(state)


def _random_events(rng: random.Random, count: int) -> list[Event]:
    """Events of a few keys whose gaps hit the 30 s timeout exactly, ±1 µs, and a 3 min cap."""
    gaps = [
        timedelta(0),
        MICROSECOND,
        timedelta(seconds=4),
        timedelta(seconds=17),
        timedelta(seconds=30) - MICROSECOND,
        timedelta(seconds=30),
        timedelta(seconds=30) + MICROSECOND,
        timedelta(seconds=95),
    ]
    clocks = {(custid, device): T0 for custid in (1, 2, 3) for device in DEVICES}
    urls = ["beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout"]
    events: list[Event] = []
    for _ in range(count):
        custid, device = rng.choice(sorted(clocks))
        clocks[(custid, device)] += rng.choice(gaps)
        events.append(
            make_event(
                clocks[(custid, device)],
                custid=custid,
                device=device,
                url=rng.choice(urls),
                trafficfrom=rng.choice(["google", "Alexa", "twitter.com"]),
            )
        )
    return events


@pytest.mark.parametrize("seed", range(8))
def test_incremental_sessions_equal_the_batch_reference(seed: int) -> None:
    # GIVEN random events arriving shuffled within the allowed lateness, in random batches,
    # with some redelivered, and the state persisted through JSON between some batches
    rng = random.Random(seed)
    timeout, cap, lateness = timedelta(seconds=30), timedelta(minutes=3), timedelta(seconds=45)
    events = _random_events(rng, 400)
    lateness_us = lateness // MICROSECOND
    jitter = [timedelta(microseconds=rng.randrange(lateness_us + 1)) for _ in events]
    arrival = [
        event
        for _, _, event in sorted(
            (event.trans_timestamp + delay, index, event)
            for index, (event, delay) in enumerate(zip(events, jitter, strict=True))
        )
    ]
    sessionizer = GapSessionizer(timeout, cap)
    closed: list[GapSession] = []
    max_seen: datetime | None = None
    position = 0
    # WHEN they are added batch by batch, closing what each batch's watermark allows
    while position < len(arrival):
        batch = arrival[position : position + rng.randint(1, 25)]
        position += len(batch)
        redelivered = rng.sample(arrival[:position], k=min(3, position))
        for event in batch:
            assert sessionizer.add(event) is AddOutcome.ADDED
            max_seen = (
                event.trans_timestamp if max_seen is None else max(max_seen, event.trans_timestamp)
            )
        for event in redelivered:
            assert sessionizer.add(event) is not AddOutcome.ADDED
        assert max_seen is not None
        closed.extend(sessionizer.close_expired(max_seen - lateness))
        if rng.random() < 0.3:
            sessionizer = GapSessionizer.from_dict(json.loads(json.dumps(sessionizer.to_dict())))
    closed.extend(sessionizer.close_all())
    # THEN the sessions are exactly those of the sorted, complete input
    reference = gap_sessions(events, timeout, cap)
    assert sorted(closed, key=lambda s: (s.start, s.custid, s.device)) == reference
    assert sum(s.page_count for s in closed) == len(events)
    assert any(s.duration_seconds >= 150 for s in reference)
