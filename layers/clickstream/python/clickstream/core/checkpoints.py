"""Per-shard progress of a stream consumer: the exactly-once anchor of its state. Pure.

The rules of (docs/architecture.md, Stream semantics: Exactly once); the store is
:class:`clickstream.ports.CheckpointStore`.

Each consumer keeps, per shard, the last applied sequence number, the maximum event time seen,
the processing time of the last event and the watermark, in one DynamoDB item with a ``version``.
A batch commits by writing its state changes and then this item with the condition
``version = <version read>``: a redelivered batch finds the sequence number already applied and
skips those records, and a concurrent writer (a zombie invocation, the finalizer advancing an idle
watermark) makes the commit fail, so the batch is recomputed from the fresh checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from clickstream.core.windows import advance_idle, from_micros, to_micros

SEQUENCE_WIDTH = 64
"""Sequence numbers (decimal strings, up to 56 digits on Kinesis) are compared zero-padded."""
LINE_WIDTH = 7
"""Lines of a packed record (a record holds at most 1 MiB) are compared zero-padded too."""


def sequence_key(sequence_number: str) -> str:
    """A form of an event's position that sorts as positions do: by the Kinesis sequence number,
    then by the line in a packed record (``<sequence number>.<line>``,
    :func:`clickstream.core.records.event_position`); line 0 is the bare sequence number."""
    record, _, line = sequence_number.partition(".")
    key = record.zfill(SEQUENCE_WIDTH)
    return f"{key}.{line.zfill(LINE_WIDTH)}" if line else key


@dataclass(frozen=True)
class ShardCheckpoint:
    """Where one consumer stands on one shard."""

    consumer: str
    shard_id: str
    sequence_number: str | None = None
    max_event_time: datetime | None = None
    last_event_at: datetime | None = None
    watermark: datetime | None = None
    version: int = 0

    def applied(self, sequence_number: str) -> bool:
        """Whether the record with ``sequence_number`` is already reflected in the state."""
        if self.sequence_number is None:
            return False
        return sequence_key(sequence_number) <= sequence_key(self.sequence_number)

    def advanced(
        self,
        *,
        sequence_number: str,
        max_event_time: datetime | None,
        last_event_at: datetime | None,
        watermark: datetime | None,
    ) -> ShardCheckpoint:
        """The checkpoint after a batch, with the version bumped."""
        return replace(
            self,
            sequence_number=sequence_number,
            max_event_time=max_event_time,
            last_event_at=last_event_at,
            watermark=watermark,
            version=self.version + 1,
        )

    def idle_advanced(
        self, now: datetime, idle_timeout: timedelta, allowed_lateness: timedelta
    ) -> ShardCheckpoint:
        """The checkpoint with the watermark an idle shard reaches by ``now`` (version bumped)."""
        if self.max_event_time is None or self.last_event_at is None:
            return self
        candidate = advance_idle(
            self.max_event_time, self.last_event_at, now, idle_timeout, allowed_lateness
        )
        if self.watermark is not None and candidate <= self.watermark:
            return self
        return replace(self, watermark=candidate, version=self.version + 1)

    def to_item(self) -> dict[str, Any]:
        """The checkpoint as plain attribute values (times in microseconds since the epoch)."""
        item: dict[str, Any] = {
            "consumer": self.consumer,
            "shard_id": self.shard_id,
            "version": self.version,
        }
        if self.sequence_number is not None:
            item["sequence_number"] = self.sequence_number
        for name in ("max_event_time", "last_event_at", "watermark"):
            value = getattr(self, name)
            if value is not None:
                item[name] = to_micros(value)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ShardCheckpoint:
        """Inverse of :meth:`to_item`."""

        def moment(name: str) -> datetime | None:
            value = item.get(name)
            return None if value is None else from_micros(int(value))

        return cls(
            consumer=str(item["consumer"]),
            shard_id=str(item["shard_id"]),
            sequence_number=item.get("sequence_number"),
            max_event_time=moment("max_event_time"),
            last_event_at=moment("last_event_at"),
            watermark=moment("watermark"),
            version=int(item.get("version", 0)),
        )


class CheckpointConflict(RuntimeError):
    """The checkpoint changed since it was read: recompute the batch from the new one."""


def combined_watermark(checkpoints: list[ShardCheckpoint], shard_ids: list[str]) -> datetime | None:
    """The watermark of the whole stream: the lowest watermark over ``shard_ids``.

    ``None`` while any shard has no watermark yet: a shard that has delivered nothing could
    still bring events for any window.
    """
    by_shard = {c.shard_id: c.watermark for c in checkpoints}
    marks = [by_shard.get(shard_id) for shard_id in shard_ids]
    if not marks or any(mark is None for mark in marks):
        return None
    return min(mark for mark in marks if mark is not None)


def state_version(checkpoints: Iterable[ShardCheckpoint]) -> int:
    """A number that grows with every commit of a consumer: the sum of its checkpoint versions.

    Every commit (a batch, an idle-watermark advance) raises one checkpoint's version by one, under
    a condition on the version read, so the sum never goes back, and state read after reading a
    sum ``v`` holds at least every commit counted in ``v``. Result rows carry the sum they were
    computed under, so a row computed from older state never replaces one from newer state.
    """
    return sum(checkpoint.version for checkpoint in checkpoints)
