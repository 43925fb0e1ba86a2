"""The report of a stack's curated layer, local or deployed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clickstream_analytics.engines import curated_duckdb
from clickstream_analytics.stack import Stack

if TYPE_CHECKING:
    from clickstream_analytics.report.build import BuiltReport


def write_report(stack: Stack, cache: Path, out: Path, profile: str | None) -> BuiltReport:
    """Build the report into ``out``: the curated Parquet mirrored into ``cache`` for DuckDB."""
    from clickstream_analytics.report.build import build_report  # loads matplotlib and scipy

    return build_report(curated_duckdb(stack, cache), stack.sql_folder(), out, profile)
