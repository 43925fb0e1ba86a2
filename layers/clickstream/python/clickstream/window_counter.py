"""The window counter: one shard batch in, set deltas per window and the next checkpoint out.

:func:`process_shard_batch` is pure. It skips the records the checkpoint already covers
(a redelivered batch), quarantines invalid records with their reason, aggregates the rest with
:func:`clickstream.windows.aggregate` against the checkpoint's watermark, and returns, per
:class:`~clickstream.windows.WindowKey`, the sets to union into the window state. Merging by set
union makes a re-applied batch harmless, which is what gives exactly-once results.

:func:`run_batch` drives one batch through the ports: load the checkpoint, process, apply the
state and the checkpoint together, and on :class:`CheckpointConflict` start again from the
fresh checkpoint.

**Event digests.** Sets of events hold a 64-bit digest of the ``event_id`` rather than the
UUID text, so that they fit DynamoDB number sets: the first 8 bytes of BLAKE2b over the 16 UUID
bytes, read as an unsigned big-endian integer (at most 20 decimal digits). A hash is used
rather than a half of the UUID because the high half of a time-ordered UUID (v1, v7) repeats
for events of the same millisecond and only 60 of its 64 bits are random in a v4 UUID. Two
distinct events of one window and key collide with probability about ``n**2 / 2**65``
(about 1e-10 for 60 000 events).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from clickstream.checkpoints import (
    CheckpointConflict,
    CheckpointStore,
    ShardCheckpoint,
    sequence_key,
)
from clickstream.events import Event, InvalidEvent, parse_event
from clickstream.windows import (
    UNIQUE_USERS,
    WindowKey,
    aggregate,
    later_watermark,
    window_keys,
)

if TYPE_CHECKING:
    from clickstream.window_store import WindowStateStore

DEFAULT_COMMIT_ATTEMPTS = 3
"""How many times :func:`run_batch` recomputes a batch whose checkpoint changed under it."""


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One Kinesis record of a shard batch, in shard order."""

    sequence_number: str
    data: bytes
    arrival: datetime


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that is not a valid event, with the reason given by the parser."""

    sequence_number: str
    reason: str


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
    quarantined: tuple[QuarantinedRecord, ...]
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
    records: Sequence[ShardRecord],
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
    events: list[Event] = []
    quarantined: list[QuarantinedRecord] = []
    for record in new_records:
        try:
            events.append(parse_event(record.data))
        except InvalidEvent as error:
            quarantined.append(QuarantinedRecord(record.sequence_number, error.reason))
    batch = aggregate(
        events, watermark_before=checkpoint.watermark, allowed_lateness=allowed_lateness
    )
    deltas, late = _deltas(events, batch.unique_users, batch.late_events)
    return ShardBatchResult(
        checkpoint_before=checkpoint,
        checkpoint=_next_checkpoint(checkpoint, new_records, events, batch.watermark, now),
        deltas=deltas,
        quarantined=tuple(quarantined),
        received=len(records),
        already_applied=len(records) - len(new_records),
        valid=len(events),
        distinct=len(events) - batch.duplicates,
        duplicates=batch.duplicates,
        late=late,
    )


def run_batch(
    records: Sequence[ShardRecord],
    shard_id: str,
    consumer: str,
    *,
    checkpoints: CheckpointStore,
    state: WindowStateStore,
    allowed_lateness: timedelta,
    now: datetime,
    attempts: int = DEFAULT_COMMIT_ATTEMPTS,
    quarantine: Callable[[Sequence[QuarantinedRecord]], None] = lambda _: None,
) -> ShardBatchResult:
    """Process and commit one shard batch; recompute from a fresh checkpoint on a conflict.

    ``quarantine`` stores the batch's invalid records before the commit: once the commit makes
    them "applied", a redelivered batch skips them, so storing them afterwards could lose them.
    Raises :class:`CheckpointConflict` when the checkpoint keeps changing for ``attempts`` tries,
    so the batch fails and is redelivered.
    """
    for attempt in range(1, attempts + 1):
        checkpoint = checkpoints.load(consumer, shard_id)
        result = process_shard_batch(
            records, checkpoint, allowed_lateness=allowed_lateness, now=now
        )
        if not result.has_new_records:
            return result
        if result.quarantined:
            quarantine(result.quarantined)
        try:
            state.apply(result)
        except CheckpointConflict:
            if attempt == attempts:
                raise
            continue
        return result
    raise ValueError(f"attempts must be at least 1, got {attempts}")


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
    new_records: Sequence[ShardRecord],
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
