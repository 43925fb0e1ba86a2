"""Sending records to a :class:`~clickstream.ports.RecordStream`.

Records go out in PutRecords-sized chunks (500 records, 5 MiB). Failed entries, and whole calls
that fail for throttling or transient reasons, are retried with exponential backoff and full
jitter within a bounded budget. Whatever is still unaccepted is reported, never dropped.

**Packing.** When the stream knows its shards (:meth:`RecordStream.shard_map`), the events sent
together are packed into records of at most :data:`PACKED_RECORD_BYTES`, each holding only events
of one shard, one JSON line each, and sent to that shard by an explicit hash key
(:func:`pack_events`). Kinesis bills a PUT payload unit per 25 KB of a record and Firehose bills
every record as at least 5 KB, so a 200-byte event alone in its record pays for 5 KB of Firehose
ingestion; packed, the stream's consumers and ``rawdata/`` still see one event per line. Reports
count events, not records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from clickstream.core.events import Event
from clickstream.core.retry import RetryPolicy
from clickstream.core.shard_map import ShardMap
from clickstream.ports import RecordStream, StreamRecord

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
"""PutRecords limits; sizes count the data plus the UTF-8 partition key."""
PACKED_RECORD_BYTES = 25 * 1024
"""A packed record's data stays within one 25 KB PUT payload unit (five 5 KB Firehose units)."""
PACKING_WINDOW_EVENTS = 5_000
"""Unpaced sending packs this many events at a time."""
FLUSH_INTERVAL_SECONDS = 0.25
"""Paced sending puts what it holds at least this often (and whenever 500 events wait)."""

RETRYABLE_ERROR_CODES: frozenset[str] = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottlingException",
    }
)
"""Error codes of whole PutRecords calls that are worth retrying."""

# (event_id, error_code, error_message)
Unaccepted = tuple[str | None, str, str]


DEFAULT_RETRY_POLICY = RetryPolicy()
"""At most 8 PutRecords calls per chunk."""


@dataclass
class SendReport:
    """Running totals of a send; ``unaccepted`` lists (event_id, error_code, message)."""

    sent: int = 0
    accepted: int = 0
    put_calls: int = 0
    retried_records: int = 0
    unaccepted: list[Unaccepted] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, for logs and the Lambda response."""
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "unaccepted_count": len(self.unaccepted),
            "put_calls": self.put_calls,
            "retried_records": self.retried_records,
            "unaccepted": [
                {"event_id": event_id, "error_code": code, "message": message}
                for event_id, code, message in self.unaccepted
            ],
        }


class PutResult(NamedTuple):
    """What :func:`put_with_retry` did with one chunk."""

    accepted: int
    unaccepted: list[Unaccepted]
    put_calls: int
    retried: int


def event_record(event: Event) -> StreamRecord:
    """The stream record of an event: its JSON line, keyed by custid."""
    return StreamRecord(
        data=event.to_json_line(), partition_key=event.partition_key, event_id=event.event_id
    )


def pack_events(
    events: Iterable[Event], shards: ShardMap, max_record_bytes: int = PACKED_RECORD_BYTES
) -> list[StreamRecord]:
    """The events' JSON lines packed, in order, into records of one shard each
    (:func:`pack_records` of their records)."""
    return pack_records((event_record(event) for event in events), shards, max_record_bytes)


def pack_records(
    records: Iterable[StreamRecord], shards: ShardMap, max_record_bytes: int = PACKED_RECORD_BYTES
) -> list[StreamRecord]:
    """Records of one event each packed, in order, into records of one shard each.

    A record of one event (an ``event_id``, data ending with a newline) joins the open pack of
    the shard its partition key hashes to while the pack's data stays within
    ``max_record_bytes``; a longer one is a record alone. A packed record's partition key is its
    first event's, and its explicit hash key the start of its shard's range, so Kinesis puts it
    on the shard each of its events hashes to. Any other record (an invalid line sent on
    purpose) goes out as it is. Records come out as they fill, then the open packs in the order
    of their first event.
    """
    out: list[StreamRecord] = []
    packs: dict[str, tuple[int, list[StreamRecord]]] = {}
    sizes: dict[str, int] = {}
    for record in records:
        if record.event_id is None or record.packed_event_ids or not record.data.endswith(b"\n"):
            out.append(record)
            continue
        hash_range = shards.range_for(record.partition_key)
        shard = hash_range.shard_id
        if shard in packs and sizes[shard] + len(record.data) > max_record_bytes:
            out.append(_packed(*packs.pop(shard)))
        if shard not in packs:
            packs[shard], sizes[shard] = (hash_range.start, []), 0
        packs[shard][1].append(record)
        sizes[shard] += len(record.data)
    out.extend(_packed(start, pack) for start, pack in packs.values())
    return out


def _packed(hash_range_start: int, records: list[StreamRecord]) -> StreamRecord:
    first = records[0]
    return StreamRecord(
        data=b"".join(record.data for record in records),
        partition_key=first.partition_key,
        event_id=first.event_id,
        packed_event_ids=tuple(record.event_id or "" for record in records),
        explicit_hash_key=str(hash_range_start),
    )


def packed_windows(
    records: Iterable[StreamRecord], shards: ShardMap | None, window: int = PACKING_WINDOW_EVENTS
) -> Iterator[StreamRecord]:
    """The records, packed per shard ``window`` at a time when the shards are known."""
    if shards is None:
        yield from records
        return
    pending: list[StreamRecord] = []
    for record in records:
        pending.append(record)
        if len(pending) == window:
            yield from pack_records(pending, shards)
            pending = []
    yield from pack_records(pending, shards)


def stream_records(events: list[Event], shards: ShardMap | None) -> list[StreamRecord]:
    """The records of events sent together: packed per shard when the shards are known."""
    if shards is None:
        return [event_record(event) for event in events]
    return pack_events(events, shards)


def record_size(record: StreamRecord) -> int:
    """Bytes a record counts for in PutRecords limits: data plus UTF-8 partition key."""
    return len(record.data) + len(record.partition_key.encode("utf-8"))


def chunk_records(
    records: Iterable[StreamRecord],
    max_records: int = MAX_RECORDS_PER_CALL,
    max_bytes: int = MAX_BYTES_PER_CALL,
) -> Iterator[list[StreamRecord]]:
    """Group records, in order, into chunks that one PutRecords call accepts."""
    if max_records < 1 or max_bytes < 1:
        raise ValueError("max_records and max_bytes must be positive")
    chunk: list[StreamRecord] = []
    chunk_bytes = 0
    for record in records:
        size = record_size(record)
        if size > MAX_BYTES_PER_RECORD:
            raise ValueError(
                f"record {record.event_id or '(no event id)'} is {size} bytes with its key, "
                f"over the {MAX_BYTES_PER_RECORD}-byte PutRecords limit"
            )
        if chunk and (len(chunk) >= max_records or chunk_bytes + size > max_bytes):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(record)
        chunk_bytes += size
    if chunk:
        yield chunk


def is_retryable(error: Exception) -> bool:
    """True for throttling, transient service errors and connection failures."""
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in RETRYABLE_ERROR_CODES
    return isinstance(error, BotocoreConnectionError | HTTPClientError | ConnectionError)


def put_with_retry(
    stream: RecordStream,
    records: list[StreamRecord],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
) -> PutResult:
    """Put one chunk, resending only what failed, until accepted or the budget is spent.

    Raises the error of a whole call that is not retryable (e.g. a missing stream).
    """
    pending = list(records)
    errors: list[tuple[str, str]] = []
    accepted = put_calls = retried = 0
    for attempt in range(1, policy.max_attempts + 1):
        if not pending:
            break
        if attempt > 1:
            sleep(policy.delay(attempt - 1, rng))
            retried += len(pending)
        put_calls += 1
        try:
            outcomes = stream.put_records(pending)
        except Exception as error:
            if not is_retryable(error):
                raise
            errors = [_call_error(error)] * len(pending)
            continue
        if len(outcomes) != len(pending):
            raise RuntimeError(f"stream answered {len(outcomes)} outcomes for {len(pending)}")
        failed: list[StreamRecord] = []
        errors = []
        for record, outcome in zip(pending, outcomes, strict=True):
            if outcome.error_code is None:
                accepted += len(record.event_ids)
            else:
                failed.append(record)
                errors.append((outcome.error_code, outcome.error_message or ""))
        pending = failed
    unaccepted = [
        (event_id, code, message)
        for record, (code, message) in zip(pending, errors, strict=True)
        for event_id in record.event_ids
    ]
    return PutResult(accepted, unaccepted, put_calls, retried)


def send_records(
    records: Iterable[StreamRecord],
    stream: RecordStream,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Send records as fast as possible, in PutRecords chunks, with retries."""
    sender = _Sender(stream, policy, sleep, rng or random.Random(), on_progress)
    sender.send(records)
    return sender.report


def send_events(
    events: Iterable[Event],
    stream: RecordStream,
    *,
    pace: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_progress: Callable[[SendReport], None] | None = None,
    flush_interval: float = FLUSH_INTERVAL_SECONDS,
) -> SendReport:
    """Send events as JSON lines keyed by custid, packed per shard when the stream knows them.

    With ``pace``, an event is sent no earlier than its event time after the first event's,
    counted from the call; events wait at most ``flush_interval`` seconds (or until 500 are
    buffered) before they are packed and put. Without ``pace``, events go out as fast as
    possible, packed :data:`PACKING_WINDOW_EVENTS` at a time. ``on_progress`` receives the running
    report after each chunk.
    """
    shards = stream.shard_map()
    sender = _Sender(stream, policy, sleep, rng or random.Random(), on_progress)
    if not pace:
        sender.send(packed_windows((event_record(event) for event in events), shards))
        return sender.report
    started = clock()
    first: datetime | None = None
    buffer: list[Event] = []
    flush_at = started
    for event in events:
        if first is None:
            first = event.trans_timestamp
        due = started + (event.trans_timestamp - first).total_seconds()
        while (now := clock()) < due:
            if buffer and flush_at <= due:
                sleep(max(0.0, flush_at - now))
                sender.send(stream_records(buffer, shards))
                buffer = []
            else:
                sleep(due - now)
        if not buffer:
            flush_at = clock() + flush_interval
        buffer.append(event)
        if len(buffer) >= MAX_RECORDS_PER_CALL or clock() >= flush_at:
            sender.send(stream_records(buffer, shards))
            buffer = []
    if buffer:
        sender.send(stream_records(buffer, shards))
    return sender.report


class _Sender:
    """Chunks records, puts each chunk with retries and keeps the running report."""

    def __init__(
        self,
        stream: RecordStream,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        rng: random.Random,
        on_progress: Callable[[SendReport], None] | None,
    ) -> None:
        self._stream = stream
        self._policy = policy
        self._sleep = sleep
        self._rng = rng
        self._on_progress = on_progress
        self.report = SendReport()

    def send(self, records: Iterable[StreamRecord]) -> None:
        for chunk in chunk_records(records):
            result = put_with_retry(self._stream, chunk, self._policy, self._sleep, self._rng)
            self.report.sent += sum(len(record.event_ids) for record in chunk)
            self.report.accepted += result.accepted
            self.report.put_calls += result.put_calls
            self.report.retried_records += result.retried
            self.report.unaccepted.extend(result.unaccepted)
            if self._on_progress is not None:
                self._on_progress(self.report)


def _call_error(error: Exception) -> tuple[str, str]:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return details.get("Code", "ClientError"), details.get("Message", str(error))
    return type(error).__name__, str(error)
