"""The sessionizer: per-minute and gap sessions, one shard at a time, exactly once in effect.

The rules are :mod:`clickstream.core.session_rules`; this driver applies them to a shard's
records through one :class:`~clickstream.ports.SessionizerPorts` object. Closed per-minute
sessions go to the minute sink (Firehose to ``aggregated/``, the old table's CSV), closed gap
sessions to the gap sink (S3 ``sessions/``, JSON lines), and invalid records to the quarantine
with their reasons. :func:`finalize_sessions` closes idle keys on processing time, or everything
at the end of the stream.

**Exactly-once in effect** (docs/architecture.md, Stream semantics: Exactly once): invalid
records are quarantined and closed sessions emitted through the sinks *before* the state and the
checkpoint are committed (one DynamoDB transaction). A crash in between re-emits the same rows on
retry, with the same ids (per-minute ``sessionid``, gap ``session_id``): emission is
at-least-once, the ids are deterministic, and readers drop repeats by id. If the commit loses to
a concurrent writer (:class:`~clickstream.core.checkpoints.CheckpointConflict`), the batch is
recomputed from the fresh checkpoint (:class:`~clickstream.core.retry.ConflictRetry`); a row
emitted by the losing attempt may then be superseded by one with the same id and more events,
and readers keep, per id, the one with the most events.

**Partial batch failures** (docs/architecture.md, Stream semantics: Partial batch failures): a
record that makes the rules raise is located without I/O, within the chunk being committed
(:func:`~clickstream.core.batch_failures.processable_prefix`); the records before it commit and
the outcome names it, so Lambda retries from it. A failed read, emission or commit names the
first record not committed.

**Redrive** (docs/architecture.md, Stream semantics: Redrive): :func:`redrive_batch` applies a
batch Lambda kept in the on-failure bucket, whose records the shard checkpoint already covers.
Its events are judged against the shard's current watermark by the same rules: an event still
kept in full in its key's state is a duplicate, one whose minute is final is late, so a record
applied before changes nothing. The checkpoint keeps its sequence number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from clickstream.core.batch_failures import (
    RecordFailure,
    describe,
    partial_batch_response,
    processable_prefix,
)
from clickstream.core.checkpoints import ShardCheckpoint, sequence_key
from clickstream.core.first_occurrences import Registry, buckets_of
from clickstream.core.records import ParsedRecord, RejectedRecord
from clickstream.core.retry import ConflictRetry
from clickstream.core.session_rules import (
    LateEvent,
    SessionRules,
    accept_events,
    next_chunk,
    settle_keys,
)
from clickstream.core.session_state import KeyState
from clickstream.core.sessions import GapSession, MinuteSession, SessionKey
from clickstream.core.windows import END_OF_STREAM, later_watermark
from clickstream.ports import SessionizerPorts
from clickstream.settings import SessionizerSettings

CONSUMER = "sessionizer"
MAX_KEYS_PER_COMMIT = 1000
"""Keys and registry buckets a commit may touch. The changed keys' states are one log entry of a
few compressed items (:mod:`clickstream.adapters.aws.session_state`), so this bounds the entry's
size and the work of one commit, not its item count."""
MAX_BUCKETS_PER_COMMIT = 64
"""Registry buckets a commit may touch: one item each in the checkpoint's 100-action transaction,
leaving room for the log entry's parts."""
DEFAULT_MAX_ATTEMPTS = 3
_T = TypeVar("_T")


@dataclass(frozen=True)
class SessionizerConfig:
    """What the driver needs besides its ports: the session rules and its commit limits."""

    rules: SessionRules
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Conflicts a batch (or a close) may meet before it fails."""
    max_keys_per_commit: int = MAX_KEYS_PER_COMMIT
    max_buckets_per_commit: int = MAX_BUCKETS_PER_COMMIT


@dataclass(frozen=True)
class SessionizerOutcome:
    """What a batch (or a close) did, summed over its commits."""

    processed: int = 0
    """Records applied (valid or not); already applied records are not counted."""
    skipped: int = 0
    """Records found already applied."""
    failed: int = 0
    """Records not committed, left for the retry: each failure's record and those after it."""
    failures: tuple[RecordFailure, ...] = ()
    """Where each unfinished shard resumes, and why."""
    rejected: tuple[RejectedRecord, ...] = ()
    late: tuple[LateEvent, ...] = ()
    duplicates: int = 0
    minute_rows: tuple[MinuteSession, ...] = ()
    gap_sessions: tuple[GapSession, ...] = ()
    commits: int = 0
    conflicts: int = 0
    watermark: datetime | None = None

    def plus(self, other: SessionizerOutcome) -> SessionizerOutcome:
        """Both outcomes together; the watermark is the later one."""
        return SessionizerOutcome(
            processed=self.processed + other.processed,
            skipped=self.skipped + other.skipped,
            failed=self.failed + other.failed,
            failures=self.failures + other.failures,
            rejected=self.rejected + other.rejected,
            late=self.late + other.late,
            duplicates=self.duplicates + other.duplicates,
            minute_rows=self.minute_rows + other.minute_rows,
            gap_sessions=self.gap_sessions + other.gap_sessions,
            commits=self.commits + other.commits,
            conflicts=self.conflicts + other.conflicts,
            watermark=later_watermark(self.watermark, other.watermark),
        )

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response: the record each unfinished shard resumes at."""
        return partial_batch_response(failure.sequence_number for failure in self.failures)


@dataclass(frozen=True)
class _Step:
    """One attempt's result: a commit's outcome, or None when there was nothing to commit."""

    outcome: SessionizerOutcome | None
    watermark: datetime | None
    skipped: int = 0
    """Records from the start found already applied."""
    next_start: int = 0
    """Position of the first record of the batch not committed after this step."""
    poison: RecordFailure | None = None
    caught_up: bool = False


# --- Lambda batches and the finalizer ---------------------------------------------------------


def handle_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: SessionizerSettings,
    ports: SessionizerPorts,
    now: datetime,
) -> SessionizerOutcome:
    """Sessionise one Lambda batch (its parsed records by shard, in order), shard by shard.

    Never raises for a shard: what stops one is reported (:attr:`SessionizerOutcome.failures`),
    and the other shards go on.
    """
    config = SessionizerConfig(settings.rules)
    total = SessionizerOutcome()
    for shard_id, records in batch.items():
        total = total.plus(run_batch(records, shard_id, CONSUMER, ports, config, now=now))
    return total


def redrive_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: SessionizerSettings,
    ports: SessionizerPorts,
    now: datetime,
) -> SessionizerOutcome:
    """Sessionise a batch the on-failure destination kept, exactly once in effect."""
    config = SessionizerConfig(settings.rules)
    total = SessionizerOutcome()
    for shard_id, records in batch.items():
        outcome = run_batch(records, shard_id, CONSUMER, ports, config, now=now, redrive=True)
        total = total.plus(outcome)
    return total


def finalize_sessions(
    *,
    settings: SessionizerSettings,
    ports: SessionizerPorts,
    shard_ids: list[str],
    now: datetime,
    close_everything: bool = False,
) -> SessionizerOutcome:
    """Close what idle shards' watermarks (or the end of the stream) make final."""
    config = SessionizerConfig(settings.rules)
    total = SessionizerOutcome()
    known = {c.shard_id: c for c in ports.checkpoints.all(CONSUMER)}
    for shard_id in shard_ids:
        if close_everything:
            total = total.plus(close_all(shard_id, CONSUMER, ports, config))
            continue
        checkpoint = known.get(shard_id, ShardCheckpoint(CONSUMER, shard_id))
        idle = checkpoint.idle_advanced(now, settings.idle_timeout, settings.allowed_lateness)
        if idle is not checkpoint and idle.watermark is not None:
            total = total.plus(close_idle(shard_id, CONSUMER, idle.watermark, ports, config))
    return total


# --- One shard --------------------------------------------------------------------------------


def run_batch(
    records: Sequence[ParsedRecord],
    shard_id: str,
    consumer: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    *,
    now: datetime,
    redrive: bool = False,
) -> SessionizerOutcome:
    """Sessionise one shard batch exactly once in effect (see the module docstring).

    Records already applied are skipped (with ``redrive``, none is). The rest are committed in
    chunks touching at most ``config.max_keys_per_commit`` keys, each chunk quarantining its
    invalid records and emitting its closed sessions first. A CheckpointConflict reloads the
    checkpoint and recomputes, at most ``config.max_attempts`` times for the whole batch.

    Never raises: a record that makes the rules raise ends the batch after the records before
    it are committed, and a failed read, emission or commit ends it at the first record not
    committed; either is in ``failures``, and ``records = processed + skipped + failed``.
    """
    retry = ConflictRetry(config.max_attempts)
    total = SessionizerOutcome()
    start = 0
    while True:
        try:
            step = retry.run(
                partial(
                    _next_chunk, records, start, shard_id, consumer, ports, config, now, redrive
                )
            )
        except Exception as error:  # a read, an emission or the commit failed
            applied = 0 if redrive else _applied_from(records, start, shard_id, consumer, ports)
            start += applied
            total = replace(total, conflicts=retry.conflicts, skipped=total.skipped + applied)
            if start == len(records):
                return total
            failure = RecordFailure(
                shard_id, records[start].sequence_number, describe(error), poison=False
            )
            return replace(total, failed=len(records) - start, failures=(failure,))
        total = replace(total, conflicts=retry.conflicts, skipped=total.skipped + step.skipped)
        if step.outcome is not None:
            total = total.plus(step.outcome)
        start = step.next_start
        if step.poison is not None:
            return replace(total, failed=len(records) - start, failures=(step.poison,))
        if step.outcome is None:
            return replace(total, watermark=later_watermark(total.watermark, step.watermark))


def close_idle(
    shard_id: str,
    consumer: str,
    watermark: datetime,
    ports: SessionizerPorts,
    config: SessionizerConfig,
) -> SessionizerOutcome:
    """Raise the shard's watermark to ``watermark`` (never lower it) and close what is due.

    For a finalizer: pass the idle watermark (``ShardCheckpoint.idle_advanced``), or
    :data:`~clickstream.core.windows.END_OF_STREAM` through :func:`close_all`.
    """
    retry = ConflictRetry(config.max_attempts)
    total = SessionizerOutcome()
    while True:
        step = retry.run(lambda: _close_due(shard_id, consumer, watermark, ports, config))
        total = replace(total, conflicts=retry.conflicts)
        if step.outcome is None:
            return replace(total, watermark=step.watermark)
        total = total.plus(step.outcome)
        if not step.outcome.minute_rows and not step.outcome.gap_sessions and step.caught_up:
            return total


def close_all(
    shard_id: str, consumer: str, ports: SessionizerPorts, config: SessionizerConfig
) -> SessionizerOutcome:
    """End of stream: close every open session of the shard; later events are all late."""
    return close_idle(shard_id, consumer, END_OF_STREAM, ports, config)


# --- Attempts ---------------------------------------------------------------------------------


def _next_chunk(
    records: Sequence[ParsedRecord],
    start: int,
    shard_id: str,
    consumer: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    now: datetime,
    redrive: bool,
) -> _Step:
    """Load the checkpoint and commit the next chunk of the records from ``start`` on.

    Records the checkpoint covers are skipped, but for a redrive.
    """
    checkpoint = ports.checkpoints.load(consumer, shard_id)
    first = start
    while (
        not redrive and first < len(records) and checkpoint.applied(records[first].sequence_number)
    ):
        first += 1
    if first == len(records):
        return _Step(None, checkpoint.watermark, skipped=first - start, next_start=first)
    pending = records[first:]
    size = next_chunk(pending, config.max_keys_per_commit, config.max_buckets_per_commit)
    chunk = pending[:size]
    outcome, poison = _apply_chunk(chunk, checkpoint, shard_id, ports, config, now, redrive)
    committed = 0 if outcome is None else outcome.processed
    return _Step(
        outcome,
        checkpoint.watermark if outcome is None else outcome.watermark,
        skipped=first - start,
        next_start=first + committed,
        poison=poison,
    )


def _applied_from(
    records: Sequence[ParsedRecord],
    start: int,
    shard_id: str,
    consumer: str,
    ports: SessionizerPorts,
) -> int:
    """How many records from ``start`` on the checkpoint covers (0 if it cannot be read)."""
    try:
        checkpoint = ports.checkpoints.load(consumer, shard_id)
    except Exception:  # the record at ``start`` is then reported; the retry skips what is applied
        return 0
    count = 0
    while start + count < len(records) and checkpoint.applied(
        records[start + count].sequence_number
    ):
        count += 1
    return count


def _apply_chunk(
    chunk: Sequence[ParsedRecord],
    checkpoint: ShardCheckpoint,
    shard_id: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    now: datetime,
    redrive: bool,
) -> tuple[SessionizerOutcome | None, RecordFailure | None]:
    """Commit the chunk, or its records before the first one that makes the rules raise.

    Returns the commit's outcome (None when the first record is that one) and that record. The
    records are searched for it only once the rules raised on the chunk, so a healthy chunk
    costs the rules once. An error the rules raise on no record of the chunk (a stored state
    they cannot settle) is not a record's fault: it propagates.
    """
    loaded = ports.state.load(checkpoint.consumer, shard_id, _keys_of(chunk))
    events = [record.event for record in chunk if record.event is not None]
    registered = ports.state.registered(checkpoint.consumer, shard_id, buckets_of(events))
    try:
        outcome = _commit_chunk(
            chunk, loaded, registered, checkpoint, shard_id, ports, config, now, redrive
        )
        return outcome, None
    except _RulesRaised as raised:
        error = raised.__cause__

    def rules_on(count: int) -> None:
        prefix = [record.event for record in chunk[:count] if record.event is not None]
        accepted = accept_events(prefix, loaded, checkpoint.watermark, config.rules, registered)
        settle_keys(accepted.states, loaded, accepted.watermark, config.rules)

    prefix = processable_prefix(len(chunk), rules_on)
    if prefix.error is None:
        assert error is not None
        raise error
    record = chunk[prefix.length]
    poison = RecordFailure(shard_id, record.sequence_number, prefix.error, poison=True)
    if prefix.length == 0:
        return None, poison
    try:
        outcome = _commit_chunk(
            chunk[: prefix.length],
            loaded,
            registered,
            checkpoint,
            shard_id,
            ports,
            config,
            now,
            redrive,
        )
    except _RulesRaised as raised:
        assert raised.__cause__ is not None
        raise raised.__cause__ from None
    return outcome, poison


class _RulesRaised(Exception):
    """The rules raised while a chunk was committed; the rules' error is the cause."""


def _rules(function: Callable[..., _T], *arguments: Any) -> _T:
    """``function(*arguments)``, a pure rule: what it raises is wrapped in :class:`_RulesRaised`."""
    try:
        return function(*arguments)
    except Exception as error:
        raise _RulesRaised() from error


def _commit_chunk(
    chunk: Sequence[ParsedRecord],
    loaded: Mapping[SessionKey, KeyState],
    registered: Registry,
    checkpoint: ShardCheckpoint,
    shard_id: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    now: datetime,
    redrive: bool,
) -> SessionizerOutcome:
    """Quarantine, emit and commit one chunk, given the stored states of (at least) its keys
    and the shard's registry of first occurrences for its events' buckets."""
    consumer = checkpoint.consumer
    rules, max_items = config.rules, config.max_keys_per_commit
    events = [record.event for record in chunk if record.event is not None]
    rejected = tuple(record.rejection for record in chunk if record.rejection is not None)
    touched = _keys_of(chunk)
    before = {key: loaded[key] for key in touched if key in loaded}
    accepted = _rules(accept_events, events, before, checkpoint.watermark, rules, registered)
    watermark = accepted.watermark
    states = dict(accepted.states)
    if watermark is not None:
        budget = max(0, max_items - len(touched) - len(accepted.registrations))
        candidates = ports.state.due(consumer, shard_id, watermark, budget + len(touched))
        idle = [key for key in candidates if key not in states][:budget]
        idle_states = ports.state.load(consumer, shard_id, idle)
        before = {**before, **idle_states}
        states.update(idle_states)
    rows, sessions, changes = _rules(settle_keys, states, before, watermark, rules)
    first_seq, last_seq = chunk[0].sequence_number, chunk[-1].sequence_number
    max_event_time = later_watermark(checkpoint.max_event_time, accepted.max_event_time)
    last_event_at = now if events else checkpoint.last_event_at
    sessions_key = last_seq
    if redrive:  # the checkpoint's sequence number stays; the idle clock moves with event time
        last_seq = max(last_seq, checkpoint.sequence_number or last_seq, key=sequence_key)
        if max_event_time == checkpoint.max_event_time and checkpoint.last_event_at is not None:
            last_event_at = checkpoint.last_event_at
        sessions_key = f"redrive{checkpoint.version + 1}"
    if rejected and ports.quarantine is not None:
        ports.quarantine.put(list(rejected))
    _emit(ports, rows, sessions, shard_id, first_seq, sessions_key)
    advanced = checkpoint.advanced(
        sequence_number=last_seq,
        max_event_time=max_event_time,
        last_event_at=last_event_at,
        watermark=watermark,
    )
    ports.state.commit(
        consumer, shard_id, changes, advanced, checkpoint.version, accepted.registrations
    )
    return SessionizerOutcome(
        processed=len(chunk),
        rejected=rejected,
        late=accepted.late,
        duplicates=accepted.duplicates,
        minute_rows=rows,
        gap_sessions=sessions,
        commits=1,
        watermark=watermark,
    )


def _keys_of(records: Sequence[ParsedRecord]) -> list[SessionKey]:
    """The (custid, device) keys of the records' events, in first-seen order."""
    return list(
        dict.fromkeys(
            (record.event.custid, record.event.device)
            for record in records
            if record.event is not None
        )
    )


def _close_due(
    shard_id: str,
    consumer: str,
    watermark: datetime,
    ports: SessionizerPorts,
    config: SessionizerConfig,
) -> _Step:
    """Load the checkpoint and close the keys due at ``watermark`` (or at the stored one)."""
    checkpoint = ports.checkpoints.load(consumer, shard_id)
    target = later_watermark(checkpoint.watermark, watermark)
    assert target is not None
    due = ports.state.due(consumer, shard_id, target, config.max_keys_per_commit)
    caught_up = target == checkpoint.watermark
    if not due and caught_up:
        return _Step(None, target)
    outcome = _close_keys(due, checkpoint, target, shard_id, ports, config.rules)
    return _Step(outcome, target, caught_up=caught_up)


def _close_keys(
    keys: Sequence[SessionKey],
    checkpoint: ShardCheckpoint,
    watermark: datetime,
    shard_id: str,
    ports: SessionizerPorts,
    rules: SessionRules,
) -> SessionizerOutcome:
    consumer = checkpoint.consumer
    before = ports.state.load(consumer, shard_id, keys)
    rows, sessions, changes = settle_keys(before, before, watermark, rules)
    advanced = replace(checkpoint, watermark=watermark, version=checkpoint.version + 1)
    last_applied = checkpoint.sequence_number or "0"
    _emit(ports, rows, sessions, shard_id, last_applied, f"idle{advanced.version}")
    ports.state.commit(consumer, shard_id, changes, advanced, checkpoint.version)
    return SessionizerOutcome(
        minute_rows=rows, gap_sessions=sessions, commits=1, watermark=watermark
    )


def _emit(
    ports: SessionizerPorts,
    rows: Sequence[MinuteSession],
    sessions: Sequence[GapSession],
    shard_id: str,
    first_seq: str,
    last_seq: str,
) -> None:
    if rows:
        ports.minute_sink.put(rows)
    if sessions:
        ports.gap_sink.put(sessions, shard_id, first_seq, last_seq)
