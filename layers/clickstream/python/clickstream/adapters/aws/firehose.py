"""Per-minute session rows to Firehose (``aggregated/``): one CSV line per row, PutRecordBatch.

Each record is one RFC 4180 line (:meth:`MinuteSession.to_csv_line`); Firehose concatenates them
into the ``aggregated/`` objects, one row per line.
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
    """One CSV line per row (10 columns, no header, ``\\n``-terminated) through PutRecordBatch."""

    def __init__(
        self,
        client: Any,
        delivery_stream: str,
        *,
        max_attempts: int = 5,
        base_delay_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.delivery_stream = delivery_stream
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.sleep = sleep

    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row; failed entries are retried with exponential backoff.

        Every row becomes its line before anything is sent: a row that cannot be written
        (``UnwritableCsvValue``) fails the call with nothing delivered.
        """
        payloads = [row.to_csv_line().encode("utf-8") for row in rows]
        for batch in record_batches(payloads):
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
