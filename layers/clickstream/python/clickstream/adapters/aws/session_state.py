"""The sessionizer's open state in DynamoDB: a log of commits, cached in memory per shard.

One commit writes **one log entry**: the new state of every key it changed (or its deletion),
compressed, in the transaction that carries the conditional checkpoint and the registry of first
occurrences (:mod:`clickstream.adapters.aws.first_occurrences`). Items of the state table
(``pk``, ``sk`` strings), next to the checkpoints (``pk = CHECKPOINT#<consumer>``)::

    pk          "SLOG#<consumer>#<shard_id>"
    sk          "<checkpoint version, 20 digits>#<part, 3 digits>"
    changes  B  zlib of JSON lines, one per changed key (:class:`LoggedChange`): its whole new
                state, or the events appended to its stored state, or its deletion
    keep_from N the oldest version whose entry holds the whole state of an open key, as of this
                commit
    expires_at  TTL: the commit's time + the retention

A change the rules made by adding events only (most of them: a user's next click) is logged as
those events; a change they reshaped (a closed minute folded into the head, a closed gap session)
as the whole new state.

An entry is split in parts of at most :data:`PART_RAW_BYTES` of JSON, so each item stays under
DynamoDB's 400 KB. A batch of 500 events therefore writes a handful of items (one entry, one
registry item per 15 s bucket, the checkpoint) instead of one item per (custid, device): write
units follow the compressed bytes changed, not the number of keys.

**Reading.** The store keeps the shard's open states in memory (a warm Lambda container serves
the same shard batch after batch). Before every read it asks the log for the entries after the
last one it applied (one strongly consistent ``Query``, empty when nothing changed), so a
concurrent writer, a failed commit whose write did land, or another container's commits are
always seen. A cold store reads the newest entry's ``keep_from`` and replays the log from there:
every key still open was last written whole at or after ``keep_from``, its appends after that.
Keys due at a watermark come from an in-memory index of close times, so the table needs no
secondary index.

Entries are never rewritten. An entry older than ``keep_from`` is never read again; the TTL
removes it. The retention (7 days) bounds how long a shard may stay idle without a finalizer run
before its open sessions are lost, as for the registry.
"""

from __future__ import annotations

import heapq
import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickstream.adapters.aws.dynamodb import checkpoint_put, commit
from clickstream.adapters.aws.first_occurrences import read_registered, registry_puts
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.session_state import KeyChange, KeyState, TailEvent
from clickstream.core.sessions import SessionKey
from clickstream.core.windows import END_OF_STREAM, to_micros
from clickstream.ports import SessionStateStore

VERSION_WIDTH = 20
PART_WIDTH = 3
COMPRESSION_LEVEL = 9
PART_RAW_BYTES = 256 * 1024
"""JSON bytes per log item before compression: under DynamoDB's 400 KB item size even
uncompressible."""
MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
DEFAULT_RETENTION_DAYS = 7
_SECONDS_PER_DAY = 86_400
_ITEM_OVERHEAD_BYTES = 1024
"""Room for an item's keys and other attributes, well above what they take."""
_AFTER_VERSION = "$"
"""Sorts after ``#``: ``<version>$`` is above every part of that version."""


def log_pk(consumer: str, shard_id: str) -> str:
    """Partition key of a shard's log entries."""
    return f"SLOG#{consumer}#{shard_id}"


def log_sk(version: int, part: int) -> str:
    """Sort key of one part of the entry of ``version``."""
    return f"{version:0{VERSION_WIDTH}d}#{part:0{PART_WIDTH}d}"


@dataclass(frozen=True)
class LoggedChange:
    """One key's line in a log entry: its whole new state, the events appended to its stored
    state, or its deletion."""

    key: SessionKey
    state: str | None = None
    """The whole new state (JSON), when the change is not an append."""
    appended: tuple[TailEvent, ...] | None = None
    """The events added to the tail, when the new state is exactly the stored one with them."""
    close_at: int | None = None

    @property
    def deleted(self) -> bool:
        """Nothing open is left of the key."""
        return self.state is None and self.appended is None

    @classmethod
    def of(cls, change: KeyChange) -> LoggedChange:
        """The smallest line for ``change``: an append when the rules only added events."""
        if change.after is None or change.close_at_after is None:
            return cls(change.key)
        before, after = change.before, change.after
        if before is not None and before.head == after.head:
            kept = set(before.tail)
            added = tuple(event for event in after.tail if event not in kept)
            if kept.issubset(after.tail) and before.with_events(added) == after:
                return cls(change.key, appended=added, close_at=change.close_at_after)
        return cls(change.key, state=after.to_json(), close_at=change.close_at_after)

    def to_line(self) -> str:
        """``[custid, device, "s", state, close_at]``, ``[custid, device, "+", events,
        close_at]`` or ``[custid, device, null]``."""
        custid, device = self.key
        if self.deleted:
            document: list[Any] = [custid, device, None]
        elif self.appended is not None:
            events = [
                [e.event_id, e.micros, e.url, e.trafficfrom, int(e.in_gap)] for e in self.appended
            ]
            document = [custid, device, "+", events, self.close_at]
        else:
            document = [custid, device, "s", self.state, self.close_at]
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_line(cls, line: str) -> LoggedChange:
        """Inverse of :meth:`to_line`."""
        document = json.loads(line)
        key = (int(document[0]), str(document[1]))
        if document[2] is None:
            return cls(key)
        if document[2] == "+":
            appended = tuple(
                TailEvent(str(i), int(t), str(url), str(source), bool(in_gap))
                for i, t, url, source, in_gap in document[3]
            )
            return cls(key, appended=appended, close_at=int(document[4]))
        if document[2] != "s":
            raise ValueError(f"unknown log line kind {document[2]!r}")
        return cls(key, state=str(document[3]), close_at=int(document[4]))


def encode_changes(changes: Sequence[LoggedChange]) -> list[bytes]:
    """The lines as compressed JSON-lines parts, each at most :data:`PART_RAW_BYTES` raw."""
    parts: list[bytes] = []
    lines: list[str] = []
    size = 0
    for change in changes:
        line = change.to_line()
        length = len(line.encode("utf-8")) + 1
        if lines and size + length > PART_RAW_BYTES:
            parts.append(zlib.compress("\n".join(lines).encode("utf-8"), COMPRESSION_LEVEL))
            lines, size = [], 0
        lines.append(line)
        size += length
    if lines:
        parts.append(zlib.compress("\n".join(lines).encode("utf-8"), COMPRESSION_LEVEL))
    return parts


def decode_changes(data: bytes) -> Iterator[LoggedChange]:
    """Inverse of one part of :func:`encode_changes`."""
    for line in zlib.decompress(data).decode("utf-8").splitlines():
        yield LoggedChange.from_line(line)


@dataclass
class _Open:
    """One open key in memory: its state as stored, when it closes, and which entry holds it."""

    state: str
    close_at: int
    version: int
    """The entry holding the key's last whole state (appends after it leave this alone)."""


@dataclass
class ShardLog:
    """A shard's open states as of the log entries applied so far."""

    after: str = ""
    """Sort key of the last part applied (every later part is still to read)."""
    open: dict[SessionKey, _Open] = field(default_factory=dict)
    by_close: list[tuple[int, SessionKey]] = field(default_factory=list)
    """Heap of (close_at, key); an entry is stale when the key's close_at has moved."""
    holders: Counter[int] = field(default_factory=Counter)
    """Open keys per version of the entry holding them."""

    def apply(self, version: int, change: LoggedChange, state: KeyState | None = None) -> None:
        """One key's line from the entry of ``version``; ``state`` is the new state when the
        caller has it already (a commit), else it is rebuilt from the line."""
        previous = self.open.get(key := change.key)
        if change.appended is not None:
            if previous is None:
                raise ValueError(f"log entry {version} appends to {key}, which has no state")
            if state is None:
                stored = KeyState.from_json(key[0], key[1], previous.state)
                state = stored.with_events(change.appended)
            assert change.close_at is not None
            self.open[key] = _Open(state.to_json(), change.close_at, previous.version)
            heapq.heappush(self.by_close, (change.close_at, key))
            return
        if previous is not None:
            del self.open[key]
            self.holders[previous.version] -= 1
            if not self.holders[previous.version]:
                del self.holders[previous.version]
        if change.deleted or change.state is None or change.close_at is None:
            return
        self.open[key] = _Open(change.state, change.close_at, version)
        self.holders[version] += 1
        heapq.heappush(self.by_close, (change.close_at, key))
        if len(self.by_close) > 2 * len(self.open) + 1024:
            self.by_close = [(held.close_at, k) for k, held in self.open.items()]
            heapq.heapify(self.by_close)

    def keep_from(self, version: int) -> int:
        """The oldest entry still holding an open key, once ``version`` is applied."""
        return min(self.holders, default=version)

    def due(self, mark: int, limit: int) -> list[SessionKey]:
        """Up to ``limit`` keys with ``close_at <= mark``, earliest first."""
        found: list[tuple[int, SessionKey]] = []
        kept: list[tuple[int, SessionKey]] = []
        while self.by_close and len(found) < limit and self.by_close[0][0] <= mark:
            close_at, key = heapq.heappop(self.by_close)
            held = self.open.get(key)
            if held is None or held.close_at != close_at:
                continue  # stale: the key moved or closed
            found.append((close_at, key))
            kept.append((close_at, key))
        for entry in kept:
            heapq.heappush(self.by_close, entry)
        return [key for _, key in found]

    def every_key(self) -> list[SessionKey]:
        """Every open key, by close time."""
        return [key for _, key in sorted((held.close_at, k) for k, held in self.open.items())]


class DynamoSessionStateStore(SessionStateStore):
    """Open states as a log of commits in the state table, cached per shard in memory."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table = table
        self.retention_days = retention_days
        self.clock = clock
        self.shards: dict[tuple[str, str], ShardLog] = {}

    # --- reads --------------------------------------------------------------------------------

    def load(
        self, consumer: str, shard_id: str, keys: Iterable[SessionKey]
    ) -> dict[SessionKey, KeyState]:
        """The states of ``keys``, from the log as committed (strongly consistent)."""
        log = self.synced(consumer, shard_id)
        states: dict[SessionKey, KeyState] = {}
        for key in dict.fromkeys(keys):
            held = log.open.get(key)
            if held is not None:
                states[key] = KeyState.from_json(key[0], key[1], held.state)
        return states

    def due(
        self, consumer: str, shard_id: str, watermark: datetime, limit: int
    ) -> list[SessionKey]:
        """Keys with ``close_at <= watermark``, earliest first (every key at the end of stream)."""
        if limit <= 0:
            return []
        log = self.synced(consumer, shard_id)
        if watermark == END_OF_STREAM:
            return log.every_key()[:limit]
        return log.due(to_micros(watermark), limit)

    def registered(
        self, consumer: str, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registry items of each bucket, one strongly consistent Query per bucket."""
        return read_registered(self.client, self.table, consumer, shard_id, buckets)

    def synced(self, consumer: str, shard_id: str) -> ShardLog:
        """The shard's open states with every committed entry applied."""
        log = self.shards.get((consumer, shard_id))
        if log is None:
            log = self._replayed(consumer, shard_id)
            self.shards[(consumer, shard_id)] = log
        else:
            self._apply_entries(log, self._entries(consumer, shard_id, "sk > :sk", log.after))
        return log

    def _replayed(self, consumer: str, shard_id: str) -> ShardLog:
        """A shard's open states from its newest entry's ``keep_from`` on."""
        log = ShardLog()
        newest = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": log_pk(consumer, shard_id)}},
            ProjectionExpression="sk, keep_from",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if newest:
            start = f"{int(newest[0]['keep_from']['N']):0{VERSION_WIDTH}d}"
            self._apply_entries(log, self._entries(consumer, shard_id, "sk >= :sk", start))
        return log

    def _entries(
        self, consumer: str, shard_id: str, condition: str, bound: str
    ) -> Iterator[dict[str, Any]]:
        """The shard's log items matching ``condition`` on ``bound``, in order."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": {
                ":pk": {"S": log_pk(consumer, shard_id)},
                ":sk": {"S": bound or "0"},
            },
            "ConsistentRead": True,
        }
        while True:
            response = self.client.query(**arguments)
            yield from response["Items"]
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    @staticmethod
    def _apply_entries(log: ShardLog, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            sk = item["sk"]["S"]
            version = int(sk.split("#", 1)[0])
            for change in decode_changes(bytes(item["changes"]["B"])):
                log.apply(version, change)
            log.after = sk  # part by part: a read that fails midway resumes at the next part

    # --- the commit ---------------------------------------------------------------------------

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        """One transaction: the entry of the changes, the registrations and the conditional
        checkpoint; the cached states follow only once it succeeded."""
        # the reads of this attempt synced the log; a commit that succeeds saw no later entry
        log = self.shards.get((consumer, shard_id)) or self.synced(consumer, shard_id)
        version = checkpoint.version
        lines = [LoggedChange.of(change) for change in changes]
        entry = self._entry_puts(consumer, shard_id, lines, version, log)
        registry = registry_puts(
            self.table, consumer, shard_id, version, registrations or {}, self.retention_days
        )
        size = sum(len(bytes(put["Put"]["Item"]["changes"]["B"])) for put in entry) + sum(
            len(bytes(put["Put"]["Item"]["digests"]["B"])) for put in registry
        )
        if size + _ITEM_OVERHEAD_BYTES * (len(entry) + len(registry) + 1) > MAX_TRANSACTION_BYTES:
            raise ValueError(f"a commit of {size} bytes exceeds a transaction's 4 MB")
        put = checkpoint_put(self.table, checkpoint, expected_version)
        # all in the checkpoint's own transaction: ``commit`` refuses more than it holds
        commit(self.client, [], put, with_checkpoint=[*entry, *registry])
        if changes:
            for change, line in zip(changes, lines, strict=True):
                log.apply(version, line, change.after)
            log.after = f"{version:0{VERSION_WIDTH}d}{_AFTER_VERSION}"

    def _entry_puts(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[LoggedChange],
        version: int,
        log: ShardLog,
    ) -> list[dict[str, Any]]:
        """The Put of each part of the commit's entry (none when nothing changed)."""
        if not changes:
            return []
        moved = Counter(
            log.open[c.key].version for c in changes if c.key in log.open and c.appended is None
        )
        held = [v for v, count in log.holders.items() if count > moved[v]]
        keep_from = min(held, default=version)
        expires_at = int(self.clock()) + self.retention_days * _SECONDS_PER_DAY
        puts: list[dict[str, Any]] = []
        for part, data in enumerate(encode_changes(changes)):
            if len(data) > MAX_ITEM_BYTES - 1024:
                raise ValueError(f"a log part of {len(data)} compressed bytes exceeds 400 KB")
            item = {
                "pk": {"S": log_pk(consumer, shard_id)},
                "sk": {"S": log_sk(version, part)},
                "changes": {"B": data},
                "keep_from": {"N": str(keep_from)},
                "expires_at": {"N": str(expires_at)},
            }
            puts.append({"Put": {"TableName": self.table, "Item": item}})
        return puts
