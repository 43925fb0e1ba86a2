"""Per-minute session rows to Firehose (``aggregated/``): CSV lines packed into few records.

Each row is one RFC 4180 line (:meth:`MinuteSession.to_csv_line`), ending with ``\\n``. Firehose
bills every record rounded up to 5 KB, so the lines of one ``put`` are packed, in order, into as
few records as fit its 1,000 KiB record limit (:func:`pack_lines`), and the records are cut into
PutRecordBatch calls of at most 500 records and 4 MiB (:func:`record_batches`). Firehose
concatenates records as they are, so the ``aggregated/`` objects hold one row per line, exactly as
if each line had been its own record. A record Firehose refuses is sent again whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from clickstream.core.sessions import MinuteSession
from clickstream.ports import MinuteSessionSink

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


class FirehoseMinuteSessionSink(MinuteSessionSink):
    """One CSV line per row (10 columns, no header, ``\\n``-terminated), the lines of a ``put``
    packed into records, through PutRecordBatch."""

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

    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row; refused records are retried whole, with exponential backoff.

        Every row becomes its line, and the lines their records, before anything is sent: a row
        that cannot be written (``UnwritableCsvValue``) or a line over the record limit fails
        the call with nothing delivered.
        """
        lines = [row.to_csv_line().encode("utf-8") for row in rows]
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
