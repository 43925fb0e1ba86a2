"""The dashboard's routes, on a fake OpenSearch client: page, API shapes, windows, bad input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from clickstream_analytics.dashboard import (
    MAX_BUCKETS,
    PRECISION_THRESHOLD,
    NoWindowResults,
    UniqueVisitorsSource,
    WindowRow,
)
from clickstream_local.dashboard import Response, dashboard_app

MINUTE_MS = 60_000
START_MS = 1_772_892_000_000  # 2026-03-07T14:00:00Z


class FakeClient:
    """Answers ``search`` with canned aggregations and records every request body."""

    def __init__(
        self,
        buckets: list[tuple[int, int, int]] | None = None,
        total_visitors: int = 0,
        total_events: int = 0,
        first_last_ms: tuple[float | None, float | None] = (None, None),
        error: Exception | None = None,
    ) -> None:
        self.buckets = buckets or []
        self.total_visitors = total_visitors
        self.total_events = total_events
        self.first_last_ms = first_last_ms
        self.error = error
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((index, body))
        if self.error is not None:
            raise self.error
        if "over_time" not in body["aggs"]:
            first, last = self.first_last_ms
            return {"aggregations": {"first": {"value": first}, "last": {"value": last}}}
        return {
            "hits": {"total": {"value": self.total_events, "relation": "eq"}},
            "aggregations": {
                "total_visitors": {"value": self.total_visitors},
                "over_time": {
                    "buckets": [
                        {"key": key, "doc_count": events, "visitors": {"value": visitors}}
                        for key, visitors, events in self.buckets
                    ]
                },
            },
        }

    def histogram_request(self) -> dict[str, Any]:
        (body,) = [body for _, body in self.requests if "over_time" in body["aggs"]]
        return body


class FakeWindows:
    def __init__(self, rows: list[WindowRow]) -> None:
        self._rows = rows

    def rows(self) -> list[WindowRow] | None:
        return self._rows


def three_minutes() -> FakeClient:
    return FakeClient(
        buckets=[(START_MS, 3, 7), (START_MS + MINUTE_MS, 0, 0), (START_MS + 2 * MINUTE_MS, 2, 2)],
        total_visitors=4,
        total_events=9,
        first_last_ms=(START_MS + 1_500, START_MS + 2 * MINUTE_MS + 10_000),
    )


def app_on(client: FakeClient, pattern: str = "t-events-*") -> Any:
    return dashboard_app(UniqueVisitorsSource(client, index_pattern=pattern), NoWindowResults())


def body_json(response: Response) -> dict[str, Any]:
    assert response.content_type == "application/json"
    return json.loads(response.body)


def test_page_is_served_with_its_assets_and_no_external_resources() -> None:
    # GIVEN the app
    app = app_on(FakeClient())

    # WHEN the page and its assets are fetched
    page = app("/dashboard", "")
    script = app("/dashboard/static/dashboard.js", "")
    style = app("/dashboard/static/dashboard.css", "")

    # THEN each is served with its content type
    assert (page.status, page.content_type) == (200, "text/html; charset=utf-8")
    assert (script.status, script.content_type) == (200, "text/javascript; charset=utf-8")
    assert (style.status, style.content_type) == (200, "text/css; charset=utf-8")
    html = page.body.decode()
    assert "<h1>Unique visitors over time</h1>" in html
    assert 'id="buckets"' in html
    assert 'id="windows-panel"' in html
    # AND every resource the page loads is local (same origin or an inline data: URL)
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references
    assert all(ref.startswith(("/dashboard/", "data:")) for ref in references)
    for text in (html, script.body.decode(), style.body.decode()):
        urls = re.findall(r"https?://[^\s\"')]+", text)
        assert urls in ([], ["http://www.w3.org/2000/svg"])


def test_trailing_slash_serves_the_page_and_unknown_paths_are_404() -> None:
    # GIVEN the app
    app = app_on(FakeClient())

    # WHEN a path with a trailing slash, an unknown asset and an unknown route are fetched
    slash = app("/dashboard/", "")
    asset = app("/dashboard/static/../dashboard.py", "")
    missing = app("/nowhere", "")

    # THEN the page is served once and the others are 404 JSON errors
    assert slash.status == 200
    assert asset.status == 404
    assert (missing.status, body_json(missing)) == (404, {"error": "no route /nowhere"})


def test_unique_visitors_returns_buckets_and_totals_as_plain_data() -> None:
    # GIVEN OpenSearch answering three one-minute buckets, one of them empty
    client = three_minutes()
    app = app_on(client)

    # WHEN the API is called with the default parameters
    response = app("/dashboard/api/unique-visitors", "")

    # THEN the buckets come back oldest first, as ISO UTC starts with counts
    assert response.status == 200
    payload = body_json(response)
    assert payload["buckets"] == [
        {"start": "2026-03-07T14:00:00Z", "unique_visitors": 3, "events": 7},
        {"start": "2026-03-07T14:01:00Z", "unique_visitors": 0, "events": 0},
        {"start": "2026-03-07T14:02:00Z", "unique_visitors": 2, "events": 2},
    ]
    assert payload["total_unique_visitors"] == 4
    assert payload["total_events"] == 9
    assert payload["interval"] == "1m"
    assert payload["range"] == "all"
    assert payload["index_pattern"] == "t-events-*"
    assert payload["precision_threshold"] == PRECISION_THRESHOLD
    assert payload["generated_at"].endswith("Z")


def test_query_is_a_date_histogram_with_exact_cardinality_below_the_threshold() -> None:
    # GIVEN the app on a fake client
    client = three_minutes()
    app = app_on(client)

    # WHEN 10-second buckets over all data are asked for
    app("/dashboard/api/unique-visitors", "interval=10s&range=all")

    # THEN the search targets the pattern with a fixed-interval histogram on @timestamp
    assert {index for index, _ in client.requests} == {"t-events-*"}
    body = client.histogram_request()
    assert body["size"] == 0
    assert body["track_total_hits"] is True
    assert body["query"] == {"match_all": {}}
    histogram = body["aggs"]["over_time"]["date_histogram"]
    assert histogram == {"field": "@timestamp", "fixed_interval": "10s", "min_doc_count": 0}
    # AND the per-bucket and total cardinalities count custid with the explicit threshold
    expected = {"cardinality": {"field": "custid", "precision_threshold": PRECISION_THRESHOLD}}
    assert body["aggs"]["over_time"]["aggs"]["visitors"] == expected
    assert body["aggs"]["total_visitors"] == expected


def test_last_minutes_range_filters_and_extends_the_histogram_to_now() -> None:
    # GIVEN the app on a fake client
    client = three_minutes()
    app = app_on(client)

    # WHEN 5-minute buckets over the last hour are asked for
    response = app("/dashboard/api/unique-visitors", "interval=5m&range=60m")

    # THEN one search covers now-60m..now, with empty buckets kept up to now
    assert response.status == 200
    assert len(client.requests) == 1
    body = client.histogram_request()
    assert body["query"] == {"range": {"@timestamp": {"gte": "now-60m", "lte": "now"}}}
    histogram = body["aggs"]["over_time"]["date_histogram"]
    assert histogram["fixed_interval"] == "5m"
    assert histogram["extended_bounds"] == {"min": "now-60m", "max": "now"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("interval=2h", "interval must be one of 10s, 1m, 5m; got '2h'"),
        ("interval=", "interval must be one of 10s, 1m, 5m; got ''"),
        ("range=yesterday", "range must be 'all' or '<N>m'"),
        ("range=0m", "range must be 'all' or '<N>m'"),
        ("range=99999m", "range must be 'all' or '<N>m'"),
    ],
)
def test_bad_parameters_are_400_with_a_message(query: str, message: str) -> None:
    # GIVEN the app
    client = three_minutes()
    app = app_on(client)

    # WHEN the API is called with a parameter it does not accept
    response = app("/dashboard/api/unique-visitors", query)

    # THEN it answers 400 with a message naming the allowed values, without querying OpenSearch
    assert response.status == 400
    assert message in body_json(response)["error"]
    assert client.requests == []


def test_too_many_buckets_is_400() -> None:
    # GIVEN a day of data
    client = FakeClient(first_last_ms=(START_MS, START_MS + 24 * 60 * MINUTE_MS))
    app = app_on(client)

    # WHEN 10-second buckets over all of it are asked for
    response = app("/dashboard/api/unique-visitors", "interval=10s")

    # THEN it is refused before the histogram is run
    assert response.status == 400
    assert f"more than {MAX_BUCKETS}" in body_json(response)["error"]
    assert len(client.requests) == 1


def test_no_data_gives_no_buckets_and_zero_totals() -> None:
    # GIVEN no index matching the pattern yet
    app = app_on(FakeClient())

    # WHEN the API is called
    payload = body_json(app("/dashboard/api/unique-visitors", "interval=1m"))

    # THEN the series is empty
    assert payload["buckets"] == []
    assert (payload["total_unique_visitors"], payload["total_events"]) == (0, 0)


def test_unreachable_opensearch_is_503() -> None:
    # GIVEN a client whose node does not answer
    error = OpenSearchConnectionError("N/A", "connection refused", Exception("refused"))
    app = app_on(FakeClient(error=error))

    # WHEN the API is called
    response = app("/dashboard/api/unique-visitors", "")

    # THEN the page gets a 503 with the reason instead of a crash
    assert response.status == 503
    assert body_json(response)["error"].startswith("OpenSearch query failed")


def test_windows_are_not_available_yet_by_default() -> None:
    # GIVEN the default windows source
    app = app_on(FakeClient())

    # WHEN the windows API is called
    payload = body_json(app("/dashboard/api/windows", ""))

    # THEN it says so, for the page's panel
    assert payload["available"] is False
    assert payload["rows"] == []
    assert "not available yet" in payload["message"].lower()


def test_windows_rows_are_returned_once_a_source_provides_them() -> None:
    # GIVEN a windows source with one result
    row = WindowRow(
        metric="unique_users_per_url",
        window_seconds=15,
        window_start="2026-03-07T14:00:15Z",
        key="beer_cart",
        value=3,
        final=True,
    )
    app = dashboard_app(UniqueVisitorsSource(FakeClient()), FakeWindows([row]))

    # WHEN the windows API is called
    payload = body_json(app("/dashboard/api/windows", ""))

    # THEN the rows are plain data
    assert payload["available"] is True
    assert payload["rows"] == [
        {
            "metric": "unique_users_per_url",
            "window_seconds": 15,
            "window_start": "2026-03-07T14:00:15Z",
            "key": "beer_cart",
            "value": 3,
            "final": True,
            "approximate": False,
            "error_bound": 0.0,
        }
    ]


def test_latest_window_results_show_the_newest_windows_of_each_metric() -> None:
    # GIVEN result rows of three 15 s windows and one top-sources minute
    from datetime import UTC, datetime, timedelta

    from clickstream.core.window_counting import ResultRow
    from clickstream_analytics.dashboard import LatestWindowResults

    start = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)

    def row(metric: str, size: int, offset: int, key: str, value: int) -> ResultRow:
        begin = start + timedelta(seconds=offset)
        return ResultRow(
            metric, size, begin, begin + timedelta(seconds=size), key, value, offset < 30, 0, None
        )

    class FakeSink:
        def rows(self, metric: str, size: int) -> list[ResultRow]:
            if (metric, size) == ("unique-users", 15):
                return [row(metric, 15, s, "beer_cart", s + 1) for s in (0, 15, 30)]
            if (metric, size) == ("top-sources", 60):
                return [row(metric, 60, 0, "google", 9)]
            return []

    # WHEN the two newest windows are asked for
    rows = LatestWindowResults(FakeSink(), latest=2).rows()
    # THEN the 15 s metric shows its two newest windows and the sources their minute
    assert rows is not None
    unique = [r for r in rows if r.metric == "unique_users_per_url"]
    assert [r.window_start for r in unique] == ["2026-03-07T14:00:15Z", "2026-03-07T14:00:30Z"]
    assert [(r.key, r.value, r.final) for r in unique] == [
        ("beer_cart", 16, True),
        ("beer_cart", 31, False),
    ]
    assert [(r.metric, r.key, r.value) for r in rows if r.metric == "top_sources"] == [
        ("top_sources", "google", 9)
    ]

    # AND with no rows at all the panel says "not available"
    class EmptySink:
        def rows(self, metric: str, size: int) -> list[ResultRow]:
            return []

    assert LatestWindowResults(EmptySink()).rows() is None
