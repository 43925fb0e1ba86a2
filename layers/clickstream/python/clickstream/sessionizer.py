"""The sessionizer: per-minute and gap sessions (ARCHITECTURE §3), one shard at a time.

The stream's partition key is ``custid``, so every event of a (custid, device) key is in one
shard, in arrival order. Each shard is therefore sessionised alone, with its own watermark, and
its open sessions live in per-key state items next to its checkpoint.

**Lateness**, checked event by event against the watermark reached so far (the maximum event
time seen, less the allowed lateness, never going back), so the outcome does not depend on how
the records are cut into batches:

- an event whose minute is final (:func:`~clickstream.windows.is_final`) is late for both
  outputs;
- an event older than the watermark but in a minute still open counts for its per-minute row
  and is late for gap sessions only (the gap sessions before the watermark are already cut);
- late events are counted and reported, never emitted. They stay in the raw layer.

A repeated ``event_id`` counts once; a repeat of an event whose minute is already final is late.

**State** per key (:class:`KeyState`): the events still needed in full, those at or after the
start of the first open minute (the *tail*), plus one summary (:class:`Run`) of the older events
of the open gap session (the *head*). Those older events are all before the watermark, so no
event can come between them any more and the rules only need their first and last times and urls,
count, first traffic source and checkout flag. The tail is bounded by the events of one key
within the allowed lateness plus one minute, whatever the length of the session: a session of
thousands of events over hours stays a few hundred bytes plus its recent tail.

**Exactly-once in effect**: closed sessions are emitted through the sinks *before* the state and
the checkpoint are committed (one DynamoDB transaction). A crash in between re-emits the same
rows on retry, with the same ids (per-minute ``sessionid``, gap ``session_id``): emission is
at-least-once, the ids are deterministic, and readers drop repeats by id. If the commit loses to
a concurrent writer (:class:`~clickstream.checkpoints.CheckpointConflict`), the batch is
recomputed from the fresh checkpoint; a row emitted by the losing attempt may then be superseded
by one with the same id and more events, and readers keep, per id, the one with the most events.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from clickstream.checkpoints import CheckpointConflict, CheckpointStore, ShardCheckpoint
from clickstream.events import Event, InvalidEvent, parse_event
from clickstream.sessions import (
    CHECKOUT_URL,
    DEFAULT_INACTIVITY_TIMEOUT,
    DEFAULT_MAX_DURATION,
    GapSession,
    MinuteSession,
    SessionKey,
    device_code,
)
from clickstream.windows import (
    END_OF_STREAM,
    duration_micros,
    from_micros,
    is_final,
    later_watermark,
    to_micros,
    watermark_of,
)

STATE_FORMAT = 1
MAX_KEYS_PER_COMMIT = 99
"""Keys changed per commit: one action each + the checkpoint fit one 100-action transaction."""
DEFAULT_MAX_ATTEMPTS = 3

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND


# --- Rules and state --------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRules:
    """How late an event may be, and where gap sessions end."""

    allowed_lateness: timedelta
    inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT
    max_duration: timedelta = DEFAULT_MAX_DURATION

    def __post_init__(self) -> None:
        if self.allowed_lateness < timedelta(0) or self.inactivity_timeout < timedelta(0):
            raise ValueError("allowed_lateness and inactivity_timeout must be >= 0")
        if self.max_duration <= timedelta(0):
            raise ValueError("max_duration must be > 0")


@dataclass(frozen=True, slots=True)
class TailEvent:
    """What the rules need of one event kept in full; ``in_gap`` is False once its gap session
    is closed or when it was late for gap sessions (it still counts for its minute)."""

    event_id: str
    micros: int
    url: str
    trafficfrom: str
    in_gap: bool = True

    @property
    def order(self) -> tuple[int, str]:
        """Event time, then event_id (as :func:`clickstream.sessions.event_order`)."""
        return (self.micros, self.event_id)

    @classmethod
    def of(cls, event: Event, in_gap: bool) -> TailEvent:
        """The part of ``event`` the rules need."""
        return cls(
            event.event_id, to_micros(event.trans_timestamp), event.url, event.trafficfrom, in_gap
        )


@dataclass(frozen=True, slots=True)
class Run:
    """Summary of consecutive events (in event order): a minute or a gap session so far."""

    first_micros: int
    first_id: str
    first_url: str
    first_trafficfrom: str
    last_micros: int
    last_id: str
    last_url: str
    count: int
    reached_checkout: bool

    @classmethod
    def of(cls, event: TailEvent) -> Run:
        """A run of one event."""
        return cls(
            event.micros,
            event.event_id,
            event.url,
            event.trafficfrom,
            event.micros,
            event.event_id,
            event.url,
            1,
            event.url == CHECKOUT_URL,
        )

    def plus(self, event: TailEvent) -> Run:
        """The run extended by ``event``, which comes after all of its events."""
        return replace(
            self,
            last_micros=event.micros,
            last_id=event.event_id,
            last_url=event.url,
            count=self.count + 1,
            reached_checkout=self.reached_checkout or event.url == CHECKOUT_URL,
        )

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        return [
            self.first_micros,
            self.first_id,
            self.first_url,
            self.first_trafficfrom,
            self.last_micros,
            self.last_id,
            self.last_url,
            self.count,
            self.reached_checkout,
        ]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> Run:
        """Inverse of :meth:`to_list`."""
        return cls(
            int(data[0]),
            str(data[1]),
            str(data[2]),
            str(data[3]),
            int(data[4]),
            str(data[5]),
            str(data[6]),
            int(data[7]),
            bool(data[8]),
        )


def fold(run: Run | None, events: Iterable[TailEvent]) -> Run | None:
    """``run`` extended by ``events``, given in event order."""
    for event in events:
        run = Run.of(event) if run is None else run.plus(event)
    return run


@dataclass(frozen=True)
class KeyState:
    """The open sessions of one (custid, device) key on one shard."""

    custid: int
    device: str
    head: Run | None = None
    """Summary of the open gap session's events before the tail."""
    tail: tuple[TailEvent, ...] = ()
    """Events at or after the first open minute, in event order."""

    @property
    def key(self) -> SessionKey:
        """(custid, device)"""
        return (self.custid, self.device)

    @property
    def empty(self) -> bool:
        """Nothing open: the state item can be deleted."""
        return self.head is None and not self.tail

    def with_events(self, events: Iterable[TailEvent]) -> KeyState:
        """The state with ``events`` added to the tail, in event order."""
        tail = sorted((*self.tail, *events), key=lambda kept: kept.order)
        return replace(self, tail=tuple(tail))

    def to_json(self) -> str:
        """Compact JSON (the ``state`` attribute of the item)."""
        document = {
            "v": STATE_FORMAT,
            "head": None if self.head is None else self.head.to_list(),
            "tail": [
                [e.event_id, e.micros, e.url, e.trafficfrom, int(e.in_gap)] for e in self.tail
            ],
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, custid: int, device: str, text: str) -> KeyState:
        """Inverse of :meth:`to_json`."""
        document = json.loads(text)
        if document.get("v") != STATE_FORMAT:
            raise ValueError(f"unsupported session state format {document.get('v')!r}")
        head = document["head"]
        tail = tuple(
            TailEvent(str(i), int(t), str(url), str(source), bool(in_gap))
            for i, t, url, source, in_gap in document["tail"]
        )
        return cls(custid, device, None if head is None else Run.from_list(head), tail)


# --- Pure rules -------------------------------------------------------------------------------


def first_open_minute_micros(watermark: datetime | None) -> int | None:
    """Start of the earliest minute the watermark leaves open (None: every minute is open)."""
    if watermark is None:
        return None
    if watermark == END_OF_STREAM:
        return to_micros(END_OF_STREAM) + 1
    return to_micros(watermark) // _MICROS_PER_MINUTE * _MICROS_PER_MINUTE


def minute_session(custid: int, device: str, run: Run) -> MinuteSession:
    """The seed-compatible row of a minute's run."""
    minute = run.first_micros // _MICROS_PER_MINUTE * _MICROS_PER_MINUTE
    return MinuteSession(
        userid=custid,
        device=device,
        minute=from_micros(minute),
        events=run.count,
        beginurl=run.first_url,
        endurl=run.last_url,
        first_event_time=from_micros(run.first_micros),
        last_event_time=from_micros(run.last_micros),
    )


def gap_session(custid: int, device: str, run: Run) -> GapSession:
    """The gap session of a closed run (same fields as :func:`sessions.gap_sessions`)."""
    return GapSession(
        session_id=f"{custid}_{device_code(device)}_{run.first_micros}",
        custid=custid,
        device=device,
        start=from_micros(run.first_micros),
        end=from_micros(run.last_micros),
        trafficfrom=run.first_trafficfrom,
        entry_url=run.first_url,
        exit_url=run.last_url,
        page_count=run.count,
        duration_seconds=(run.last_micros - run.first_micros) / _MICROS_PER_SECOND,
        reached_checkout=run.reached_checkout,
    )


@dataclass
class _GapRun:
    run: Run
    from_head: bool
    events: list[TailEvent] = field(default_factory=list)


def _gap_runs(state: KeyState, rules: SessionRules) -> list[_GapRun]:
    """The head and the tail's gap events cut into sessions (as ``sessions.split_sessions``)."""
    timeout = duration_micros(rules.inactivity_timeout)
    cap = duration_micros(rules.max_duration)
    runs: list[_GapRun] = [] if state.head is None else [_GapRun(state.head, from_head=True)]
    for event in state.tail:
        if not event.in_gap:
            continue
        current = runs[-1].run if runs else None
        if (
            current is None
            or event.micros - current.last_micros > timeout
            or event.micros >= current.first_micros + cap
        ):
            runs.append(_GapRun(Run.of(event), from_head=False, events=[event]))
        else:
            runs[-1].run = current.plus(event)
            runs[-1].events.append(event)
    return runs


def _gap_closable(run: Run, watermark: datetime, rules: SessionRules) -> bool:
    if watermark == END_OF_STREAM:
        return True
    mark = to_micros(watermark)
    return run.last_micros + duration_micros(
        rules.inactivity_timeout
    ) < mark or mark >= run.first_micros + duration_micros(rules.max_duration)


@dataclass(frozen=True)
class Settled:
    """What closing one key under a watermark gives."""

    minute_rows: tuple[MinuteSession, ...]
    gap_sessions: tuple[GapSession, ...]
    state: KeyState | None
    """What stays open; None when nothing does."""


def settle(state: KeyState, watermark: datetime | None, rules: SessionRules) -> Settled:
    """Close the minutes and gap sessions of one key that ``watermark`` makes final."""
    if watermark is None:
        return Settled((), (), None if state.empty else state)
    cutoff = first_open_minute_micros(watermark)
    assert cutoff is not None
    minutes: dict[int, list[TailEvent]] = {}
    for event in state.tail:
        minutes.setdefault(event.micros // _MICROS_PER_MINUTE, []).append(event)
    rows: list[MinuteSession] = []
    for events in minutes.values():
        run = fold(None, events)
        assert run is not None
        if is_final(from_micros(run.first_micros), 60, watermark):
            rows.append(minute_session(state.custid, state.device, run))

    runs = _gap_runs(state, rules)
    closed: list[GapSession] = []
    while runs and _gap_closable(runs[0].run, watermark, rules):
        closed.append(gap_session(state.custid, state.device, runs.pop(0).run))
    open_ids = {event.event_id for gap_run in runs for event in gap_run.events}
    head: Run | None = None
    if runs:
        first = runs[0]
        older = [event for event in first.events if event.micros < cutoff]
        head = fold(state.head if first.from_head else None, older)
    tail = tuple(
        replace(event, in_gap=event.event_id in open_ids)
        for event in state.tail
        if event.micros >= cutoff
    )
    remaining = replace(state, head=head, tail=tail)
    return Settled(tuple(rows), tuple(closed), None if remaining.empty else remaining)


def next_close_micros(state: KeyState, rules: SessionRules) -> int:
    """The lowest watermark (µs) at which :func:`settle` closes something of ``state``."""
    candidates: list[int] = []
    if state.tail:
        first_minute = state.tail[0].micros // _MICROS_PER_MINUTE * _MICROS_PER_MINUTE
        candidates.append(first_minute + _MICROS_PER_MINUTE)
    runs = _gap_runs(state, rules)
    if runs:
        run = runs[0].run
        candidates.append(
            min(
                run.last_micros + duration_micros(rules.inactivity_timeout) + 1,
                run.first_micros + duration_micros(rules.max_duration),
            )
        )
    if not candidates:
        raise ValueError("an empty state never closes")
    return min(candidates)


@dataclass(frozen=True)
class LateEvent:
    """An event not counted for ``minute`` rows and/or gap sessions, because it came too late."""

    event_id: str
    custid: int
    device: str
    trans_timestamp: datetime
    minute_late: bool
    """Its minute was final: it is in no output."""


@dataclass(frozen=True)
class Accepted:
    """The events of a chunk added to the key states."""

    states: Mapping[SessionKey, KeyState]
    late: tuple[LateEvent, ...]
    duplicates: int
    watermark: datetime | None
    max_event_time: datetime | None


def accept_events(
    events: Iterable[Event],
    states: Mapping[SessionKey, KeyState],
    watermark: datetime | None,
    rules: SessionRules,
) -> Accepted:
    """Add events, in shard order, to the states of their keys; the watermark rises per event."""
    added: dict[SessionKey, list[TailEvent]] = {}
    known: dict[SessionKey, set[str]] = {}
    late: list[LateEvent] = []
    duplicates = 0
    max_event_time: datetime | None = None
    for event in events:
        key = (event.custid, event.device)
        if key not in known:
            stored = states.get(key)
            known[key] = set() if stored is None else {kept.event_id for kept in stored.tail}
        moment = event.trans_timestamp
        if is_final(moment, 60, watermark):
            late.append(LateEvent(event.event_id, *key, moment, minute_late=True))
        elif event.event_id in known[key]:
            duplicates += 1
        else:
            in_gap = watermark is None or moment >= watermark
            if not in_gap:
                late.append(LateEvent(event.event_id, *key, moment, minute_late=False))
            known[key].add(event.event_id)
            added.setdefault(key, []).append(TailEvent.of(event, in_gap))
        watermark = later_watermark(watermark, watermark_of(moment, rules.allowed_lateness))
        max_event_time = later_watermark(max_event_time, moment)
    current = dict(states)
    for key, new_events in added.items():
        current[key] = (current.get(key) or KeyState(*key)).with_events(new_events)
    return Accepted(current, tuple(late), duplicates, watermark, max_event_time)


# --- Ports ------------------------------------------------------------------------------------


class SourceRecord(Protocol):
    """A stream record: ``search.indexer.KinesisRecord`` and :class:`ShardRecord` both fit."""

    @property
    def sequence_number(self) -> str: ...

    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One record of a shard, its data already decoded from base64."""

    sequence_number: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record that is not a valid event, with the reason."""

    sequence_number: str
    reason: str
    data: bytes


@dataclass(frozen=True)
class KeyChange:
    """One key's state before and after a commit (None: no item), with their close times."""

    key: SessionKey
    before: KeyState | None
    after: KeyState | None
    close_at_before: int | None
    """:func:`next_close_micros` of ``before`` (µs), where its index entry is."""
    close_at_after: int | None


class SessionStateStore(ABC):
    """Open per-key states of a shard, an index of when they close, and the atomic commit."""

    @abstractmethod
    def load(
        self, consumer: str, shard_id: str, keys: Iterable[SessionKey]
    ) -> dict[SessionKey, KeyState]:
        """The stored states of ``keys`` (keys with nothing open are left out)."""

    @abstractmethod
    def due(
        self, consumer: str, shard_id: str, watermark: datetime, limit: int
    ) -> list[SessionKey]:
        """Up to ``limit`` keys that close something at ``watermark``, earliest first."""

    @abstractmethod
    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
    ) -> None:
        """Write the changes and the checkpoint atomically; CheckpointConflict if it moved."""


class MinuteSessionSink(ABC):
    """Where per-minute rows go (Firehose to ``aggregated/``)."""

    @abstractmethod
    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row (raise if some cannot be)."""


class GapSessionSink(ABC):
    """Where closed gap sessions go (S3 ``sessions/``)."""

    @abstractmethod
    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """Store the sessions closed by one commit, under a key made of its arguments only."""


class RejectedRecordSink(ABC):
    """Where invalid records are kept with their reasons."""

    @abstractmethod
    def put(self, records: Sequence[RejectedRecord], shard_id: str) -> None:
        """Store the records (idempotently: a retry writes the same thing)."""


# --- Driver -----------------------------------------------------------------------------------


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
class SessionizerPorts:
    """Everything the driver talks to."""

    checkpoints: CheckpointStore
    state: SessionStateStore
    minute_sink: MinuteSessionSink
    gap_sink: GapSessionSink
    quarantine: RejectedRecordSink | None = None


_Parsed = tuple[SourceRecord, Event | RejectedRecord]


def parse_records(records: Iterable[SourceRecord]) -> list[_Parsed]:
    """Each record with its event, or with the reason it is rejected."""
    parsed: list[_Parsed] = []
    for record in records:
        try:
            parsed.append((record, parse_event(record.data)))
        except InvalidEvent as error:
            parsed.append(
                (record, RejectedRecord(record.sequence_number, error.reason, record.data))
            )
    return parsed


def next_chunk(parsed: Sequence[_Parsed], max_keys: int) -> int:
    """How many leading records to commit together so they touch at most ``max_keys`` keys."""
    keys: set[SessionKey] = set()
    for position, (_, outcome) in enumerate(parsed):
        if isinstance(outcome, Event):
            key = (outcome.custid, outcome.device)
            if key not in keys and len(keys) == max_keys:
                return position
            keys.add(key)
    return len(parsed)


def run_batch(
    records: Sequence[SourceRecord],
    shard_id: str,
    consumer: str,
    *,
    checkpoints: CheckpointStore,
    state: SessionStateStore,
    minute_sink: MinuteSessionSink,
    gap_sink: GapSessionSink,
    allowed_lateness: timedelta,
    now: datetime,
    inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
    quarantine: RejectedRecordSink | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_keys_per_commit: int = MAX_KEYS_PER_COMMIT,
) -> SessionizerOutcome:
    """Sessionise one shard batch exactly once in effect (see the module docstring).

    Records already applied are skipped. The rest are committed in chunks touching at most
    ``max_keys_per_commit`` keys, each chunk emitting its closed sessions first. A
    CheckpointConflict reloads the checkpoint and recomputes, at most ``max_attempts`` times.
    """
    ports = SessionizerPorts(checkpoints, state, minute_sink, gap_sink, quarantine)
    rules = SessionRules(allowed_lateness, inactivity_timeout, max_duration)
    parsed = parse_records(records)
    total = SessionizerOutcome()
    conflicts = 0
    while True:
        checkpoint = checkpoints.load(consumer, shard_id)
        pending = [item for item in parsed if not checkpoint.applied(item[0].sequence_number)]
        if total.commits == 0:
            total = replace(total, skipped=len(parsed) - len(pending))
        if not pending:
            return replace(total, watermark=later_watermark(total.watermark, checkpoint.watermark))
        chunk = pending[: next_chunk(pending, max_keys_per_commit)]
        try:
            step = _apply_chunk(chunk, checkpoint, shard_id, ports, rules, now, max_keys_per_commit)
        except CheckpointConflict:
            conflicts += 1
            total = replace(total, conflicts=conflicts)
            if conflicts >= max_attempts:
                raise
            continue
        total = total.plus(step)


def close_idle(
    shard_id: str,
    consumer: str,
    watermark: datetime,
    *,
    checkpoints: CheckpointStore,
    state: SessionStateStore,
    minute_sink: MinuteSessionSink,
    gap_sink: GapSessionSink,
    allowed_lateness: timedelta,
    inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_keys_per_commit: int = MAX_KEYS_PER_COMMIT,
) -> SessionizerOutcome:
    """Raise the shard's watermark to ``watermark`` (never lower it) and close what is due.

    For a finalizer: pass the idle watermark (``ShardCheckpoint.idle_advanced``), or
    :data:`~clickstream.windows.END_OF_STREAM` through :func:`close_all`.
    """
    ports = SessionizerPorts(checkpoints, state, minute_sink, gap_sink)
    rules = SessionRules(allowed_lateness, inactivity_timeout, max_duration)
    total = SessionizerOutcome()
    conflicts = 0
    while True:
        checkpoint = checkpoints.load(consumer, shard_id)
        target = later_watermark(checkpoint.watermark, watermark)
        assert target is not None
        due = state.due(consumer, shard_id, target, max_keys_per_commit)
        if not due and target == checkpoint.watermark:
            return replace(total, watermark=target)
        try:
            step = _close_keys(due, checkpoint, target, shard_id, ports, rules)
        except CheckpointConflict:
            conflicts += 1
            total = replace(total, conflicts=conflicts)
            if conflicts >= max_attempts:
                raise
            continue
        total = total.plus(step)
        if not step.minute_rows and not step.gap_sessions and target == checkpoint.watermark:
            return total


def close_all(
    shard_id: str,
    consumer: str,
    *,
    checkpoints: CheckpointStore,
    state: SessionStateStore,
    minute_sink: MinuteSessionSink,
    gap_sink: GapSessionSink,
    allowed_lateness: timedelta,
    inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_keys_per_commit: int = MAX_KEYS_PER_COMMIT,
) -> SessionizerOutcome:
    """End of stream: close every open session of the shard; later events are all late."""
    return close_idle(
        shard_id,
        consumer,
        END_OF_STREAM,
        checkpoints=checkpoints,
        state=state,
        minute_sink=minute_sink,
        gap_sink=gap_sink,
        allowed_lateness=allowed_lateness,
        inactivity_timeout=inactivity_timeout,
        max_duration=max_duration,
        max_attempts=max_attempts,
        max_keys_per_commit=max_keys_per_commit,
    )


def _apply_chunk(
    chunk: Sequence[_Parsed],
    checkpoint: ShardCheckpoint,
    shard_id: str,
    ports: SessionizerPorts,
    rules: SessionRules,
    now: datetime,
    max_keys: int,
) -> SessionizerOutcome:
    consumer = checkpoint.consumer
    events = [outcome for _, outcome in chunk if isinstance(outcome, Event)]
    rejected = tuple(outcome for _, outcome in chunk if isinstance(outcome, RejectedRecord))
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
    rows, sessions, changes = _settle_all(states, before, watermark, rules)
    first_seq, last_seq = chunk[0][0].sequence_number, chunk[-1][0].sequence_number
    if rejected and ports.quarantine is not None:
        ports.quarantine.put(rejected, shard_id)
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
    rows, sessions, changes = _settle_all(before, before, watermark, rules)
    advanced = replace(checkpoint, watermark=watermark, version=checkpoint.version + 1)
    last_applied = checkpoint.sequence_number or "0"
    _emit(ports, rows, sessions, shard_id, last_applied, f"idle{advanced.version}")
    ports.state.commit(consumer, shard_id, changes, advanced, checkpoint.version)
    return SessionizerOutcome(
        minute_rows=rows, gap_sessions=sessions, commits=1, watermark=watermark
    )


def _settle_all(
    states: Mapping[SessionKey, KeyState],
    before: Mapping[SessionKey, KeyState],
    watermark: datetime | None,
    rules: SessionRules,
) -> tuple[tuple[MinuteSession, ...], tuple[GapSession, ...], list[KeyChange]]:
    rows: list[MinuteSession] = []
    sessions: list[GapSession] = []
    changes: list[KeyChange] = []
    for key in sorted(states):
        settled = settle(states[key], watermark, rules)
        rows.extend(settled.minute_rows)
        sessions.extend(settled.gap_sessions)
        previous = before.get(key)
        if settled.state != previous:
            changes.append(
                KeyChange(
                    key,
                    previous,
                    settled.state,
                    None if previous is None else next_close_micros(previous, rules),
                    None if settled.state is None else next_close_micros(settled.state, rules),
                )
            )
    rows.sort(key=lambda row: (row.minute, row.userid, row.device))
    sessions.sort(key=lambda session: (session.start, session.custid, session.device))
    return tuple(rows), tuple(sessions), changes


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
