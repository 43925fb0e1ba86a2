"""The window counter: one Lambda batch in, window state and result rows out; and its finalizer.

The rules are :mod:`clickstream.core.window_counting`; this driver applies them through one
:class:`~clickstream.ports.WindowCounterPorts` object. :func:`run_batch` commits one shard batch
exactly once in effect (docs/architecture.md, Stream semantics: Exactly once): load the
checkpoint, process, quarantine the invalid records, apply the state and the checkpoint
together, and on :class:`~clickstream.core.checkpoints.CheckpointConflict` start again from the
fresh checkpoint (:class:`~clickstream.core.retry.ConflictRetry`). :func:`handle_batch` then
rewrites the result rows of the keys the batch touched (:func:`materialize`); :func:`finalize`
advances the watermark of idle shards on processing time (or to the end of the stream) and
rewrites the rows of windows that became final.

**Partial batch failures** (docs/architecture.md, Stream semantics: Partial batch failures): a
record that makes the rules raise is located without I/O (:func:`~clickstream.core.
batch_failures.processable_prefix`); the records before it commit and the report names it, so
Lambda retries from it. A failed read or commit names the first record not committed.

**Redrive** (docs/architecture.md, Stream semantics: Redrive): :func:`redrive_batch` applies a
batch Lambda kept in the on-failure bucket, whose records the shard checkpoint already covers.
Its sets are unioned into the state (a record applied before changes nothing) and its events
are judged late against the shard's current watermark; the checkpoint keeps its sequence number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from clickstream.core.batch_failures import (
    RecordFailure,
    describe,
    partial_batch_response,
    processable_prefix,
)
from clickstream.core.checkpoints import (
    CheckpointConflict,
    ShardCheckpoint,
    combined_watermark,
    sequence_key,
    state_version,
)
from clickstream.core.first_occurrences import buckets_of, part_length
from clickstream.core.records import ParsedRecord
from clickstream.core.retry import ConflictRetry
from clickstream.core.window_counting import (
    ResultRow,
    ShardBatchResult,
    process_shard_batch,
    window_rows,
    windows_of,
)
from clickstream.core.windows import END_OF_STREAM, METRIC_WINDOW_SIZES, TOP_SOURCES, WindowKey
from clickstream.ports import CheckpointStore, WindowCounterPorts, WindowStateStore
from clickstream.settings import WindowCounterSettings

CONSUMER = "window-counter"
DEFAULT_COMMIT_ATTEMPTS = 3
"""How many times :func:`run_batch` recomputes a batch whose checkpoint changed under it."""


@dataclass(frozen=True)
class BatchReport:
    """What one invocation did, for logs, metrics and the Lambda response.

    Every record is accounted for once: ``records = already_applied + quarantined + valid +
    failed``, where ``valid`` includes the ``duplicates``.
    """

    records: int
    already_applied: int
    quarantined: int
    valid: int
    duplicates: int
    late: int
    failed: int
    """Records not committed, left for the retry: each failed shard's first one and the rest."""
    state_writes: int
    result_rows: int
    stale_rows: int
    """Rows not written because another writer had stored one from newer state."""
    iterator_age_ms: int
    failures: tuple[RecordFailure, ...] = ()
    """Where each unfinished shard resumes, and why."""

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response: the record each unfinished shard resumes at."""
        return partial_batch_response(failure.sequence_number for failure in self.failures)


@dataclass(frozen=True)
class ShardCommit:
    """One shard batch's commit: the records it covers, and the failure that stopped it.

    ``result`` is the rules' result on the batch's first ``result.received`` records, all
    committed (or applied before). ``failure`` names the record the retry must start from: the
    one the rules raise on, or the first not committed when a read or the commit failed.
    """

    result: ShardBatchResult
    failure: RecordFailure | None = None


def run_batch(
    records: Sequence[ParsedRecord],
    shard_id: str,
    consumer: str,
    ports: WindowCounterPorts,
    *,
    allowed_lateness: timedelta,
    now: datetime,
    attempts: int = DEFAULT_COMMIT_ATTEMPTS,
    redrive: bool = False,
) -> ShardCommit:
    """Commit the longest prefix of one shard batch that the rules process.

    The shard's registry of first occurrences is read after the checkpoint, for the buckets the
    new events fall in; the commit is conditional on that checkpoint, so no commit slips in
    between. The prefix's invalid records go to ``ports.quarantine`` before the commit: once the
    commit makes them "applied", a redelivered batch skips them, so storing them afterwards
    could lose them. With ``redrive``, no record counts as applied already (see the module
    docstring).

    Never raises: a record that makes the rules raise ends the prefix, and a failed read or
    commit (or a checkpoint that keeps changing for ``attempts`` tries,
    :class:`CheckpointConflict`) commits nothing new; ``ShardCommit.failure`` says which.
    """

    def attempt() -> ShardCommit:
        checkpoint = ports.checkpoints.load(consumer, shard_id)
        basis = replace(checkpoint, sequence_number=None) if redrive else checkpoint
        new_events = [
            record.event
            for record in records
            if record.event is not None and not basis.applied(record.sequence_number)
        ]
        registered = ports.state.registered(shard_id, buckets_of(new_events))

        def rules(count: int) -> ShardBatchResult:
            return process_shard_batch(
                records[:count],
                basis,
                allowed_lateness=allowed_lateness,
                now=now,
                registered=registered,
            )

        prefix = processable_prefix(len(records), rules)
        result = _redriven(prefix.result, checkpoint, now) if redrive else prefix.result
        poison = None
        if prefix.error is not None:
            poison = RecordFailure(
                shard_id, records[prefix.length].sequence_number, prefix.error, poison=True
            )
        if result.has_new_records:
            if result.quarantined:
                ports.quarantine.put(list(result.quarantined))
            ports.state.apply(result)
        return ShardCommit(result, poison)

    try:
        return ConflictRetry(attempts).run(attempt)
    except Exception as error:  # a read or the commit failed: nothing new is committed
        return _not_committed(
            records, shard_id, consumer, ports, error, allowed_lateness, now, redrive=redrive
        )


def _redriven(
    result: ShardBatchResult, checkpoint: ShardCheckpoint, now: datetime
) -> ShardBatchResult:
    """A redriven prefix's result, committed under the shard's own checkpoint.

    The sequence number never goes back, and the event time and the watermark only rise. The
    processing time of the last event moves to ``now`` only when the redrive raised the event
    time, so an idle shard's watermark does not jump by the time the records were kept.
    """
    if not result.has_new_records:
        return replace(result, checkpoint_before=checkpoint, checkpoint=checkpoint)
    computed = result.checkpoint
    raised = computed.max_event_time != checkpoint.max_event_time
    committed = replace(
        computed,
        sequence_number=_later_sequence(checkpoint.sequence_number, computed.sequence_number),
        last_event_at=now
        if raised or checkpoint.last_event_at is None
        else checkpoint.last_event_at,
    )
    return replace(result, checkpoint_before=checkpoint, checkpoint=committed)


def _later_sequence(current: str | None, candidate: str | None) -> str | None:
    if current is None or candidate is None:
        return current or candidate
    return max(current, candidate, key=sequence_key)


def handle_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    now: datetime,
) -> BatchReport:
    """Count one Lambda batch (parsed records by shard, in order) and rewrite touched rows.

    Never raises for a shard: what stops one is reported (:attr:`BatchReport.failures`), and
    the other shards go on.
    """
    return _count(batch, settings, ports, now, redrive=False)


def redrive_batch(
    batch: Mapping[str, Sequence[ParsedRecord]],
    *,
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    now: datetime,
) -> BatchReport:
    """Count a batch the on-failure destination kept, exactly once in effect (module docstring)."""
    return _count(batch, settings, ports, now, redrive=True)


def _count(
    batch: Mapping[str, Sequence[ParsedRecord]],
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    now: datetime,
    *,
    redrive: bool,
) -> BatchReport:
    totals: dict[str, int] = defaultdict(int)
    failures: list[RecordFailure] = []
    oldest_arrival: datetime | None = None
    for shard_id, records in batch.items():
        commits = _commit_parts(records, shard_id, settings, ports, now, redrive=redrive)
        failures.extend(commit.failure for commit in commits if commit.failure)
        received = sum(commit.result.received for commit in commits)
        if received > 0:
            try:
                written, total = _rewrite_rows(
                    ports, [commit.result for commit in commits], records[:received]
                )
            except Exception as error:  # the retry finds the records applied and rewrites them
                written = total = 0
                failures.append(_io_failure(records[0], error))
            totals["result_rows"] += written
            totals["stale_rows"] += total - written
        totals["records"] += len(records)
        totals["failed"] += len(records) - received
        for result in (commit.result for commit in commits):
            totals["already_applied"] += result.already_applied
            totals["quarantined"] += len(result.quarantined)
            totals["valid"] += result.valid
            totals["duplicates"] += result.duplicates
            totals["late"] += result.late
            totals["state_writes"] += (
                len(result.deltas)
                + len(result.registrations)
                + (1 if result.has_new_records else 0)
            )
        first = records[0].record.arrival if records else None
        if first is not None:
            oldest_arrival = first if oldest_arrival is None else min(oldest_arrival, first)
    age = 0 if oldest_arrival is None else int((now - oldest_arrival).total_seconds() * 1000)
    return BatchReport(
        records=totals["records"],
        already_applied=totals["already_applied"],
        quarantined=totals["quarantined"],
        valid=totals["valid"],
        duplicates=totals["duplicates"],
        late=totals["late"],
        failed=totals["failed"],
        state_writes=totals["state_writes"],
        result_rows=totals["result_rows"],
        stale_rows=totals["stale_rows"],
        iterator_age_ms=max(0, age),
        failures=tuple(failures),
    )


def _commit_parts(
    records: Sequence[ParsedRecord],
    shard_id: str,
    settings: WindowCounterSettings,
    ports: WindowCounterPorts,
    now: datetime,
    *,
    redrive: bool,
) -> list[ShardCommit]:
    """Commit one shard's records in parts of at most ``MAX_BUCKETS_PER_COMMIT`` registry
    buckets (:func:`~clickstream.core.first_occurrences.part_length`), until one stops short."""
    commits: list[ShardCommit] = []
    position = 0
    while position < len(records) or not commits:
        part = records[position : position + part_length(records[position:])]
        commit = run_batch(
            part,
            shard_id,
            CONSUMER,
            ports,
            allowed_lateness=settings.allowed_lateness,
            now=now,
            redrive=redrive,
        )
        commits.append(commit)
        position += commit.result.received
        if commit.failure is not None or commit.result.received < len(part):
            break
    return commits


def _rewrite_rows(
    ports: WindowCounterPorts,
    results: Sequence[ShardBatchResult],
    committed: Sequence[ParsedRecord],
) -> tuple[int, int]:
    """Rewrite the rows of every window the committed records fall in: (written, computed)."""
    touched = {key for result in results for key in result.deltas} | windows_of(committed)
    rows = materialize(ports.state, ports.checkpoints, CONSUMER, ports.shards.shard_ids(), touched)
    return ports.results.write(rows), len(rows)


def _not_committed(
    records: Sequence[ParsedRecord],
    shard_id: str,
    consumer: str,
    ports: WindowCounterPorts,
    error: Exception,
    allowed_lateness: timedelta,
    now: datetime,
    *,
    redrive: bool,
) -> ShardCommit:
    """After a failed read or commit: the records applied before, as a commit of nothing new,
    and the first record after them as the failure.

    The checkpoint is read again to find them. When that fails too, or for a redrive, none is
    taken as applied: the first record is reported, and the retry skips what was applied.
    """
    checkpoint = ShardCheckpoint(consumer, shard_id)
    if not redrive:
        with suppress(Exception):
            checkpoint = ports.checkpoints.load(consumer, shard_id)
    applied = 0
    while applied < len(records) and checkpoint.applied(records[applied].sequence_number):
        applied += 1
    result = process_shard_batch(
        records[:applied], checkpoint, allowed_lateness=allowed_lateness, now=now
    )
    if applied == len(records):  # all applied before: only the rows are left to write
        return ShardCommit(result)
    return ShardCommit(result, _io_failure(records[applied], error))


def _io_failure(record: ParsedRecord, error: Exception) -> RecordFailure:
    return RecordFailure(
        record.record.shard_id, record.sequence_number, describe(error), poison=False
    )


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
    """Current rows of the keys in ``touched``: a top-sources window's every key, since one
    count moves the others' ranks; a unique-users window's touched keys only.

    A unique-users row depends on its own key's state alone, so the rows of keys a batch did not
    change need no write; the finalizer marks them final once their window closes. The
    checkpoints are read before the state, so the rows' version never overstates the state.
    """
    current = checkpoints.all(consumer)
    version = state_version(current)
    watermark = combined_watermark(current, list(shard_ids))
    keys_by_window: dict[tuple[str, int, datetime], set[str]] = defaultdict(set)
    for key in touched:
        keys_by_window[(key.metric, key.size_seconds, key.window_start)].add(key.key)
    rows: list[ResultRow] = []
    for metric, size_seconds, window_start in sorted(keys_by_window):
        values = store.read_window(metric, size_seconds, window_start)
        if metric != TOP_SOURCES:
            keys = keys_by_window[(metric, size_seconds, window_start)]
            values = {key: value for key, value in values.items() if key in keys}
        rows.extend(window_rows(metric, size_seconds, window_start, values, watermark, version))
    return rows
