"""The search indexer's test doubles: a scripted index, a quarantine and Lambda records.

``index_batch`` runs the consumer on Lambda records read by the inbound adapter, as the
handler does. Shared by the indexer's batch, adapter and handler tests.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.adapters.kinesis_event import parse_lambda_records
from clickstream.consumers import search_indexer
from clickstream.consumers.search_indexer import BatchOutcome
from clickstream.core.events import Event
from clickstream.core.records import RejectedRecord
from clickstream.core.search_documents import Action
from clickstream.ports import (
    ItemResult,
    QuarantineSink,
    SearchIndex,
    SearchIndexerPorts,
    SearchUnavailable,
)
from tests.factories import at, make_event

SHARD = "shardId-000000000003"
ARRIVAL = datetime(2026, 3, 7, 14, 5, 0, tzinfo=UTC)
MAPPING_ERROR = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [device] of type [integer]",
}
REJECTED = {"type": "es_rejected_execution_exception", "reason": "rejected execution"}


# ------------------------------------------------------------------------------------- fakes
class FakeIndex(SearchIndex):
    """Answers each action with the status chosen for its event id, else as ``create`` does:
    201 the first time, 409 (version conflict) once the document exists.

    ``unavailable_from_call`` makes every bulk from that call number (1-based) on fail whole.
    """

    def __init__(
        self,
        answers: dict[str, tuple[int, dict[str, Any] | None]] | None = None,
        unavailable_from_call: int | None = None,
    ) -> None:
        self.answers = answers or {}
        self.unavailable_from_call = unavailable_from_call
        self.calls: list[list[Action]] = []
        self.templates = 0
        self.created: set[str] = set()

    def ensure_template(self) -> None:
        self.templates += 1

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        self.calls.append(list(actions))
        if self.unavailable_from_call and len(self.calls) >= self.unavailable_from_call:
            raise SearchUnavailable("bulk failed 5 times; last error: ConnectionError(refused)")
        return [ItemResult(action["_id"], *self._answer(action["_id"])) for action in actions]

    def _answer(self, event_id: str) -> tuple[int, dict[str, Any] | None]:
        if event_id in self.answers:
            return self.answers[event_id]
        if event_id in self.created:
            return 409, {"type": "version_conflict_engine_exception", "reason": "already exists"}
        self.created.add(event_id)
        return 201, None

    def indexed_ids(self) -> list[str]:
        return [a["_id"] for call in self.calls for a in call]


class FakeQuarantine(QuarantineSink):
    def __init__(self) -> None:
        self.puts: list[list[RejectedRecord]] = []

    def put(self, records: list[RejectedRecord]) -> None:
        self.puts.append(list(records))

    @property
    def records(self) -> list[RejectedRecord]:
        return [record for put in self.puts for record in put]


# ----------------------------------------------------------------------------------- helpers
_sequence = iter(range(10**6))


def lambda_record(
    data: bytes | str,
    *,
    sequence_number: str | None = None,
    encode: bool = True,
    arrival: datetime = ARRIVAL,
) -> dict[str, Any]:
    """A record as Lambda delivers it from Kinesis, arrived at ``arrival``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    sequence_number = sequence_number or f"4967{next(_sequence):020d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "1",
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(raw).decode("ascii") if encode else data,
            "approximateArrivalTimestamp": arrival.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{SHARD}:{sequence_number}",
    }


def index_batch(
    records: Sequence[dict[str, Any]],
    index: SearchIndex,
    quarantine: QuarantineSink,
    **options: Any,
) -> BatchOutcome:
    """The consumer on Lambda records, read by the inbound adapter as the handler does."""
    ports = SearchIndexerPorts(index, quarantine)
    return search_indexer.index_batch(parse_lambda_records(records), ports, **options)


def events_from(start: str, count: int, step: timedelta = timedelta(seconds=1)) -> list[Event]:
    return [make_event(at(start) + i * step, custid=i + 1) for i in range(count)]
