"""The quarantine port and its S3 adapter, shared by every stream consumer.

A record that can never be processed (invalid, or refused by its destination for good) is kept
with its reason, its shard and its sequence number as one JSON line, in one S3 object per batch
under a key that depends on the records alone, so a retried batch overwrites its own object.
Consumers store a batch's records before they commit it, so none is lost to a crash in between;
a batch retried with other boundaries may store a record twice, and readers count each
(shard, sequence number) once.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.client import BaseClient


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record set aside with the reason; ``arrival`` is its approximate arrival time."""

    sequence_number: str
    shard_id: str
    reason: str
    data: bytes
    arrival: datetime | None = None


class QuarantineSink(ABC):
    """Where records that will never be processed are kept, with their reasons."""

    @abstractmethod
    def put(self, records: list[QuarantinedRecord]) -> None:
        """Store the records durably (one object per call). Raises if it cannot."""


def quarantine_line(record: QuarantinedRecord) -> str:
    """One JSON line: data as text when it is UTF-8, else base64 with ``data_base64`` true."""
    try:
        data, encoded = record.data.decode("utf-8"), False
    except UnicodeDecodeError:
        data, encoded = base64.b64encode(record.data).decode("ascii"), True
    line = {
        "sequence_number": record.sequence_number,
        "shard_id": record.shard_id,
        "reason": record.reason,
        "data": data,
        "data_base64": encoded,
    }
    return json.dumps(line, ensure_ascii=False) + "\n"


def quarantine_key(records: Sequence[QuarantinedRecord], prefix: str, now: datetime) -> str:
    """``<prefix>YYYY/MM/DD/HH/<shard>-<first seq>-<last seq>.jsonl``.

    The hour is the UTC arrival hour of the first record (``now`` only when it is unknown), so
    the key depends on the records alone: a retried batch that quarantines the same records
    overwrites its object instead of adding a second one.
    """
    ordered = sorted(records, key=lambda record: _sequence_order(record.sequence_number))
    first, last = ordered[0], ordered[-1]
    hour = (first.arrival or now).astimezone(UTC)
    return (
        f"{prefix}{hour:%Y/%m/%d/%H}/"
        f"{first.shard_id}-{first.sequence_number}-{last.sequence_number}.jsonl"
    )


def _sequence_order(sequence_number: str) -> tuple[int, str]:
    """Numeric order for Kinesis sequence numbers (decimal strings of varying length)."""
    return len(sequence_number), sequence_number


class S3QuarantineSink(QuarantineSink):
    """One JSON-lines S3 object per call, under a deterministic key (see :func:`quarantine_key`)."""

    def __init__(
        self,
        s3: BaseClient,
        bucket: str,
        prefix: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self._clock = clock

    def put(self, records: list[QuarantinedRecord]) -> None:
        """PutObject of the records' lines; errors propagate (the batch is then retried)."""
        if not records:
            return
        self._s3.put_object(
            Bucket=self.bucket,
            Key=quarantine_key(records, self.prefix, self._clock()),
            Body="".join(quarantine_line(record) for record in records).encode("utf-8"),
            ContentType="application/x-ndjson",
        )
