"""The shard sessionizer closing sessions: idle keys, the end of the stream, state size, rules."""

from __future__ import annotations

from datetime import timedelta

from clickstream.consumers.sessionizer import close_idle
from clickstream.core.session_rules import SessionRules, next_close_micros, settle
from clickstream.core.session_state import KeyState
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream.core.windows import to_micros
from tests.factories import make_event
from tests.support.sessionizer import (
    CONSUMER,
    LATENESS,
    SHARD,
    T0,
    Pipeline,
    by_id,
    clickstream,
    records_of,
    sessions_by_id,
)

# --- Idle keys, end of stream, state size -----------------------------------------------------


def test_keys_left_idle_close_when_the_watermark_passes() -> None:
    # GIVEN one user's event, then only another user's events for ten minutes
    quiet = make_event(T0, custid=1)
    busy = [make_event(T0 + timedelta(minutes=m), custid=2) for m in range(1, 11)]
    pipeline = Pipeline()
    pipeline.batch(records_of([quiet]))
    # WHEN the other user's events arrive
    outcome = pipeline.batch(records_of(busy, first_seq=2))
    # THEN the quiet user's minute and gap session were closed without any new event of theirs
    assert [row.userid for row in outcome.minute_rows if row.userid == 1] == [1]
    assert [s.custid for s in outcome.gap_sessions] == [1]


def test_close_idle_advances_the_watermark_and_close_all_empties_the_shard() -> None:
    # GIVEN open sessions
    events = [make_event(T0 + timedelta(seconds=s), custid=s % 3 + 1) for s in range(0, 90, 10)]
    pipeline = Pipeline()
    pipeline.batch(records_of(events))
    # WHEN an idle watermark of 14:01:00 is applied
    idle = close_idle(
        SHARD, CONSUMER, T0 + timedelta(minutes=1), pipeline.ports(), pipeline.config()
    )
    # THEN the first minute is closed, but not the gap sessions (2-minute timeout)
    assert {row.aggreg_time for row in idle.minute_rows} == {"2026-03-07 14:00:00"}
    assert idle.gap_sessions == ()
    # WHEN the stream ends THEN every session is emitted and no state is left
    final = pipeline.close_all()
    assert len(final.gap_sessions) == 3
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(events)
    assert pipeline.store.open_keys() == 0
    # AND a second close_all emits nothing
    assert pipeline.close_all().minute_rows == ()


def test_a_long_session_keeps_a_small_state() -> None:
    # GIVEN one user clicking every 2 seconds for 4 hours (7200 events, one gap session)
    events = [
        make_event(T0 + timedelta(seconds=2 * n), custid=1, url="beer_product_detail")
        for n in range(7200)
    ]
    pipeline = Pipeline(rules=SessionRules(LATENESS))
    # WHEN processed in batches of 100
    pipeline.replay(records_of(events), 100)
    # THEN the stored state stays small: a summary plus the events of the last minute or so
    assert pipeline.store.largest_state < 10_000
    pipeline.close_all()
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(events)


# --- Pure rules -------------------------------------------------------------------------------


def test_settle_closes_exactly_at_the_announced_close_time() -> None:
    # GIVEN a key's state with events in two minutes
    events = [make_event(T0 + timedelta(seconds=s), custid=1) for s in (5, 50, 70)]
    pipeline = Pipeline()
    pipeline.batch(records_of(events))
    state = pipeline.store.load(CONSUMER, SHARD, [(1, "browser")])[(1, "browser")]
    rules = pipeline.rules
    close_at = next_close_micros(state, rules)
    just_before = T0 + timedelta(microseconds=close_at - to_micros(T0) - 1)
    # WHEN settled just before and at that time THEN only the latter closes something
    assert settle(state, just_before, rules).state == state
    assert settle(state, just_before + timedelta(microseconds=1), rules).minute_rows


def test_key_state_round_trips_through_json() -> None:
    # GIVEN a stored state
    pipeline = Pipeline()
    pipeline.batch(records_of(clickstream(seed=2, count=50)))
    for state in pipeline.store.states.values():
        # WHEN serialised and read back THEN it is the same
        assert KeyState.from_json(state.custid, state.device, state.to_json()) == state
