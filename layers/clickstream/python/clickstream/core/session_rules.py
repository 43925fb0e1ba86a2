"""The sessionizer's rules: events into per-key states, and what a watermark closes. Pure.

The rules of (docs/architecture.md, Stream semantics: Sessions), per shard: the stream's
partition key is ``custid``, so every event of a (custid, device) key is in one shard, in arrival
order. Each shard is therefore sessionised alone, with its own watermark, and its open sessions
live in per-key states (:class:`~clickstream.core.session_state.KeyState`).

**Lateness** (docs/architecture.md, Stream semantics: Watermark and lateness), checked event by
event against the watermark reached so far (the maximum event time seen, less the allowed
lateness, never going back), so the outcome does not depend on how the records are cut into
batches:

- an event whose minute is final (:func:`~clickstream.core.windows.is_final`) is late for both
  outputs;
- an event older than the watermark but in a minute still open counts for its per-minute row
  and is late for gap sessions only (the gap sessions before the watermark are already cut);
- late events are counted and reported, never emitted. They stay in the raw layer.

A repeated ``event_id`` counts once, its first occurrence deciding, whatever key the repeat
carries: a repeat of an event the shard's registry of first occurrences holds
(:mod:`clickstream.core.first_occurrences`), or that an earlier event of the chunk or its key's
state holds, is a duplicate; a repeat whose minute is already final is late
(docs/architecture.md, Stream semantics: Duplicates).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from clickstream.core.events import Event
from clickstream.core.first_occurrences import Registry, event_digest, registry_bucket
from clickstream.core.records import ParsedRecord
from clickstream.core.session_state import KeyChange, KeyState, Run, TailEvent, fold
from clickstream.core.sessions import (
    DEFAULT_INACTIVITY_TIMEOUT,
    DEFAULT_MAX_DURATION,
    GapSession,
    MinuteSession,
    SessionKey,
    device_code,
)
from clickstream.core.windows import (
    END_OF_STREAM,
    duration_micros,
    from_micros,
    is_final,
    later_watermark,
    to_micros,
    watermark_of,
)

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND


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
    registrations: Registry = field(default_factory=dict)
    """Digests of the events added, per registry bucket: what the commit registers."""


def accept_events(
    events: Iterable[Event],
    states: Mapping[SessionKey, KeyState],
    watermark: datetime | None,
    rules: SessionRules,
    registered: Registry | None = None,
) -> Accepted:
    """Add events, in shard order, to the states of their keys; the watermark rises per event.

    ``registered`` is the shard's registry of first occurrences for the events' buckets.
    """
    added: dict[SessionKey, list[TailEvent]] = {}
    known: dict[SessionKey, set[str]] = {}
    registry = registered or {}
    registrations: dict[datetime, set[int]] = defaultdict(set)
    late: list[LateEvent] = []
    duplicates = 0
    max_event_time: datetime | None = None
    for event in events:
        key = (event.custid, event.device)
        if key not in known:
            stored = states.get(key)
            known[key] = set() if stored is None else {kept.event_id for kept in stored.tail}
        moment = event.trans_timestamp
        bucket, digest = registry_bucket(event), event_digest(event.event_id)
        if is_final(moment, 60, watermark):
            late.append(LateEvent(event.event_id, *key, moment, minute_late=True))
        elif (
            event.event_id in known[key]
            or digest in registry.get(bucket, frozenset())
            or digest in registrations[bucket]
        ):
            duplicates += 1
        else:
            in_gap = watermark is None or moment >= watermark
            if not in_gap:
                late.append(LateEvent(event.event_id, *key, moment, minute_late=False))
            known[key].add(event.event_id)
            registrations[bucket].add(digest)
            added.setdefault(key, []).append(TailEvent.of(event, in_gap))
        watermark = later_watermark(watermark, watermark_of(moment, rules.allowed_lateness))
        max_event_time = later_watermark(max_event_time, moment)
    current = dict(states)
    for key, new_events in added.items():
        current[key] = (current.get(key) or KeyState(*key)).with_events(new_events)
    registered_now = {
        bucket: frozenset(digests) for bucket, digests in registrations.items() if digests
    }
    return Accepted(current, tuple(late), duplicates, watermark, max_event_time, registered_now)


def next_chunk(
    parsed: Sequence[ParsedRecord], max_items: int, max_buckets: int | None = None
) -> int:
    """How many leading records to commit together so they touch at most ``max_items`` keys and
    registry buckets together, and at most ``max_buckets`` buckets (at least one record, so a
    chunk always moves)."""
    keys: set[SessionKey] = set()
    buckets: set[datetime] = set()
    bucket_limit = max_items if max_buckets is None else max_buckets
    for position, record in enumerate(parsed):
        event = record.event
        if event is not None:
            key, bucket = (event.custid, event.device), registry_bucket(event)
            grown = len(keys | {key}) + len(buckets | {bucket})
            too_many_buckets = len(buckets | {bucket}) > bucket_limit
            if (grown > max_items or too_many_buckets) and position > 0:
                return position
            keys.add(key)
            buckets.add(bucket)
    return len(parsed)


def settle_keys(
    states: Mapping[SessionKey, KeyState],
    before: Mapping[SessionKey, KeyState],
    watermark: datetime | None,
    rules: SessionRules,
) -> tuple[tuple[MinuteSession, ...], tuple[GapSession, ...], list[KeyChange]]:
    """:func:`settle` every key of ``states``: the rows and sessions closed, in output order, and
    the change of each key whose state differs from ``before`` (its stored state)."""
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
