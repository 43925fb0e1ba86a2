"""The Parquet bytes a query makes a reader scan, worked out from the files' footers.

Athena bills the bytes it reads from S3. On the curated Parquet a query reads, per table it
scans: every file's footer (its metadata: where each column chunk lies, the row counts and the
min/max statistics), then the column chunks of only the columns the query needs, in only the
partitions its filter on the partition columns keeps (the paths' ``year=/month=/day=/hour=``),
and in only the row groups whose min/max statistics can hold a row its filter keeps.

``QUERY_SCANS`` states, for each file of ``sql/``, the tables it scans with the columns and
filter of each scan; ``scanned_bytes`` adds up what one scan reads from the footers
(``read_footer``). Every ``sql/`` query reads whole tables: none filters on a partition column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SQL_DIRECTORY = Path(__file__).resolve().parents[1] / "sql"

EVENTS = "curated_events"
MINUTE_SESSIONS = "curated_sessions"
GAP_SESSIONS = "curated_gap_sessions"

TABLE_FOLDERS: dict[str, str] = {
    EVENTS: "events/",
    MINUTE_SESSIONS: "minute_sessions/",
    GAP_SESSIONS: "gap_sessions/",
}
"""Each curated table's folder in the curated bucket."""

TABLE_SOURCES: dict[str, str] = {
    EVENTS: "rawdata/",
    MINUTE_SESSIONS: "aggregated/",
    GAP_SESSIONS: "sessions/",
}
"""Each curated table's source layer in the raw bucket: what a query over the raw data reads."""

FOOTER_TRAILER_BYTES = 8
"""A Parquet file ends with the footer's length (4 bytes) and the magic ``PAR1`` (4 bytes)."""

Statistic = int | float | str


@dataclass(frozen=True)
class ColumnChunk:
    """One column of one row group: its bytes in the file and its min/max statistics."""

    compressed_bytes: int
    """Dictionary and data pages with their headers, compressed: what a reader fetches."""
    minimum: Statistic | None = None
    maximum: Statistic | None = None


@dataclass(frozen=True)
class RowGroup:
    """One row group: its row count and its column chunks by column name."""

    rows: int
    columns: Mapping[str, ColumnChunk]


@dataclass(frozen=True)
class ParquetFooter:
    """What a reader learns from one file's footer, and what the footer costs to read."""

    key: str
    partition: Mapping[str, int]
    footer_bytes: int
    """The footer and the 8-byte trailer after it."""
    row_groups: tuple[RowGroup, ...]


@dataclass(frozen=True)
class Comparison:
    """A filter ``column <operator> value`` that min/max statistics can rule out."""

    column: str
    operator: str
    """``=``, ``<>`` or ``>``."""
    value: Statistic

    def __post_init__(self) -> None:
        if self.operator not in ("=", "<>", ">"):
            raise ValueError(f"unsupported operator {self.operator!r}")

    def may_match(self, chunk: ColumnChunk) -> bool:
        """False only when the chunk's statistics prove no row of it passes."""
        low, high = chunk.minimum, chunk.maximum
        if low is None or high is None:
            return True
        if self.operator == "=":
            return low <= self.value <= high  # type: ignore[operator]
        if self.operator == "<>":
            return not (low == high == self.value)
        return high > self.value  # type: ignore[operator]


@dataclass(frozen=True)
class TableScan:
    """One scan of one table by a query: the columns it reads and the filters it pushes down."""

    table: str
    columns: tuple[str, ...]
    """Data columns read; empty when only row counts are needed (``COUNT(*)``)."""
    where: Comparison | None = None
    partitions: Mapping[str, int] = field(default_factory=dict)
    """Equality filters on partition columns; empty reads every partition."""

    def __post_init__(self) -> None:
        if self.table not in TABLE_FOLDERS:
            raise ValueError(f"unknown table {self.table!r}")
        if self.where is not None and self.where.column not in self.columns:
            raise ValueError(f"the filter's column {self.where.column!r} must be read too")


def partition_of(key: str) -> dict[str, int]:
    """The ``name=value`` folders of an object key, e.g. ``{"year": 2026, "hour": 14}``."""
    folders = key.split("/")[:-1]
    return {
        name: int(value)
        for name, _, value in (folder.partition("=") for folder in folders if "=" in folder)
    }


def read_footer(key: str, body: bytes) -> ParquetFooter:
    """The footer of one Parquet file (its whole body), with its partition from ``key``."""
    metadata = pq.ParquetFile(pa.BufferReader(body)).metadata
    row_groups = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        columns = {}
        for position in range(group.num_columns):
            chunk = group.column(position)
            columns[chunk.path_in_schema] = ColumnChunk(
                chunk.total_compressed_size, *_min_max(chunk.statistics)
            )
        row_groups.append(RowGroup(group.num_rows, columns))
    return ParquetFooter(
        key=key,
        partition=partition_of(key),
        footer_bytes=metadata.serialized_size + FOOTER_TRAILER_BYTES,
        row_groups=tuple(row_groups),
    )


def _min_max(statistics: pq.Statistics | None) -> tuple[Statistic | None, Statistic | None]:
    if statistics is None or not statistics.has_min_max:
        return None, None
    low, high = statistics.min, statistics.max
    if isinstance(low, int | float | str) and isinstance(high, int | float | str):
        return low, high
    return None, None


def in_partitions(footer: ParquetFooter, scan: TableScan) -> bool:
    """True when the file's partition passes the scan's partition filter."""
    return all(footer.partition.get(name) == value for name, value in scan.partitions.items())


def row_group_needed(group: RowGroup, scan: TableScan) -> bool:
    """True unless the scan's filter is ruled out by the row group's statistics."""
    if scan.where is None:
        return True
    chunk = group.columns.get(scan.where.column)
    return chunk is None or scan.where.may_match(chunk)


def scanned_bytes(footers: Iterable[ParquetFooter], scan: TableScan) -> int:
    """Bytes one scan reads: footers of the kept partitions, then the needed column chunks."""
    total = 0
    for footer in footers:
        if not in_partitions(footer, scan):
            continue
        total += footer.footer_bytes
        for group in footer.row_groups:
            if row_group_needed(group, scan):
                total += sum(group.columns[column].compressed_bytes for column in scan.columns)
    return total


def query_bytes(footers: Mapping[str, Iterable[ParquetFooter]], scans: Iterable[TableScan]) -> int:
    """Bytes a query reads: the sum over its scans (a table scanned twice is read twice)."""
    return sum(scanned_bytes(footers[scan.table], scan) for scan in scans)


def query_tables(scans: Iterable[TableScan]) -> list[str]:
    """The distinct tables a query scans, sorted."""
    return sorted({scan.table for scan in scans})


QUERY_SCANS: dict[str, tuple[TableScan, ...]] = {
    "accesses_by_device.sql": (
        TableScan(EVENTS, ("device",)),
        TableScan(EVENTS, ()),
    ),
    "checkout_events_by_device.sql": (
        TableScan(
            EVENTS, ("url", "device", "custid"), where=Comparison("url", "=", "beer_checkout")
        ),
    ),
    "conversion_by_device.sql": (
        TableScan(GAP_SESSIONS, ("device", "reached_checkout", "page_count", "duration_seconds")),
    ),
    "conversion_by_source.sql": (
        TableScan(
            GAP_SESSIONS, ("trafficfrom", "reached_checkout", "page_count", "duration_seconds")
        ),
    ),
    "hourly_activity.sql": (TableScan(EVENTS, ("custid", "touchproduct")),),
    "multi_event_sessions.sql": (
        TableScan(
            MINUTE_SESSIONS,
            ("device", "events", "totaltime_sec"),
            where=Comparison("events", ">", 1),
        ),
    ),
    "report_header.sql": (
        TableScan(EVENTS, ("trans_timestamp", "custid", "touchproduct")),
        TableScan(GAP_SESSIONS, ()),
        TableScan(MINUTE_SESSIONS, ()),
    ),
    "row_counts.sql": (
        TableScan(EVENTS, ("event_id",)),
        TableScan(MINUTE_SESSIONS, ("sessionid",)),
        TableScan(GAP_SESSIONS, ("session_id",)),
    ),
    "source_url_heatmap.sql": (TableScan(EVENTS, ("trafficfrom", "url")),),
    "top_products.sql": (
        TableScan(EVENTS, ("touchproduct", "custid"), where=Comparison("touchproduct", "<>", 0)),
    ),
}
"""What each ``sql/`` file reads, by file name. The partition columns (year, month, day, hour)
are folder names, never read from a file. A subquery over a table is a scan of its own."""
