"""The lake's reconciliation: each source layer, parsed as the Glue jobs do, against its table."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream.core.events import InvalidEvent
from clickstream_analytics.engines import curated_duckdb
from clickstream_analytics.reconcile import object_bodies
from clickstream_analytics.stack import Stack
from clickstream_glue.records import LineParser, event_row, gap_session_row, minute_session_row


@dataclass(frozen=True)
class LayerCount:
    """What one source layer holds, by the jobs' own line parsers."""

    lines: int
    rejected: int
    keys: dict[str, int]
    """Distinct key → the largest revision size seen (1 for events)."""


def count_layer(
    s3: Any, bucket: str, prefix: str, parser: LineParser, size: Callable[[tuple[Any, ...]], int]
) -> LayerCount:
    """Parse every line under ``prefix`` like the job does; distinct keys and rejects."""
    lines = rejected = 0
    keys: dict[str, int] = {}
    for body in object_bodies(s3, bucket, prefix):
        for line in text_lines(body.decode("utf-8", errors="replace")):
            lines += 1
            try:
                row = parser(line)
            except InvalidEvent:
                rejected += 1
                continue
            keys[row[0]] = max(keys.get(row[0], 0), size(row))
    return LayerCount(lines, rejected, keys)


def text_lines(text: str) -> list[str]:
    """The lines of an object as Spark's text reader splits them: at ``\\n``, ``\\r\\n`` or ``\\r``.

    Not :meth:`str.splitlines`, which also splits at U+2028, U+0085 and other characters a url
    may hold.
    """
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[-1] == "":
        lines.pop()
    return lines


LAYERS: tuple[tuple[str, str, str, LineParser, Callable[[tuple[Any, ...]], int], str], ...] = (
    ("rawdata/", "curated_events", "event_id", event_row, lambda row: 1, "1"),
    (
        "aggregated/",
        "curated_sessions",
        "sessionid",
        minute_session_row,
        lambda row: row[4],
        "events",
    ),
    (
        "sessions/",
        "curated_gap_sessions",
        "session_id",
        gap_session_row,
        lambda row: row[8],
        "page_count",
    ),
)
"""(source prefix, curated table, key, parser, revision size, the same size in SQL)."""


def reconcile_lake(stack: Stack, cache: Path) -> tuple[list[str], bool]:
    """Compare each source layer's distinct keys (and fullest revisions) with its curated table.

    The printable lines and whether every layer matches its table exactly.
    """
    s3 = stack.client("s3")
    raw_bucket = stack.physical_id("RawBucket")
    duck = curated_duckdb(stack, cache)
    lines = ["lake reconciliation (source layer -> curated table, by the jobs' own parsers):"]
    ok = True
    for prefix, table, key, parser, size, size_sql in LAYERS:
        layer = count_layer(s3, raw_bucket, prefix, parser, size)
        rows = duck.execute(f"SELECT {key}, {size_sql} FROM {table}").fetchall()
        curated = {row[0]: row[1] for row in rows}
        exact = len(rows) == len(curated) and curated == layer.keys
        ok &= exact
        lines.append(
            f"  {prefix:<12} {layer.lines:>9,} lines, {layer.rejected:,} rejected,"
            f" {len(layer.keys):>9,} distinct {key:<10} -> {table:<21} {len(rows):>9,} rows"
            f" {'= exact' if exact else '!= MISMATCH'}"
        )
    return lines, ok
