"""In-memory fakes of the domain's ports: checkpoints, state, results, sinks, quarantine, shards.

They keep the contracts of the DynamoDB, Firehose and S3 adapters (version-checked checkpoints,
set unions for window partials, folded into sketches past the exact-set limit, states with a
close-time index, result rows kept when a stored one has a higher state version, rows and gap
sessions delivered at least once as through Firehose, quarantined records keyed like their S3
objects) without any I/O. Unit tests and the benchmarks' in-process baselines use them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from clickstream.adapters.aws.window_state import window_pk, window_sk
from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint
from clickstream.core.records import RejectedRecord, quarantine_key
from clickstream.core.session_state import KeyChange, KeyState
from clickstream.core.sessions import GapSession, MinuteSession, SessionKey
from clickstream.core.window_counting import (
    DEFAULT_EXACT_SET_LIMIT,
    ResultRow,
    ShardBatchResult,
    WindowPartial,
    WindowValue,
    add_delta,
    merge_partials,
)
from clickstream.core.windows import to_micros
from clickstream.ports import (
    CheckpointStore,
    GapSessionSink,
    MinuteSessionSink,
    QuarantineSink,
    SessionStateStore,
    StreamShards,
    WindowCounterPorts,
    WindowResults,
    WindowStateStore,
)


class MemoryCheckpoints(CheckpointStore):
    """Shard checkpoints in a dict, with the version check of the DynamoDB store."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ShardCheckpoint] = {}

    def load(self, consumer: str, shard_id: str) -> ShardCheckpoint:
        """The stored checkpoint or a fresh one."""
        return self.items.get((consumer, shard_id), ShardCheckpoint(consumer, shard_id))

    def all(self, consumer: str) -> list[ShardCheckpoint]:
        """Every checkpoint of ``consumer``."""
        return [c for (owner, _), c in self.items.items() if owner == consumer]

    def save(self, checkpoint: ShardCheckpoint, expected_version: int) -> None:
        """Store if the version is still ``expected_version``, else CheckpointConflict."""
        if self.load(checkpoint.consumer, checkpoint.shard_id).version != expected_version:
            raise CheckpointConflict("the checkpoint moved")
        self.items[(checkpoint.consumer, checkpoint.shard_id)] = checkpoint


class MemoryWindowState(WindowStateStore):
    """Window partials as sets, unioned like DynamoDB's ``ADD``, committed with the checkpoint.

    A set that would pass ``exact_limit`` is folded into its sketch, as the adapter does.
    """

    def __init__(
        self, checkpoints: MemoryCheckpoints, exact_limit: int = DEFAULT_EXACT_SET_LIMIT
    ) -> None:
        self.checkpoints = checkpoints
        self.exact_limit = exact_limit
        self.partials: dict[str, dict[str, WindowPartial]] = defaultdict(dict)
        self.registry: dict[tuple[str, datetime], set[int]] = defaultdict(set)

    def registered(
        self, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registered digests of each bucket that has any."""
        found = {bucket: frozenset(self.registry.get((shard_id, bucket), ())) for bucket in buckets}
        return {bucket: digests for bucket, digests in found.items() if digests}

    def apply(self, result: ShardBatchResult) -> None:
        """Commit the checkpoint (or raise CheckpointConflict) with the registrations, then
        union the deltas."""
        self.checkpoints.save(result.checkpoint, result.checkpoint_before.version)
        shard_id = result.checkpoint.shard_id
        for bucket, digests in result.registrations.items():
            self.registry[(shard_id, bucket)] |= digests
        for key, delta in result.deltas.items():
            window = self.partials[window_pk(key.metric, key.size_seconds, key.window_start)]
            sort_key = window_sk(key.key, shard_id)
            old = window.get(sort_key, WindowPartial(key.key, shard_id))
            window[sort_key] = add_delta(old, delta, self.exact_limit)

    def read_window(
        self, metric: str, size_seconds: int, window_start: datetime
    ) -> dict[str, WindowValue]:
        """Every key of the window, merged across shards."""
        window = self.partials.get(window_pk(metric, size_seconds, window_start), {})
        return merge_partials(list(window.values()))


class MemoryWindowResults(WindowResults):
    """Result rows by (pk, sk) like the results table; a row of a higher version is kept."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ResultRow] = {}

    def write(self, rows: Sequence[ResultRow]) -> int:
        """Store each row unless the stored one has a higher state version; rows written."""
        written = 0
        for row in rows:
            item = row.to_item()
            key = (str(item["pk"]), str(item["sk"]))
            stored = self.items.get(key)
            if stored is not None and stored.state_version > row.state_version:
                continue
            self.items[key] = row
            written += 1
        return written

    def rows(self, metric: str, size_seconds: int) -> list[ResultRow]:
        """Every stored row of one metric and size, in sort-key (window, then key) order."""
        pk = f"{metric}#{size_seconds}"
        return [row for (owner, _), row in sorted(self.items.items()) if owner == pk]


class MemorySessionState(SessionStateStore):
    """Open session states and their close-time index, committed with the checkpoint."""

    def __init__(self, checkpoints: MemoryCheckpoints | None = None) -> None:
        self.checkpoints = checkpoints or MemoryCheckpoints()
        self.states: dict[tuple[str, str, SessionKey], KeyState] = {}
        self.index: set[tuple[str, str, int, SessionKey]] = set()
        self.registry: dict[tuple[str, str, datetime], set[int]] = defaultdict(set)

    def load(
        self, consumer: str, shard_id: str, keys: Iterable[SessionKey]
    ) -> dict[SessionKey, KeyState]:
        """The stored states of ``keys``."""
        found = ((key, self.states.get((consumer, shard_id, key))) for key in keys)
        return {key: state for key, state in found if state is not None}

    def due(
        self, consumer: str, shard_id: str, watermark: datetime, limit: int
    ) -> list[SessionKey]:
        """Keys with something to close at or before ``watermark``, earliest first."""
        mark = to_micros(watermark)
        entries = sorted(
            (close_at, key)
            for owner, shard, close_at, key in self.index
            if (owner, shard) == (consumer, shard_id) and close_at <= mark
        )
        return [key for _, key in entries][:limit]

    def registered(
        self, consumer: str, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registered digests of each bucket that has any."""
        found = {
            bucket: frozenset(self.registry.get((consumer, shard_id, bucket), ()))
            for bucket in buckets
        }
        return {bucket: digests for bucket, digests in found.items() if digests}

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        """Save the checkpoint (or raise CheckpointConflict) with the registrations, then apply
        the changes."""
        self.checkpoints.save(checkpoint, expected_version)
        for bucket, digests in (registrations or {}).items():
            self.registry[(consumer, shard_id, bucket)] |= digests
        for change in changes:
            if change.close_at_before is not None:
                self.index.discard((consumer, shard_id, change.close_at_before, change.key))
            if change.after is None:
                self.states.pop((consumer, shard_id, change.key), None)
            else:
                assert change.close_at_after is not None
                self.states[(consumer, shard_id, change.key)] = change.after
                self.index.add((consumer, shard_id, change.close_at_after, change.key))


class MemoryMinuteSink(MinuteSessionSink):
    """Per-minute rows kept in a list, in delivery order."""

    def __init__(self) -> None:
        self.rows: list[MinuteSession] = []

    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Keep the rows."""
        self.rows.extend(rows)


class MemoryGapSink(GapSessionSink):
    """Gap sessions kept in delivery order, as Firehose delivers them: a repeated commit's
    sessions are kept again."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, str, str, list[GapSession]]] = []

    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """Keep the sessions with the commit that emitted them (nothing for an empty call)."""
        if sessions:
            self.puts.append((shard_id, first_seq, last_seq, list(sessions)))

    @property
    def sessions(self) -> list[GapSession]:
        """Every delivered session, repeats included, in delivery order."""
        return [session for *_, group in self.puts for session in group]


class MemoryQuarantine(QuarantineSink):
    """Quarantined records by the S3 key they would be written under, and every call in order."""

    def __init__(self, prefix: str = "quarantine/") -> None:
        self.prefix = prefix
        self.objects: dict[str, list[RejectedRecord]] = {}
        self.puts: list[list[RejectedRecord]] = []

    def put(self, records: Sequence[RejectedRecord]) -> None:
        """Keep the records under their object key (nothing for an empty call)."""
        if not records:
            return
        self.puts.append(list(records))
        now = datetime.now(UTC)
        self.objects[quarantine_key(records, self.prefix, now)] = list(records)

    @property
    def records(self) -> list[RejectedRecord]:
        """Every stored record, one per (shard, sequence number), in storage order."""
        kept: dict[tuple[str, str], RejectedRecord] = {}
        for group in self.objects.values():
            for record in group:
                kept.setdefault((record.shard_id, record.sequence_number), record)
        return list(kept.values())


class FixedShards(StreamShards):
    """A stream with a fixed list of shards."""

    def __init__(self, shard_ids: Sequence[str]) -> None:
        self._shard_ids = list(shard_ids)

    def shard_ids(self) -> list[str]:
        """The shards, as given."""
        return list(self._shard_ids)


def memory_window_counter_ports(
    shard_ids: Sequence[str],
    *,
    checkpoints: MemoryCheckpoints | None = None,
    results: MemoryWindowResults | None = None,
    quarantine: QuarantineSink | None = None,
) -> WindowCounterPorts:
    """The window counter's ports, all in memory, over ``shard_ids``; fakes given are used."""
    checkpoints = checkpoints or MemoryCheckpoints()
    return WindowCounterPorts(
        checkpoints=checkpoints,
        state=MemoryWindowState(checkpoints),
        results=results or MemoryWindowResults(),
        quarantine=quarantine or MemoryQuarantine(),
        shards=FixedShards(shard_ids),
    )
