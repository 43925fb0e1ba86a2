"""The report as one self-contained HTML page: inline CSS, charts embedded as base64 PNG.

Pure: :func:`render_page` turns the analysed report and the chart images into text. Every chart
has its numbers in a table next to it (ids ``devices-table``, ``heatmap-table``,
``top-products-table``, ``insight-<key>-table``), so the page reads without images too.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from clickstream_analytics.report.data import (
    REPORT_QUERIES,
    GroupConversion,
    ReportData,
    pivot_heatmap,
)
from clickstream_analytics.report.insights import (
    ALPHA,
    MIN_EFFECT_SIZE,
    MIN_EXPECTED_COUNT,
    MIN_GROUP_SESSIONS,
    ConversionInsight,
    ShareFinding,
    Verdict,
    percent,
    wilson_interval,
)


@dataclass(frozen=True)
class Chart:
    """One chart: its file name next to the page, its title and alternative text, the PNG."""

    file_name: str
    title: str
    alt: str
    png: bytes


@dataclass(frozen=True)
class Analysis:
    """The numbers and what the report says about them."""

    data: ReportData
    devices: ShareFinding
    heatmap_title: str
    top_products_title: str
    insights: Mapping[str, ConversionInsight]
    """Conversion insights by key (``source``, ``device``), in report order."""
    profile: str | None
    built_at: datetime


STYLE = """
:root { color-scheme: light; --ink: #1b1b1b; --muted: #555; --rule: #d8d8d8; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.9rem; margin: 0 0 4px; }
h2 { font-size: 1.4rem; margin: 40px 0 8px; padding-top: 12px; border-top: 2px solid var(--rule); }
h2 small, .task { font-size: 0.8rem; font-weight: normal; color: var(--muted); margin-left: 8px; }
h3 { font-size: 1.15rem; margin: 0 0 8px; }
.lead { color: var(--muted); margin: 0 0 16px; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 8px 16px;
  margin: 0; padding: 14px 16px; background: var(--panel); border-radius: 6px; }
.facts div { min-width: 0; }
.facts dt { font-size: 0.8rem; color: var(--muted); }
.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.notice { margin: 20px 0; padding: 14px 16px; border-left: 5px solid #E69F00; background: #fdf5e6; }
figure { margin: 12px 0; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { font-size: 0.9rem; color: var(--muted); margin-top: 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left; }
th { background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: 8px 0 0; }
summary { cursor: pointer; color: var(--muted); }
.scroll { overflow-x: auto; }
.insight { margin: 20px 0 28px; padding: 16px 18px; border: 1px solid var(--rule);
  border-left-width: 6px; border-radius: 6px; }
.insight.real { border-left-color: #009E73; }
.insight.none, .insight.negligible { border-left-color: #56B4E9; }
.insight.not-enough { border-left-color: #E69F00; }
.verdict { display: inline-block; font-size: 0.8rem; font-weight: 700; text-transform: uppercase;
  letter-spacing: 0.04em; padding: 2px 8px; border-radius: 4px; background: var(--panel); }
.method li { margin-bottom: 4px; }
code { font-size: 0.9em; background: var(--panel); padding: 0 3px; border-radius: 3px; }
footer { margin-top: 40px; font-size: 0.85rem; color: var(--muted); }
"""

VERDICT_CLASS: dict[Verdict, str] = {
    Verdict.REAL: "real",
    Verdict.NEGLIGIBLE: "negligible",
    Verdict.NONE: "none",
    Verdict.NOT_ENOUGH_DATA: "not-enough",
}


def render_page(analysis: Analysis, charts: Mapping[str, Chart]) -> str:
    """The whole HTML page; ``charts`` by key (``devices``, ``heatmap``, ``top_products``,
    ``insight_<key>``), absent when there is nothing to draw."""
    data = analysis.data
    body = [
        _header(analysis),
        _empty_notice() if data.is_empty else "",
        _devices_section(analysis, charts.get("devices")),
        _heatmap_section(analysis, charts.get("heatmap")),
        _top_products_section(analysis, charts.get("top_products")),
        _insights_section(analysis, charts),
        _method_section(),
        "<footer>Built from the curated layer by <code>clickstream report</code>; every number"
        " comes from the <code>sql/</code> queries named above.</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Clickstream analytics report</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + "\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- sections
def _header(analysis: Analysis) -> str:
    header = analysis.data.header
    if header.first_event is None or header.last_event is None:
        data_range = "no events yet"
    else:
        data_range = f"{_moment(header.first_event)} to {_moment(header.last_event)}"
    profile = analysis.profile or "not recorded"
    facts = [
        ("data-range", "Data range (event time, UTC)", data_range),
        ("events", "Events", f"{header.events:,}"),
        ("customers", "Customers", f"{header.customers:,}"),
        ("product-views", "Product views (touchproduct ≠ 0)", f"{header.product_views:,}"),
        ("gap-sessions", "Gap sessions (30-min inactivity)", f"{header.gap_sessions:,}"),
        ("minute-sessions", "Per-minute sessions", f"{header.minute_sessions:,}"),
        ("profile", "Generator profile", profile),
        ("built-at", "Built at (UTC)", _moment(analysis.built_at)),
    ]
    items = "\n".join(
        f'<div><dt>{escape(label)}</dt><dd id="{key}">{escape(value)}</dd></div>'
        for key, label, value in facts
    )
    return (
        "<header>\n<h1>Clickstream analytics report</h1>\n"
        '<p class="lead">Accesses, paths, products and checkout conversion, read from the curated'
        " layer of the data lake.</p>\n"
        f'<dl class="facts" id="header">\n{items}\n</dl>\n</header>'
    )


def _empty_notice() -> str:
    return (
        '<p class="notice" role="status"><strong>The curated layer holds no events yet.</strong>'
        " Send events (<code>clickstream generate</code>), let the Glue jobs curate them"
        " (<code>clickstream curate</code>) and build the report again.</p>"
    )


def _devices_section(analysis: Analysis, chart: Chart | None) -> str:
    rows = [
        [device.device, f"{device.accesses:,}", percent(device.share)]
        for device in analysis.data.devices
    ]
    table = _table("devices-table", ["device", "accesses", "share"], rows, numeric_from=1)
    return _section(
        "devices",
        "1. Accesses by device",
        "task 3.1",
        [
            _figure(chart, analysis.devices.title, "Share of all events per device."),
            table if rows else "",
        ],
    )


def _heatmap_section(analysis: Analysis, chart: Chart | None) -> str:
    matrix = pivot_heatmap(analysis.data.heatmap)
    rows = [
        [source, *(f"{count:,}" for count in counts), f"{sum(counts):,}"]
        for source, counts in zip(matrix.sources, matrix.counts, strict=True)
    ]
    table = _table("heatmap-table", ["trafficfrom", *matrix.urls, "total"], rows, numeric_from=1)
    caption = (
        "Events per traffic source (rows, busiest first) and page (columns, in funnel order);"
        " darker is fewer, brighter is more (square-root colour scale)."
    )
    details = f"<details><summary>The counts as a table</summary>{table}</details>"
    return _section(
        "heatmap",
        "2. Accesses by traffic source and page",
        "task 3.2",
        [_figure(chart, analysis.heatmap_title, caption), details if rows else ""],
    )


def _top_products_section(analysis: Analysis, chart: Chart | None) -> str:
    rows = [
        [str(rank), str(product.product), f"{product.accesses:,}", f"{product.customers:,}"]
        for rank, product in enumerate(analysis.data.top_products, start=1)
    ]
    table = _table(
        "top-products-table", ["rank", "product", "accesses", "customers"], rows, numeric_from=0
    )
    caption = "Events that touched each product (touchproduct ≠ 0), and distinct customers."
    return _section(
        "top-products",
        "3. Top 10 most searched products",
        "task 1",
        [table if rows else "", _figure(chart, analysis.top_products_title, caption)],
    )


def _insights_section(analysis: Analysis, charts: Mapping[str, Chart]) -> str:
    conversions = {
        "source": analysis.data.conversion_by_source,
        "device": analysis.data.conversion_by_device,
    }
    articles = [
        _insight_article(key, insight, conversions[key], charts.get(f"insight_{key}"))
        for key, insight in analysis.insights.items()
    ]
    intro = (
        "<p>Does checkout conversion depend on where sessions come from, or on the device?"
        " Each insight tests it on the gap sessions and states the effect size; a difference"
        f" counts as real only when p &lt; {ALPHA} and Cramér's V ≥ {MIN_EFFECT_SIZE}.</p>"
    )
    return _section("insights", "4. Insights: checkout conversion", "task 3.3", [intro, *articles])


def _insight_article(
    key: str,
    insight: ConversionInsight,
    conversions: Sequence[GroupConversion],
    chart: Chart | None,
) -> str:
    rows = []
    for group in conversions:
        low, high = wilson_interval(group.checkouts, group.sessions)
        rows.append(
            [
                group.name,
                f"{group.sessions:,}",
                f"{group.checkouts:,}",
                percent(group.conversion_rate),
                f"{percent(low)}–{percent(high)}",
                f"{group.avg_pages:.1f}",
                f"{group.avg_duration_sec / 60:.1f}",
            ]
        )
    table = _table(
        f"insight-{key}-table",
        [
            insight.dimension,
            "sessions",
            "checkouts",
            "rate",
            "95% interval",
            "pages per session",
            "minutes per session",
        ],
        rows,
        numeric_from=1,
    )
    caption = (
        f"Share of gap sessions that reached checkout per {insight.dimension}, with 95% Wilson"
        " intervals; the dashed line is the rate over all sessions."
    )
    return (
        f'<article class="insight {VERDICT_CLASS[insight.verdict]}" id="insight-{key}">\n'
        f"<h3>Checkout conversion by {escape(insight.dimension)}</h3>\n"
        f'<p><span class="verdict">{escape(insight.verdict.value)}</span></p>\n'
        f'<p class="analysis">{escape(insight.analysis)}</p>\n'
        f"{_figure(chart, insight.title, caption) if chart else ''}\n"
        + (f"<details><summary>The numbers</summary>{table}</details>\n" if rows else "")
        + "</article>"
    )


def _method_section() -> str:
    queries = ", ".join(f"<code>sql/{name}.sql</code>" for name in REPORT_QUERIES)
    return (
        '<section id="method" class="method">\n<h2>How the numbers are made</h2>\n<ul>\n'
        f"<li>Every number comes from the curated tables through {queries}: the same files"
        " are Athena named queries on AWS.</li>\n"
        "<li>An access is one curated event (a page view; duplicates removed by"
        " <code>event_id</code>). A gap session is one customer on one device until 30 minutes"
        " pass without an event; its traffic source is its first event's, and it converts when"
        " it reaches <code>beer_checkout</code>.</li>\n"
        "<li>Insights: Pearson's chi-square test of independence on the group × (checkout, no"
        f" checkout) table, significance level α = {ALPHA}, effect size Cramér's V (real from"
        f" {MIN_EFFECT_SIZE}, Cohen's small effect). Groups with fewer than {MIN_GROUP_SESSIONS}"
        " sessions are left out; the test runs only when at most 20% of the expected counts are"
        f" below {MIN_EXPECTED_COUNT:.0f} and none below 1. The gap between the best and the worst"
        " group has a 95% Wald interval, each rate a 95% Wilson interval.</li>\n"
        f"<li>At α = {ALPHA}, about 1 test in 100 on data without any real difference still"
        " comes out significant; a finding that matters is worth confirming on new data.</li>\n"
        "<li>Device shares are tested against an even split (chi-square goodness of fit,"
        " Cohen's w) before the chart's title calls one device dominant.</li>\n"
        "</ul>\n</section>"
    )


# --------------------------------------------------------------------------- helpers
def _section(key: str, heading: str, task: str, parts: Sequence[str]) -> str:
    content = "\n".join(part for part in parts if part)
    return (
        f'<section id="{key}">\n<h2>{escape(heading)}<small>{escape(task)}</small></h2>\n'
        f"{content}\n</section>"
    )


def _figure(chart: Chart | None, title: str, caption: str) -> str:
    if chart is None:
        return '<p class="notice" role="status">No data for this chart yet.</p>'
    encoded = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(chart.alt)}">'
        f"<figcaption>{escape(caption)} File: <code>{escape(chart.file_name)}</code>."
        "</figcaption></figure>"
    )


def _table(
    table_id: str, columns: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int
) -> str:
    def cell(tag: str, index: int, value: str) -> str:
        numeric = ' class="num"' if index >= numeric_from else ""
        return f"<{tag}{numeric}>{escape(value)}</{tag}>"

    head = "".join(cell("th", index, column) for index, column in enumerate(columns))
    body = "\n".join(
        "<tr>" + "".join(cell("td", index, value) for index, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
