"""``clickstream report``: the analytics report of the local lake's curated layer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clickstream.generator import PROFILES
from clickstream_local.catalog import catalog_tables
from clickstream_local.queries import curated_parquet_tables, download_tables, duckdb_connection
from clickstream_local.stack import LocalStack, StackState

if TYPE_CHECKING:
    from clickstream_local.report.build import BuiltReport


def curated_duckdb(state: StackState, cache: Path) -> Any:
    """DuckDB over the curated tables, their Parquet mirrored from the stack's S3 to ``cache``."""
    database = state.template().resource("GlueDatabase").physical_id
    tables = curated_parquet_tables(catalog_tables(state.client("glue"), database))
    return duckdb_connection(tables, download_tables(state.client("s3"), tables, cache))


def write_report(state: StackState, home: Path, out: Path, profile: str | None) -> BuiltReport:
    """Build the report from the running stack's curated layer into ``out``."""
    from clickstream_local.report.build import build_report  # loads matplotlib and scipy

    sql_folder = Path(state.template_path).parent / "sql"
    return build_report(curated_duckdb(state, home / "duckdb"), sql_folder, out, profile)


def print_report_summary(built: BuiltReport) -> None:
    """The findings in a few lines, then the page's path."""
    if built.analysis.data.is_empty:
        print("the curated layer holds no events yet: the report says so")
    for insight in built.analysis.insights.values():
        print(f"  {insight.verdict.value:<22} {insight.title}")
    print(built.html_path)


def cmd_report(arguments: argparse.Namespace) -> int:
    """``clickstream report``."""
    stack = LocalStack()
    state = stack.running()
    out = arguments.out or stack.home / "report"
    print_report_summary(write_report(state, stack.home, out, arguments.profile))
    return 0


def add_report_command(commands: Any) -> None:
    """Register ``report`` on the CLI's subparsers."""
    report = commands.add_parser(
        "report",
        help="build the analytics report (HTML + one PNG per chart) from the curated layer",
    )
    report.add_argument(
        "--out",
        type=Path,
        help="folder for report.html and the PNG files (default .local/report)",
    )
    report.add_argument(
        "--profile",
        choices=PROFILES,
        help="the generator profile of the data, shown in the header (default: not recorded)",
    )
    report.set_defaults(handler=cmd_report)
