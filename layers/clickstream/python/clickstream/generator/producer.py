"""Sending records to a :class:`~clickstream.ports.RecordStream`.

Records go out in PutRecords-sized chunks (500 records, 5 MiB). Failed entries, and whole calls
that fail for throttling or transient reasons, are retried with exponential backoff and full
jitter within a bounded budget. Whatever is still unaccepted is reported, never dropped.
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
from clickstream.ports import RecordStream, StreamRecord

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
"""PutRecords limits; sizes count the data plus the UTF-8 partition key."""

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
                accepted += 1
            else:
                failed.append(record)
                errors.append((outcome.error_code, outcome.error_message or ""))
        pending = failed
    unaccepted = [
        (record.event_id, code, message)
        for record, (code, message) in zip(pending, errors, strict=True)
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
    flush_interval: float = 0.25,
) -> SendReport:
    """Send events as JSON lines keyed by custid.

    With ``pace``, an event is sent no earlier than its event time after the first event's,
    counted from the call; records wait at most ``flush_interval`` seconds (or until 500 are
    buffered) before a PutRecords call. Without ``pace``, events go out as fast as possible.
    ``on_progress`` receives the running report after each chunk.
    """
    if not pace:
        return send_records(
            (event_record(event) for event in events),
            stream,
            policy=policy,
            sleep=sleep,
            rng=rng,
            on_progress=on_progress,
        )
    sender = _Sender(stream, policy, sleep, rng or random.Random(), on_progress)
    started = clock()
    first: datetime | None = None
    buffer: list[StreamRecord] = []
    flush_at = started
    for event in events:
        if first is None:
            first = event.trans_timestamp
        due = started + (event.trans_timestamp - first).total_seconds()
        while (now := clock()) < due:
            if buffer and flush_at <= due:
                sleep(max(0.0, flush_at - now))
                sender.send(buffer)
                buffer = []
            else:
                sleep(due - now)
        if not buffer:
            flush_at = clock() + flush_interval
        buffer.append(event_record(event))
        if len(buffer) >= MAX_RECORDS_PER_CALL or clock() >= flush_at:
            sender.send(buffer)
            buffer = []
    if buffer:
        sender.send(buffer)
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
            self.report.sent += len(chunk)
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
