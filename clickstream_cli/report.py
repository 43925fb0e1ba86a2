"""``clickstream report``: the analytics report of a stack's curated layer, local or deployed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clickstream.generator import PROFILES
from clickstream_analytics.report.stack_report import write_report
from clickstream_cli.common import read_target

if TYPE_CHECKING:
    from clickstream_analytics.report.build import BuiltReport


def print_report_summary(built: BuiltReport) -> None:
    """The findings in a few lines, then the page's path."""
    if built.analysis.data.is_empty:
        print("the curated layer holds no events yet: the report says so")
    for insight in built.analysis.insights.values():
        print(f"  {insight.verdict.value:<22} {insight.title}")
    print(built.html_path)


def cmd_report(arguments: argparse.Namespace) -> int:
    """``clickstream report``."""
    target = read_target(arguments)
    out = arguments.out or target.home / "report"
    built = write_report(target.stack, target.home / "duckdb", out, arguments.profile)
    print_report_summary(built)
    return 0


def add_commands(commands: Any) -> None:
    """Register ``report``."""
    report = commands.add_parser(
        "report",
        help="build the analytics report (HTML + one PNG per chart) from the curated layer",
    )
    report.add_argument(
        "--out",
        type=Path,
        help="folder for report.html and the PNG files (default .local/report; with --stack,"
        " .local/stacks/REGION/NAME/report)",
    )
    report.add_argument(
        "--profile",
        choices=PROFILES,
        help="the generator profile of the data, shown in the header (default: not recorded)",
    )
    report.set_defaults(handler=cmd_report)
