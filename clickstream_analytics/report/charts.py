"""The report's charts as PNG bytes, drawn with matplotlib's Agg canvas (no display needed).

One palette everywhere: Okabe-Ito, safe for the common colour-vision deficiencies, and viridis
for the heat map (perceptually uniform, readable in grey). Titles state the finding; they come
from :mod:`clickstream_analytics.report.insights`, never from here.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import matplotlib
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from clickstream_analytics.report.data import DeviceAccesses, HeatMatrix, ProductAccesses
from clickstream_analytics.report.insights import ConversionInsight, Verdict, percent

OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish_green": "#009E73",
    "reddish_purple": "#CC79A7",
    "sky_blue": "#56B4E9",
    "vermillion": "#D55E00",
    "yellow": "#F0E442",
    "black": "#000000",
}
"""The Okabe-Ito colour-blind-safe palette, in the order categories use it."""

GREY = "#BBBBBB"
HEATMAP_COLORMAP = "viridis"
WIDTH_INCHES = 10.0
DPI = 110
TITLE_WIDTH = 84
"""Characters per title line; longer titles wrap."""

STYLE: dict[str, object] = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
}


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.get_layout_engine().set(h_pad=0.15, w_pad=0.15)  # type: ignore[union-attr]
    return figure


def _title(figure: Figure, title: str) -> None:
    figure.suptitle(textwrap.fill(title, TITLE_WIDTH), fontsize=13, fontweight="bold")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def text_colour(background: tuple[float, ...] | str) -> str:
    """Black or white, whichever reads better on ``background`` (relative luminance)."""
    red, green, blue = to_rgb(background)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > 0.45 else "white"


def device_donut(devices: Sequence[DeviceAccesses], title: str) -> bytes:
    """A donut of accesses by device: shares on the ring, counts in the legend."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(5.0)
        axes = figure.subplots()
        counts = [device.accesses for device in devices]
        colours = [list(OKABE_ITO.values())[i % len(OKABE_ITO)] for i in range(len(devices))]
        wedges, _, labels = axes.pie(
            counts,
            colors=colours,
            startangle=90,
            counterclock=False,
            wedgeprops={"width": 0.42, "edgecolor": "white", "linewidth": 2},
            autopct=lambda share: percent(share / 100) if share >= 4 else "",
            pctdistance=0.79,
            textprops={"fontsize": 12, "fontweight": "bold"},
        )
        for label, colour in zip(labels, colours, strict=True):
            label.set_color(text_colour(colour))
        total = sum(counts)
        axes.text(0, 0, f"{total:,}\naccesses", ha="center", va="center", fontsize=13)
        axes.set_aspect("equal")
        axes.legend(
            wedges,
            [
                f"{device.device}: {device.accesses:,} ({percent(device.accesses / total)})"
                for device in devices
            ],
            title="device: accesses (share)",
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
            fontsize=12,
        )
        _title(figure, title)
        return _png(figure)


def source_url_heatmap(matrix: HeatMatrix, title: str) -> bytes:
    """Accesses per traffic source (rows) and page (columns), every cell labelled."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(max(3.6, 1.6 + 0.48 * len(matrix.sources)))
        axes = figure.subplots()
        # a square-root scale keeps the quieter cells apart when one cell dominates
        norm = PowerNorm(gamma=0.5, vmin=0)
        image = axes.imshow(matrix.counts, cmap=HEATMAP_COLORMAP, norm=norm, aspect="auto")
        colormap = colormaps[HEATMAP_COLORMAP]
        for row, values in enumerate(matrix.counts):
            for column, value in enumerate(values):
                colour = text_colour(colormap(norm(value)))
                axes.text(column, row, f"{value:,}", ha="center", va="center", color=colour)
        axes.set_xticks(range(len(matrix.urls)), matrix.urls)
        axes.set_yticks(range(len(matrix.sources)), matrix.sources)
        axes.tick_params(axis="both", length=0)
        axes.xaxis.tick_top()
        axes.xaxis.set_label_position("top")
        if len(matrix.urls) > 5:
            axes.tick_params(axis="x", labelrotation=30)
        axes.set_xlabel("page (url)")
        axes.set_ylabel("traffic source (trafficfrom)")
        for spine in axes.spines.values():
            spine.set_visible(False)
        colourbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
        colourbar.set_label("accesses (√ scale)")
        colourbar.locator = MaxNLocator(nbins=6, integer=True)
        colourbar.update_ticks()
        _title(figure, title)
        return _png(figure)


def top_products_bars(products: Sequence[ProductAccesses], title: str) -> bytes:
    """Horizontal bars of the most viewed products, the most viewed on top."""
    with matplotlib.rc_context(STYLE):
        figure = _figure(1.8 + 0.42 * len(products))
        axes = figure.subplots()
        names = [f"product {product.product}" for product in products]
        counts = [product.accesses for product in products]
        bars = axes.barh(names, counts, color=OKABE_ITO["blue"])
        axes.bar_label(bars, labels=[f"{count:,}" for count in counts], padding=4)
        axes.invert_yaxis()
        axes.set_xlim(0, max(counts) * 1.15)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("accesses (events with this touchproduct)")
        _title(figure, title)
        return _png(figure)


def conversion_bars(insight: ConversionInsight) -> bytes:
    """Checkout rate per group with 95 % intervals; the compared groups coloured if they differ."""
    with matplotlib.rc_context(STYLE):
        groups = insight.groups
        figure = _figure(2.0 + 0.45 * len(groups))
        axes = figure.subplots()
        rates = [group.rate for group in groups]
        intervals = [group.interval() for group in groups]
        colours = [_conversion_colour(insight, group.name) for group in groups]
        axes.barh(
            [group.name for group in groups],
            rates,
            color=colours,
            xerr=[
                [rate - low for rate, (low, _) in zip(rates, intervals, strict=True)],
                [high - rate for rate, (_, high) in zip(rates, intervals, strict=True)],
            ],
            error_kw={"ecolor": "#333333", "capsize": 3, "elinewidth": 1},
        )
        axes.invert_yaxis()
        axes.set_xlim(0, max(high for _, high in intervals) * 1.06)
        # each group's rate and size as right-hand tick labels: they never touch a bar or line
        labels = axes.secondary_yaxis("right")
        labels.set_yticks(
            range(len(groups)),
            [f"{percent(group.rate)} of {group.sessions:,}" for group in groups],
        )
        labels.tick_params(length=0)
        labels.spines["right"].set_visible(False)
        sessions = sum(group.sessions for group in groups)
        overall = sum(group.checkouts for group in groups) / sessions
        axes.axvline(overall, color=OKABE_ITO["black"], linestyle="--", linewidth=1)
        axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        axes.set_xlabel("gap sessions that reached checkout (whiskers: 95% interval)")
        handles: list[Patch | Line2D] = [
            Patch(color=colour, label=label)
            for colour, label in _legend_entries(insight)
            if colour in colours
        ]
        handles.append(
            Line2D([], [], color="black", linestyle="--", label=f"all sessions: {percent(overall)}")
        )
        figure.legend(
            handles=handles, loc="outside lower center", ncols=len(handles), frameon=False
        )
        _title(figure, insight.title)
        return _png(figure)


def _conversion_colour(insight: ConversionInsight, name: str) -> str:
    tested = {group.name for group in insight.tested}
    if name not in tested:
        return GREY
    if insight.verdict is Verdict.REAL and insight.best and name == insight.best.name:
        return OKABE_ITO["bluish_green"]
    if insight.verdict is Verdict.REAL and insight.worst and name == insight.worst.name:
        return OKABE_ITO["vermillion"]
    return OKABE_ITO["blue"]


def _legend_entries(insight: ConversionInsight) -> list[tuple[str, str]]:
    others = "other tested groups" if insight.verdict is Verdict.REAL else "tested groups"
    return [
        (OKABE_ITO["bluish_green"], "highest rate"),
        (OKABE_ITO["vermillion"], "lowest rate"),
        (OKABE_ITO["blue"], others),
        (GREY, "too few sessions to test"),
    ]
