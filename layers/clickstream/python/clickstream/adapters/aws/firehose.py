"""The sessionizer's output to Firehose: lines packed into few records, on two delivery streams.

Per-minute rows go to the aggregated stream (``aggregated/``), one RFC 4180 line each
(:meth:`MinuteSession.to_csv_line`); closed gap sessions go to the sessions stream
(``sessions/``), one compact JSON line each (:meth:`GapSession.to_json_line`). Every line ends
with ``\\n``. Both sinks deliver through :class:`FirehoseDelivery`: Firehose bills every record
rounded up to 5 KB, so the lines of one ``put`` are packed, in order, into as few records as fit
its 1,000 KiB record limit (:func:`pack_lines`), and the records are cut into PutRecordBatch calls
of at most 500 records and 4 MiB (:func:`record_batches`). Firehose concatenates records as they
are, so the objects hold one row or session per line, exactly as if each line had been its own
record. A record Firehose refuses is sent again whole.

Delivery is at least once: a put repeated after a failure before the commit delivers its lines
again, under the same ids (``sessionid``, ``session_id``); the readers keep one per id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from clickstream.core.sessions import GapSession, MinuteSession
from clickstream.ports import GapSessionSink, MinuteSessionSink

FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_BYTES = 4 * 1024 * 1024
"""PutRecordBatch limits: 500 records and 4 MiB per call."""
FIREHOSE_MAX_RECORD_BYTES = 1_024_000
"""Firehose's limit on one record: 1,000 KiB of data, before base64."""


def pack_lines(
    lines: Sequence[bytes], max_record_bytes: int = FIREHOSE_MAX_RECORD_BYTES
) -> list[bytes]:
    """The lines in order, concatenated into as few records of at most ``max_record_bytes``.

    Every line must end with ``\\n``, so that the records, concatenated, are the lines again.
    A line longer than ``max_record_bytes`` cannot be sent and fails the call.
    """
    records: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for line in lines:
        if not line.endswith(b"\n"):
            raise ValueError(f"a line must end with a newline to be packed: {line[:80]!r}")
        if len(line) > max_record_bytes:
            raise ValueError(
                f"a line of {len(line)} bytes exceeds the {max_record_bytes}-byte record limit"
            )
        if pending and size + len(line) > max_record_bytes:
            records.append(b"".join(pending))
            pending, size = [], 0
        pending.append(line)
        size += len(line)
    if pending:
        records.append(b"".join(pending))
    return records


def record_batches(
    payloads: Sequence[bytes],
    max_records: int = FIREHOSE_MAX_RECORDS,
    max_bytes: int = FIREHOSE_MAX_BYTES,
) -> list[list[bytes]]:
    """The payloads in order, cut into PutRecordBatch calls within both limits."""
    batches: list[list[bytes]] = []
    size = 0
    for payload in payloads:
        if len(payload) > max_bytes:
            raise ValueError(f"a record of {len(payload)} bytes exceeds {max_bytes} bytes")
        if not batches or len(batches[-1]) == max_records or size + len(payload) > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(payload)
        size += len(payload)
    return batches


class DeliveryFailed(RuntimeError):
    """Firehose kept refusing some records after every retry."""


class FirehoseDelivery:
    """Newline-terminated lines to one Direct PUT delivery stream: packed into records, cut into
    PutRecordBatch calls, each refused record sent again whole, with exponential backoff."""

    def __init__(
        self,
        client: Any,
        delivery_stream: str,
        *,
        max_attempts: int = 5,
        base_delay_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        max_record_bytes: int = FIREHOSE_MAX_RECORD_BYTES,
    ) -> None:
        self.client = client
        self.delivery_stream = delivery_stream
        self.max_record_bytes = max_record_bytes
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.sleep = sleep

    def send_lines(self, lines: Sequence[bytes]) -> None:
        """Deliver every line; a line over the record limit fails the call with nothing sent.

        ``DeliveryFailed`` when Firehose still refuses records after ``max_attempts`` calls.
        """
        for batch in record_batches(pack_lines(lines, self.max_record_bytes)):
            self._deliver(batch)

    def _deliver(self, batch: list[bytes]) -> None:
        pending = batch
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(self.base_delay_seconds * 2 ** (attempt - 1))
            response = self.client.put_record_batch(
                DeliveryStreamName=self.delivery_stream,
                Records=[{"Data": payload} for payload in pending],
            )
            if not response.get("FailedPutCount"):
                return
            entries = response["RequestResponses"]
            pending = [
                payload
                for payload, entry in zip(pending, entries, strict=True)
                if entry.get("ErrorCode")
            ]
            if not pending:
                return
        raise DeliveryFailed(
            f"{len(pending)} records refused by {self.delivery_stream} "
            f"after {self.max_attempts} attempts"
        )


class FirehoseMinuteSessionSink(FirehoseDelivery, MinuteSessionSink):
    """One CSV line per row (10 columns, no header, ``\\n``-terminated) to the aggregated stream,
    the lines of a ``put`` packed into records."""

    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row.

        Every row becomes its line, and the lines their records, before anything is sent: a row
        that cannot be written (``UnwritableCsvValue``) or a line over the record limit fails
        the call with nothing delivered.
        """
        self.send_lines([row.to_csv_line().encode("utf-8") for row in rows])


class FirehoseGapSessionSink(FirehoseDelivery, GapSessionSink):
    """One compact JSON line per closed gap session to the sessions stream, the lines of a
    ``put`` packed into records. Firehose names the objects by arrival time, so the commit's
    shard and sequence numbers name none here."""

    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """Deliver every session (at least once: a repeated commit sends them again)."""
        self.send_lines([session.to_json_line().encode("utf-8") for session in sessions])
