"""The live local dashboard (task 5.1): unique visitors over time, straight from OpenSearch.

Routes (all ``GET``):

- ``/dashboard``: the page (``static/dashboard.html`` with its ``.css`` and ``.js``), which fetches
  the API below every 5 s and draws the chart and the table in the browser.
- ``/dashboard/api/unique-visitors?interval=1m&range=all``: distinct ``custid`` per time bucket.
  ``interval`` is ``10s``, ``1m`` (default) or ``5m``; ``range`` is ``all`` (default, suits
  replayed historical data) or ``<N>m`` for the last N minutes.
- ``/dashboard/api/windows``: the near-real-time window results, or ``{"available": false}``
  while no component produces them.

:func:`dashboard_app` returns a plain callable ``(path, query) -> Response`` so any HTTP server
can mount it; :func:`serve_dashboard` runs it alone on a loopback port.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import OpenSearchException

from clickstream.search.documents import INDEX_PATTERN

logger = logging.getLogger(__name__)

PRECISION_THRESHOLD = 3000
"""``precision_threshold`` of every ``cardinality`` aggregation on ``custid``.

Below this many distinct values OpenSearch counts exactly (it keeps the hashes themselves); above
it the count is a HyperLogLog++ estimate, typically within a few percent. It costs about
8 bytes × threshold of memory per bucket. OpenSearch caps the setting at 40,000.
"""

INTERVALS: dict[str, int] = {"10s": 10, "1m": 60, "5m": 300}
"""Allowed ``interval`` values and their length in seconds (fixed, epoch-aligned buckets)."""

DEFAULT_INTERVAL = "1m"
DEFAULT_RANGE = "all"
MAX_RANGE_MINUTES = 7 * 24 * 60
MAX_BUCKETS = 2000
"""Most buckets one response may hold; a coarser interval or a shorter range is asked for above."""

TIME_FIELD = "@timestamp"
VISITOR_FIELD = "custid"
NOT_AVAILABLE = (
    "Unique users per URL (15 s and 1 min windows) and top traffic sources per minute are not "
    "available yet: they appear here once the stream window counter writes its results."
)

_RANGE = re.compile(r"(?P<minutes>[1-9][0-9]{0,4})m", re.ASCII)
_STATIC = ("dashboard.html", "dashboard.css", "dashboard.js")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
JSON_TYPE = "application/json"


class InvalidQuery(ValueError):
    """A query parameter the API does not accept; the message says which values are."""


class Response(NamedTuple):
    """What a route answers: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


def parse_interval(text: str) -> int:
    """Seconds of an ``interval`` parameter (``10s``, ``1m`` or ``5m``)."""
    if text not in INTERVALS:
        raise InvalidQuery(f"interval must be one of {', '.join(INTERVALS)}; got {text!r}")
    return INTERVALS[text]


def parse_range(text: str) -> int | None:
    """Minutes of a ``range`` parameter: None for ``all``, N for ``<N>m``."""
    if text == "all":
        return None
    match = _RANGE.fullmatch(text)
    if match is None or int(match["minutes"]) > MAX_RANGE_MINUTES:
        raise InvalidQuery(
            f"range must be 'all' or '<N>m' with N from 1 to {MAX_RANGE_MINUTES}; got {text!r}"
        )
    return int(match["minutes"])


def iso_utc(epoch_millis: float) -> str:
    """``2026-03-07T14:05:00Z`` from milliseconds since the epoch."""
    moment = datetime.fromtimestamp(epoch_millis / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class UniqueVisitorsSource:
    """Distinct visitors (``custid``) per fixed time bucket, from the events in OpenSearch."""

    def __init__(
        self,
        client: OpenSearch,
        index_pattern: str = INDEX_PATTERN,
        precision_threshold: int = PRECISION_THRESHOLD,
    ) -> None:
        self.client = client
        self.index_pattern = index_pattern
        self.precision_threshold = precision_threshold

    @classmethod
    def from_url(
        cls, opensearch_url: str, index_pattern: str = INDEX_PATTERN
    ) -> UniqueVisitorsSource:
        """A source on the OpenSearch node at ``opensearch_url`` (no authentication, local)."""
        return cls(OpenSearch(hosts=[opensearch_url], timeout=10), index_pattern)

    def series(
        self, interval: str = DEFAULT_INTERVAL, range_: str = DEFAULT_RANGE
    ) -> dict[str, Any]:
        """Buckets ``[{"start", "unique_visitors", "events"}, ...]`` oldest first, and totals.

        Totals come from the same search as the buckets, so they always agree with them.
        Raises :class:`InvalidQuery` for unknown parameters or more than :data:`MAX_BUCKETS`.
        """
        seconds = parse_interval(interval)
        minutes = parse_range(range_)
        if minutes is None:
            query: dict[str, Any] = {"match_all": {}}
            span = self._span_seconds()
            bounds = None
        else:
            query = {"range": {TIME_FIELD: {"gte": f"now-{minutes}m", "lte": "now"}}}
            span = minutes * 60
            bounds = {"min": f"now-{minutes}m", "max": "now"}
        if span // seconds + 1 > MAX_BUCKETS:
            raise InvalidQuery(
                f"{interval} buckets over {range_} would be more than {MAX_BUCKETS}: "
                "choose a coarser interval or a shorter range"
            )
        histogram: dict[str, Any] = {
            "field": TIME_FIELD,
            "fixed_interval": interval,
            "min_doc_count": 0,
        }
        if bounds is not None:
            histogram["extended_bounds"] = bounds
        body = {
            "size": 0,
            "track_total_hits": True,
            "query": query,
            "aggs": {
                "total_visitors": self._cardinality(),
                "over_time": {
                    "date_histogram": histogram,
                    "aggs": {"visitors": self._cardinality()},
                },
            },
        }
        result = self.client.search(index=self.index_pattern, body=body)
        aggregations = result.get("aggregations", {})
        buckets = [
            {
                "start": iso_utc(bucket["key"]),
                "unique_visitors": int(bucket["visitors"]["value"]),
                "events": int(bucket["doc_count"]),
            }
            for bucket in aggregations.get("over_time", {}).get("buckets", [])
        ]
        return {
            "interval": interval,
            "range": range_,
            "index_pattern": self.index_pattern,
            "precision_threshold": self.precision_threshold,
            "total_unique_visitors": int(aggregations.get("total_visitors", {}).get("value", 0)),
            "total_events": int(result["hits"]["total"]["value"]),
            "buckets": buckets,
        }

    def _cardinality(self) -> dict[str, Any]:
        return {
            "cardinality": {
                "field": VISITOR_FIELD,
                "precision_threshold": self.precision_threshold,
            }
        }

    def _span_seconds(self) -> int:
        """Seconds between the first and the last event (0 when there are none)."""
        body = {
            "size": 0,
            "track_total_hits": False,
            "aggs": {
                "first": {"min": {"field": TIME_FIELD}},
                "last": {"max": {"field": TIME_FIELD}},
            },
        }
        aggregations = self.client.search(index=self.index_pattern, body=body).get(
            "aggregations", {}
        )
        first = aggregations.get("first", {}).get("value")
        last = aggregations.get("last", {}).get("value")
        if first is None or last is None:
            return 0
        return int((last - first) // 1000)


@dataclass(frozen=True)
class WindowRow:
    """One near-real-time window result (ARCHITECTURE §3).

    ``metric`` is ``unique_users_per_url`` (``key`` a url, ``value`` distinct custids) or
    ``top_sources`` (``key`` a traffic source, ``value`` events).
    """

    metric: str
    window_seconds: int
    window_start: str
    key: str
    value: int
    final: bool


class WindowResultsSource(Protocol):
    """Where the page's windows panel reads from; None means "not available yet"."""

    def rows(self) -> list[WindowRow] | None:
        """The latest window results, or None while no component produces them."""
        ...


class NoWindowResults:
    """The windows source until the window counter exists: nothing is available."""

    def rows(self) -> list[WindowRow] | None:
        """Always None."""
        return None


class LatestWindowResults:
    """The window counter's results table: the latest windows of each metric and size.

    ``sink`` is a :class:`clickstream.window_results.DynamoWindowResults`; ``latest`` windows are
    shown per metric and size (all their keys). No rows yet means "not available".
    """

    def __init__(self, sink: Any, latest: int = 4) -> None:
        self.sink = sink
        self.latest = latest

    def rows(self) -> list[WindowRow] | None:
        """Rows of the most recent windows, oldest to newest, per metric and size."""
        shown: list[WindowRow] = []
        for metric, name, size in (
            ("unique-users", "unique_users_per_url", 15),
            ("unique-users", "unique_users_per_url", 60),
            ("top-sources", "top_sources", 60),
        ):
            rows = self.sink.rows(metric, size)
            starts = sorted({row.window_start for row in rows}, reverse=True)[: self.latest]
            for row in sorted(rows, key=lambda r: (r.window_start, -r.value), reverse=False):
                if row.window_start in starts:
                    shown.append(
                        WindowRow(
                            metric=name,
                            window_seconds=size,
                            window_start=row.window_start.isoformat().replace("+00:00", "Z"),
                            key=row.key,
                            value=row.value,
                            final=row.final,
                        )
                    )
        return shown or None


class DashboardApp:
    """The dashboard's routes as a plain callable: ``app(path, query) -> Response``."""

    def __init__(self, unique: UniqueVisitorsSource, windows: WindowResultsSource) -> None:
        self.unique = unique
        self.windows = windows

    def __call__(self, path: str, query: str = "") -> Response:
        """Answer ``GET path?query``; never raises for bad input or an unreachable OpenSearch."""
        if path in ("/dashboard", "/dashboard/"):
            return _static("dashboard.html")
        if path.startswith("/dashboard/static/"):
            name = path.removeprefix("/dashboard/static/")
            if name in _STATIC:
                return _static(name)
        if path == "/dashboard/api/unique-visitors":
            return self._unique_visitors(query)
        if path == "/dashboard/api/windows":
            return self._windows()
        return _json({"error": f"no route {path}"}, 404)

    def _unique_visitors(self, query: str) -> Response:
        parameters = parse_qs(query, keep_blank_values=True)
        interval = parameters.get("interval", [DEFAULT_INTERVAL])[-1]
        range_ = parameters.get("range", [DEFAULT_RANGE])[-1]
        try:
            series = self.unique.series(interval, range_)
        except InvalidQuery as error:
            return _json({"error": str(error)}, 400)
        except OpenSearchException as error:
            logger.warning("unique visitors query failed: %s", error)
            return _json({"error": f"OpenSearch query failed: {error}"}, 503)
        return _json({**series, "generated_at": _now()})

    def _windows(self) -> Response:
        rows = self.windows.rows()
        if rows is None:
            return _json({"available": False, "message": NOT_AVAILABLE, "rows": []})
        return _json(
            {"available": True, "rows": [asdict(row) for row in rows], "generated_at": _now()}
        )


def dashboard_app(unique: UniqueVisitorsSource, windows: WindowResultsSource) -> DashboardApp:
    """The dashboard routes over these sources, ready to mount in any HTTP server."""
    return DashboardApp(unique, windows)


class DashboardServer(ThreadingHTTPServer):
    """A standalone HTTP server for the dashboard, running in a daemon thread."""

    daemon_threads = True

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()


def dashboard_server(app: DashboardApp, host: str = "127.0.0.1", port: int = 0) -> DashboardServer:
    """A server answering ``GET`` with ``app`` (port 0 picks a free one); not started."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, content_type, body = app(parts.path, parts.query)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return DashboardServer((host, port), Handler)


def serve_dashboard(
    opensearch_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    index_pattern: str = INDEX_PATTERN,
    windows: WindowResultsSource | None = None,
) -> DashboardServer:
    """Serve the dashboard for the OpenSearch node at ``opensearch_url`` in a background thread.

    Returns the running server: the page is ``server.url + "/dashboard"``; ``server.stop()``
    ends it.
    """
    source = UniqueVisitorsSource.from_url(opensearch_url, index_pattern)
    server = dashboard_server(dashboard_app(source, windows or NoWindowResults()), host, port)
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server


def _static(name: str) -> Response:
    body = resources.files("clickstream_local").joinpath("static", name).read_bytes()
    return Response(200, _CONTENT_TYPES[name[name.rindex(".") :]], body)


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(status, JSON_TYPE, json.dumps(payload).encode())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
