"""The record stream port and its Kinesis Data Streams adapter.

The producer talks to :class:`RecordStream` only, so it is tested with an in-memory fake and
runs unchanged against Kinesis (or the local moto server, through ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.client import BaseClient


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record to put: its bytes, its partition key and, for reporting, its event id."""

    data: bytes
    partition_key: str
    event_id: str | None = None


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


class KinesisRecordStream(RecordStream):
    """A Kinesis data stream, written through the PutRecords API."""

    def __init__(self, client: BaseClient, stream_name: str) -> None:
        self._client = client
        self._stream_name = stream_name

    @property
    def stream_name(self) -> str:
        """The name of the Kinesis stream written to."""
        return self._stream_name

    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        """One PutRecords call; each response entry becomes a :class:`PutOutcome`."""
        if not records:
            return []
        response = self._client.put_records(
            StreamName=self._stream_name,
            Records=[
                {"Data": record.data, "PartitionKey": record.partition_key} for record in records
            ],
        )
        entries = response["Records"]
        if len(entries) != len(records):
            raise RuntimeError(
                f"PutRecords answered {len(entries)} entries for {len(records)} records"
            )
        return [_outcome(entry) for entry in entries]


def _outcome(entry: dict[str, str]) -> PutOutcome:
    error_code = entry.get("ErrorCode")
    if not error_code:
        return PutOutcome(error_code=None)
    return PutOutcome(error_code=error_code, error_message=entry.get("ErrorMessage", ""))


def iterator_age_ms(event: Mapping[str, Any], now: datetime) -> int:
    """How far behind the stream a Lambda Kinesis batch is: ``now`` minus its oldest arrival.

    The same figure as Lambda's ``IteratorAge`` metric, per invocation; 0 for an empty batch.
    """
    arrivals = [r["kinesis"]["approximateArrivalTimestamp"] for r in event.get("Records", [])]
    if not arrivals:
        return 0
    return max(0, int((now.timestamp() - min(arrivals)) * 1000))
