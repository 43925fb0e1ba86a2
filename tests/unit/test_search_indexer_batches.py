"""The search indexer's index_batch with in-memory fakes, and the template put on first use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from clickstream.adapters.aws.opensearch import TemplateOnFirstUse
from clickstream.consumers.search_indexer import BatchOutcome
from clickstream.core.events import Event
from clickstream.core.records import RejectedRecord
from clickstream.ports import QuarantineSink, SearchUnavailable
from tests.factories import make_event
from tests.support.search_indexer import (
    ARRIVAL,
    MAPPING_ERROR,
    REJECTED,
    SHARD,
    FakeIndex,
    FakeQuarantine,
    events_from,
    index_batch,
    lambda_record,
)


def record_of(event: Event) -> dict[str, Any]:
    """The event's Lambda record, arrived when the event happened."""
    return lambda_record(event.to_json_line(), arrival=event.trans_timestamp)


def sequence_of(record: dict[str, Any]) -> str:
    return record["kinesis"]["sequenceNumber"]


def accounted(outcome: BatchOutcome) -> int:
    """Records the outcome accounts for; must equal the batch size."""
    return (
        outcome.indexed
        + outcome.already_indexed
        + outcome.quarantined
        + outcome.duplicates_in_batch
        + len(outcome.failed_sequence_numbers)
    )


# ------------------------------------------------------------------------------- index_batch
def test_valid_events_are_indexed_under_their_ids() -> None:
    # GIVEN three valid events
    events = events_from("2026-03-07T14:00:00", 3)
    index, quarantine = FakeIndex(), FakeQuarantine()

    # WHEN the batch is indexed
    outcome = index_batch([record_of(e) for e in events], index, quarantine)

    # THEN all three are indexed by event id, nothing quarantined or failed
    assert outcome == BatchOutcome(indexed=3)
    assert index.indexed_ids() == [e.event_id for e in events]
    assert quarantine.puts == []
    assert outcome.response() == {"batchItemFailures": []}


def test_duplicates_in_a_batch_are_sent_once_keeping_the_first() -> None:
    # GIVEN an event sent three times, the last copy with different content, and another event
    first, other = events_from("2026-03-07T14:00:00", 2)
    altered = make_event(first.trans_timestamp, custid=99, event_id=first.event_id)
    records = [record_of(first), record_of(other), record_of(first), record_of(altered)]

    # WHEN indexed
    outcome = index_batch(records, index := FakeIndex(), FakeQuarantine())

    # THEN each event id is sent once, with the first copy's content
    assert index.indexed_ids() == [first.event_id, other.event_id]
    assert index.calls[0][0]["_source"]["custid"] == first.custid
    assert (outcome.indexed, outcome.duplicates_in_batch) == (2, 2)
    assert accounted(outcome) == len(records)


def test_a_repeat_in_a_later_batch_leaves_the_first_document_as_it_is() -> None:
    # GIVEN an event indexed by one batch
    first, other = events_from("2026-03-07T14:00:00", 2)
    index = FakeIndex()
    index_batch([record_of(first)], index, FakeQuarantine())
    # WHEN a later batch repeats its id with another url and device, twice, and a new event
    altered = replace(first, url="wine_cart", device="app_tablet")
    records = [record_of(altered), record_of(other), record_of(altered)]
    outcome = index_batch(records, index, FakeQuarantine())
    # THEN the repeat is already indexed (its first occurrence decides), the new event indexed
    assert (outcome.indexed, outcome.already_indexed, outcome.duplicates_in_batch) == (1, 1, 1)
    assert outcome.failed_sequence_numbers == [] and outcome.quarantined == 0
    assert accounted(outcome) == len(records)


def test_invalid_records_are_quarantined_with_their_reason() -> None:
    # GIVEN a valid event between malformed JSON, a wrong type and undecodable bytes
    (event,) = events_from("2026-03-07T14:00:00", 1)
    bad_json = lambda_record('{"event_id": ')
    wrong_type = lambda_record(event.to_json_line().replace(b'"custid":1', b'"custid":"1"'))
    not_utf8 = lambda_record(b'{"a":"\xff"}')
    records = [bad_json, record_of(event), wrong_type, not_utf8]
    quarantine = FakeQuarantine()

    # WHEN indexed
    outcome = index_batch(records, FakeIndex(), quarantine)

    # THEN the valid one is indexed and the rest go to ONE quarantine put, in order, with reasons
    assert (outcome.indexed, outcome.quarantined, outcome.failed_sequence_numbers) == (1, 3, [])
    assert len(quarantine.puts) == 1
    (put,) = quarantine.puts
    assert [r.sequence_number for r in put] == [
        sequence_of(bad_json),
        sequence_of(wrong_type),
        sequence_of(not_utf8),
    ]
    assert put[0].reason.startswith("malformed JSON: Expecting value")
    assert put[1].reason == "custid: expected integer, got string"
    assert put[2].reason == "record is not valid UTF-8 (byte 6)"
    assert put[2].data == b'{"a":"\xff"}'
    assert {(r.shard_id, r.arrival) for r in put} == {(SHARD, ARRIVAL)}


def test_data_that_is_not_base64_is_quarantined() -> None:
    # GIVEN a record whose data field is not base64
    record = lambda_record("not base64!", encode=False)

    # WHEN indexed
    outcome = index_batch([record], FakeIndex(), quarantine := FakeQuarantine())

    # THEN it is quarantined as it came
    assert outcome.quarantined == 1
    assert quarantine.records[0].reason == "record data is not valid base64"
    assert quarantine.records[0].data == b"not base64!"


def test_mapping_errors_are_quarantined_with_the_opensearch_reason() -> None:
    # GIVEN two events OpenSearch refuses for good (one sent twice) and one it accepts
    refused, fine, also_refused = events_from("2026-03-07T14:00:00", 3)
    records = [record_of(refused), record_of(fine), record_of(also_refused), record_of(refused)]
    index = FakeIndex(
        {refused.event_id: (400, MAPPING_ERROR), also_refused.event_id: (400, MAPPING_ERROR)}
    )

    # WHEN indexed
    outcome = index_batch(records, index, quarantine := FakeQuarantine())

    # THEN every copy of the refused events is quarantined with the reason; nothing to retry
    assert (outcome.indexed, outcome.quarantined, outcome.failed_sequence_numbers) == (1, 3, [])
    assert [r.sequence_number for r in quarantine.records] == [
        sequence_of(records[0]),
        sequence_of(records[2]),
        sequence_of(records[3]),
    ]
    assert quarantine.records[0].reason == (
        "rejected by OpenSearch: 400 mapper_parsing_exception: "
        "failed to parse field [device] of type [integer]"
    )
    assert quarantine.records[0].data == refused.to_json_line()
    assert accounted(outcome) == len(records)


def test_transient_item_errors_are_reported_for_retry() -> None:
    # GIVEN one event rejected for load (sent twice) and one throttled with 429
    rejected, fine, throttled = events_from("2026-03-07T14:00:00", 3)
    records = [record_of(rejected), record_of(fine), record_of(throttled), record_of(rejected)]
    index = FakeIndex({rejected.event_id: (429, REJECTED), throttled.event_id: (429, None)})

    # WHEN indexed
    outcome = index_batch(records, index, quarantine := FakeQuarantine())

    # THEN their sequence numbers, every copy, in batch order, are reported failed
    assert outcome.failed_sequence_numbers == [
        sequence_of(records[0]),
        sequence_of(records[2]),
        sequence_of(records[3]),
    ]
    assert outcome.response()["batchItemFailures"][0] == {"itemIdentifier": sequence_of(records[0])}
    assert (outcome.indexed, outcome.quarantined) == (1, 0)
    assert quarantine.puts == []
    assert accounted(outcome) == len(records)


def test_when_opensearch_is_down_every_pending_valid_record_is_failed() -> None:
    # GIVEN 5 valid events in chunks of 2, an invalid record, and OpenSearch down from call 2
    events = events_from("2026-03-07T14:00:00", 5)
    records = [record_of(e) for e in events]
    records.insert(1, lambda_record("garbage"))
    index = FakeIndex(unavailable_from_call=2)

    # WHEN indexed
    outcome = index_batch(records, index, quarantine := FakeQuarantine(), max_docs=2)

    # THEN the first chunk is indexed, the invalid record quarantined, and no further chunk is
    # tried after the failed one: the 3 pending valid records are all reported failed
    assert outcome.indexed == 2
    assert outcome.quarantined == 1
    assert outcome.failed_sequence_numbers == [sequence_of(r) for r in records[3:]]
    assert len(index.calls) == 2
    assert outcome.search_error is not None
    assert "bulk failed 5 times" in outcome.search_error
    assert len(quarantine.puts) == 1
    assert accounted(outcome) == len(records)


def test_batches_go_out_in_bounded_chunks() -> None:
    # GIVEN 12 events and chunks of at most 5 documents
    events = events_from("2026-03-07T14:00:00", 12)

    # WHEN indexed
    outcome = index_batch([record_of(e) for e in events], index := FakeIndex(), FakeQuarantine())
    assert outcome.indexed == 12
    index.calls.clear()
    index_batch([record_of(e) for e in events], index, FakeQuarantine(), max_docs=5)

    # THEN the default sends one request, the bound three, in order
    assert [len(call) for call in index.calls] == [5, 5, 2]
    assert index.indexed_ids() == [e.event_id for e in events]


def test_actions_go_to_daily_indices_of_the_prefix() -> None:
    # GIVEN events either side of midnight UTC
    events = events_from("2026-03-07T23:59:59", 2)

    # WHEN indexed with a prefix
    index_batch([record_of(e) for e in events], index := FakeIndex(), FakeQuarantine(), prefix="p")

    # THEN each lands in its event day's index
    assert [a["_index"] for a in index.calls[0]] == ["p-2026.03.07", "p-2026.03.08"]


def test_an_empty_batch_does_nothing() -> None:
    outcome = index_batch([], index := FakeIndex(), quarantine := FakeQuarantine())
    assert outcome == BatchOutcome()
    assert (index.calls, quarantine.puts) == ([], [])


def test_a_failing_quarantine_write_fails_the_invocation() -> None:
    # GIVEN a quarantine that cannot write
    class BrokenQuarantine(QuarantineSink):
        def put(self, records: list[RejectedRecord]) -> None:
            raise OSError("S3 unreachable")

    # WHEN a batch with an invalid record is indexed THEN the error propagates (batch retried)
    with pytest.raises(OSError, match="S3 unreachable"):
        index_batch([lambda_record("garbage")], FakeIndex(), BrokenQuarantine())


# ------------------------------------------------------------------------ template on first use
def test_template_is_put_once_before_the_first_bulk() -> None:
    # GIVEN an index wrapped to put its template on first use
    inner = FakeIndex()
    index = TemplateOnFirstUse(inner)
    (event,) = events_from("2026-03-07T14:00:00", 1)

    # WHEN two batches are indexed
    index_batch([record_of(event)], index, FakeQuarantine())
    index_batch([record_of(event)], index, FakeQuarantine())

    # THEN the template was put once
    assert inner.templates == 1
    assert len(inner.calls) == 2


def test_a_failed_template_fails_the_batch_and_is_tried_again() -> None:
    # GIVEN an index whose template cannot be put the first time
    class FlakyTemplate(FakeIndex):
        def ensure_template(self) -> None:
            super().ensure_template()
            if self.templates == 1:
                raise SearchUnavailable("PUT _index_template failed 5 times")

    inner = FlakyTemplate()
    index = TemplateOnFirstUse(inner)
    record = record_of(events_from("2026-03-07T14:00:00", 1)[0])

    # WHEN a batch is indexed THEN nothing was bulked and the record is reported failed
    first = index_batch([record], index, FakeQuarantine())
    assert first.failed_sequence_numbers == [sequence_of(record)]
    assert inner.calls == []

    # AND the next batch puts the template again, then indexes
    second = index_batch([record], index, FakeQuarantine())
    assert (second.indexed, inner.templates) == (1, 2)
