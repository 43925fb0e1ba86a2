"""The search indexer against a real OpenSearch node, with its quarantine on the moto S3."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from clickstream import composition
from clickstream.adapters.aws.opensearch import TemplateOnFirstUse
from clickstream.adapters.aws.s3 import S3QuarantineSink
from clickstream.adapters.kinesis_event import parse_lambda_records
from clickstream.consumers import search_indexer
from clickstream.consumers.search_indexer import BatchOutcome
from clickstream.core.events import Event
from clickstream.core.retry import RetryPolicy
from clickstream.core.search_documents import document
from clickstream.ports import QuarantineSink, SearchIndex, SearchIndexerPorts
from clickstream.settings import IndexerSettings
from clickstream_local.aws import local_client
from clickstream_local.opensearch import start_opensearch
from tests.factories import at, make_event

pytestmark = pytest.mark.integration

SHARD = "shardId-000000000000"
QUICK_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
_sequence_numbers = itertools.count(49_671_000_000_000_000_000)


@dataclass
class Quarantine:
    """A quarantine bucket on the moto server, and a way to read back what landed there."""

    s3: Any
    bucket: str
    prefix: str = "quarantine/search-indexer/"

    def sink(self) -> S3QuarantineSink:
        return S3QuarantineSink(self.s3, self.bucket, self.prefix)

    def objects(self) -> dict[str, list[dict[str, Any]]]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)
        return {
            item["Key"]: [
                json.loads(line)
                for line in self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                .read()
                .decode()
                .splitlines()
            ]
            for item in listing.get("Contents", [])
        }


@pytest.fixture
def quarantine(moto_endpoint: str) -> Quarantine:
    s3 = local_client("s3", moto_endpoint)
    bucket = f"quarantine-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return Quarantine(s3, bucket)


@pytest.fixture
def prefix() -> str:
    """A unique index prefix, so tests on the shared node do not see each other's documents."""
    return f"t{uuid.uuid4().hex[:10]}-events"


def search_index(url: str, prefix: str, **env: str) -> SearchIndex:
    settings = IndexerSettings.from_env(
        {
            "OPENSEARCH_URL": url,
            "OPENSEARCH_AUTH": "none",
            "INDEX_PREFIX": prefix,
            "QUARANTINE_BUCKET": "unused",
            **env,
        }
    )
    return TemplateOnFirstUse(composition.opensearch_index(settings, policy=QUICK_RETRIES))


def count(url: str, target: str) -> int:
    client = OpenSearch(hosts=[url])
    client.indices.refresh(index=target)
    return int(client.count(index=target)["count"])


def lambda_record(data: bytes) -> dict[str, Any]:
    """A record as Lambda delivers it from Kinesis, with the next sequence number."""
    sequence_number = str(next(_sequence_numbers))
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "1",
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(data).decode("ascii"),
            "approximateArrivalTimestamp": datetime(2026, 3, 8, 0, 0, 5, tzinfo=UTC).timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{SHARD}:{sequence_number}",
    }


def record_of(event: Event) -> dict[str, Any]:
    return lambda_record(event.to_json_line())


def index_batch(
    records: Sequence[dict[str, Any]], index: SearchIndex, quarantine: QuarantineSink, prefix: str
) -> BatchOutcome:
    """The consumer on Lambda records, read by the inbound adapter as the handler does."""
    ports = SearchIndexerPorts(index, quarantine)
    return search_indexer.index_batch(parse_lambda_records(records), ports, prefix=prefix)


def events_from(start: str, count: int, step: timedelta = timedelta(seconds=1)) -> list[Event]:
    return [
        make_event(at(start) + i * step, custid=i + 1, event_id=str(uuid.uuid4()))
        for i in range(count)
    ]


def sequence_of(record: dict[str, Any]) -> str:
    return record["kinesis"]["sequenceNumber"]


def test_duplicates_and_redeliveries_index_one_document_per_event_in_daily_indices(
    opensearch_url: str, prefix: str, quarantine: Quarantine
) -> None:
    # GIVEN 6 events either side of midnight UTC, two of them sent twice, and a malformed record
    events = events_from("2026-03-07T23:59:57.000001", 6)
    first_batch = [record_of(e) for e in events]
    first_batch[2:2] = [record_of(events[0]), lambda_record(b'{"event_id": ')]
    first_batch.append(record_of(events[5]))
    index = search_index(opensearch_url, prefix)

    # WHEN the batch is indexed, then redelivered whole with one more event
    first = index_batch(first_batch, index, quarantine.sink(), prefix=prefix)
    late = events_from("2026-03-08T00:00:04", 1)
    second = index_batch(
        [*first_batch, record_of(late[0])], index, quarantine.sink(), prefix=prefix
    )

    # THEN each batch indexed every distinct valid event once and quarantined the bad record;
    # the redelivery found the first batch's documents there already
    assert (first.indexed, first.duplicates_in_batch, first.quarantined) == (6, 2, 1)
    assert (second.indexed, second.already_indexed, second.duplicates_in_batch) == (1, 6, 2)
    assert second.quarantined == 1
    assert first.failed_sequence_numbers == second.failed_sequence_numbers == []
    # AND OpenSearch holds exactly one document per distinct valid event
    assert count(opensearch_url, prefix) == 7
    assert count(opensearch_url, f"{prefix}-*") == 7
    # AND they sit in the daily index of their event time (3 before midnight, 3 + 1 after)
    assert count(opensearch_url, f"{prefix}-2026.03.07") == 3
    assert count(opensearch_url, f"{prefix}-2026.03.08") == 4
    client = OpenSearch(hosts=[opensearch_url])
    stored = client.get(index=f"{prefix}-2026.03.07", id=events[0].event_id)
    assert stored["_source"] == document(events[0])
    # AND the strict template mapping applied, and the timestamps are searchable as UTC dates
    mapping = client.indices.get_mapping(index=f"{prefix}-2026.03.08")
    properties = mapping[f"{prefix}-2026.03.08"]["mappings"]["properties"]
    assert mapping[f"{prefix}-2026.03.08"]["mappings"]["dynamic"] == "strict"
    assert properties["device"] == {"type": "keyword"}
    assert properties["trans_timestamp"]["type"] == "date"
    after_midnight = {"range": {"@timestamp": {"gte": "2026-03-08T00:00:00Z"}}}
    found = client.search(index=prefix, body={"query": after_midnight, "size": 0})
    assert found["hits"]["total"]["value"] == 4
    exact = {"term": {"trans_timestamp": "2026-03-07T23:59:57.000001"}}
    assert client.count(index=prefix, body={"query": exact})["count"] == 1
    # AND the malformed record was quarantined with its reason, once: the redelivery quarantined
    # the same record under the same key, overwriting the object
    objects = quarantine.objects()
    assert len(objects) == 1
    ((key, lines),) = objects.items()
    assert key.startswith(f"{quarantine.prefix}2026/03/08/00/{SHARD}-")
    assert [line["reason"] for line in lines] == [
        "malformed JSON: Expecting value at line 1 column 14"
    ]
    # WHEN a later batch repeats the first event's id with another url and device
    altered = replace(events[0], url="wine_cart", device="app_tablet")
    third = index_batch([record_of(altered)], index, quarantine.sink(), prefix=prefix)
    # THEN the first occurrence's document stays as it was
    assert (third.indexed, third.already_indexed, third.failed_sequence_numbers) == (0, 1, [])
    kept = client.get(index=f"{prefix}-2026.03.07", id=events[0].event_id)
    assert kept["_source"] == document(events[0]) and kept["_version"] == 1


def test_mapping_errors_are_quarantined_and_the_rest_of_the_batch_is_indexed(
    opensearch_url: str, prefix: str, quarantine: Quarantine
) -> None:
    # GIVEN the day 2026-03-08 already indexed with a conflicting mapping (device as integer)
    index = search_index(opensearch_url, prefix)
    index.ensure_template()
    client = OpenSearch(hosts=[opensearch_url])
    client.indices.create(
        index=f"{prefix}-2026.03.08",
        body={"mappings": {"dynamic": "strict", "properties": {"device": {"type": "integer"}}}},
    )
    # AND a batch with 3 events on 2026-03-07, 2 on 2026-03-08 and an invalid record
    good = events_from("2026-03-07T10:00:00", 3)
    conflicting = events_from("2026-03-08T00:00:00", 2)
    records = [record_of(good[0]), record_of(conflicting[0]), lambda_record(b'{"event_id": "x"}')]
    records += [record_of(good[1]), record_of(conflicting[1]), record_of(good[2])]

    # WHEN indexed
    outcome = index_batch(records, index, quarantine.sink(), prefix=prefix)

    # THEN the other day's events are indexed and nothing is reported for retry
    assert (outcome.indexed, outcome.quarantined) == (3, 3)
    assert outcome.failed_sequence_numbers == []
    assert count(opensearch_url, prefix) == 3
    assert count(opensearch_url, f"{prefix}-2026.03.07") == 3
    # AND the conflicting documents and the invalid record are in ONE quarantine object, with
    # OpenSearch's reason and the original data
    ((key, lines),) = quarantine.objects().items()
    first, last = sequence_of(records[1]), sequence_of(records[4])
    assert key == f"{quarantine.prefix}2026/03/08/00/{SHARD}-{first}-{last}.jsonl"
    assert [line["sequence_number"] for line in lines] == [
        sequence_of(records[1]),
        sequence_of(records[2]),
        sequence_of(records[4]),
    ]
    mapping_error = lines[0]["reason"]
    assert mapping_error.startswith("rejected by OpenSearch: 400 mapper_parsing_exception")
    assert "failed to parse field [device] of type [integer]" in mapping_error
    assert json.loads(lines[0]["data"])["event_id"] == conflicting[0].event_id
    assert lines[1]["reason"] == "missing required field(s): " + (
        "custid, trafficfrom, url, device, touchproduct, trans_timestamp"
    )
    assert lines[0]["data_base64"] is False


def test_sigv4_signed_requests_are_accepted(
    opensearch_url: str, prefix: str, quarantine: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SigV4 signing with static credentials (the local node has no security: it ignores
    # the signature, so this checks that signing leaves the requests intact)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    index = search_index(opensearch_url, prefix, OPENSEARCH_AUTH="sigv4", AWS_REGION="us-east-1")
    events = events_from("2026-03-07T10:00:00", 3)

    # WHEN a batch is indexed
    outcome = index_batch([record_of(e) for e in events], index, quarantine.sink(), prefix=prefix)

    # THEN it is all indexed
    assert outcome.indexed == 3
    assert count(opensearch_url, prefix) == 3


@pytest.fixture
def own_node() -> Iterator[list[Any]]:
    """Nodes this test starts (and may stop), each in its own folder; stopped at the end."""
    nodes: list[Any] = []
    yield nodes
    for node in nodes:
        node.stop()


@pytest.mark.slow
def test_opensearch_down_mid_run_loses_nothing(
    tmp_path: Path, own_node: list[Any], prefix: str, quarantine: Quarantine
) -> None:
    # GIVEN its own OpenSearch node and a first batch indexed
    log = tmp_path / "opensearch.log"
    own_node.append(node := start_opensearch(log))
    index = search_index(node.url, prefix)
    before = events_from("2026-03-07T10:00:00", 5)
    first = index_batch([record_of(e) for e in before], index, quarantine.sink(), prefix=prefix)
    assert first.indexed == 5
    assert count(node.url, prefix) == 5

    # WHEN the node stops and a batch of 4 new events and 1 redelivered one arrives
    node.stop(keep_folder=True)
    own_node.remove(node)
    during = events_from("2026-03-07T11:00:00", 4)
    batch = [record_of(e) for e in during] + [record_of(before[0])]
    outcome = index_batch(batch, index, quarantine.sink(), prefix=prefix)

    # THEN every valid record is reported failed: nothing indexed, nothing quarantined
    assert outcome.failed_sequence_numbers == [sequence_of(r) for r in batch]
    assert (outcome.indexed, outcome.quarantined) == (0, 0)
    assert outcome.search_error is not None
    assert "failed 3 times" in outcome.search_error
    assert quarantine.objects() == {}

    # WHEN a node restarts on the same data and port, and exactly the failed records are retried
    own_node.append(restarted := start_opensearch(log, folder=node.folder, port=node.port))
    failed = set(outcome.failed_sequence_numbers)
    retry = index_batch(
        [r for r in batch if sequence_of(r) in failed], index, quarantine.sink(), prefix=prefix
    )

    # THEN they are indexed (the redelivered one was already), and the index holds each
    # distinct valid event once
    assert (retry.indexed, retry.already_indexed, retry.failed_sequence_numbers) == (4, 1, [])
    assert count(restarted.url, prefix) == len(before) + len(during)
