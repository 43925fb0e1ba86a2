"""The live local dashboard (task 5.1): unique visitors over time, straight from OpenSearch.

The page and its HTTP routes; the numbers come from :mod:`clickstream_analytics.dashboard`.

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
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from opensearchpy.exceptions import OpenSearchException

from clickstream.core.search_documents import INDEX_PATTERN
from clickstream_analytics.dashboard import (
    DEFAULT_INTERVAL,
    DEFAULT_RANGE,
    InvalidQuery,
    NoWindowResults,
    UniqueVisitorsSource,
    WindowResultsSource,
)

logger = logging.getLogger(__name__)

NOT_AVAILABLE = (
    "Unique users per URL (15 s and 1 min windows) and top traffic sources per minute are not "
    "available yet: they appear here once the stream window counter writes its results."
)

_STATIC = ("dashboard.html", "dashboard.css", "dashboard.js")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
JSON_TYPE = "application/json"


class Response(NamedTuple):
    """What a route answers: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


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
