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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.records import ParsedRecord, RejectedRecord
from clickstream.core.retry import ConflictRetry
from clickstream.core.session_rules import (
    LateEvent,
    SessionRules,
    accept_events,
    next_chunk,
    settle_keys,
)
from clickstream.core.sessions import GapSession, MinuteSession, SessionKey
from clickstream.core.windows import END_OF_STREAM, later_watermark
from clickstream.ports import SessionizerPorts
from clickstream.settings import SessionizerSettings

CONSUMER = "sessionizer"
MAX_KEYS_PER_COMMIT = 99
"""Keys changed per commit: one action each + the checkpoint fit one 100-action transaction."""
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class SessionizerConfig:
    """What the driver needs besides its ports: the session rules and its commit limits."""

    rules: SessionRules
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Conflicts a batch (or a close) may meet before it fails."""
    max_keys_per_commit: int = MAX_KEYS_PER_COMMIT


@dataclass(frozen=True)
class SessionizerOutcome:
    """What a batch (or a close) did, summed over its commits."""

    processed: int = 0
    """Records applied (valid or not); already applied records are not counted."""
    skipped: int = 0
    """Records found already applied."""
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
            rejected=self.rejected + other.rejected,
            late=self.late + other.late,
            duplicates=self.duplicates + other.duplicates,
            minute_rows=self.minute_rows + other.minute_rows,
            gap_sessions=self.gap_sessions + other.gap_sessions,
            commits=self.commits + other.commits,
            conflicts=self.conflicts + other.conflicts,
            watermark=later_watermark(self.watermark, other.watermark),
        )


@dataclass(frozen=True)
class _Step:
    """One attempt's result: a commit's outcome, or None when there was nothing to commit."""

    outcome: SessionizerOutcome | None
    watermark: datetime | None
    pending: int = 0
    caught_up: bool = False


# --- Lambda batches and the finalizer ---------------------------------------------------------


def handle_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: SessionizerSettings,
    ports: SessionizerPorts,
    now: datetime,
) -> SessionizerOutcome:
    """Sessionise one Lambda batch (its parsed records by shard, in order), shard by shard."""
    config = SessionizerConfig(settings.rules)
    total = SessionizerOutcome()
    for shard_id, records in batch.items():
        total = total.plus(run_batch(records, shard_id, CONSUMER, ports, config, now=now))
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
) -> SessionizerOutcome:
    """Sessionise one shard batch exactly once in effect (see the module docstring).

    Records already applied are skipped. The rest are committed in chunks touching at most
    ``config.max_keys_per_commit`` keys, each chunk quarantining its invalid records and
    emitting its closed sessions first. A CheckpointConflict reloads the checkpoint and
    recomputes, at most ``config.max_attempts`` times for the whole batch.
    """
    retry = ConflictRetry(config.max_attempts)
    total = SessionizerOutcome()
    while True:
        step = retry.run(lambda: _next_chunk(records, shard_id, consumer, ports, config, now))
        total = replace(total, conflicts=retry.conflicts)
        if total.commits == 0:
            total = replace(total, skipped=len(records) - step.pending)
        if step.outcome is None:
            return replace(total, watermark=later_watermark(total.watermark, step.watermark))
        total = total.plus(step.outcome)


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
    shard_id: str,
    consumer: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    now: datetime,
) -> _Step:
    """Load the checkpoint and commit the next chunk of the records it does not cover."""
    checkpoint = ports.checkpoints.load(consumer, shard_id)
    pending = [record for record in records if not checkpoint.applied(record.sequence_number)]
    if not pending:
        return _Step(None, checkpoint.watermark)
    chunk = pending[: next_chunk(pending, config.max_keys_per_commit)]
    outcome = _apply_chunk(chunk, checkpoint, shard_id, ports, config, now)
    return _Step(outcome, outcome.watermark, pending=len(pending))


def _apply_chunk(
    chunk: Sequence[ParsedRecord],
    checkpoint: ShardCheckpoint,
    shard_id: str,
    ports: SessionizerPorts,
    config: SessionizerConfig,
    now: datetime,
) -> SessionizerOutcome:
    consumer = checkpoint.consumer
    rules, max_keys = config.rules, config.max_keys_per_commit
    events = [record.event for record in chunk if record.event is not None]
    rejected = tuple(record.rejection for record in chunk if record.rejection is not None)
    touched = list(dict.fromkeys((event.custid, event.device) for event in events))
    before = ports.state.load(consumer, shard_id, touched)
    accepted = accept_events(events, before, checkpoint.watermark, rules)
    watermark = accepted.watermark
    states = dict(accepted.states)
    if watermark is not None:
        budget = max(0, max_keys - len(touched))
        candidates = ports.state.due(consumer, shard_id, watermark, budget + len(touched))
        idle = [key for key in candidates if key not in states][:budget]
        loaded = ports.state.load(consumer, shard_id, idle)
        before = {**before, **loaded}
        states.update(loaded)
    rows, sessions, changes = settle_keys(states, before, watermark, rules)
    first_seq, last_seq = chunk[0].sequence_number, chunk[-1].sequence_number
    if rejected and ports.quarantine is not None:
        ports.quarantine.put(list(rejected))
    _emit(ports, rows, sessions, shard_id, first_seq, last_seq)
    advanced = checkpoint.advanced(
        sequence_number=last_seq,
        max_event_time=later_watermark(checkpoint.max_event_time, accepted.max_event_time),
        last_event_at=now if events else checkpoint.last_event_at,
        watermark=watermark,
    )
    ports.state.commit(consumer, shard_id, changes, advanced, checkpoint.version)
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
