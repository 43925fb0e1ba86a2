"""Tumbling windows, watermarks and per-batch window aggregates. Pure: no I/O.

The rules of (docs/architecture.md, Stream semantics: Windows) and
(docs/architecture.md, Stream semantics: Watermark and lateness).

Time arithmetic is done on integer microseconds since the Unix epoch, never on floats, so
window edges are exact to the microsecond.

**Windows.** A window of ``size`` seconds is ``[floor(t / size) * size, + size)`` on the epoch
axis. An event exactly on an edge belongs to the window that starts there.

**Metrics.** ``unique-users`` is keyed by ``url`` and computed for 15 s and 60 s windows;
``top-sources`` is keyed by ``trafficfrom`` and computed for 60 s windows ("per minute").

**Watermark.** ``watermark = max event time seen - allowed_lateness``; it never goes back.
``None`` means no event was seen yet: no window is final. A window is final once
``watermark >= window_end``. An idle stream advances on processing time (:func:`advance_idle`);
the end of the stream is :data:`END_OF_STREAM`, which makes every window final.

**Late events.** Events of one batch are processed in order. An event is late for a window size
iff its window's end is ``<=`` the watermark at the moment it is processed; the watermark starts
at ``watermark_before`` and is raised after each event. With ``allowed_lateness >= 0`` an event
therefore never makes itself late, but an earlier event of the same batch can.

**Reading results.** A batch returns sets, not counts, so that batches can be merged (and
redelivered batches deduplicated) by set union. For one :class:`WindowKey` a reader gets:

- unique users = ``len(union of the custid sets)``;
- events per source = ``len(union of the event_id sets)``;
- late events = ``len(union of the late event_id sets)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from clickstream.core.events import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_STREAM = datetime.max.replace(tzinfo=UTC)
"""The watermark of a stream that has ended: every window is final."""
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_SECOND = 1_000_000
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")

WINDOW_SIZES: tuple[int, ...] = (15, 60)
UNIQUE_USERS = "unique-users"
TOP_SOURCES = "top-sources"
METRIC_WINDOW_SIZES: Mapping[str, tuple[int, ...]] = {
    UNIQUE_USERS: WINDOW_SIZES,
    TOP_SOURCES: (60,),
}
"""Window sizes, in seconds, computed for each metric."""


@dataclass(frozen=True, slots=True)
class WindowKey:
    """One window of one metric: ``key`` is the url (unique-users) or trafficfrom (top-sources)."""

    metric: str
    size_seconds: int
    window_start: datetime
    key: str

    @property
    def window_end(self) -> datetime:
        """The first instant after the window."""
        return self.window_start + timedelta(seconds=self.size_seconds)


@dataclass(frozen=True)
class BatchAggregate:
    """What one batch contributes to the window results; merge batches by set union."""

    unique_users: Mapping[WindowKey, frozenset[int]] = field(default_factory=dict)
    """Distinct custids per unique-users window (on-time events only)."""
    source_events: Mapping[WindowKey, frozenset[str]] = field(default_factory=dict)
    """Event ids per top-sources window (on-time events only)."""
    late_events: Mapping[WindowKey, frozenset[str]] = field(default_factory=dict)
    """Event ids that arrived after their window was final, per window of either metric."""
    duplicates: int = 0
    """Events dropped because their event_id already appeared earlier in the batch."""
    watermark: datetime | None = None
    """The watermark after the batch (never lower than ``watermark_before``)."""
    max_event_time: datetime | None = None
    """The latest event time in the batch, or None for an empty batch."""

    @property
    def late_counts(self) -> dict[WindowKey, int]:
        """Number of late events per window."""
        return {key: len(event_ids) for key, event_ids in self.late_events.items()}


def to_micros(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment.isoformat()}")
    return (moment - EPOCH) // _ONE_MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the epoch, clamped to datetime's range."""
    lowest = to_micros(_START_OF_TIME)
    highest = to_micros(END_OF_STREAM)
    return EPOCH + timedelta(microseconds=min(max(micros, lowest), highest))


def duration_micros(duration: timedelta) -> int:
    """A duration in whole microseconds."""
    return duration // _ONE_MICROSECOND


def window_start(moment: datetime, size_seconds: int) -> datetime:
    """Start of the epoch-aligned tumbling window of ``size_seconds`` that contains ``moment``."""
    return from_micros(_window_start_micros(to_micros(moment), size_seconds))


def window_end(moment: datetime, size_seconds: int) -> datetime:
    """End (exclusive) of the tumbling window of ``size_seconds`` that contains ``moment``."""
    return from_micros(_window_end_micros(moment, size_seconds))


def watermark_of(max_event_time: datetime, allowed_lateness: timedelta) -> datetime:
    """The watermark of a stream whose latest event time is ``max_event_time``."""
    return from_micros(to_micros(max_event_time) - duration_micros(allowed_lateness))


def later_watermark(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """The higher of two watermarks (None = nothing seen): watermarks never go back."""
    if current is None:
        return candidate
    if candidate is None:
        return current
    return max(current, candidate)


def advance_idle(
    max_event_time: datetime,
    last_event_seen_at: datetime,
    now: datetime,
    idle_timeout: timedelta,
    allowed_lateness: timedelta,
) -> datetime:
    """The watermark an idle stream reaches at processing time ``now``.

    ``last_event_seen_at`` and ``now`` are processing (wall-clock) times. Until no event has
    arrived for more than ``idle_timeout``, this is the plain watermark. After that, event time is
    assumed to progress with processing time from ``max_event_time``:
    ``max_event_time + (now - last_event_seen_at) - allowed_lateness``. Only elapsed processing
    time counts, so a replay of historical events is not made late by the wall clock.
    Combine with the stored watermark through :func:`later_watermark`.
    """
    idle = now - last_event_seen_at
    if idle <= idle_timeout:
        return watermark_of(max_event_time, allowed_lateness)
    return from_micros(
        to_micros(max_event_time) + duration_micros(idle) - duration_micros(allowed_lateness)
    )


def is_final(start: datetime, size_seconds: int, watermark: datetime | None) -> bool:
    """True when the window of ``size_seconds`` starting at ``start`` can no longer change."""
    if watermark is None:
        return False
    if watermark == END_OF_STREAM:
        return True
    return to_micros(watermark) >= _window_end_micros(start, size_seconds)


def is_late(event_time: datetime, size_seconds: int, watermark: datetime | None) -> bool:
    """True when the window of ``size_seconds`` holding ``event_time`` is already final."""
    return is_final(event_time, size_seconds, watermark)


def window_keys(event: Event) -> list[WindowKey]:
    """Every metric window the event contributes to."""
    keys: list[WindowKey] = []
    for metric, sizes in METRIC_WINDOW_SIZES.items():
        key = event.url if metric == UNIQUE_USERS else event.trafficfrom
        for size in sizes:
            start = window_start(event.trans_timestamp, size)
            keys.append(WindowKey(metric, size, start, key))
    return keys


def aggregate(
    events: Iterable[Event],
    watermark_before: datetime | None,
    allowed_lateness: timedelta = timedelta(0),
) -> BatchAggregate:
    """Aggregate one batch, in processing order, against the watermark at its start.

    Duplicate event_ids within the batch count once (the first wins). Late events (see the module
    docstring) go to ``late_events`` instead of the results. The watermark is raised to
    ``event time - allowed_lateness`` after each event.
    """
    unique_users: dict[WindowKey, set[int]] = defaultdict(set)
    source_events: dict[WindowKey, set[str]] = defaultdict(set)
    late_events: dict[WindowKey, set[str]] = defaultdict(set)
    seen: set[str] = set()
    duplicates = 0
    watermark = watermark_before
    max_event_time: datetime | None = None
    for event in events:
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        for key in window_keys(event):
            if is_late(event.trans_timestamp, key.size_seconds, watermark):
                late_events[key].add(event.event_id)
            elif key.metric == UNIQUE_USERS:
                unique_users[key].add(event.custid)
            else:
                source_events[key].add(event.event_id)
        watermark = later_watermark(
            watermark, watermark_of(event.trans_timestamp, allowed_lateness)
        )
        if max_event_time is None or event.trans_timestamp > max_event_time:
            max_event_time = event.trans_timestamp
    return BatchAggregate(
        unique_users=_frozen(unique_users),
        source_events=_frozen(source_events),
        late_events=_frozen(late_events),
        duplicates=duplicates,
        watermark=watermark,
        max_event_time=max_event_time,
    )


def rank_sources(counts: Mapping[str, int]) -> list[tuple[int, str, int]]:
    """``(rank, trafficfrom, count)`` by count descending, ties by name ascending.

    Ranks are ordinal (1, 2, 3, ...): tied sources get consecutive ranks in name order.
    """
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(rank, source, count) for rank, (source, count) in enumerate(ordered, start=1)]


def _window_start_micros(micros: int, size_seconds: int) -> int:
    if size_seconds <= 0:
        raise ValueError(f"window size must be positive, got {size_seconds}")
    size = size_seconds * _MICROS_PER_SECOND
    return (micros // size) * size


def _window_end_micros(moment: datetime, size_seconds: int) -> int:
    start = _window_start_micros(to_micros(moment), size_seconds)
    return start + size_seconds * _MICROS_PER_SECOND


def _frozen(groups: Mapping[_Key, set[_Value]]) -> dict[_Key, frozenset[_Value]]:
    return {key: frozenset(values) for key, values in groups.items()}
