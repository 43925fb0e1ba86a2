"""The window counter consumer: one Lambda batch in, window results out; and its finalizer.

``handle_batch`` runs each shard's records through :func:`clickstream.window_counter.run_batch`
(exactly once in effect, see ``clickstream.checkpoints``), quarantines invalid records with their
reasons, and rewrites the result rows of every window the batch touched. ``finalize`` advances
the watermark of idle shards on processing time (or to the end of the stream) and rewrites the
rows of windows that became final.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.checkpoints import (
    CheckpointConflict,
    CheckpointStore,
    ShardCheckpoint,
    combined_watermark,
)
from clickstream.events import InvalidEvent, parse_event
from clickstream.quarantine import QuarantinedRecord as QuarantineEntry
from clickstream.quarantine import QuarantineSink
from clickstream.settings import required, seconds
from clickstream.window_counter import QuarantinedRecord, ShardRecord, run_batch
from clickstream.window_results import DynamoWindowResults, materialize
from clickstream.window_store import WindowStateStore
from clickstream.windows import END_OF_STREAM, METRIC_WINDOW_SIZES, WindowKey, window_keys

CONSUMER = "window-counter"


@dataclass(frozen=True)
class WindowCounterSettings:
    """Configuration from the environment."""

    state_table: str
    results_table: str
    stream_name: str
    quarantine_bucket: str
    quarantine_prefix: str
    allowed_lateness: timedelta
    idle_timeout: timedelta
    retention_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WindowCounterSettings:
        """Read the settings; a missing required variable raises ValueError naming it."""
        return cls(
            state_table=required(env, "STATE_TABLE"),
            results_table=required(env, "RESULTS_TABLE"),
            stream_name=required(env, "STREAM_NAME"),
            quarantine_bucket=required(env, "QUARANTINE_BUCKET"),
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "quarantine/window-counter/"),
            allowed_lateness=seconds(env, "ALLOWED_LATENESS_SECONDS", 30),
            idle_timeout=seconds(env, "IDLE_TIMEOUT_SECONDS", 60),
            retention_days=int(env.get("STATE_RETENTION_DAYS", "7")),
        )


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


def shard_records(event: Mapping[str, Any]) -> dict[str, list[ShardRecord]]:
    """The Lambda Kinesis event's records grouped by shard, in order."""
    by_shard: dict[str, list[ShardRecord]] = defaultdict(list)
    for record in event.get("Records", []):
        shard_id = record["eventID"].split(":", 1)[0]
        kinesis = record["kinesis"]
        by_shard[shard_id].append(
            ShardRecord(
                sequence_number=kinesis["sequenceNumber"],
                data=base64.b64decode(kinesis["data"]),
                arrival=datetime.fromtimestamp(kinesis["approximateArrivalTimestamp"], UTC),
            )
        )
    return dict(by_shard)


def windows_of(records: list[ShardRecord]) -> set[WindowKey]:
    """Every window key the valid records of a batch fall in, applied before or not.

    Rows are rewritten for these, so a batch redelivered after a crash between its commit and
    its result rows (its records all applied already) still writes those rows.
    """
    keys: set[WindowKey] = set()
    for record in records:
        try:
            keys.update(window_keys(parse_event(record.data)))
        except InvalidEvent:
            continue
    return keys


def handle_batch(
    event: Mapping[str, Any],
    *,
    settings: WindowCounterSettings,
    checkpoints: CheckpointStore,
    state: WindowStateStore,
    results: DynamoWindowResults,
    quarantine: QuarantineSink,
    shard_ids: Callable[[], list[str]],
    now: datetime,
) -> BatchReport:
    """Count one Lambda batch into the window state and rewrite the touched windows' rows."""
    totals: dict[str, int] = defaultdict(int)
    oldest_arrival: datetime | None = None
    for shard_id, records in shard_records(event).items():
        result = run_batch(
            records,
            shard_id,
            CONSUMER,
            checkpoints=checkpoints,
            state=state,
            allowed_lateness=settings.allowed_lateness,
            now=now,
            quarantine=_storing_in(quarantine, shard_id, records),
        )
        touched = set(result.deltas) | windows_of(records)
        rows = materialize(state, checkpoints, CONSUMER, shard_ids(), touched)
        written = results.write(rows)
        totals["records"] += result.received
        totals["already_applied"] += result.already_applied
        totals["quarantined"] += len(result.quarantined)
        totals["duplicates"] += result.duplicates
        totals["late"] += result.late
        totals["state_writes"] += len(result.deltas) + (1 if result.has_new_records else 0)
        totals["result_rows"] += written
        totals["stale_rows"] += len(rows) - written
        first = records[0].arrival
        oldest_arrival = first if oldest_arrival is None else min(oldest_arrival, first)
    age = 0 if oldest_arrival is None else int((now - oldest_arrival).total_seconds() * 1000)
    return BatchReport(iterator_age_ms=max(0, age), **totals)


def _storing_in(
    quarantine: QuarantineSink, shard_id: str, records: Sequence[ShardRecord]
) -> Callable[[Sequence[QuarantinedRecord]], None]:
    """Store a shard batch's rejected records, with their data and arrival, in ``quarantine``."""
    by_sequence = {record.sequence_number: record for record in records}

    def store(rejected: Sequence[QuarantinedRecord]) -> None:
        quarantine.put(
            [
                QuarantineEntry(
                    sequence_number=item.sequence_number,
                    shard_id=shard_id,
                    reason=item.reason,
                    data=by_sequence[item.sequence_number].data,
                    arrival=by_sequence[item.sequence_number].arrival,
                )
                for item in rejected
            ]
        )

    return store


def finalize(
    *,
    settings: WindowCounterSettings,
    checkpoints: CheckpointStore,
    state: WindowStateStore,
    results: DynamoWindowResults,
    shard_ids: list[str],
    now: datetime,
    close_all: bool = False,
) -> int:
    """Advance idle shards' watermarks (or end the stream) and rewrite newly final windows.

    Returns how many rows were rewritten. A shard whose checkpoint changes meanwhile is left to
    its consumer (its next batch carries the newer watermark).
    """
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
        for row in results.rows(metric, size)
        if not row.final and row.window_end <= watermark
    ]
    rows = materialize(state, checkpoints, CONSUMER, shard_ids, open_windows)
    return results.write(rows)
