"""The shard sessionizer over batches: the reference, lateness, duplicates, retries, bad records."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from clickstream.core.batch_failures import RecordFailure
from clickstream.core.checkpoints import CheckpointConflict
from clickstream.core.events import Event
from clickstream.core.session_rules import SessionRules
from clickstream.core.sessions import gap_sessions, minute_sessions
from tests.factories import at, make_event
from tests.support.sessionizer import (
    CAP,
    CONSUMER,
    LATENESS,
    SHARD,
    T0,
    TIMEOUT,
    Pipeline,
    by_id,
    clickstream,
    record,
    records_of,
    sessions_by_id,
)

# --- Batches give the reference ---------------------------------------------------------------


@pytest.mark.parametrize(("batch_size", "max_keys"), [(1, 32), (7, 2), (50, 5), (400, 32)])
def test_sessions_over_many_batches_equal_the_reference(batch_size: int, max_keys: int) -> None:
    # GIVEN a shard's events, out of order within the allowed lateness
    events = clickstream(seed=batch_size, count=400)
    pipeline = Pipeline(max_keys=max_keys)
    # WHEN they arrive in batches, and the stream then ends
    during = pipeline.replay(records_of(events), batch_size)
    final = pipeline.close_all()
    # THEN nothing is late, each row is emitted once, and the rows are the reference's
    assert during.late == ()
    emitted_rows = pipeline.minute_sink.rows
    assert len({row.sessionid for row in emitted_rows}) == len(emitted_rows)
    assert by_id(emitted_rows) == minute_sessions(events)
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(events, TIMEOUT, CAP)
    assert len(pipeline.gap_sink.sessions) == len(gap_sessions(events, TIMEOUT, CAP))
    # AND sessions close while the stream runs, not only at its end
    assert len(during.minute_rows) > len(final.minute_rows)
    assert during.gap_sessions
    assert pipeline.store.open_keys() == 0
    assert pipeline.store.index == set()


def test_default_rules_give_the_reference_too() -> None:
    # GIVEN the standard 30-minute timeout and 24-hour cap
    events = clickstream(seed=3, count=300)
    pipeline = Pipeline(rules=SessionRules(LATENESS))
    # WHEN replayed in batches of 25
    pipeline.replay(records_of(events), 25)
    pipeline.close_all()
    # THEN both outputs equal the reference
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(events)
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(events)


def test_batch_boundaries_do_not_change_the_outcome() -> None:
    # GIVEN a stream with events older than the watermark
    events = clickstream(seed=9, count=200, jitter=timedelta(seconds=90))
    records = records_of(events)
    # WHEN it is processed record by record and all at once
    one_by_one, all_at_once = Pipeline(), Pipeline()
    late_single = one_by_one.replay(records, 1).late
    late_whole = all_at_once.replay(records, len(records)).late
    one_by_one.close_all()
    all_at_once.close_all()
    # THEN the same events are late and the same sessions come out
    assert late_single == late_whole
    assert late_single
    assert one_by_one.minute_sink.rows == all_at_once.minute_sink.rows
    assert sessions_by_id(one_by_one.gap_sink.sessions) == sessions_by_id(
        all_at_once.gap_sink.sessions
    )


def test_a_gap_session_closed_inside_an_open_minute_is_emitted_once() -> None:
    # GIVEN a 10-second inactivity timeout, no lateness, and three visits within one minute
    rules = SessionRules(timedelta(0), timedelta(seconds=10), CAP)
    events = [make_event(T0 + timedelta(seconds=s), custid=1) for s in (5, 8, 30, 50)]
    pipeline = Pipeline(rules=rules)
    # WHEN they arrive one by one and the stream ends
    during = pipeline.replay(records_of(events), 1)
    pipeline.close_all()
    # THEN the visits that ended close while their minute is open, each exactly once
    reference = gap_sessions(events, rules.inactivity_timeout, rules.max_duration)
    assert [s.start for s in during.gap_sessions] == [s.start for s in reference[:2]]
    assert sorted(pipeline.gap_sink.sessions, key=lambda s: s.start) == reference
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(events)


# --- Lateness ---------------------------------------------------------------------------------


def test_late_events_are_counted_and_never_emitted() -> None:
    # GIVEN events up to 14:05:00 with 30 s of allowed lateness (watermark 14:04:30)
    pipeline = Pipeline()
    on_time = [
        make_event(at("2026-03-07T14:00:10"), custid=7),
        make_event(at("2026-03-07T14:01:40"), custid=7),
        make_event(at("2026-03-07T14:04:20"), custid=7),
        make_event(at("2026-03-07T14:05:00"), custid=7),
    ]
    pipeline.batch(records_of(on_time))
    # WHEN an event of the final minute 14:01 and one of the open minute 14:04 before the
    # watermark arrive
    of_final_minute = make_event(at("2026-03-07T14:01:50"), custid=7)
    before_watermark = make_event(at("2026-03-07T14:04:10"), custid=7)
    outcome = pipeline.batch(records_of([of_final_minute, before_watermark], first_seq=5))
    pipeline.close_all()
    # THEN both are reported late: the first for everything, the second for gap sessions only
    assert [(late.event_id, late.minute_late) for late in outcome.late] == [
        (of_final_minute.event_id, True),
        (before_watermark.event_id, False),
    ]
    # AND the outputs are the reference without what was late for each of them
    assert by_id(pipeline.minute_sink.rows) == minute_sessions([*on_time, before_watermark])
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(on_time, TIMEOUT, CAP)


def test_after_close_all_every_event_is_late() -> None:
    # GIVEN a shard whose stream has ended
    pipeline = Pipeline()
    pipeline.batch(records_of([make_event(T0)]))
    pipeline.close_all()
    # WHEN another event arrives
    outcome = pipeline.batch(records_of([make_event(T0 + timedelta(hours=1))], first_seq=2))
    # THEN it is late and nothing is emitted or kept
    assert len(outcome.late) == 1
    assert outcome.minute_rows == () and outcome.gap_sessions == ()
    assert pipeline.store.open_keys() == 0


# --- Duplicates and redelivery ----------------------------------------------------------------


def test_a_repeated_event_id_counts_once() -> None:
    # GIVEN events each sent twice, once in the same batch and once in the next
    events = clickstream(seed=5, count=60)
    doubled: list[Event] = []
    for event in events:
        doubled += [event, event]
    pipeline = Pipeline()
    # WHEN they are processed in batches of 9
    outcome = pipeline.replay(records_of(doubled), 9)
    pipeline.close_all()
    # THEN every repeat is dropped and the sessions are those of the distinct events
    assert outcome.duplicates == len(events)
    assert outcome.late == ()
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(events)
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(events, TIMEOUT, CAP)


def test_a_redelivered_batch_is_skipped() -> None:
    # GIVEN a committed batch
    events = clickstream(seed=6, count=80)
    records = records_of(events)
    pipeline = Pipeline()
    first = pipeline.batch(records)
    state_before = dict(pipeline.store.states)
    rows_before = list(pipeline.minute_sink.rows)
    # WHEN it is delivered again
    again = pipeline.batch(records)
    # THEN every record is skipped and nothing is emitted or changed
    assert first.processed == 80
    assert (again.processed, again.skipped, again.commits) == (0, 80, 0)
    assert pipeline.minute_sink.rows == rows_before
    assert pipeline.store.states == state_before


def test_a_crash_between_emission_and_commit_re_emits_identical_rows() -> None:
    # GIVEN a batch whose commit is lost after its sessions were emitted
    events = clickstream(seed=8, count=200)
    records = records_of(events)
    pipeline = Pipeline()
    pipeline.batch(records[:100])
    pipeline.store.fail_next_commit = True
    failed = pipeline.batch(records[100:])
    assert [f.reason for f in failed.failures] == [
        "ConnectionError: lost the connection before the commit"
    ]
    # WHEN the batch is retried, and the stream ends
    pipeline.batch(records[100:])
    pipeline.close_all()
    # THEN some rows were emitted twice, identically, and dedup by id gives the reference
    rows = pipeline.minute_sink.rows
    assert len(rows) > len({row.sessionid for row in rows})
    assert by_id(rows) == minute_sessions(events)
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(events, TIMEOUT, CAP)


def test_a_concurrent_commit_makes_the_batch_recompute() -> None:
    # GIVEN a checkpoint that another writer moves while the batch is computed
    events = clickstream(seed=10, count=40)
    pipeline = Pipeline()
    store = pipeline.store
    original_commit = store.commit
    moved = {"done": False}

    def commit_after_a_rival(*arguments: Any) -> None:
        if not moved["done"]:
            moved["done"] = True
            rival = store.checkpoints.load(CONSUMER, SHARD)
            store.checkpoints.items[(CONSUMER, SHARD)] = replace(rival, version=rival.version + 1)
        original_commit(*arguments)

    store.commit = commit_after_a_rival  # type: ignore[method-assign]
    # WHEN the batch runs
    outcome = pipeline.batch(records_of(events))
    pipeline.close_all()
    # THEN it was recomputed once and the result is still the reference
    assert outcome.conflicts == 1
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(events)


def test_conflicts_are_retried_a_bounded_number_of_times() -> None:
    # GIVEN a checkpoint that always moves before the commit
    pipeline = Pipeline()
    store = pipeline.store

    def always_conflict(*_: Any) -> None:
        raise CheckpointConflict("moved")

    store.commit = always_conflict  # type: ignore[method-assign]
    # WHEN a batch runs THEN it gives up after three attempts, and reports its first record
    outcome = pipeline.batch(records_of([make_event(T0)]))
    assert (outcome.conflicts, outcome.processed, outcome.failed) == (3, 0, 1)
    assert outcome.failures == (
        RecordFailure(SHARD, "1", "CheckpointConflict: moved", poison=False),
    )


# --- Invalid records --------------------------------------------------------------------------


def test_invalid_records_are_quarantined_with_their_reasons() -> None:
    # GIVEN a batch with two bad records among good ones
    good = [make_event(T0), make_event(T0 + timedelta(seconds=1))]
    records = [
        record("1", good[0].to_json_line()),
        record("2", b"{not json"),
        record("3", b'{"event_id": "x"}'),
        record("4", good[1].to_json_line()),
    ]
    pipeline = Pipeline()
    # WHEN it is processed
    outcome = pipeline.batch(records)
    pipeline.close_all()
    # THEN the bad ones are quarantined with a reason, and the good ones are sessionised
    assert [(r.sequence_number, r.data) for r in pipeline.quarantine.records] == [
        ("2", b"{not json"),
        ("3", b'{"event_id": "x"}'),
    ]
    assert pipeline.quarantine.records[0].reason.startswith("malformed JSON")
    assert pipeline.quarantine.records[1].reason.startswith("missing required field(s)")
    assert outcome.processed == 4
    assert pipeline.store.checkpoints.load(CONSUMER, SHARD).sequence_number == "4"
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(good)
