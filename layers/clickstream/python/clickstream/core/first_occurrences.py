"""Which events are first occurrences of their ``event_id``: the registry's rules. Pure: no I/O.

The rule of (docs/architecture.md, Stream semantics: Duplicates). A repeated ``event_id``
counts once, its first occurrence in shard order deciding, even when the repeat carries another
url, source or device and arrives in a later batch.

**The registry.** A consumer keeps, per shard, the digests (:func:`event_digest`) of the events
it committed, grouped in buckets of :data:`BUCKET_SECONDS` of event time
(:func:`registry_bucket`). Before it processes a batch it reads the buckets the batch's events
fall in; an event whose digest is there already is a repeat. The batch's own first occurrences
are written to the registry in the transaction that commits the batch's checkpoint, so the
registry never holds an event whose batch did not commit.

**Where a repeat is recognised.** On the shard of its first occurrence, in the bucket of its
event time. Producers route by ``custid`` (the partition key), so a repeat with the same custid
and event time is always found, whatever else it carries. A repeat that also changes its custid
or its 15-second bucket is, to the stream, another event.

**Commit size.** A commit writes one registry item per bucket it touches; a batch whose events
span more than :data:`MAX_BUCKETS_PER_COMMIT` buckets is committed in parts
(:func:`part_length`), so the items fit one transaction with the checkpoint.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord
from clickstream.core.windows import window_start

BUCKET_SECONDS = 15
"""Event time covered by one registry bucket."""
MAX_BUCKETS_PER_COMMIT = 32
"""Registry buckets one commit may touch (one item each, in the checkpoint's transaction)."""

Registry = Mapping[datetime, frozenset[int]]
"""Event digests per bucket start."""


def event_digest(event_id: str) -> int:
    """The 64-bit digest of an event id: the first 8 bytes of BLAKE2b over its 16 UUID bytes.

    A hash rather than half the UUID, since the high half of a time-ordered UUID (v1, v7)
    repeats within a millisecond and only 60 of a v4 UUID's 64 bits are random. Two distinct
    events of one bucket collide with probability about ``n**2 / 2**65``.
    """
    raw = uuid.UUID(event_id).bytes
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def registry_bucket(event: Event) -> datetime:
    """The start of the registry bucket the event's time falls in."""
    return window_start(event.trans_timestamp, BUCKET_SECONDS)


def buckets_of(events: Iterable[Event]) -> set[datetime]:
    """Every bucket the events fall in."""
    return {registry_bucket(event) for event in events}


@dataclass(frozen=True)
class FirstOccurrences:
    """A batch's events split into first occurrences and repeats of committed events.

    ``registrations`` holds the digests of the first occurrences (each once), per bucket: what
    the commit adds to the registry.
    """

    events: tuple[Event, ...]
    """The events not registered before, in batch order (repeats within the batch included)."""
    repeats: int
    """Events whose digest the registry already held."""
    registrations: Registry


def first_occurrences(events: Sequence[Event], registered: Registry) -> FirstOccurrences:
    """Drop the events the registry holds already; the rest, and what they register."""
    kept: list[Event] = []
    added: dict[datetime, set[int]] = defaultdict(set)
    for event in events:
        bucket = registry_bucket(event)
        digest = event_digest(event.event_id)
        if digest in registered.get(bucket, frozenset()):
            continue
        kept.append(event)
        added[bucket].add(digest)
    return FirstOccurrences(
        events=tuple(kept),
        repeats=len(events) - len(kept),
        registrations={bucket: frozenset(digests) for bucket, digests in added.items()},
    )


def part_length(records: Sequence[ParsedRecord], max_buckets: int = MAX_BUCKETS_PER_COMMIT) -> int:
    """The longest prefix of ``records`` whose events touch at most ``max_buckets`` buckets.

    At least one record, so every batch makes progress.
    """
    buckets: set[datetime] = set()
    for position, record in enumerate(records):
        if record.event is not None:
            buckets.add(registry_bucket(record.event))
            if len(buckets) > max_buckets and position > 0:
                return position
    return len(records)
