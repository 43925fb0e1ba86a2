"""The window counter: one Lambda batch in, window state and result rows out; and its finalizer.

The rules are :mod:`clickstream.core.window_counting`; this driver applies them through one
:class:`~clickstream.ports.WindowCounterPorts` object. :func:`run_batch` commits one shard batch
exactly once in effect (docs/architecture.md, Stream semantics: Exactly once): load the
checkpoint, process, quarantine the invalid records, apply the state and the checkpoint
together, and on :class:`~clickstream.core.checkpoints.CheckpointConflict` start again from the
fresh checkpoint (:class:`~clickstream.core.retry.ConflictRetry`). :func:`handle_batch` then
rewrites the result rows of every window the batch touched; :func:`finalize` advances the
watermark of idle shards on processing time (or to the end of the stream) and rewrites the rows
of windows that became final.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from clickstream.core.checkpoints import (
    CheckpointConflict,
    ShardCheckpoint,
    combined_watermark,
    state_version,
)
from clickstream.core.records import ParsedRecord
from clickstream.core.retry import ConflictRetry
from clickstream.core.window_counting import (
    ResultRow,
    ShardBatchResult,
    process_shard_batch,
    window_rows,
    windows_of,
)
from clickstream.core.windows import END_OF_STREAM, METRIC_WINDOW_SIZES, WindowKey
from clickstream.ports import CheckpointStore, WindowCounterPorts, WindowStateStore
from clickstream.settings import WindowCounterSettings

CONSUMER = "window-counter"
DEFAULT_COMMIT_ATTEMPTS = 3
"""How many times :func:`run_batch` recomputes a batch whose checkpoint changed under it."""


@dataclass(frozen=True)
class BatchReport:
    """What one invocation did, for logs and metrics."""

    records: int
    already_applied: int
    quarantined: int
    duplicates: int
    late: int
    state_writes: int
    result_rows: int
    stale_rows: int
    """Rows not written because another writer had stored one from newer state."""
    iterator_age_ms: int


def run_batch(
    records: Sequence[ParsedRecord],
    shard_id: str,
    consumer: str,
    ports: WindowCounterPorts,
    *,
    allowed_lateness: timedelta,
    now: datetime,
    attempts: int = DEFAULT_COMMIT_ATTEMPTS,
) -> ShardBatchResult:
    """Process and commit one shard batch; recompute from a fresh checkpoint on a conflict.

    The batch's invalid records go to ``ports.quarantine`` before the commit: once the commit
    makes them "applied", a redelivered batch skips them, so storing them afterwards could lose
    them. Raises :class:`CheckpointConflict` when the checkpoint keeps changing for ``attempts``
    tries, so the batch fails and is redelivered.
    """

    def attempt() -> ShardBatchResult:
        checkpoint = ports.checkpoints.load(consumer, shard_id)
        result = process_shard_batch(
            records, checkpoint, allowed_lateness=allowed_lateness, now=now
        )
        if not result.has_new_records:
            return result
        if result.quarantined:
            ports.quarantine.put(list(result.quarantined))
        ports.state.apply(result)
        return result

    return ConflictRetry(attempts).run(attempt)


def handle_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    now: datetime,
) -> BatchReport:
    """Count one Lambda batch (parsed records by shard, in order) and rewrite touched rows."""
    totals: dict[str, int] = defaultdict(int)
    oldest_arrival: datetime | None = None
    for shard_id, records in batch.items():
        result = run_batch(
            records,
            shard_id,
            CONSUMER,
            ports,
            allowed_lateness=settings.allowed_lateness,
            now=now,
        )
        touched = set(result.deltas) | windows_of(records)
        rows = materialize(
            ports.state, ports.checkpoints, CONSUMER, ports.shards.shard_ids(), touched
        )
        written = ports.results.write(rows)
        totals["records"] += result.received
        totals["already_applied"] += result.already_applied
        totals["quarantined"] += len(result.quarantined)
        totals["duplicates"] += result.duplicates
        totals["late"] += result.late
        totals["state_writes"] += len(result.deltas) + (1 if result.has_new_records else 0)
        totals["result_rows"] += written
        totals["stale_rows"] += len(rows) - written
        first = records[0].record.arrival if records else None
        if first is not None:
            oldest_arrival = first if oldest_arrival is None else min(oldest_arrival, first)
    age = 0 if oldest_arrival is None else int((now - oldest_arrival).total_seconds() * 1000)
    return BatchReport(iterator_age_ms=max(0, age), **totals)


def finalize(
    *,
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    shard_ids: list[str],
    now: datetime,
    close_all: bool = False,
) -> int:
    """Advance idle shards' watermarks (or end the stream) and rewrite newly final windows.

    Returns how many rows were rewritten. A shard whose checkpoint changes meanwhile is left to
    its consumer (its next batch carries the newer watermark).
    """
    checkpoints = ports.checkpoints
    known = {c.shard_id: c for c in checkpoints.all(CONSUMER)}
    for shard_id in shard_ids:
        current = known.get(shard_id, ShardCheckpoint(CONSUMER, shard_id))
        if close_all:
            advanced = replace(current, watermark=END_OF_STREAM, version=current.version + 1)
        else:
            advanced = current.idle_advanced(now, settings.idle_timeout, settings.allowed_lateness)
        if advanced is current:
            continue
        try:
            checkpoints.save(advanced, current.version)
        except CheckpointConflict:
            continue
    watermark = combined_watermark(checkpoints.all(CONSUMER), shard_ids)
    if watermark is None:
        return 0
    open_windows = [
        WindowKey(metric, size, row.window_start, row.key)
        for metric, sizes in METRIC_WINDOW_SIZES.items()
        for size in sizes
        for row in ports.results.rows(metric, size)
        if not row.final and row.window_end <= watermark
    ]
    rows = materialize(ports.state, checkpoints, CONSUMER, shard_ids, open_windows)
    return ports.results.write(rows)


def materialize(
    store: WindowStateStore,
    checkpoints: CheckpointStore,
    consumer: str,
    shard_ids: Sequence[str],
    touched: Iterable[WindowKey],
) -> list[ResultRow]:
    """Current rows of every window in ``touched`` (all its keys, so ranks are complete).

    The checkpoints are read before the state, so the rows' version never overstates the state.
    """
    current = checkpoints.all(consumer)
    version = state_version(current)
    watermark = combined_watermark(current, list(shard_ids))
    windows = sorted({(key.metric, key.size_seconds, key.window_start) for key in touched})
    rows: list[ResultRow] = []
    for metric, size_seconds, window_start in windows:
        values = store.read_window(metric, size_seconds, window_start)
        rows.extend(window_rows(metric, size_seconds, window_start, values, watermark, version))
    return rows
