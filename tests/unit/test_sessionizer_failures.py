"""The sessionizer's partial batch failures and redrives, on in-memory ports.

A poison event is made with the local stack's test-only fault (``clickstream_local.faults``):
the sessionizer's rules raise on it, as a bug in them would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from clickstream.consumers import sessionizer
from clickstream.consumers.sessionizer import SessionizerOutcome
from clickstream.core.batch_failures import RecordFailure
from clickstream.core.events import Event
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream_local.faults import poisoned_session_rules
from tests.factories import make_event
from tests.support.sessionizer import (
    CAP,
    CONSUMER,
    SHARD,
    T0,
    TIMEOUT,
    Pipeline,
    by_id,
    records_of,
    sessions_by_id,
)

FIRST = make_event(T0, custid=1, url="beer_vitrine_nav")
SECOND = make_event(T0 + timedelta(seconds=10), custid=2, url="beer_cart")
POISON = make_event(T0 + timedelta(seconds=20), custid=2, url="beer_checkout")
AFTER = make_event(T0 + timedelta(seconds=30), custid=1, url="beer_cart")
LATER = make_event(T0 + timedelta(seconds=40), custid=1, url="beer_checkout")
EVENTS = [FIRST, SECOND, POISON, AFTER, LATER]
POISON_REASON = f"InjectedPoison: event {POISON.event_id} is poison"


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The sessionizer's rules raise on POISON until ``monkeypatch.undo()`` (the fix)."""
    rules = sessionizer.accept_events
    monkeypatch.setattr(
        sessionizer, "accept_events", poisoned_session_rules(rules, {POISON.event_id})
    )
    yield monkeypatch


def accounted(outcome: SessionizerOutcome, records: int) -> bool:
    """Every record is in exactly one place."""
    return records == outcome.processed + outcome.skipped + outcome.failed


def kept(events: Sequence[Event], first_seq: int) -> list[Any]:
    return records_of(events, first_seq=first_seq)


def test_a_poison_record_commits_the_records_before_it_and_is_reported(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch with a poison record in the middle
    pipeline = Pipeline()
    # WHEN it is processed
    outcome = pipeline.batch(records_of(EVENTS[:4]))
    # THEN the response names the poison record: Lambda retries from it
    assert outcome.failures == (RecordFailure(SHARD, "3", POISON_REASON, poison=True),)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "3"}]}
    # AND the records before it are committed, the rest left for the retry
    assert (outcome.processed, outcome.failed, outcome.commits) == (2, 2, 1)
    assert accounted(outcome, 4)
    assert pipeline.store.checkpoints.load(CONSUMER, SHARD).sequence_number == "2"


def test_chunks_before_the_poison_record_commit(poisoned: pytest.MonkeyPatch) -> None:
    # GIVEN commits of one key each: FIRST, then SECOND and the poison record (same key)
    pipeline = Pipeline(max_keys=1)
    # WHEN the batch is processed
    outcome = pipeline.batch(records_of(EVENTS[:4]))
    # THEN the first chunk and the record before the poison one in the second chunk commit
    assert (outcome.processed, outcome.failed, outcome.commits) == (2, 2, 2)
    assert [failure.sequence_number for failure in outcome.failures] == ["3"]


def test_the_retry_from_a_poison_record_fails_alike_until_the_fix(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch processed up to its poison record
    pipeline = Pipeline()
    pipeline.batch(records_of(EVENTS[:4]))
    committed = pipeline.store.checkpoints.load(CONSUMER, SHARD)
    # WHEN Lambda retries from it
    retry = pipeline.batch(kept(EVENTS[2:4], first_seq=3))
    # THEN nothing is committed and the same record is reported
    assert retry.failures == (RecordFailure(SHARD, "3", POISON_REASON, poison=True),)
    assert (retry.processed, retry.failed, retry.commits) == (0, 2, 0)
    assert pipeline.store.checkpoints.load(CONSUMER, SHARD) == committed
    # WHEN the code is fixed and Lambda retries again
    poisoned.undo()
    fixed = pipeline.batch(kept(EVENTS[2:4], first_seq=3))
    # THEN both commit
    assert (fixed.processed, fixed.failed, fixed.failures) == (2, 0, ())


def test_a_kept_batch_is_skipped_by_a_plain_retry_but_sessionised_once_by_a_redrive(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a poison record whose batch Lambda gave up on (kept), and a later batch committed
    pipeline = Pipeline()
    pipeline.batch(records_of(EVENTS[:4]))
    pipeline.batch(kept([LATER], first_seq=5))
    checkpoint = pipeline.store.checkpoints.load(CONSUMER, SHARD)
    poisoned.undo()  # the fix
    # WHEN the kept records are delivered as a plain batch THEN they are skipped as applied
    plain = pipeline.batch(kept(EVENTS[2:4], first_seq=3))
    assert (plain.processed, plain.skipped) == (0, 2)
    # WHEN they are redriven
    redriven = pipeline.redrive(kept(EVENTS[2:4], first_seq=3))
    # THEN they are applied, once; the checkpoint keeps its sequence number and event time
    assert (redriven.processed, redriven.skipped, redriven.duplicates, redriven.late) == (
        2,
        0,
        0,
        (),
    )
    after = pipeline.store.checkpoints.load(CONSUMER, SHARD)
    assert (after.sequence_number, after.max_event_time, after.watermark) == (
        "5",
        checkpoint.max_event_time,
        checkpoint.watermark,
    )
    assert after.version == checkpoint.version + 1
    # WHEN they are redriven again THEN both are duplicates of events kept in full
    again = pipeline.redrive(kept(EVENTS[2:4], first_seq=3))
    assert (again.processed, again.duplicates, again.minute_rows, again.gap_sessions) == (
        2,
        2,
        (),
        (),
    )
    # AND at the end of the stream the sessions hold every event once
    pipeline.close_all()
    assert by_id(pipeline.minute_sink.rows) == minute_sessions(EVENTS)
    assert sessions_by_id(pipeline.gap_sink.sessions) == gap_sessions(EVENTS, TIMEOUT, CAP)


def test_a_redrive_judges_lateness_against_the_current_watermark(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a kept poison record, and the shard's event time then moved two minutes on
    pipeline = Pipeline()
    pipeline.batch(records_of(EVENTS[:3]))
    pipeline.batch(kept([make_event(T0 + timedelta(minutes=2), custid=9)], first_seq=4))
    poisoned.undo()
    # WHEN the kept record is redriven
    outcome = pipeline.redrive(kept([POISON], first_seq=3))
    # THEN its minute is final under the watermark (T0 + 1:30): it is late for both outputs
    assert [(late.event_id, late.minute_late) for late in outcome.late] == [(POISON.event_id, True)]
    assert outcome.processed == 1


def test_a_failed_commit_reports_the_first_record_not_committed() -> None:
    # GIVEN commits of one key each, and a store that loses its second commit
    pipeline = Pipeline(max_keys=1)
    store = pipeline.store
    commit = store.commit
    calls = {"count": 0}

    def second_fails(*arguments: Any) -> None:
        calls["count"] += 1
        if calls["count"] == 2:
            raise ConnectionError("lost the connection")
        commit(*arguments)

    store.commit = second_fails  # type: ignore[method-assign]
    # WHEN a batch of FIRST (key 1) then SECOND and POISON (key 2) is processed
    outcome = pipeline.batch(records_of(EVENTS[:3]))
    # THEN the first chunk is committed and the second chunk's first record is reported
    assert outcome.failures == (
        RecordFailure(SHARD, "2", "ConnectionError: lost the connection", poison=False),
    )
    assert (outcome.processed, outcome.failed) == (1, 2)
    assert accounted(outcome, 3)
    assert store.checkpoints.load(CONSUMER, SHARD).sequence_number == "1"


def test_a_failed_read_of_a_redelivered_batch_reports_the_first_record_not_applied() -> None:
    # GIVEN a shard with two records applied, and a store whose reads fail once
    pipeline = Pipeline()
    pipeline.batch(records_of(EVENTS[:2]))
    store = pipeline.store
    load = store.load

    def fails_once(*arguments: Any) -> Any:
        store.load = load  # type: ignore[method-assign]
        raise TimeoutError("throttled")

    store.load = fails_once  # type: ignore[method-assign]
    # WHEN Lambda redelivers them with the next two records
    outcome = pipeline.batch(records_of(EVENTS[:4]))
    # THEN the applied records count as skipped, and the first new record is reported
    assert outcome.failures == (RecordFailure(SHARD, "3", "TimeoutError: throttled", poison=False),)
    assert (outcome.processed, outcome.skipped, outcome.failed) == (0, 2, 2)


def test_rules_that_raise_on_no_record_report_the_first_record_not_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN rules that cannot settle whatever they are given (a stored state they cannot read)
    def broken(*_: Any) -> Any:
        raise RuntimeError("unreadable state")

    monkeypatch.setattr(sessionizer, "settle_keys", broken)
    # WHEN a batch is processed
    outcome = Pipeline().batch(records_of(EVENTS[:2]))
    # THEN no record is blamed: the first one not committed is reported, not as poison
    assert outcome.failures == (
        RecordFailure(SHARD, "1", "RuntimeError: unreadable state", poison=False),
    )
    assert (outcome.processed, outcome.failed) == (0, 2)
