"""The shard sessionizer on in-memory ports: batches, lateness, duplicates, retries, the end."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.firehose import (
    DeliveryFailed,
    FirehoseMinuteSessionSink,
    record_batches,
)
from clickstream.adapters.aws.s3 import gap_sessions_key
from clickstream.consumers.sessionizer import (
    SessionizerConfig,
    SessionizerOutcome,
    close_all,
    close_idle,
    run_batch,
)
from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint
from clickstream.core.events import DEVICES, Event
from clickstream.core.records import ParsedRecord, ShardRecord, parse_record
from clickstream.core.session_rules import SessionRules, next_close_micros, settle
from clickstream.core.session_state import KeyChange, KeyState
from clickstream.core.sessions import GapSession, MinuteSession, gap_sessions, minute_sessions
from clickstream.core.windows import to_micros
from clickstream.ports import SessionizerPorts
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
)

SHARD = "shardId-000000000000"
CONSUMER = "sessionizer"
T0 = datetime(2026, 3, 7, 14, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 7, 15, 0, 0, tzinfo=UTC)
LATENESS = timedelta(seconds=30)
TIMEOUT = timedelta(minutes=2)
CAP = timedelta(minutes=10)


# --- In-memory ports --------------------------------------------------------------------------


class MemoryState(MemorySessionState):
    """The in-memory store, able to lose the connection before its next commit."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_commit = False
        self.largest_state = 0

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
    ) -> None:
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise ConnectionError("lost the connection before the commit")
        super().commit(consumer, shard_id, changes, checkpoint, expected_version)
        for change in changes:
            if change.after is not None:
                self.largest_state = max(self.largest_state, len(change.after.to_json()))

    def open_keys(self) -> int:
        return len(self.states)


@dataclass
class Pipeline:
    """One shard's sessionizer with its fakes."""

    store: MemoryState = field(default_factory=MemoryState)
    minute_sink: MemoryMinuteSink = field(default_factory=MemoryMinuteSink)
    gap_sink: MemoryGapSink = field(default_factory=MemoryGapSink)
    quarantine: MemoryQuarantine = field(default_factory=MemoryQuarantine)
    rules: SessionRules = field(default_factory=lambda: SessionRules(LATENESS, TIMEOUT, CAP))
    max_keys: int = 32

    def ports(self) -> SessionizerPorts:
        return SessionizerPorts(
            checkpoints=self.store.checkpoints,
            state=self.store,
            minute_sink=self.minute_sink,
            gap_sink=self.gap_sink,
            quarantine=self.quarantine,
        )

    def config(self) -> SessionizerConfig:
        return SessionizerConfig(self.rules, max_keys_per_commit=self.max_keys)

    def batch(self, records: Sequence[ParsedRecord]) -> SessionizerOutcome:
        return run_batch(records, SHARD, CONSUMER, self.ports(), self.config(), now=NOW)

    def close_all(self) -> SessionizerOutcome:
        return close_all(SHARD, CONSUMER, self.ports(), self.config())

    def replay(self, records: Sequence[ParsedRecord], batch_size: int) -> SessionizerOutcome:
        total = SessionizerOutcome()
        for start in range(0, len(records), batch_size):
            total = total.plus(self.batch(records[start : start + batch_size]))
        return total


# --- Builders ---------------------------------------------------------------------------------


def record(sequence_number: str, data: bytes) -> ParsedRecord:
    """One record of the shard, parsed as the inbound adapter does."""
    return parse_record(ShardRecord(SHARD, sequence_number, data))


def records_of(events: Sequence[Event], first_seq: int = 1) -> list[ParsedRecord]:
    """Parsed records of the events, sequence numbers counting up from ``first_seq``."""
    return [record(str(first_seq + n), event.to_json_line()) for n, event in enumerate(events)]


def clickstream(seed: int, count: int, jitter: timedelta = timedelta(seconds=25)) -> list[Event]:
    """Events of a few keys in arrival order: time moves on with pauses, and arrivals are out of
    order by less than ``jitter`` (under the allowed lateness, so none is late)."""
    rng = random.Random(seed)
    urls = ["beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout"]
    sources = ["google", "facebook.com", "Alexa"]
    clock = T0
    events: list[Event] = []
    for _ in range(count):
        clock += timedelta(seconds=rng.choice([0, 1, 5, 20, 45]), microseconds=rng.randrange(10**6))
        if rng.random() < 0.03:
            clock += timedelta(minutes=rng.choice([1, 3, 7]))
        moment = clock - timedelta(microseconds=rng.randrange(int(jitter / timedelta(0, 0, 1))))
        events.append(
            make_event(
                moment,
                custid=rng.randint(1, 4),
                device=rng.choice(DEVICES),
                url=rng.choice(urls),
                trafficfrom=rng.choice(sources),
            )
        )
    return events


def by_id(rows: Iterable[MinuteSession]) -> list[MinuteSession]:
    """Rows deduplicated by sessionid (they must be identical), in reference order."""
    kept: dict[str, MinuteSession] = {}
    for row in rows:
        assert kept.setdefault(row.sessionid, row) == row
    return sorted(kept.values(), key=lambda row: (row.minute, row.userid, row.device))


def sessions_by_id(sessions: Iterable[GapSession]) -> list[GapSession]:
    """Gap sessions deduplicated by session_id (they must be identical), in reference order."""
    kept: dict[str, GapSession] = {}
    for session in sessions:
        assert kept.setdefault(session.session_id, session) == session
    return sorted(kept.values(), key=lambda s: (s.start, s.custid, s.device))


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
    with pytest.raises(ConnectionError):
        pipeline.batch(records[100:])
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
    # WHEN a batch runs THEN it gives up after three attempts
    with pytest.raises(CheckpointConflict):
        pipeline.batch(records_of([make_event(T0)]))


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
