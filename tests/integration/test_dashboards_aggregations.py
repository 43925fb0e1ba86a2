"""Each dashboard panel's aggregation, run on a real OpenSearch node, gives the exact numbers.

The requests are translated from the saved objects in dashboards/clickstream.ndjson, with the
index pattern swapped for a per-module prefix, and compared with the same figures computed in
Python from the indexed events.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opensearchpy import OpenSearch, helpers

from clickstream.core.events import Event
from clickstream.core.search_documents import document, index_name, index_template
from clickstream.generator import generate
from dashboards.saved_objects import find_by_title, load, search_request, tabify

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 7, 23, 58, tzinfo=UTC)
"""300 events at 1/s from here span five minutes and two daily indices (23:58 to 00:02:59)."""
EVENT_COUNT = 300
SEED = 51
OBJECTS = load()


@dataclass(frozen=True)
class Dataset:
    """Events indexed under ``prefix``; their indices match ``pattern``."""

    prefix: str
    pattern: str
    events: list[Event]


@pytest.fixture(scope="module")
def client(opensearch_url: str) -> OpenSearch:
    """A client of the session's OpenSearch node."""
    return OpenSearch(hosts=[opensearch_url], timeout=30)


@pytest.fixture(scope="module")
def dataset(client: OpenSearch) -> Iterator[Dataset]:
    """The deterministic classic events indexed through the documents module, then refreshed."""
    prefix = f"t{uuid.uuid4().hex[:10]}-events"
    pattern = f"{prefix}-*"
    client.indices.put_index_template(name=prefix, body=index_template(prefix))
    events = list(generate("classic", seed=SEED, start=START, rate=1.0, count=EVENT_COUNT))
    actions = [
        {"_index": index_name(event, prefix), "_id": event.event_id, "_source": document(event)}
        for event in events
    ]
    helpers.bulk(client, actions, chunk_size=100)
    client.indices.refresh(index=pattern)
    yield Dataset(prefix=prefix, pattern=pattern, events=events)
    client.indices.delete(index=pattern)
    client.indices.delete_index_template(name=prefix)


def respond(
    client: OpenSearch,
    dataset: Dataset,
    title: str,
    time_range: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """The response to a visualization's request, run on the test indices."""
    vis = find_by_title(OBJECTS, "visualization", title)
    request = search_request(OBJECTS, vis, index=dataset.pattern, time_range=time_range)
    return client.search(index=request.index, body=request.body)


def run(
    client: OpenSearch,
    dataset: Dataset,
    title: str,
    time_range: tuple[datetime, datetime] | None = None,
) -> list[tuple[Any, ...]]:
    """A visualization's rows (bucket keys, then metrics) on the test indices."""
    vis = find_by_title(OBJECTS, "visualization", title)
    return tabify(vis, respond(client, dataset, title, time_range))


def ranked(counts: Counter[Any]) -> list[tuple[Any, int]]:
    """Terms order: count descending, then key ascending (OpenSearch's tie-break)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def minute_ms(moment: datetime) -> int:
    """Epoch milliseconds of the UTC minute holding ``moment`` (a date_histogram key)."""
    return int(moment.replace(second=0, microsecond=0).timestamp()) * 1000


def unique_per_minute(events: list[Event]) -> list[tuple[int, int]]:
    visitors: dict[int, set[int]] = defaultdict(set)
    for event in events:
        visitors[minute_ms(event.trans_timestamp)].add(event.custid)
    return sorted((minute, len(custids)) for minute, custids in visitors.items())


def test_the_events_land_in_two_daily_indices(client: OpenSearch, dataset: Dataset) -> None:
    # GIVEN the indexed dataset
    # WHEN the matching indices and documents are counted
    indices = sorted(client.indices.get(index=dataset.pattern))
    total = client.count(index=dataset.pattern)["count"]

    # THEN the pattern spans both days and holds every event once
    assert indices == [f"{dataset.prefix}-2026.03.07", f"{dataset.prefix}-2026.03.08"]
    assert total == EVENT_COUNT


def test_unique_visitors_per_minute_are_exact_distinct_custids(
    client: OpenSearch, dataset: Dataset
) -> None:
    # GIVEN the unique visitors chart's request on the test indices
    # WHEN it runs
    rows = run(client, dataset, "Unique visitors over time")

    # THEN each minute shows its exact number of distinct custids (under the precision threshold)
    assert rows == unique_per_minute(dataset.events)
    assert len(rows) == 5
    # AND these are visitors, not events: each minute has 60 events from fewer customers
    events_per_minute = Counter(minute_ms(event.trans_timestamp) for event in dataset.events)
    assert all(uniques < events_per_minute[minute] for minute, uniques in rows)


def test_unique_visitors_follow_the_time_picker(client: OpenSearch, dataset: Dataset) -> None:
    # GIVEN a time range covering the first two minutes only (bounds inclusive, as Dashboards)
    start, end = START, START + timedelta(seconds=119, milliseconds=999)
    inside = [e for e in dataset.events if start <= e.trans_timestamp <= end]

    # WHEN the chart's request runs with it
    rows = run(client, dataset, "Unique visitors over time", time_range=(start, end))

    # THEN only those two minutes appear, with their exact unique counts
    assert rows == unique_per_minute(inside)
    assert len(rows) == 2


def test_events_by_device_match_the_counts_per_device(client: OpenSearch, dataset: Dataset) -> None:
    # GIVEN / WHEN the device pie's request runs
    rows = run(client, dataset, "Events by device")

    # THEN it has every device with its event count, largest first
    assert rows == ranked(Counter(event.device for event in dataset.events))
    assert sum(count for _, count in rows) == EVENT_COUNT


def test_the_heat_map_counts_every_source_and_page_pair(
    client: OpenSearch, dataset: Dataset
) -> None:
    # GIVEN the counts per source and per (source, page) computed from the events
    per_source = Counter(event.trafficfrom for event in dataset.events)
    per_pair: dict[str, Counter[str]] = defaultdict(Counter)
    for event in dataset.events:
        per_pair[event.trafficfrom][event.url] += 1
    expected = [
        (source, url, count)
        for source, _ in ranked(per_source)
        for url, count in ranked(per_pair[source])
    ]

    # WHEN the heat map's request runs
    rows = run(client, dataset, "Traffic source × page")

    # THEN every cell holds its exact count, sources and pages in terms order
    assert rows == expected
    assert sum(count for *_, count in rows) == EVENT_COUNT


def test_top_products_are_the_ten_most_touched_without_product_zero(
    client: OpenSearch, dataset: Dataset
) -> None:
    # GIVEN the product counts of the events that show a product
    products = Counter(event.touchproduct for event in dataset.events if event.touchproduct)
    assert any(event.touchproduct == 0 for event in dataset.events)

    # WHEN the top products request runs on the two daily indices (two shards)
    response = respond(client, dataset, "Top products")
    rows = tabify(find_by_title(OBJECTS, "visualization", "Top products"), response)

    # THEN it returns the ten largest, ties broken by the smaller product number, and never 0
    assert rows == ranked(products)[:10]
    # AND the shards returned every product, so no count may be missing (exact, not estimated)
    assert response["aggregations"]["2"]["doc_count_error_upper_bound"] == 0
    assert all(product != 0 for product, _ in rows)
    tied = [count for _, count in ranked(products)[:11]]
    assert len(set(tied)) < len(tied), "the dataset should exercise tie-breaking"
