"""Which shard a partition key goes to: Kinesis' MD5 hash key ranges. Pure.

Kinesis maps a record to the open shard whose hash key range holds the MD5 of its partition key,
read as a 128-bit unsigned integer, unless the record names an explicit hash key. A producer that
packs several events into one record uses this map to pack only events of one shard, and names
that shard's range with an explicit hash key: each customer's events then stay on the shard their
``custid`` hashes to, in order, as when every event is its own record.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

HASH_KEY_LIMIT = 2**128
"""Hash keys run from 0 to 2**128 - 1."""


@dataclass(frozen=True, order=True)
class HashRange:
    """One open shard's hash keys, ``start`` to ``end`` inclusive."""

    start: int
    end: int
    shard_id: str


def hash_key(partition_key: str) -> int:
    """The hash key Kinesis computes for ``partition_key``: its UTF-8 MD5 as an integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


class ShardMap:
    """The open shards' ranges, which must cover every hash key exactly once."""

    def __init__(self, ranges: Sequence[HashRange]) -> None:
        ordered = sorted(ranges)
        expected = 0
        for hash_range in ordered:
            if hash_range.start != expected or hash_range.end < hash_range.start:
                raise ValueError(f"shard ranges do not cover the hash keys at {expected}")
            expected = hash_range.end + 1
        if expected != HASH_KEY_LIMIT:
            raise ValueError(f"shard ranges end at {expected - 1}, not {HASH_KEY_LIMIT - 1}")
        self.ranges = tuple(ordered)
        self._starts = [hash_range.start for hash_range in ordered]

    def range_for(self, partition_key: str) -> HashRange:
        """The range, and so the shard, ``partition_key`` goes to."""
        return self.ranges[bisect.bisect_right(self._starts, hash_key(partition_key)) - 1]
