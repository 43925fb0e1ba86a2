"""Every port of the domain: the interfaces consumers and the producer talk to.

Adapters (``clickstream.adapters``) implement them on AWS; ``tests.support.fakes`` implements
them in memory. Each consumer takes ONE ports object (:class:`WindowCounterPorts`,
:class:`SessionizerPorts`, :class:`SearchIndexerPorts`), built by ``clickstream.composition``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.records import RejectedRecord
from clickstream.core.search_documents import Action
from clickstream.core.session_state import KeyChange, KeyState
from clickstream.core.sessions import GapSession, MinuteSession, SessionKey
from clickstream.core.shard_map import ShardMap
from clickstream.core.window_counting import ResultRow, ShardBatchResult, WindowValue

# --- Checkpoints and stream shards ------------------------------------------------------------


class CheckpointStore(ABC):
    """Reads and conditionally writes shard checkpoints."""

    @abstractmethod
    def load(self, consumer: str, shard_id: str) -> ShardCheckpoint:
        """The checkpoint, or a fresh one (version 0) for a shard never seen."""

    @abstractmethod
    def all(self, consumer: str) -> list[ShardCheckpoint]:
        """Every shard checkpoint of a consumer."""

    @abstractmethod
    def save(self, checkpoint: ShardCheckpoint, expected_version: int) -> None:
        """Write if the stored version is still ``expected_version``; else CheckpointConflict."""


class StreamShards(ABC):
    """The shards of the stream a consumer reads."""

    @abstractmethod
    def shard_ids(self) -> list[str]:
        """Every shard: one that has delivered nothing still holds windows open."""


# --- Window counter ---------------------------------------------------------------------------


class WindowStateStore(ABC):
    """Stores window partials and commits them with the shard checkpoint."""

    @abstractmethod
    def registered(
        self, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registry of first occurrences in ``buckets``, strongly consistent.

        See :mod:`clickstream.core.first_occurrences`; buckets with nothing registered are left
        out.
        """

    @abstractmethod
    def apply(self, result: ShardBatchResult) -> None:
        """Union the batch's deltas into the state, register its first occurrences
        (``result.registrations``) and commit its checkpoint; the last two atomically.

        Raises :class:`~clickstream.core.checkpoints.CheckpointConflict` when the checkpoint
        changed since ``result.checkpoint_before`` was read.
        """

    @abstractmethod
    def read_window(
        self, metric: str, size_seconds: int, window_start: datetime
    ) -> dict[str, WindowValue]:
        """Every key of one window, merged across shards."""


class WindowResults(ABC):
    """Where result rows are published, and read back."""

    @abstractmethod
    def write(self, rows: Sequence[ResultRow]) -> int:
        """Upsert the rows; a stored row of a higher state version is kept. Returns rows written."""

    @abstractmethod
    def rows(self, metric: str, size_seconds: int) -> list[ResultRow]:
        """Every stored row of one metric and size, in window then key order."""


# --- Sessionizer ------------------------------------------------------------------------------


class SessionStateStore(ABC):
    """Open per-key states of a shard, an index of when they close, and the atomic commit."""

    @abstractmethod
    def load(
        self, consumer: str, shard_id: str, keys: Iterable[SessionKey]
    ) -> dict[SessionKey, KeyState]:
        """The stored states of ``keys`` (keys with nothing open are left out)."""

    @abstractmethod
    def due(
        self, consumer: str, shard_id: str, watermark: datetime, limit: int
    ) -> list[SessionKey]:
        """Up to ``limit`` keys that close something at ``watermark``, earliest first."""

    @abstractmethod
    def registered(
        self, consumer: str, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registry of first occurrences in ``buckets``, strongly consistent
        (:mod:`clickstream.core.first_occurrences`); buckets with nothing registered are left
        out."""

    @abstractmethod
    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        """Write the changes, the registrations and the checkpoint atomically; CheckpointConflict
        if it moved."""


class MinuteSessionSink(ABC):
    """Where per-minute rows go (Firehose to ``aggregated/``)."""

    @abstractmethod
    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row (raise if some cannot be)."""


class GapSessionSink(ABC):
    """Where closed gap sessions go (Firehose to ``sessions/``)."""

    @abstractmethod
    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """Deliver the sessions closed by one commit, at least once (a repeated commit delivers
        them again, with the same ``session_id``); the shard and the sequence numbers name the
        commit. Raises if it cannot."""


# --- Quarantine -------------------------------------------------------------------------------


class QuarantineSink(ABC):
    """Where records that will never be processed are kept, with their reasons."""

    @abstractmethod
    def put(self, records: Sequence[RejectedRecord]) -> None:
        """Store the records durably (one object per call, idempotently). Raises if it cannot."""


# --- Record stream (the producer's) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record to put: its bytes, its partition key and, for reporting, its event id(s).

    A packed record holds several events' lines: ``packed_event_ids`` names them all, and
    ``explicit_hash_key`` sends it to the shard they hash to.
    """

    data: bytes
    partition_key: str
    event_id: str | None = None
    packed_event_ids: tuple[str, ...] = ()
    explicit_hash_key: str | None = None

    @property
    def event_ids(self) -> tuple[str | None, ...]:
        """The events the record holds, for reporting: one entry per event."""
        return self.packed_event_ids or (self.event_id,)


@dataclass(frozen=True)
class PutOutcome:
    """What the stream did with one record: ``error_code`` is None when it was accepted."""

    error_code: str | None
    error_message: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the stream accepted the record."""
        return self.error_code is None


class RecordStream(ABC):
    """A stream that accepts batches of records and answers record by record."""

    @abstractmethod
    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        """Put a batch; return one outcome per record, in order.

        Raises when the whole call fails (throttling, network, missing stream...).
        """

    def shard_map(self) -> ShardMap | None:
        """The open shards' hash key ranges, for packing events per shard; None when unknown
        (then every event is its own record)."""
        return None


# --- Search index -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What the index did with one bulk action: ``error`` is None when it was indexed."""

    id: str
    status: int
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the document was written."""
        return self.error is None and 200 <= self.status < 300


class SearchIndexError(RuntimeError):
    """A whole request failed: nothing in it is known to be indexed."""


class SearchUnavailable(SearchIndexError):
    """The index stayed unreachable or overloaded through every retry."""


class SearchIndex(ABC):
    """Where event documents are indexed."""

    @abstractmethod
    def ensure_template(self) -> None:
        """Create or update the index template (idempotent). Raises :class:`SearchIndexError`."""

    @abstractmethod
    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """Index the actions in one request; one result per action, in order.

        Raises :class:`SearchIndexError` when the request as a whole fails.
        """


# --- One ports object per consumer ------------------------------------------------------------


@dataclass(frozen=True)
class WindowCounterPorts:
    """Everything the window counter talks to."""

    checkpoints: CheckpointStore
    state: WindowStateStore
    results: WindowResults
    quarantine: QuarantineSink
    shards: StreamShards


@dataclass(frozen=True)
class SessionizerPorts:
    """Everything the sessionizer talks to (closing idle keys needs no quarantine)."""

    checkpoints: CheckpointStore
    state: SessionStateStore
    minute_sink: MinuteSessionSink
    gap_sink: GapSessionSink
    quarantine: QuarantineSink | None = None


@dataclass(frozen=True)
class SearchIndexerPorts:
    """Everything the search indexer talks to."""

    index: SearchIndex
    quarantine: QuarantineSink
