"""The analytics report on a lake curated by the real Glue jobs: its numbers are the lake's.

A stack is provisioned from ``template.yaml``; realistic events, their per-minute rows and their
gap sessions go into the raw bucket; the template's jobs curate them on the run's SparkSession.
The report, built on DuckDB through ``sql/``, must show what Spark reads directly from the
curated Parquet, and what the events themselves say.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import Event
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream.generator import generate
from clickstream_analytics.catalog import catalog_tables
from clickstream_analytics.duckdb_lake import (
    curated_parquet_tables,
    download_tables,
    duckdb_connection,
)
from clickstream_analytics.report.build import BuiltReport, build_report
from tests.integration.conftest import ROOT, project_template
from tests.integration.test_glue_jobs import Lake, lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
SQL = ROOT / "sql"


class PageReader(HTMLParser):
    """The report page's tables (by id, rows of cell texts) and header facts (by ``dd`` id)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.facts: dict[str, str] = {}
        self._table: str | None = None
        self._fact: str | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ids = dict(attrs).get("id")
        if tag == "table" and ids:
            self._table = ids
            self.tables[ids] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "dd" and ids:
            self._fact = ids
            self.facts[ids] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "dd":
            self._fact = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._fact is not None:
            self.facts[self._fact] += data


def number(text: str) -> int:
    """``1,234`` -> 1234."""
    return int(text.replace(",", ""))


def build(lake: Lake, folder: Path) -> BuiltReport:
    """The report of the lake's curated layer, through DuckDB over its mirrored Parquet."""
    tables = curated_parquet_tables(catalog_tables(lake.glue, lake.database))
    duck = duckdb_connection(tables, download_tables(lake.s3, tables, folder / "duckdb"))
    return build_report(duck, SQL, folder / "report", profile="realistic")


@pytest.fixture(scope="module")
def curated_lake(moto_endpoint: str, spark: Any) -> tuple[Lake, list[Event]]:
    """400 realistic events with their session layers, curated by the template's jobs."""
    lake = Lake(project_template(f"r{uuid.uuid4().hex[:8]}"), moto_endpoint)
    events = list(generate("realistic", seed=21, start=START, rate=2.0, count=400))
    minutes = "".join(m.to_csv_line() for m in minute_sessions(events))
    gaps = "".join(json.dumps(g.to_dict()) + "\n" for g in gap_sessions(events))
    lake.put("rawdata/2026/03/07/14/events", lines(events))
    lake.put("aggregated/2026/03/07/14/minutes", minutes.encode())
    lake.put("sessions/2026/03/07/14/gaps.jsonl", gaps.encode())
    lake.run("RawToCuratedEventsJob")
    lake.run("AggregatedToCuratedSessionsJob")
    return lake, events


def test_report_numbers_equal_direct_queries_on_the_curated_data(
    curated_lake: tuple[Lake, list[Event]], spark: Any, tmp_path: Path
) -> None:
    from pyspark.sql import functions

    # GIVEN a lake curated by the Glue jobs
    lake, events = curated_lake
    curated = spark.read.parquet(f"s3://{lake.curated}/events/")
    gaps = spark.read.parquet(f"s3://{lake.curated}/gap_sessions/")
    minutes = spark.read.parquet(f"s3://{lake.curated}/minute_sessions/")
    # WHEN the report is built
    built = build(lake, tmp_path)
    page = PageReader(built.html_path.read_text(encoding="utf-8"))
    data = built.analysis.data

    # THEN the header's counts and range are the curated tables' (and the events')
    header = data.header
    assert header.events == curated.count() == len(events)
    assert header.customers == curated.select("custid").distinct().count()
    assert header.gap_sessions == gaps.count() == len(gap_sessions(events))
    assert header.minute_sessions == minutes.count() == len(minute_sessions(events))
    first, last = min(e.trans_timestamp for e in events), max(e.trans_timestamp for e in events)
    assert (header.first_event, header.last_event) == (
        first.replace(tzinfo=None),
        last.replace(tzinfo=None),
    )
    assert page.facts["events"] == f"{len(events):,}"
    assert page.facts["gap-sessions"] == f"{gaps.count():,}"
    assert page.facts["data-range"] == (f"{first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S}")
    assert page.facts["profile"] == "realistic"

    # ... accesses by device
    by_device = {r["device"]: r["count"] for r in curated.groupBy("device").count().collect()}
    assert {d.device: d.accesses for d in data.devices} == by_device
    assert {row[0]: number(row[1]) for row in page.tables["devices-table"][1:]} == by_device

    # ... every heat-map cell, in the page's matrix too
    cells = curated.groupBy("trafficfrom", "url").count().collect()
    by_cell = {(r["trafficfrom"], r["url"]): r["count"] for r in cells}
    assert {(c.trafficfrom, c.url): c.accesses for c in data.heatmap} == by_cell
    heading, *rows = page.tables["heatmap-table"]
    shown = {
        (row[0], url): number(value)
        for row in rows
        for url, value in zip(heading[1:-1], row[1:-1], strict=True)
    }
    assert {key: value for key, value in shown.items() if value} == by_cell
    assert sum(number(row[-1]) for row in rows) == len(events)

    # ... the top 10 products (task 1), ties broken by product id
    touched = Counter(e.touchproduct for e in events if e.touchproduct != 0)
    expected = sorted(touched.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(p.product, p.accesses) for p in data.top_products] == expected
    assert [
        (number(row[1]), number(row[2])) for row in page.tables["top-products-table"][1:]
    ] == expected
    assert header.product_views == sum(touched.values())

    # ... and the insights' sessions and checkouts per group
    for key, column in (("source", "trafficfrom"), ("device", "device")):
        grouped = gaps.groupBy(column).agg(
            functions.count("*").alias("sessions"),
            functions.sum(functions.col("reached_checkout").cast("int")).alias("checkouts"),
        )
        direct = {r[column]: (r["sessions"], r["checkouts"]) for r in grouped.collect()}
        insight = built.analysis.insights[key]
        assert {g.name: (g.sessions, g.checkouts) for g in insight.groups} == direct
        table = page.tables[f"insight-{key}-table"][1:]
        assert {row[0]: (number(row[1]), number(row[2])) for row in table} == direct

    # ... with every chart written next to the page and embedded in it
    assert sorted(path.name for path in built.chart_paths) == [
        "accesses_by_device.png",
        "conversion_by_device.png",
        "conversion_by_source.png",
        "source_url_heatmap.png",
        "top_products.png",
    ]
    page_text = built.html_path.read_text(encoding="utf-8")
    assert page_text.count('<img src="data:image/png;base64,') == 5
    assert "http://" not in page_text and "https://" not in page_text


def test_report_of_an_empty_lake_says_so(moto_endpoint: str, tmp_path: Path) -> None:
    # GIVEN a freshly provisioned stack whose lake holds nothing
    lake = Lake(project_template(f"e{uuid.uuid4().hex[:8]}"), moto_endpoint)
    # WHEN the report is built
    built = build(lake, tmp_path)
    # THEN it is written, with a clear message instead of charts and tests
    page = built.html_path.read_text(encoding="utf-8")
    assert "The curated layer holds no events yet." in page
    assert built.chart_paths == ()
    assert PageReader(page).facts["events"] == "0"
    assert page.count("Not enough data to test checkout conversion by") == 2
