"""The search indexer: a Kinesis batch -> search documents, bad records -> the quarantine.

:func:`index_batch` puts every record of a batch in exactly one place:

- **indexed**, or **already indexed**: ``_id`` is the ``event_id`` and the ``create`` op
  leaves an existing document as it is, so the first occurrence decides and a redelivery or a
  repeat in a later batch, whatever its other fields, changes nothing; a repeat within the
  batch is covered by its first copy (``duplicates_in_batch``);
- **quarantined** with a reason: not a valid event (the parser's reason, or undecodable data),
  or refused by the index for good (a mapping error, with the index's reason);
- **reported failed** (its sequence number), for Lambda to retry: a transient item error, or
  the index unreachable after bounded retries.

It talks to one :class:`~clickstream.ports.SearchIndexerPorts` object: the
:class:`~clickstream.ports.SearchIndex` and the :class:`~clickstream.ports.QuarantineSink`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from clickstream.core.batch_failures import partial_batch_response
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord, RejectedRecord, ShardRecord
from clickstream.core.search_documents import (
    INDEX_PREFIX,
    MAX_BULK_BYTES,
    MAX_BULK_DOCS,
    bulk_actions,
    chunk_actions,
    classify_item_error,
    error_reason,
    is_already_indexed,
)
from clickstream.ports import ItemResult, SearchIndexerPorts, SearchIndexError


@dataclass(frozen=True)
class BatchOutcome:
    """Where the records of a batch went.

    ``len(records) == indexed + already_indexed + quarantined + duplicates_in_batch +
    len(failed_sequence_numbers)`` where ``already_indexed`` counts events whose document existed
    before the batch, and ``duplicates_in_batch`` repeats of an ``event_id`` whose first copy was
    indexed or already indexed (repeats of a quarantined or failed copy share its fate and are
    counted there).
    """

    indexed: int = 0
    quarantined: int = 0
    duplicates_in_batch: int = 0
    already_indexed: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)
    search_error: str | None = None
    """Why the index could not be written to at all, when that happened."""

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response (``ReportBatchItemFailures``)."""
        return partial_batch_response(self.failed_sequence_numbers)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for logs."""
        return asdict(self)


def index_batch(
    records: Sequence[ParsedRecord],
    ports: SearchIndexerPorts,
    *,
    prefix: str = INDEX_PREFIX,
    max_docs: int = MAX_BULK_DOCS,
    max_bytes: int = MAX_BULK_BYTES,
) -> BatchOutcome:
    """Index a batch's parsed records; quarantine what never will index; report the rest failed.

    Valid events are deduplicated by ``event_id`` (the first copy wins) and sent in bounded
    ``_bulk`` chunks. Once a whole request fails after retries, no further chunk is tried and
    every record not yet indexed is reported failed. Quarantined records are written (one
    object) before returning; if that write fails, the exception propagates and Lambda retries
    the batch, which re-indexes idempotently.
    """
    quarantined: list[RejectedRecord] = []
    copies: dict[str, list[ShardRecord]] = {}
    events: list[Event] = []
    for parsed in records:
        event = parsed.event
        if event is None:
            assert parsed.rejection is not None
            quarantined.append(parsed.rejection)
            continue
        if event.event_id not in copies:
            copies[event.event_id] = []
            events.append(event)
        copies[event.event_id].append(parsed.record)

    indexed = already_indexed = duplicates = 0
    failed: set[str] = set()
    search_error: str | None = None
    for chunk in chunk_actions(bulk_actions(events, prefix), max_docs, max_bytes):
        results: list[ItemResult | None] = [None] * len(chunk)
        if search_error is None:
            try:
                results = list(ports.index.bulk(chunk))
            except SearchIndexError as error:
                search_error = str(error)
        for action, result in zip(chunk, results, strict=True):
            same_event = copies[action["_id"]]
            if result is not None and is_already_indexed(result.status, result.error):
                already_indexed += 1
                duplicates += len(same_event) - 1
            elif result is None or not (result.ok or _is_permanent(result)):
                failed.update(record.sequence_number for record in same_event)
            elif result.ok:
                indexed += 1
                duplicates += len(same_event) - 1
            else:
                reason = f"rejected by OpenSearch: {error_reason(result.status, result.error)}"
                quarantined.extend(RejectedRecord(record, reason) for record in same_event)

    if quarantined:
        positions = {parsed.sequence_number: i for i, parsed in enumerate(records)}
        quarantined.sort(key=lambda record: positions[record.sequence_number])
        ports.quarantine.put(quarantined)
    return BatchOutcome(
        indexed=indexed,
        quarantined=len(quarantined),
        duplicates_in_batch=duplicates,
        already_indexed=already_indexed,
        failed_sequence_numbers=[
            parsed.sequence_number for parsed in records if parsed.sequence_number in failed
        ],
        search_error=search_error,
    )


def _is_permanent(result: ItemResult) -> bool:
    return not result.ok and classify_item_error(result.status, result.error) == "permanent"
