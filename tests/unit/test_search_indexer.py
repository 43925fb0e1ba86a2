"""The search indexer with in-memory fakes: index_batch, the adapters' rules, the handler."""

from __future__ import annotations

import base64
import importlib.util
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.credentials import Credentials
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from clickstream import composition
from clickstream.adapters.aws.opensearch import OpenSearchIndex, TemplateOnFirstUse, http_auth
from clickstream.adapters.aws.s3 import S3QuarantineSink
from clickstream.adapters.kinesis_event import parse_lambda_record, parse_lambda_records
from clickstream.consumers import search_indexer
from clickstream.consumers.search_indexer import BatchOutcome
from clickstream.core.events import Event
from clickstream.core.records import RejectedRecord, ShardRecord, quarantine_key, quarantine_line
from clickstream.core.retry import RetryPolicy
from clickstream.core.search_documents import Action, index_template
from clickstream.ports import (
    ItemResult,
    QuarantineSink,
    SearchIndex,
    SearchIndexerPorts,
    SearchIndexError,
    SearchUnavailable,
)
from clickstream.settings import IndexerSettings
from tests.factories import at, make_event

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "functions" / "search_indexer" / "app.py"
SAMPLE_EVENT = ROOT / "events" / "search_indexer_kinesis.json"
SHARD = "shardId-000000000003"
ARRIVAL = datetime(2026, 3, 7, 14, 5, 0, tzinfo=UTC)
MAPPING_ERROR = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [device] of type [integer]",
}
REJECTED = {"type": "es_rejected_execution_exception", "reason": "rejected execution"}


# ------------------------------------------------------------------------------------- fakes
class FakeIndex(SearchIndex):
    """Answers each action with the status chosen for its event id (201 by default).

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

    def ensure_template(self) -> None:
        self.templates += 1

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        self.calls.append(list(actions))
        if self.unavailable_from_call and len(self.calls) >= self.unavailable_from_call:
            raise SearchUnavailable("bulk failed 5 times; last error: ConnectionError(refused)")
        return [ItemResult(a["_id"], *self.answers.get(a["_id"], (201, None))) for a in actions]

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


class StubS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> dict:
        self.objects[(Bucket, Key)] = (Body, ContentType)
        return {}


class FakeIndicesClient:
    def __init__(self, owner: FakeClient) -> None:
        self.owner = owner

    def put_index_template(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.owner.answer(("put_index_template", name, body))


class FakeClient:
    """Plays opensearch-py's client: each call takes the next scripted answer or error."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[Any] = []
        self.indices = FakeIndicesClient(self)

    def bulk(self, body: str) -> dict[str, Any]:
        return self.answer(("bulk", body))

    def answer(self, request: Any) -> Any:
        self.requests.append(request)
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


# ----------------------------------------------------------------------------------- helpers
_sequence = iter(range(10**6))


def lambda_record(
    data: bytes | str, *, sequence_number: str | None = None, encode: bool = True
) -> dict[str, Any]:
    """A record as Lambda delivers it from Kinesis."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    sequence_number = sequence_number or f"4967{next(_sequence):020d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "1",
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(raw).decode("ascii") if encode else data,
            "approximateArrivalTimestamp": ARRIVAL.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{SHARD}:{sequence_number}",
    }


def record_of(event: Event) -> dict[str, Any]:
    return lambda_record(event.to_json_line())


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


def sequence_of(record: dict[str, Any]) -> str:
    return record["kinesis"]["sequenceNumber"]


def accounted(outcome: BatchOutcome) -> int:
    """Records the outcome accounts for; must equal the batch size."""
    return (
        outcome.indexed
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


# ----------------------------------------------------------------------- OpenSearch adapter
def _bulk_response(*statuses: tuple[str, int, dict | None]) -> dict[str, Any]:
    items = []
    for event_id, status, error in statuses:
        item: dict[str, Any] = {"_index": "x", "_id": event_id, "status": status}
        if error:
            item["error"] = error
        items.append({"index": item})
    return {"took": 3, "errors": any(e for *_, e in statuses), "items": items}


def _adapter(script: list[Any], sleeps: list[float]) -> tuple[OpenSearchIndex, FakeClient]:
    client = FakeClient(script)
    policy = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=4.0)
    index = OpenSearchIndex(
        client,  # type: ignore[arg-type]
        "p",
        policy=policy,
        sleep=sleeps.append,
        rng=random.Random(1),
    )
    return index, client


def _two_actions() -> list[Action]:
    from clickstream.core.search_documents import bulk_actions

    return bulk_actions(events_from("2026-03-07T14:00:00", 2), "p")


def test_adapter_pairs_item_results_with_actions() -> None:
    # GIVEN a bulk answer with one success and one mapping error
    actions = _two_actions()
    answer = _bulk_response((actions[0]["_id"], 201, None), (actions[1]["_id"], 400, MAPPING_ERROR))
    index, client = _adapter([answer], sleeps := [])

    # WHEN bulked
    results = index.bulk(actions)

    # THEN one result per action, and the body was NDJSON of the actions
    assert results == [
        ItemResult(actions[0]["_id"], 201, None),
        ItemResult(actions[1]["_id"], 400, MAPPING_ERROR),
    ]
    assert [r.ok for r in results] == [True, False]
    (_, body) = client.requests[0]
    assert len(body.splitlines()) == 4
    assert sleeps == []


def test_adapter_retries_transient_request_failures_with_jittered_backoff() -> None:
    # GIVEN a connection refused, a 503 and a 429 before a success
    actions = _two_actions()
    refused = OpenSearchConnectionError("N/A", "connection refused", OSError("refused"))
    script = [
        refused,
        TransportError(503, "unavailable", {}),
        TransportError(429, "too_many_requests", {}),
        _bulk_response(*((a["_id"], 200, None) for a in actions)),
    ]
    index, client = _adapter(script, sleeps := [])

    # WHEN bulked
    results = index.bulk(actions)

    # THEN it succeeded on the 4th attempt after 3 delays within the exponential ceilings
    assert all(r.ok for r in results)
    assert len(client.requests) == 4
    assert len(sleeps) == 3
    assert all(0 <= delay < ceiling for delay, ceiling in zip(sleeps, [0.2, 0.4, 0.8], strict=True))


def test_adapter_gives_up_after_bounded_attempts_with_a_clear_error() -> None:
    # GIVEN OpenSearch that never answers
    refused = OpenSearchConnectionError("N/A", "connection refused", OSError("refused"))
    index, client = _adapter([refused] * 5, sleeps := [])

    # WHEN bulked THEN it raises SearchUnavailable after 5 attempts
    with pytest.raises(SearchUnavailable, match="bulk failed 5 times; last error: Connection"):
        index.bulk(_two_actions())
    assert len(client.requests) == 5
    assert len(sleeps) == 4


def test_adapter_does_not_retry_a_refused_request() -> None:
    # GIVEN a 403 (e.g. a missing IAM permission)
    index, client = _adapter([TransportError(403, "security_exception", {})], sleeps := [])

    # WHEN bulked THEN it fails at once
    with pytest.raises(SearchIndexError, match="bulk refused: TransportError\\(403"):
        index.bulk(_two_actions())
    assert (len(client.requests), sleeps) == (1, [])


def test_adapter_refuses_a_response_of_the_wrong_length() -> None:
    index, _ = _adapter([_bulk_response(("x", 201, None))], [])
    with pytest.raises(SearchIndexError, match="1 items for 2 actions"):
        index.bulk(_two_actions())


def test_adapter_puts_the_template_named_after_its_prefix() -> None:
    # GIVEN an adapter for prefix p
    index, client = _adapter([{"acknowledged": True}], [])

    # WHEN the template is ensured
    index.ensure_template()

    # THEN it was PUT under the prefix's name with the prefix's body
    assert client.requests == [("put_index_template", "p", index_template("p"))]


def test_sigv4_signs_for_the_es_service_in_the_region() -> None:
    # GIVEN sigv4 settings and static credentials
    settings = _settings(OPENSEARCH_AUTH="sigv4", AWS_REGION="eu-west-1")
    auth = http_auth(settings.auth, settings.region, Credentials("AKIDEXAMPLE", "secret", "token"))
    assert auth is not None

    # WHEN a bulk request is signed
    headers = auth("POST", "https://search-x.eu-west-1.es.amazonaws.com/_bulk", b"{}\n")

    # THEN the signature is scoped to the es service in that region
    assert "/eu-west-1/es/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "token"
    assert "X-Amz-Content-SHA256" in headers


def test_no_auth_for_a_local_node() -> None:
    assert http_auth("none", None) is None


def test_the_adapter_is_built_from_settings_without_connecting() -> None:
    index = composition.opensearch_index(_settings(OPENSEARCH_AUTH="none", INDEX_PREFIX="t1-ev"))
    assert isinstance(index, OpenSearchIndex)
    assert index.prefix == "t1-ev"


# ---------------------------------------------------------------------------------- settings
def _settings(**env: str) -> IndexerSettings:
    base = {"OPENSEARCH_URL": "http://127.0.0.1:9200", "QUARANTINE_BUCKET": "lake"}
    return IndexerSettings.from_env({**base, **env})


def test_settings_defaults() -> None:
    # GIVEN only the required variables and a region
    settings = _settings(AWS_REGION="us-east-1")

    # THEN the defaults apply
    assert settings == IndexerSettings(
        opensearch_url="http://127.0.0.1:9200",
        quarantine_bucket="lake",
        auth="sigv4",
        region="us-east-1",
        index_prefix="clickstream-events",
        quarantine_prefix="quarantine/search-indexer/",
        bulk_max_docs=500,
        bulk_max_bytes=5 * 1024 * 1024,
    )


def test_settings_overrides() -> None:
    settings = _settings(
        OPENSEARCH_URL="https://search-x.es.amazonaws.com/",
        OPENSEARCH_AUTH="NONE",
        INDEX_PREFIX="t1-events",
        QUARANTINE_PREFIX="q",
        BULK_MAX_DOCS="100",
        BULK_MAX_BYTES="1000",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    assert settings.opensearch_url == "https://search-x.es.amazonaws.com"
    assert (settings.auth, settings.region, settings.index_prefix) == (
        "none",
        "eu-west-1",
        "t1-events",
    )
    assert settings.quarantine_prefix == "q/"
    assert (settings.bulk_max_docs, settings.bulk_max_bytes) == (100, 1000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENSEARCH_URL": ""}, "OPENSEARCH_URL is not set"),
        ({"OPENSEARCH_URL": "localhost:9200"}, "must be an http"),
        ({"QUARANTINE_BUCKET": ""}, "QUARANTINE_BUCKET is not set"),
        ({"OPENSEARCH_AUTH": "basic"}, "OPENSEARCH_AUTH must be one of sigv4, none"),
        ({"OPENSEARCH_AUTH": "sigv4"}, "needs AWS_REGION"),
        ({"OPENSEARCH_AUTH": "none", "INDEX_PREFIX": "Upper"}, "not a valid index name"),
        ({"OPENSEARCH_AUTH": "none", "BULK_MAX_DOCS": "0"}, "BULK_MAX_DOCS must be positive"),
        ({"OPENSEARCH_AUTH": "none", "BULK_MAX_BYTES": "5MB"}, "must be an integer"),
    ],
)
def test_settings_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(**env)


# -------------------------------------------------------------------------------- quarantine
def _quarantined(
    sequence_number: str, data: bytes = b"{}", reason: str = "bad", **fields: Any
) -> RejectedRecord:
    defaults: dict[str, Any] = {"shard_id": SHARD, "arrival": ARRIVAL}
    record = ShardRecord(sequence_number=sequence_number, data=data, **{**defaults, **fields})
    return RejectedRecord(record, reason)


def test_quarantine_key_is_deterministic_given_the_records() -> None:
    # GIVEN records whose sequence numbers differ in length (numeric, not text, order)
    records = [_quarantined("100"), _quarantined("99"), _quarantined("1000")]
    later = datetime(2030, 1, 1, tzinfo=UTC)

    # WHEN keyed at two different times and in another order
    keys = {
        quarantine_key(records, "quarantine/search-indexer/", ARRIVAL),
        quarantine_key(list(reversed(records)), "quarantine/search-indexer/", later),
    }

    # THEN the key is the same: arrival hour of the first record, first and last sequence
    assert keys == {f"quarantine/search-indexer/2026/03/07/14/{SHARD}-99-1000.jsonl"}


def test_quarantine_key_uses_now_when_arrival_is_unknown() -> None:
    record = _quarantined("7", arrival=None)
    key = quarantine_key([record], "q/", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert key == f"q/2026/01/02/03/{SHARD}-7-7.jsonl"


def test_quarantine_lines_keep_text_or_base64() -> None:
    # GIVEN a UTF-8 record and a binary one
    text = json.loads(quarantine_line(_quarantined("1", "{ñ".encode(), reason="malformed")))
    binary = json.loads(quarantine_line(_quarantined("2", b"\xff\x00")))

    # THEN text stays text, binary is base64 with the flag
    assert text == {
        "sequence_number": "1",
        "shard_id": SHARD,
        "reason": "malformed",
        "data": "{ñ",
        "data_base64": False,
    }
    assert (binary["data"], binary["data_base64"]) == ("/wA=", True)


def test_s3_quarantine_writes_one_json_lines_object_per_call() -> None:
    # GIVEN an S3 quarantine
    s3 = StubS3()
    sink = S3QuarantineSink(s3, "lake", "quarantine/search-indexer/")  # type: ignore[arg-type]

    # WHEN two records are put, then nothing
    sink.put([_quarantined("5", b"a"), _quarantined("9", b"b")])
    sink.put([])

    # THEN one object holds both lines
    ((bucket, key),) = s3.objects
    body, content_type = s3.objects[(bucket, key)]
    assert (bucket, key) == ("lake", f"quarantine/search-indexer/2026/03/07/14/{SHARD}-5-9.jsonl")
    assert [json.loads(line)["data"] for line in body.decode().splitlines()] == ["a", "b"]
    assert content_type == "application/x-ndjson"


def test_kinesis_record_reads_the_lambda_shape() -> None:
    parsed = parse_lambda_record(lambda_record(b"xyz", sequence_number="42"))
    assert parsed.record == ShardRecord(SHARD, "42", b"xyz", ARRIVAL)
    assert parsed.rejection is not None and parsed.rejection.reason.startswith("malformed JSON")


# ----------------------------------------------------------------------------------- handler
@dataclass
class LambdaContext:
    function_name: str = "clickstream-search-indexer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:clickstream-search-indexer"
    )
    aws_request_id: str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@pytest.fixture(scope="module")
def app() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClickstreamTest")
        patch.setenv("OPENSEARCH_URL", "http://127.0.0.1:9")
        patch.setenv("OPENSEARCH_AUTH", "none")
        patch.setenv("QUARANTINE_BUCKET", "lake")
        spec = importlib.util.spec_from_file_location("search_indexer_app", HANDLER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def sample_event() -> dict[str, Any]:
    return json.loads(SAMPLE_EVENT.read_text())


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric values from the Embedded Metric Format lines written to stdout."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "ClickstreamTest"
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_sample_event_has_two_valid_events_and_a_malformed_one(
    sample_event: dict[str, Any],
) -> None:
    records = [parse_lambda_record(r).record for r in sample_event["Records"]]
    assert len(records) == 3
    assert {r.shard_id for r in records} == {"shardId-000000000000"}
    assert [r.data.startswith(b'{"event_id"') for r in records] == [True, True, True]
    index = FakeIndex()
    outcome = index_batch(sample_event["Records"], index, FakeQuarantine())
    assert (outcome.indexed, outcome.quarantined) == (2, 1)


def test_handler_indexes_quarantines_and_reports_failures(
    app: ModuleType,
    sample_event: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the sample batch and an index that throttles its second event
    records = [parse_lambda_record(r).record for r in sample_event["Records"]]
    second_id = json.loads(records[1].data)["event_id"]
    index = FakeIndex({second_id: (429, REJECTED)})
    quarantine = FakeQuarantine()
    monkeypatch.setattr(app, "ports", SearchIndexerPorts(index, quarantine))

    # WHEN the function is invoked
    response = app.lambda_handler(sample_event, LambdaContext())

    # THEN the throttled record is reported for retry, the malformed one quarantined
    assert response == {"batchItemFailures": [{"itemIdentifier": records[1].sequence_number}]}
    assert [r.sequence_number for r in quarantine.records] == [records[2].sequence_number]
    assert quarantine.records[0].reason.startswith("malformed JSON")
    # AND the metrics say so, with the batch's iterator age (the sample batch is old)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.pop("IteratorAge") > 0
    assert metrics == {"DocumentsIndexed": 1, "DocumentsQuarantined": 1, "DocumentsFailed": 1}


def test_handler_module_builds_a_templated_opensearch_index(app: ModuleType) -> None:
    assert isinstance(app.ports.index, TemplateOnFirstUse)
    assert app.settings.index_prefix == "clickstream-events"
    assert app.ports.quarantine.bucket == "lake"
