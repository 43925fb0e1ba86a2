"""The window counter's rules: one shard batch in, set deltas per window out; merged values, rows.

The rules of (docs/architecture.md, Stream semantics: Windows),
(docs/architecture.md, Stream semantics: Duplicates) and
(docs/architecture.md, Stream semantics: Exactly once). Pure: no I/O.

:func:`process_shard_batch` skips the records the checkpoint already covers (a redelivered
batch), sets the rejected records aside with their reason, aggregates the events with
:func:`clickstream.core.windows.aggregate` against the checkpoint's watermark, and returns, per
:class:`~clickstream.core.windows.WindowKey`, the sets to union into the window state. Merging by
set union makes a re-applied batch harmless, which is what gives exactly-once results.

**Event digests.** Sets of events hold a 64-bit digest of the ``event_id`` rather than the
UUID text, so that they fit DynamoDB number sets: the first 8 bytes of BLAKE2b over the 16 UUID
bytes, read as an unsigned big-endian integer (at most 20 decimal digits). A hash is used
rather than a half of the UUID because the high half of a time-ordered UUID (v1, v7) repeats
for events of the same millisecond and only 60 of its 64 bits are random in a v4 UUID. Two
distinct events of one window and key collide with probability about ``n**2 / 2**65``
(about 1e-10 for 60 000 events).

**Merging.** The state holds per-shard partial sets of each (window, key). A reader unions the
partials of all shards: ``value = |∪members|`` and ``late = |∪late − ∪on-time events|`` (a late
copy of an event already counted on time is a duplicate, not a late event). Unique-users
partials keep ``events`` for that subtraction, since their members are custids.

**Rows.** A window is final once the stream's watermark (the lowest over the shards, see
:func:`clickstream.core.checkpoints.combined_watermark`) reaches its end. Top-sources rows carry
an ordinal rank: count descending, ties by name (:func:`clickstream.core.windows.rank_sources`);
keys with no on-time event (only late ones) get no rank. Each row carries the consumer's
:func:`~clickstream.core.checkpoints.state_version` it was computed under, so a row computed
from older state never replaces a newer one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clickstream.core.checkpoints import ShardCheckpoint, sequence_key
from clickstream.core.events import Event, format_timestamp, parse_timestamp
from clickstream.core.records import ParsedRecord, RejectedRecord
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

    @property
    def has_new_records(self) -> bool:
        """False when every record was already applied: there is nothing to commit."""
        return self.received > self.already_applied


def event_digest(event_id: str) -> int:
    """The 64-bit digest of an event id stored in event sets (see the module docstring)."""
    raw = uuid.UUID(event_id).bytes
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def process_shard_batch(
    records: Sequence[ParsedRecord],
    checkpoint: ShardCheckpoint,
    *,
    allowed_lateness: timedelta,
    now: datetime,
) -> ShardBatchResult:
    """Aggregate the records the checkpoint does not cover yet; pure and deterministic.

    The next checkpoint records the highest sequence number of the batch, the highest event time
    seen, ``now`` as the processing time of the last event (unchanged when the batch had no
    valid event) and the raised watermark.
    """
    new_records = [record for record in records if not checkpoint.applied(record.sequence_number)]
    events = [record.event for record in new_records if record.event is not None]
    quarantined = tuple(record.rejection for record in new_records if record.rejection is not None)
    batch = aggregate(
        events, watermark_before=checkpoint.watermark, allowed_lateness=allowed_lateness
    )
    deltas, late = _deltas(events, batch.unique_users, batch.late_events)
    return ShardBatchResult(
        checkpoint_before=checkpoint,
        checkpoint=_next_checkpoint(checkpoint, new_records, events, batch.watermark, now),
        deltas=deltas,
        quarantined=quarantined,
        received=len(records),
        already_applied=len(records) - len(new_records),
        valid=len(events),
        distinct=len(events) - batch.duplicates,
        duplicates=batch.duplicates,
        late=late,
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


@dataclass(frozen=True)
class WindowValue:
    """The merged value of one (window, key): the count and the number of late events."""

    value: int
    late: int


@dataclass(frozen=True)
class WindowPartial:
    """One shard's stored sets for one (window, key)."""

    key: str
    shard_id: str
    members: frozenset[int] = field(default_factory=frozenset)
    events: frozenset[int] = field(default_factory=frozenset)
    late: frozenset[int] = field(default_factory=frozenset)


def merge_partials(partials: Sequence[WindowPartial]) -> dict[str, WindowValue]:
    """Union the shards' partials per key into values (see the module docstring)."""
    members: dict[str, set[int]] = defaultdict(set)
    events: dict[str, set[int]] = defaultdict(set)
    late: dict[str, set[int]] = defaultdict(set)
    for partial in partials:
        members[partial.key] |= partial.members
        events[partial.key] |= partial.events
        late[partial.key] |= partial.late
    return {
        key: WindowValue(value=len(members[key]), late=len(late[key] - events[key]))
        for key in sorted(members)
    }


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
        )
        for key, value in values.items()
    ]
    return sorted(rows, key=lambda row: (row.rank is None, row.rank or 0, row.key))
