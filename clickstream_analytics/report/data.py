"""The report's numbers: the ``sql/`` queries run on DuckDB over the curated Parquet.

:func:`load_report_data` runs each query of :data:`REPORT_QUERIES` (the same files Athena runs
as named queries) and :func:`report_data` turns their rows into typed records. Nothing else
computes a number the report shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.generator.profiles import FUNNEL
from clickstream_analytics.queries import QueryResult, run_duckdb, sql_files

REPORT_QUERIES: tuple[str, ...] = (
    "report_header",
    "accesses_by_device",
    "source_url_heatmap",
    "top_products",
    "conversion_by_source",
    "conversion_by_device",
)
"""The ``sql/`` files the report reads, without ``.sql``."""


@dataclass(frozen=True)
class Header:
    """The data range (event time, UTC) and the curated tables' counts."""

    first_event: datetime | None
    last_event: datetime | None
    events: int
    customers: int
    product_views: int
    gap_sessions: int
    minute_sessions: int


@dataclass(frozen=True)
class DeviceAccesses:
    """Events of one device and their share of all events."""

    device: str
    accesses: int
    share: float


@dataclass(frozen=True)
class HeatCell:
    """Events of one (traffic source, page) pair."""

    trafficfrom: str
    url: str
    accesses: int


@dataclass(frozen=True)
class ProductAccesses:
    """Views of one product (``touchproduct <> 0``) and the customers who viewed it."""

    product: int
    accesses: int
    customers: int


@dataclass(frozen=True)
class GroupConversion:
    """Gap sessions of one group (traffic source or device) and how many reached checkout."""

    name: str
    sessions: int
    checkouts: int
    conversion_rate: float
    avg_pages: float
    avg_duration_sec: float


@dataclass(frozen=True)
class ReportData:
    """Every number of the report."""

    header: Header
    devices: tuple[DeviceAccesses, ...]
    heatmap: tuple[HeatCell, ...]
    top_products: tuple[ProductAccesses, ...]
    conversion_by_source: tuple[GroupConversion, ...]
    conversion_by_device: tuple[GroupConversion, ...]

    @property
    def is_empty(self) -> bool:
        """True when the curated layer holds no event."""
        return self.header.events == 0


def load_report_data(connection: Any, sql_folder: Path) -> ReportData:
    """Run the report's queries from ``sql_folder`` on a DuckDB connection with the tables."""
    queries = sql_files(sql_folder)
    missing = [name for name in REPORT_QUERIES if name not in queries]
    if missing:
        raise ValueError(f"{sql_folder}: missing report queries: {', '.join(missing)}")
    return report_data({name: run_duckdb(connection, queries[name]) for name in REPORT_QUERIES})


def report_data(results: Mapping[str, QueryResult]) -> ReportData:
    """Typed records from the queries' results, by column name."""
    header = _records(results["report_header"])[0]
    return ReportData(
        header=Header(
            first_event=_timestamp(header["first_event"]),
            last_event=_timestamp(header["last_event"]),
            events=int(header["events"]),
            customers=int(header["customers"]),
            product_views=int(header["product_views"] or 0),
            gap_sessions=int(header["gap_sessions"]),
            minute_sessions=int(header["minute_sessions"]),
        ),
        devices=tuple(
            DeviceAccesses(row["device"], int(row["accesses"]), float(row["share"]))
            for row in _records(results["accesses_by_device"])
        ),
        heatmap=tuple(
            HeatCell(row["trafficfrom"], row["url"], int(row["accesses"]))
            for row in _records(results["source_url_heatmap"])
        ),
        top_products=tuple(
            ProductAccesses(int(row["touchproduct"]), int(row["accesses"]), int(row["customers"]))
            for row in _records(results["top_products"])
        ),
        conversion_by_source=_conversions(results["conversion_by_source"], "trafficfrom"),
        conversion_by_device=_conversions(results["conversion_by_device"], "device"),
    )


def _records(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _conversions(result: QueryResult, key: str) -> tuple[GroupConversion, ...]:
    return tuple(
        GroupConversion(
            name=row[key],
            sessions=int(row["sessions"]),
            checkouts=int(row["checkouts"]),
            conversion_rate=float(row["conversion_rate"]),
            avg_pages=float(row["avg_pages"]),
            avg_duration_sec=float(row["avg_duration_sec"]),
        )
        for row in _records(result)
    )


def _timestamp(value: Any) -> datetime | None:
    """An ISO timestamp (as :class:`QueryResult` gives it) as a naive UTC datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@dataclass(frozen=True)
class HeatMatrix:
    """The heat map as a matrix: one row per traffic source, one column per page."""

    sources: tuple[str, ...]
    """Busiest source first (ties by name)."""
    urls: tuple[str, ...]
    """The funnel's pages in funnel order, then any other page by name."""
    counts: tuple[tuple[int, ...], ...]
    """``counts[row][column]``; 0 where a pair has no access."""


def pivot_heatmap(cells: Sequence[HeatCell]) -> HeatMatrix:
    """Pivot the (trafficfrom, url, accesses) rows into a :class:`HeatMatrix`."""
    by_pair = {(cell.trafficfrom, cell.url): cell.accesses for cell in cells}
    totals: dict[str, int] = {}
    for cell in cells:
        totals[cell.trafficfrom] = totals.get(cell.trafficfrom, 0) + cell.accesses
    sources = tuple(sorted(totals, key=lambda source: (-totals[source], source)))
    pages = {cell.url for cell in cells}
    urls = tuple(url for url in FUNNEL if url in pages) + tuple(sorted(pages - set(FUNNEL)))
    counts = tuple(tuple(by_pair.get((source, url), 0) for url in urls) for source in sources)
    return HeatMatrix(sources, urls, counts)
