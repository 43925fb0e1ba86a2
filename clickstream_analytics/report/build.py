"""Build the report: query, analyse, draw, write ``report.html`` and the PNG files.

:func:`build_report` reads the curated tables through the ``sql/`` queries on DuckDB
(:mod:`.data`), analyses the numbers (:mod:`.insights`), draws one PNG per chart (:mod:`.charts`)
and writes one self-contained page (:mod:`.page`) with the PNG files next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream_analytics.report import charts
from clickstream_analytics.report.data import ReportData, load_report_data, pivot_heatmap
from clickstream_analytics.report.insights import (
    GroupRate,
    conversion_insight,
    heatmap_title,
    share_finding,
    top_products_title,
)
from clickstream_analytics.report.page import Analysis, Chart, render_page

REPORT_FILE = "report.html"
CHART_FILES: dict[str, str] = {
    "devices": "accesses_by_device.png",
    "heatmap": "source_url_heatmap.png",
    "top_products": "top_products.png",
    "insight_source": "conversion_by_source.png",
    "insight_device": "conversion_by_device.png",
}
"""Chart key -> the PNG written next to the page."""


@dataclass(frozen=True)
class BuiltReport:
    """What :func:`build_report` wrote, and what the report says."""

    html_path: Path
    chart_paths: tuple[Path, ...]
    analysis: Analysis


def analyse(data: ReportData, profile: str | None, built_at: datetime) -> Analysis:
    """The findings of the numbers: device split, busiest path, top products, insights."""
    insights = {
        "source": conversion_insight(
            "traffic source",
            "from",
            [GroupRate(g.name, g.sessions, g.checkouts) for g in data.conversion_by_source],
        ),
        "device": conversion_insight(
            "device",
            "on",
            [GroupRate(g.name, g.sessions, g.checkouts) for g in data.conversion_by_device],
        ),
    }
    return Analysis(
        data=data,
        devices=share_finding([(d.device, d.accesses) for d in data.devices], "device"),
        heatmap_title=heatmap_title([(c.trafficfrom, c.url, c.accesses) for c in data.heatmap]),
        top_products_title=top_products_title(
            [(p.product, p.accesses) for p in data.top_products], data.header.product_views
        ),
        insights=insights,
        profile=profile,
        built_at=built_at,
    )


def draw_charts(analysis: Analysis) -> dict[str, Chart]:
    """One chart per section that has data to draw, by key of :data:`CHART_FILES`."""
    data = analysis.data
    drawn: dict[str, Chart] = {}
    if data.devices:
        title = analysis.devices.title
        png = charts.device_donut(data.devices, title)
        drawn["devices"] = _chart("devices", title, "Donut chart of accesses by device", png)
    if data.heatmap:
        title = analysis.heatmap_title
        png = charts.source_url_heatmap(pivot_heatmap(data.heatmap), title)
        drawn["heatmap"] = _chart("heatmap", title, "Heat map of accesses", png)
    if data.top_products:
        title = analysis.top_products_title
        png = charts.top_products_bars(data.top_products, title)
        drawn["top_products"] = _chart("top_products", title, "Bar chart of product views", png)
    for key, insight in analysis.insights.items():
        if any(group.sessions for group in insight.groups):
            png = charts.conversion_bars(insight)
            description = f"Bar chart of checkout rate by {insight.dimension}"
            drawn[f"insight_{key}"] = _chart(f"insight_{key}", insight.title, description, png)
    return drawn


def _chart(key: str, title: str, description: str, png: bytes) -> Chart:
    return Chart(CHART_FILES[key], title, f"{description}: {title}", png)


def build_report(
    connection: Any,
    sql_folder: Path,
    out_dir: Path,
    profile: str | None = None,
    built_at: datetime | None = None,
) -> BuiltReport:
    """Query, analyse, draw and write ``out_dir/report.html`` plus one PNG per chart."""
    data = load_report_data(connection, sql_folder)
    analysis = analyse(data, profile, built_at or datetime.now(UTC).replace(tzinfo=None))
    drawn = draw_charts(analysis)
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name in CHART_FILES.values():
        (out_dir / file_name).unlink(missing_ok=True)
    chart_paths = []
    for chart in drawn.values():
        path = out_dir / chart.file_name
        path.write_bytes(chart.png)
        chart_paths.append(path)
    html_path = out_dir / REPORT_FILE
    html_path.write_text(render_page(analysis, drawn), encoding="utf-8")
    return BuiltReport(html_path, tuple(chart_paths), analysis)
