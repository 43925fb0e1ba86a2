"""The live dashboard page in headless Chromium, over events indexed into the real OpenSearch.

The page draws what the API returns; these tests read the numbers back out of the rendered DOM
(the bucket table, the chart's points, the totals) and compare them with OpenSearch's own
cardinality aggregation and with exact distinct counts computed here from the events.

Set ``CLICKSTREAM_DASHBOARD_SCREENSHOT=docs/dashboard.png`` to keep the screenshot (the README's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch, helpers

from clickstream.core.events import Event
from clickstream.core.search_documents import bulk_actions, index_pattern, index_template
from clickstream.core.sessions import unique_events
from clickstream.generator import generate
from clickstream_analytics.dashboard import INTERVALS, PRECISION_THRESHOLD
from clickstream_local.dashboard import serve_dashboard

CHROMIUM = Path("/usr/bin/chromium")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium for the page: run `make browser`"
    ),
]


def dataset() -> list[Event]:
    """About 2,300 realistic events over 22 minutes across midnight UTC (two daily indices).

    The rate changes between segments and there is a 2-minute gap with no events, so the chart
    has shape and empty buckets; the first event is delivered twice, as a retry would.
    """
    segments = [  # (start, events per second, minutes)
        (datetime(2026, 3, 7, 23, 48, tzinfo=UTC), 0.5, 4),
        (datetime(2026, 3, 7, 23, 52, tzinfo=UTC), 2.0, 6),
        (datetime(2026, 3, 7, 23, 58, tzinfo=UTC), 4.0, 5),
        (datetime(2026, 3, 8, 0, 5, tzinfo=UTC), 1.0, 5),
    ]
    events: list[Event] = []
    for seed, (start, rate, minutes) in enumerate(segments, 1):
        events.extend(
            generate("realistic", seed=seed, start=start, rate=rate, duration=minutes * 60)
        )
    return [*events, events[0]]


def exact_series(events: list[Event], seconds: int) -> list[dict[str, Any]]:
    """Distinct custid and events per epoch-aligned bucket, empty buckets included, oldest first.

    One document per event_id, as in the index (a redelivered event overwrites its document).
    """
    documents = {event.event_id: event for event in events}
    size = timedelta(seconds=seconds)
    customers: dict[int, set[int]] = defaultdict(set)
    counts: dict[int, int] = defaultdict(int)
    for event in documents.values():
        bucket = (event.trans_timestamp - EPOCH) // size
        customers[bucket].add(event.custid)
        counts[bucket] += 1
    return [
        {
            "start": (EPOCH + bucket * size).isoformat().replace("+00:00", "Z"),
            "unique_visitors": len(customers[bucket]),
            "events": counts[bucket],
        }
        for bucket in range(min(counts), max(counts) + 1)
    ]


def opensearch_series(client: OpenSearch, pattern: str, interval: str) -> dict[str, Any]:
    """OpenSearch's own answer: cardinality of custid per date_histogram bucket and overall."""
    cardinality = {"cardinality": {"field": "custid", "precision_threshold": PRECISION_THRESHOLD}}
    result = client.search(
        index=pattern,
        body={
            "size": 0,
            "track_total_hits": True,
            "aggs": {
                "all": cardinality,
                "times": {
                    "date_histogram": {
                        "field": "@timestamp",
                        "fixed_interval": interval,
                        "min_doc_count": 0,
                    },
                    "aggs": {"visitors": cardinality},
                },
            },
        },
    )
    buckets = [
        {
            "start": datetime.fromtimestamp(bucket["key"] / 1000, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "unique_visitors": bucket["visitors"]["value"],
            "events": bucket["doc_count"],
        }
        for bucket in result["aggregations"]["times"]["buckets"]
    ]
    return {
        "buckets": buckets,
        "unique_visitors": result["aggregations"]["all"]["value"],
        "events": result["hits"]["total"]["value"],
    }


class RenderedPage(HTMLParser):
    """What the page shows: table rows, chart points, totals, and the windows badge."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.cells: list[list[str]] = []
        self.points: list[dict[str, Any]] = []
        self.figures: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self._capture: str | None = None
        self._in_row = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "tr" and "data-start" in attributes:
            self.rows.append(bucket_of(attributes))
            self.cells.append([])
            self._in_row = True
        elif tag == "circle" and "point" in attributes.get("class", "").split():
            self.points.append(bucket_of(attributes))
        elif tag == "td" and self._in_row:
            self.cells[-1].append("")
        if attributes.get("id") in ("total-unique", "total-events"):
            self.figures[attributes["id"]] = attributes.get("data-value", "")
        if attributes.get("id") in ("windows-status", "last-updated", "total-unique"):
            self._capture = attributes["id"]
            self.texts[self._capture] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_row = False
        if tag in ("span", "p"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._in_row and self.cells and self.cells[-1]:
            self.cells[-1][-1] += data
        if self._capture is not None:
            self.texts[self._capture] += data


def bucket_of(attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "start": attributes["data-start"],
        "unique_visitors": int(attributes["data-unique-visitors"]),
        "events": int(attributes["data-events"]),
    }


def chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with no network beyond loopback and a throwaway profile."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def render(url: str, tmp_path: Path) -> RenderedPage:
    """The page's DOM after its scripts ran, parsed."""
    result = chromium("--dump-dom", url, profile=tmp_path / f"profile-{uuid.uuid4().hex[:6]}")
    page = RenderedPage()
    page.feed(result.stdout)
    return page


@pytest.fixture
def events() -> list[Event]:
    return dataset()


@pytest.fixture
def indexed(opensearch_url: str, events: list[Event]) -> Iterator[tuple[OpenSearch, str]]:
    """The dataset in daily indices under a prefix of this test's own; yields (client, pattern)."""
    client = OpenSearch(hosts=[opensearch_url], timeout=30)
    prefix = f"t{uuid.uuid4().hex[:10]}-events"
    client.indices.put_index_template(name=prefix, body=index_template(prefix))
    # the dataset repeats ids; the indexer sends each id's first copy
    actions = bulk_actions(unique_events(events), prefix)
    _, errors = helpers.bulk(client, actions, refresh=True)
    assert errors == []
    yield client, index_pattern(prefix)
    client.indices.delete(index=index_pattern(prefix))
    client.indices.delete_index_template(name=prefix)


@pytest.fixture
def dashboard_url(opensearch_url: str, indexed: tuple[OpenSearch, str]) -> Iterator[str]:
    server = serve_dashboard(opensearch_url, index_pattern=indexed[1])
    yield server.url
    server.stop()


@pytest.mark.parametrize("interval", list(INTERVALS))
def test_page_plots_the_opensearch_cardinality_and_the_exact_counts(
    interval: str,
    events: list[Event],
    indexed: tuple[OpenSearch, str],
    dashboard_url: str,
    tmp_path: Path,
) -> None:
    # GIVEN the dataset indexed into the real OpenSearch, and the dashboard serving it
    client, pattern = indexed
    reference = opensearch_series(client, pattern, interval)
    exact = exact_series(events, INTERVALS[interval])
    assert reference["buckets"] == exact  # small data: below the threshold, the count is exact

    # WHEN the page is loaded in headless Chromium
    page = render(f"{dashboard_url}/dashboard?interval={interval}&range=all", tmp_path)

    # THEN the table lists every bucket with OpenSearch's and the exact numbers
    assert page.rows == reference["buckets"]
    assert page.rows == exact
    assert [int(cell[1].replace(",", "")) for cell in page.cells] == [
        bucket["unique_visitors"] for bucket in exact
    ]
    assert [int(cell[2].replace(",", "")) for cell in page.cells] == [
        bucket["events"] for bucket in exact
    ]
    # AND the chart plots one point per bucket with the same values
    assert page.points == exact
    # AND the totals are the distinct customers and the distinct events of the whole range
    distinct_customers = len({event.custid for event in events})
    distinct_events = len({event.event_id for event in events})
    assert distinct_customers < PRECISION_THRESHOLD
    assert int(page.figures["total-unique"]) == reference["unique_visitors"] == distinct_customers
    assert int(page.figures["total-events"]) == reference["events"] == distinct_events
    assert page.texts["total-unique"] == f"{distinct_customers:,}"
    # AND the windows panel says the near-real-time results are not available yet
    assert page.texts["windows-status"] == "Not available yet"
    assert page.texts["last-updated"].startswith("Updated ")


def test_page_with_no_data_says_so(opensearch_url: str, tmp_path: Path) -> None:
    # GIVEN a dashboard on an index pattern that matches nothing
    server = serve_dashboard(opensearch_url, index_pattern=f"t{uuid.uuid4().hex[:10]}-none-*")
    try:
        # WHEN the page is loaded
        page = render(f"{server.url}/dashboard", tmp_path)
    finally:
        server.stop()

    # THEN there are no buckets and zero totals, and the page still updated
    assert page.rows == []
    assert page.points == []
    assert page.figures == {"total-unique": "0", "total-events": "0"}
    assert page.texts["last-updated"].startswith("Updated ")


def test_screenshot_of_the_page(dashboard_url: str, tmp_path: Path) -> None:
    # GIVEN the dashboard over the dataset
    target = tmp_path / "dashboard.png"

    # WHEN headless Chromium takes a 1280×900 screenshot of the page
    chromium(
        f"--screenshot={target}",
        "--window-size=1280,900",
        "--hide-scrollbars",
        f"{dashboard_url}/dashboard?interval=1m&range=all",
        profile=tmp_path / "profile",
    )

    # THEN it is a real PNG with content, not a blank page
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert target.stat().st_size > 30_000
    keep = os.environ.get("CLICKSTREAM_DASHBOARD_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, keep)
