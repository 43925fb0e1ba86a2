"""The search indexer's adapters without I/O: OpenSearch bulk and auth, settings, quarantine."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.credentials import Credentials
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from clickstream import composition
from clickstream.adapters.aws.opensearch import OpenSearchIndex, http_auth
from clickstream.adapters.aws.s3 import S3QuarantineSink
from clickstream.adapters.kinesis_event import parse_lambda_record
from clickstream.core.records import RejectedRecord, ShardRecord, quarantine_key, quarantine_line
from clickstream.core.retry import RetryPolicy
from clickstream.core.search_documents import Action, index_template
from clickstream.ports import ItemResult, SearchIndexError, SearchUnavailable
from clickstream.settings import IndexerSettings
from tests.support.search_indexer import ARRIVAL, MAPPING_ERROR, SHARD, events_from, lambda_record

# ------------------------------------------------------------------------------------- fakes


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
    (parsed,) = parse_lambda_record(lambda_record(b"xyz", sequence_number="42"))
    assert parsed.record == ShardRecord(SHARD, "42", b"xyz", ARRIVAL)
    assert parsed.rejection is not None and parsed.rejection.reason.startswith("malformed JSON")
