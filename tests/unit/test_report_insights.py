"""The report's insight logic on generated data, through the real sql/ files on DuckDB.

Events come from the generator with fixed seeds; their gap and per-minute sessions are computed
with ``clickstream.core.sessions``; all three are written as curated Parquet (Hive partitions, the
catalog's column types) and read back through the report's queries, as on a real lake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clickstream.core.events import Event
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream.generator import generate
from clickstream_analytics.catalog import CatalogTable
from clickstream_analytics.duckdb_lake import curated_parquet_tables, duckdb_connection
from clickstream_analytics.report.build import analyse, build_report
from clickstream_analytics.report.data import load_report_data
from clickstream_analytics.report.insights import (
    ALPHA,
    GroupRate,
    Verdict,
    conversion_insight,
    share_finding,
    wilson_interval,
)
from clickstream_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
SQL = ROOT / "sql"
START = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
BUILT_AT = datetime(2026, 3, 8, 9, 30)


def curated_tables() -> list[CatalogTable]:
    """The template's curated (Parquet) tables."""
    template = Template.load(ROOT / "template.yaml", stack_name="report")
    tables = [
        CatalogTable.from_table_input(resource.properties["TableInput"])
        for resource in template.resources("AWS::Glue::Table")
    ]
    return curated_parquet_tables(tables)


def _partitioned(columns: dict[str, list[Any]], moments: list[datetime]) -> dict[str, list[Any]]:
    return {
        **columns,
        "year": [m.year for m in moments],
        "month": [m.month for m in moments],
        "day": [m.day for m in moments],
        "hour": [m.hour for m in moments],
    }


def write_curated_lake(folder: Path, events: Sequence[Event]) -> Any:
    """Curated events, per-minute and gap sessions of ``events`` as Parquet; a DuckDB on them."""
    utc = [e.trans_timestamp.replace(tzinfo=None) for e in events]
    gaps = gap_sessions(events)
    minutes = minute_sessions(events)
    starts = [g.start.replace(tzinfo=None) for g in gaps]
    frames = {
        "curated_events": pa.table(
            _partitioned(
                {
                    "event_id": [e.event_id for e in events],
                    "custid": pa.array([e.custid for e in events], pa.int32()),
                    "trafficfrom": [e.trafficfrom for e in events],
                    "url": [e.url for e in events],
                    "device": [e.device for e in events],
                    "touchproduct": pa.array([e.touchproduct for e in events], pa.int32()),
                    "trans_timestamp": pa.array(utc, pa.timestamp("us")),
                },
                utc,
            )
        ),
        "curated_gap_sessions": pa.table(
            _partitioned(
                {
                    "session_id": [g.session_id for g in gaps],
                    "custid": pa.array([g.custid for g in gaps], pa.int32()),
                    "device": [g.device for g in gaps],
                    "session_start": pa.array(starts, pa.timestamp("us")),
                    "session_end": pa.array(
                        [g.end.replace(tzinfo=None) for g in gaps], pa.timestamp("us")
                    ),
                    "trafficfrom": [g.trafficfrom for g in gaps],
                    "entry_url": [g.entry_url for g in gaps],
                    "exit_url": [g.exit_url for g in gaps],
                    "page_count": pa.array([g.page_count for g in gaps], pa.int32()),
                    "duration_seconds": [g.duration_seconds for g in gaps],
                    "reached_checkout": [g.reached_checkout for g in gaps],
                },
                starts,
            )
        ),
        "curated_sessions": pa.table(
            _partitioned(
                {
                    "sessionid": [m.sessionid for m in minutes],
                    "userid": pa.array([m.userid for m in minutes], pa.int32()),
                    "device": [m.device for m in minutes],
                    "aggreg_time": pa.array(
                        [m.minute.replace(tzinfo=None) for m in minutes], pa.timestamp("us")
                    ),
                    "events": pa.array([m.events for m in minutes], pa.int32()),
                    "beginurl": [m.beginurl for m in minutes],
                    "endurl": [m.endurl for m in minutes],
                    "begin_min_ss": [m.begin_min_ss for m in minutes],
                    "end_min_ss": [m.end_min_ss for m in minutes],
                    "totaltime_sec": pa.array([m.totaltime_sec for m in minutes], pa.int32()),
                },
                [m.minute.replace(tzinfo=None) for m in minutes],
            )
        ),
    }
    tables = curated_tables()
    local = {table.name: folder / table.name for table in tables}
    for name, frame in frames.items():
        local[name].mkdir(parents=True, exist_ok=True)
        if frame.num_rows:
            pq.write_to_dataset(frame, local[name], partition_cols=["year", "month", "day", "hour"])
    return duckdb_connection(tables, local)


def generated(profile: str, seed: int, count: int, rate: float) -> list[Event]:
    """``count`` events of ``profile`` from START."""
    return list(generate(profile, seed=seed, start=START, rate=rate, count=count))


@pytest.fixture(scope="module")
def classic_analysis(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """6,000 classic events at 1 per 6 s (~2,250 gap sessions), analysed."""
    events = generated("classic", seed=11, count=6000, rate=1 / 6)
    duck = write_curated_lake(tmp_path_factory.mktemp("classic"), events)
    return analyse(load_report_data(duck, SQL), "classic", BUILT_AT)


@pytest.fixture(scope="module")
def realistic_analysis(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """8,000 realistic events (~1,600 gap sessions), analysed."""
    events = generated("realistic", seed=3, count=8000, rate=5)
    duck = write_curated_lake(tmp_path_factory.mktemp("realistic"), events)
    return analyse(load_report_data(duck, SQL), "realistic", BUILT_AT)


def test_classic_data_shows_no_real_difference(classic_analysis: Any) -> None:
    # GIVEN classic events, whose fields are drawn uniformly and independently
    insights = classic_analysis.insights
    # THEN neither insight invents a difference, and each says so with its test
    for key in ("source", "device"):
        insight = insights[key]
        assert insight.verdict is Verdict.NONE, insight.analysis
        assert insight.test is not None and insight.test.p_value >= ALPHA
        assert insight.test.sessions > 2000
        assert insight.title.startswith("No real difference in checkout rate by")
        assert insight.analysis.startswith("No real difference: the checkout rate ranges from")
        assert "χ² = " in insight.analysis and "Cramér's V = " in insight.analysis
    # ... and the device split reads as even
    assert classic_analysis.devices.verdict is Verdict.NONE
    assert classic_analysis.devices.title.startswith("Accesses split about evenly across the 3")


def test_realistic_data_shows_the_planted_conversion_effects(realistic_analysis: Any) -> None:
    # GIVEN realistic events: browser converts most, app_mobile least; e-mail campaigns most,
    # facebook.com and twitter.com least (generator/profiles.py, effect a)
    insights = realistic_analysis.insights
    # THEN both differences are found, significant and not negligible
    device, source = insights["device"], insights["source"]
    for insight in (device, source):
        assert insight.verdict is Verdict.REAL, insight.analysis
        assert insight.test is not None and insight.test.p_value < 0.001
        assert insight.test.cramers_v >= 0.15
        assert "p < 0.001" in insight.analysis
    # ... between the groups the generator made differ
    assert (device.best.name, device.worst.name) == ("browser", "app_mobile")  # type: ignore[union-attr]
    assert source.best.name in {"email_CampanhaBeer", "email_MyFirstBeer"}  # type: ignore[union-attr]
    assert source.worst.name in {"facebook.com", "twitter.com"}  # type: ignore[union-attr]
    assert device.title.startswith("Sessions on browser reach checkout ")
    assert device.title.endswith("as often as sessions on app_mobile")
    # ... and the device mix (app_mobile 55% of human sessions) is not called even
    assert realistic_analysis.devices.verdict is Verdict.REAL


def test_insight_sentences_come_from_the_numbers() -> None:
    # GIVEN two groups converting at 30% and 10% of 500 sessions each
    groups = [GroupRate("email", 500, 150), GroupRate("social", 500, 50), GroupRate("tv", 7, 7)]
    # WHEN compared
    insight = conversion_insight("traffic source", "from", groups)
    # THEN the ratio, the rates, the gap with its interval and the test are stated
    assert insight.verdict is Verdict.REAL
    assert insight.title == (
        "Sessions from email reach checkout 3.0× as often as sessions from social"
    )
    assert insight.analysis.startswith(
        "Sessions from email reach checkout 3.0× as often as sessions from social (30% vs 10%):"
        " a gap of 20.0 percentage points (95% CI 15.2 to 24.8)."
    )
    assert "χ² = 62.5, df = 1, p < 0.001, Cramér's V = 0.25, n = 1,000 sessions" in (
        insight.analysis
    )
    # ... and the group too small to test is named, not compared
    assert [g.name for g in insight.tested] == ["email", "social"]
    assert insight.analysis.endswith("Left out of the test, with fewer than 20 sessions: tv.")


def test_equal_rates_and_negligible_effects_are_not_called_real() -> None:
    # GIVEN equal rates, and a tiny but significant gap on a huge sample
    same = conversion_insight("device", "on", [GroupRate("a", 400, 100), GroupRate("b", 400, 100)])
    tiny = conversion_insight(
        "device", "on", [GroupRate("a", 200_000, 52_000), GroupRate("b", 200_000, 50_000)]
    )
    # THEN the first is no real difference (p = 1), the second negligible
    assert same.verdict is Verdict.NONE and same.test is not None and same.test.p_value == 1.0
    assert "p = 1," in same.analysis
    assert tiny.verdict is Verdict.NEGLIGIBLE
    assert tiny.title == "Checkout rate by device: a detectable but negligible difference"


@pytest.mark.parametrize(
    "groups",
    [
        [],
        [GroupRate("a", 500, 50)],
        [GroupRate("a", 15, 5), GroupRate("b", 19, 2)],
        [GroupRate("a", 30, 0), GroupRate("b", 30, 0)],
        [GroupRate("a", 30, 1), GroupRate("b", 30, 2)],
    ],
    ids=["no sessions", "one group", "small groups", "no checkout", "expected counts too low"],
)
def test_too_little_data_is_said_not_tested(groups: list[GroupRate]) -> None:
    # WHEN there is too little data for a chi-square test
    insight = conversion_insight("device", "on", groups)
    # THEN the insight says so instead of guessing
    assert insight.verdict is Verdict.NOT_ENOUGH_DATA and insight.test is None
    assert insight.title == "Checkout rate by device: not enough data to test"
    assert insight.analysis.startswith("Not enough data to test checkout conversion by device:")


def test_worst_group_without_checkouts_is_stated_without_a_ratio() -> None:
    insight = conversion_insight("device", "on", [GroupRate("a", 200, 60), GroupRate("b", 200, 0)])
    assert insight.verdict is Verdict.REAL
    assert insight.title == "30% of sessions on a reach checkout; none on b do"


def test_wilson_interval_and_share_finding() -> None:
    low, high = wilson_interval(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert share_finding([], "device").title == "No accesses yet"
    assert share_finding([("browser", 3)], "device").title == "Every access comes from browser"
    assert share_finding([("a", 2), ("b", 1)], "device").title.startswith("Too few accesses")
    dominant = share_finding([("a", 600), ("b", 300), ("c", 100)], "device")
    assert dominant.title == "a brings the most accesses (60%); then b 30%, c 10%"


def test_report_builds_from_an_empty_lake_with_a_clear_message(tmp_path: Path) -> None:
    # GIVEN a lake without any curated row
    duck = write_curated_lake(tmp_path / "lake", [])
    # WHEN the report is built
    built = build_report(duck, SQL, tmp_path / "out", profile=None, built_at=BUILT_AT)
    # THEN it says the layer is empty, draws nothing and tests nothing
    page = built.html_path.read_text(encoding="utf-8")
    assert "The curated layer holds no events yet." in page
    assert built.chart_paths == ()
    assert page.count("No data for this chart yet.") == 3
    assert page.count("Not enough data to test checkout conversion by") == 2
    assert '<dd id="events">0</dd>' in page
    assert '<dd id="data-range">no events yet</dd>' in page


def test_report_builds_from_a_tiny_lake(tmp_path: Path) -> None:
    # GIVEN five events
    duck = write_curated_lake(tmp_path / "lake", generated("realistic", 5, count=5, rate=1))
    # WHEN the report is built
    built = build_report(duck, SQL, tmp_path / "out", profile="realistic", built_at=BUILT_AT)
    # THEN the charts with data are drawn and the insights say there is not enough data
    page = built.html_path.read_text(encoding="utf-8")
    assert "The curated layer holds no events yet." not in page
    assert {path.name for path in built.chart_paths} >= {
        "accesses_by_device.png",
        "source_url_heatmap.png",
    }
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in built.chart_paths)
    assert page.count("Not enough data to test checkout conversion by") == 2
    assert '<dd id="events">5</dd>' in page
    assert '<dd id="profile">realistic</dd>' in page
