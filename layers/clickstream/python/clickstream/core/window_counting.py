"""The window counter's rules: one shard batch in, set deltas per window out; merged values, rows.

The rules of (docs/architecture.md, Stream semantics: Windows),
(docs/architecture.md, Stream semantics: Duplicates) and
(docs/architecture.md, Stream semantics: Exactly once). Pure: no I/O.

:func:`process_shard_batch` skips the records the checkpoint already covers (a redelivered
batch), sets the rejected records aside with their reason, aggregates the events with
:func:`clickstream.core.windows.aggregate` against the checkpoint's watermark, and returns, per
:class:`~clickstream.core.windows.WindowKey`, the sets to union into the window state. Merging by
set union makes a re-applied batch harmless, which is what gives exactly-once results.

**Event digests.** Sets of events hold the 64-bit digest of the ``event_id``
(:func:`clickstream.core.first_occurrences.event_digest`) rather than the UUID text, so that they
fit DynamoDB number sets (at most 20 decimal digits).

**Repeats.** Events the registry of first occurrences already holds
(:mod:`clickstream.core.first_occurrences`) are repeats: they count as duplicates and change no
set. The batch's own first occurrences are returned as ``registrations``, for the commit.

**Merging.** The state holds per-shard partial sets of each (window, key). A reader unions the
partials of all shards: ``value = |∪members|`` and ``late = |∪late − ∪on-time events|`` (a late
copy of an event already counted on time is a duplicate, not a late event). Unique-users
partials keep ``events`` for that subtraction, since their members are custids.

**Sketches.** A partial's set stays exact while it holds at most the exact-set limit
(:data:`DEFAULT_EXACT_SET_LIMIT`, a setting). A batch that would take it past the limit folds
the set into a HyperLogLog sketch (:mod:`clickstream.core.sketch`) and empties it; later values
collect in the exact set again until it passes the limit once more (:func:`add_delta`). Folding
takes register maxima, so a redelivered batch changes no estimate. Once any partial of a key holds
a sketch, the merged count is estimated: the sketches merged, the exact sets added to them
(:func:`merge_partials`), and the value is flagged approximate. ``late`` stays exact while no
on-time set of the key has been folded; after that, late digests cannot be matched against the
folded on-time events, so ``late`` counts every late digest not found in an exact on-time set:
an upper bound of the exact count, equal to it unless an event arrived both on time and late.
Once late digests are folded too, that bound is estimated.

**Rows.** A window is final once the stream's watermark (the lowest over the shards, see
:func:`clickstream.core.checkpoints.combined_watermark`) reaches its end. Top-sources rows carry
an ordinal rank: count descending, ties by name (:func:`clickstream.core.windows.rank_sources`);
keys with no on-time event (only late ones) get no rank. Each row carries the consumer's
:func:`~clickstream.core.checkpoints.state_version` it was computed under, so a row computed
from older state never replaces a newer one. A row with an estimated or bounded count is
``approximate`` and carries the sketch's relative standard error and error bound
(:mod:`clickstream.core.sketch`: 1.625 % and three times that).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clickstream.core.checkpoints import ShardCheckpoint, sequence_key
from clickstream.core.events import Event, format_timestamp, parse_timestamp
from clickstream.core.first_occurrences import Registry, event_digest, first_occurrences
from clickstream.core.records import ParsedRecord, RejectedRecord
from clickstream.core.sketch import ERROR_BOUND, RELATIVE_STANDARD_ERROR, HyperLogLog, union
from clickstream.core.windows import (
    TOP_SOURCES,
    UNIQUE_USERS,
    WindowKey,
    aggregate,
    is_final,
    later_watermark,
    rank_sources,
    window_keys,
)

# --- One shard batch --------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowDelta:
    """What one batch adds to one (window, key).

    ``members`` is what the metric counts: custids for unique-users, event digests for
    top-sources. ``events`` holds the digests of the on-time events (the same set as
    ``members`` for top-sources); ``late`` holds the digests of the late ones.
    """

    members: frozenset[int] = frozenset()
    events: frozenset[int] = frozenset()
    late: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ShardBatchResult:
    """Everything one shard batch changes, and how its records were accounted for.

    Reconciliation: ``received = already_applied + len(quarantined) + valid`` and
    ``valid = distinct + duplicates``.
    """

    checkpoint_before: ShardCheckpoint
    checkpoint: ShardCheckpoint
    deltas: Mapping[WindowKey, WindowDelta]
    quarantined: tuple[RejectedRecord, ...]
    received: int
    already_applied: int
    valid: int
    distinct: int
    duplicates: int
    late: int
    """Distinct events that were late for at least one of their windows."""
    registrations: Registry = field(default_factory=dict)
    """Digests of the batch's first occurrences per registry bucket, committed with it."""

    @property
    def has_new_records(self) -> bool:
        """False when every record was already applied: there is nothing to commit."""
        return self.received > self.already_applied


def process_shard_batch(
    records: Sequence[ParsedRecord],
    checkpoint: ShardCheckpoint,
    *,
    allowed_lateness: timedelta,
    now: datetime,
    registered: Registry | None = None,
) -> ShardBatchResult:
    """Aggregate the records the checkpoint does not cover yet; pure and deterministic.

    Events ``registered`` holds (the registry's buckets for this shard) are repeats: counted as
    duplicates, they change no set. Within the batch, the first copy of an id wins.

    The next checkpoint records the highest sequence number of the batch, the highest event time
    of its first occurrences, ``now`` as the processing time of the last event (unchanged when
    the batch had no new event) and the raised watermark.
    """
    new_records = [record for record in records if not checkpoint.applied(record.sequence_number)]
    events = [record.event for record in new_records if record.event is not None]
    quarantined = tuple(record.rejection for record in new_records if record.rejection is not None)
    first = first_occurrences(events, registered or {})
    batch = aggregate(
        first.events, watermark_before=checkpoint.watermark, allowed_lateness=allowed_lateness
    )
    deltas, late = _deltas(first.events, batch.unique_users, batch.late_events)
    return ShardBatchResult(
        checkpoint_before=checkpoint,
        checkpoint=_next_checkpoint(checkpoint, new_records, first.events, batch.watermark, now),
        deltas=deltas,
        quarantined=quarantined,
        received=len(records),
        already_applied=len(records) - len(new_records),
        valid=len(events),
        distinct=len(first.events) - batch.duplicates,
        duplicates=first.repeats + batch.duplicates,
        late=late,
        registrations=first.registrations,
    )


def windows_of(records: Iterable[ParsedRecord]) -> set[WindowKey]:
    """Every window key the valid records of a batch fall in, applied before or not.

    Rows are rewritten for these, so a batch redelivered after a crash between its commit and
    its result rows (its records all applied already) still writes those rows.
    """
    keys: set[WindowKey] = set()
    for record in records:
        if record.event is not None:
            keys.update(window_keys(record.event))
    return keys


def _deltas(
    events: Iterable[Event],
    unique_users: Mapping[WindowKey, frozenset[int]],
    late_events: Mapping[WindowKey, frozenset[str]],
) -> tuple[dict[WindowKey, WindowDelta], int]:
    """Per-key deltas of the batch's distinct events, and how many of them were late anywhere."""
    on_time: dict[WindowKey, set[int]] = defaultdict(set)
    late: dict[WindowKey, set[int]] = defaultdict(set)
    late_ids: set[str] = set()
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        digest = event_digest(event.event_id)
        for key in window_keys(event):
            if event.event_id in late_events.get(key, frozenset()):
                late[key].add(digest)
                late_ids.add(event.event_id)
            else:
                on_time[key].add(digest)
    deltas: dict[WindowKey, WindowDelta] = {}
    for key in sorted({*on_time, *late}, key=_sort_key):
        events_on_time = frozenset(on_time.get(key, ()))
        members = (
            unique_users.get(key, frozenset()) if key.metric == UNIQUE_USERS else events_on_time
        )
        deltas[key] = WindowDelta(
            members=members, events=events_on_time, late=frozenset(late.get(key, ()))
        )
    return deltas, len(late_ids)


def _sort_key(key: WindowKey) -> tuple[str, int, datetime, str]:
    return (key.metric, key.size_seconds, key.window_start, key.key)


def _next_checkpoint(
    checkpoint: ShardCheckpoint,
    new_records: Sequence[ParsedRecord],
    events: Sequence[Event],
    watermark: datetime | None,
    now: datetime,
) -> ShardCheckpoint:
    if not new_records:
        return checkpoint
    last = max(new_records, key=lambda record: sequence_key(record.sequence_number))
    max_event_time = checkpoint.max_event_time
    for event in events:
        if max_event_time is None or event.trans_timestamp > max_event_time:
            max_event_time = event.trans_timestamp
    return checkpoint.advanced(
        sequence_number=last.sequence_number,
        max_event_time=max_event_time,
        last_event_at=now if events else checkpoint.last_event_at,
        watermark=later_watermark(checkpoint.watermark, watermark),
    )


# --- Window state: shards' partials merged ----------------------------------------------------

DEFAULT_EXACT_SET_LIMIT = 4096
"""How many values one set of a partial holds exactly before it is folded into a sketch."""


@dataclass(frozen=True)
class WindowValue:
    """The merged value of one (window, key): the count and the number of late events.

    ``approximate`` is true when either number is not exact (see the module docstring).
    """

    value: int
    late: int
    approximate: bool = False


@dataclass(frozen=True)
class WindowPartial:
    """One shard's stored sets for one (window, key).

    Each of ``members``, ``events`` and ``late`` is exact, or, once it grew past the exact-set
    limit, the sketch of the values folded away (``*_sketch``) plus the exact set of the values
    added since. Top-sources partials have ``events`` equal to ``members``.
    """

    key: str
    shard_id: str
    members: frozenset[int] = field(default_factory=frozenset)
    events: frozenset[int] = field(default_factory=frozenset)
    late: frozenset[int] = field(default_factory=frozenset)
    members_sketch: HyperLogLog | None = None
    events_sketch: HyperLogLog | None = None
    late_sketch: HyperLogLog | None = None


def add_delta(partial: WindowPartial, delta: WindowDelta, exact_limit: int) -> WindowPartial:
    """``partial`` with a batch's ``delta`` added: each set stays exact up to ``exact_limit``.

    A set whose union with the delta would hold more than ``exact_limit`` values is folded: its
    values and the delta's go into its sketch, and the exact set is emptied.
    """
    members, members_sketch = _grow(
        partial.members, partial.members_sketch, delta.members, exact_limit
    )
    events, events_sketch = _grow(partial.events, partial.events_sketch, delta.events, exact_limit)
    late, late_sketch = _grow(partial.late, partial.late_sketch, delta.late, exact_limit)
    return WindowPartial(
        key=partial.key,
        shard_id=partial.shard_id,
        members=members,
        events=events,
        late=late,
        members_sketch=members_sketch,
        events_sketch=events_sketch,
        late_sketch=late_sketch,
    )


def _grow(
    exact: frozenset[int], sketch: HyperLogLog | None, added: frozenset[int], exact_limit: int
) -> tuple[frozenset[int], HyperLogLog | None]:
    combined = exact | added
    if len(combined) <= exact_limit:
        return combined, sketch
    return frozenset(), (sketch or HyperLogLog()).add_all(combined)


def merge_partials(partials: Sequence[WindowPartial]) -> dict[str, WindowValue]:
    """Union the shards' partials per key into values (see the module docstring)."""
    by_key: dict[str, list[WindowPartial]] = defaultdict(list)
    for partial in partials:
        by_key[partial.key].append(partial)
    return {key: _merged_value(by_key[key]) for key in sorted(by_key)}


def _merged_value(partials: Sequence[WindowPartial]) -> WindowValue:
    """One key's value and late count over its shards' partials."""
    members: frozenset[int] = frozenset().union(*(partial.members for partial in partials))
    member_sketches = [p.members_sketch for p in partials if p.members_sketch is not None]
    if member_sketches:
        value, value_approximate = union(member_sketches).add_all(members).count(), True
    else:
        value, value_approximate = len(members), False
    on_time: frozenset[int] = frozenset().union(*(partial.events for partial in partials))
    late = frozenset().union(*(partial.late for partial in partials)) - on_time
    late_sketches = [p.late_sketch for p in partials if p.late_sketch is not None]
    if late_sketches:
        late_count, late_approximate = union(late_sketches).add_all(late).count(), True
    else:
        on_time_folded = any(partial.events_sketch is not None for partial in partials)
        late_count, late_approximate = len(late), on_time_folded and bool(late)
    return WindowValue(
        value=value, late=late_count, approximate=value_approximate or late_approximate
    )


# --- Result rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    """One key of one window, as shown to readers."""

    metric: str
    size_seconds: int
    window_start: datetime
    window_end: datetime
    key: str
    value: int
    final: bool
    late_events: int
    rank: int | None = None
    state_version: int = 0
    """The consumer's state version the row was computed under (see the module docstring)."""
    approximate: bool = False
    """True when ``value`` or ``late_events`` is not exact (see the module docstring)."""
    standard_error: float = 0.0
    """Relative standard error of an estimated count; 0 when the row is exact."""
    error_bound: float = 0.0
    """Relative error bound (three standard errors) of an estimated count; 0 when exact."""

    def to_item(self) -> dict[str, Any]:
        """The row as plain attribute values, keys included."""
        item: dict[str, Any] = {
            "pk": f"{self.metric}#{self.size_seconds}",
            "sk": f"{format_timestamp(self.window_start)}#{self.key}",
            "metric": self.metric,
            "size_seconds": self.size_seconds,
            "window_start": format_timestamp(self.window_start),
            "window_end": format_timestamp(self.window_end),
            "key": self.key,
            "value": self.value,
            "final": self.final,
            "late_events": self.late_events,
            "state_version": self.state_version,
            "approximate": self.approximate,
            "standard_error": self.standard_error,
            "error_bound": self.error_bound,
        }
        if self.rank is not None:
            item["rank"] = self.rank
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ResultRow:
        """Inverse of :meth:`to_item`."""
        rank = item.get("rank")
        return cls(
            metric=str(item["metric"]),
            size_seconds=int(item["size_seconds"]),
            window_start=parse_timestamp(str(item["window_start"])),
            window_end=parse_timestamp(str(item["window_end"])),
            key=str(item["key"]),
            value=int(item["value"]),
            final=bool(item["final"]),
            late_events=int(item["late_events"]),
            rank=None if rank is None else int(rank),
            state_version=int(item.get("state_version", 0)),
            approximate=bool(item.get("approximate", False)),
            standard_error=float(item.get("standard_error", 0)),
            error_bound=float(item.get("error_bound", 0)),
        )


def window_rows(
    metric: str,
    size_seconds: int,
    window_start: datetime,
    values: Mapping[str, WindowValue],
    watermark: datetime | None,
    version: int = 0,
) -> list[ResultRow]:
    """The rows of one window, ordered by rank (top-sources) or by key, at state ``version``."""
    final = is_final(window_start, size_seconds, watermark)
    window_end = window_start + timedelta(seconds=size_seconds)
    ranks: dict[str, int] = {}
    if metric == TOP_SOURCES:
        counted = {key: value.value for key, value in values.items() if value.value > 0}
        ranks = {key: rank for rank, key, _ in rank_sources(counted)}
    rows = [
        ResultRow(
            metric=metric,
            size_seconds=size_seconds,
            window_start=window_start,
            window_end=window_end,
            key=key,
            value=value.value,
            final=final,
            late_events=value.late,
            rank=ranks.get(key),
            state_version=version,
            approximate=value.approximate,
            standard_error=RELATIVE_STANDARD_ERROR if value.approximate else 0.0,
            error_bound=ERROR_BOUND if value.approximate else 0.0,
        )
        for key, value in values.items()
    ]
    return sorted(rows, key=lambda row: (row.rank is None, row.rank or 0, row.key))
