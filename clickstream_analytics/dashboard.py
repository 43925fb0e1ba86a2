"""The live page's data (task 5.1 and task 4): unique visitors over time, latest window results.

- :class:`UniqueVisitorsSource`: distinct ``custid`` per fixed time bucket, from the events in
  OpenSearch (a ``cardinality`` aggregation inside a ``date_histogram``);
- :class:`LatestWindowResults`: the newest windows of each metric and size from the window
  counter's results table.

The local stack's page (``clickstream_local.dashboard``) serves them as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from opensearchpy import OpenSearch

from clickstream.core.search_documents import INDEX_PATTERN

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
_RANGE = re.compile(r"(?P<minutes>[1-9][0-9]{0,4})m", re.ASCII)


class InvalidQuery(ValueError):
    """A query parameter the API does not accept; the message says which values are."""


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
    """One near-real-time window result (docs/architecture.md, Stream semantics: Windows).

    ``metric`` is ``unique_users_per_url`` (``key`` a url, ``value`` distinct custids) or
    ``top_sources`` (``key`` a traffic source, ``value`` events). ``approximate`` rows were
    estimated by a sketch, within the relative ``error_bound``.
    """

    metric: str
    window_seconds: int
    window_start: str
    key: str
    value: int
    final: bool
    approximate: bool = False
    error_bound: float = 0.0


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

    ``sink`` is a :class:`clickstream.adapters.aws.window_results.DynamoWindowResults`;
    ``latest`` windows are shown per metric and size (all their keys). No rows yet means "not
    available".
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
                            approximate=row.approximate,
                            error_bound=row.error_bound,
                        )
                    )
        return shown or None
