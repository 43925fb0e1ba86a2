"""The bytes a query scans from curated Parquet (``bench/parquet_scan.py``, used by bench_scan).

The model: per table scan, every kept file's footer, plus the column chunks of the columns read
in the row groups the filter's min/max statistics cannot rule out. And the table of what each
``sql/`` file reads must cover every file and name only columns the query does.
"""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.parquet_scan import (
    EVENTS,
    GAP_SESSIONS,
    MINUTE_SESSIONS,
    QUERY_SCANS,
    SQL_DIRECTORY,
    ColumnChunk,
    Comparison,
    ParquetFooter,
    RowGroup,
    TableScan,
    partition_of,
    query_bytes,
    read_footer,
    scanned_bytes,
)
from clickstream_glue.schemas import EVENT_SCHEMA, GAP_SESSION_SCHEMA, MINUTE_SESSION_SCHEMA

TABLE_COLUMNS = {
    EVENTS: set(EVENT_SCHEMA.fieldNames()),
    MINUTE_SESSIONS: set(MINUTE_SESSION_SCHEMA.fieldNames()),
    GAP_SESSIONS: set(GAP_SESSION_SCHEMA.fieldNames()),
}


def words(text: str) -> set[str]:
    """The identifiers of a query, comments left out."""
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return set(re.findall(r"[a-z_][a-z0-9_]*", code.lower()))


def group(rows: int = 100, **chunks: ColumnChunk) -> RowGroup:
    return RowGroup(rows, chunks)


def footer(key: str, *groups: RowGroup, footer_bytes: int = 50) -> ParquetFooter:
    return ParquetFooter(key, partition_of(key), footer_bytes, groups)


# --- the table of sql/ files --------------------------------------------------------------------


def test_every_sql_file_has_an_entry_and_every_entry_a_file() -> None:
    # GIVEN the query files
    files = {path.name for path in SQL_DIRECTORY.glob("*.sql")}
    # THEN the table names exactly them
    assert files
    assert set(QUERY_SCANS) == files


@pytest.mark.parametrize("file_name", sorted(QUERY_SCANS))
def test_each_scan_reads_columns_of_its_table_that_the_query_names(file_name: str) -> None:
    # GIVEN a query and its scans
    named = words((SQL_DIRECTORY / file_name).read_text(encoding="utf-8"))
    scans = QUERY_SCANS[file_name]
    # THEN the scanned tables are the ones the query names
    assert {scan.table for scan in scans} == {word for word in named if word in TABLE_COLUMNS}
    # AND each column read is a column of its table that the query names
    for scan in scans:
        assert set(scan.columns) <= TABLE_COLUMNS[scan.table] & named


@pytest.mark.parametrize(
    "file_name",
    sorted(name for name, scans in QUERY_SCANS.items() if len({s.table for s in scans}) == 1),
)
def test_a_one_table_query_reads_every_column_it_names(file_name: str) -> None:
    # GIVEN a query over one table
    named = words((SQL_DIRECTORY / file_name).read_text(encoding="utf-8"))
    scans = QUERY_SCANS[file_name]
    # THEN every column of that table it names is read by one of its scans
    table = scans[0].table
    assert TABLE_COLUMNS[table] & named == {column for scan in scans for column in scan.columns}


def test_the_three_report_queries_read_only_their_columns() -> None:
    # THEN top products, accesses by device and the heat map never read event_id
    assert QUERY_SCANS["top_products.sql"] == (
        TableScan(EVENTS, ("touchproduct", "custid"), where=Comparison("touchproduct", "<>", 0)),
    )
    assert QUERY_SCANS["accesses_by_device.sql"] == (
        TableScan(EVENTS, ("device",)),
        TableScan(EVENTS, ()),
    )
    assert QUERY_SCANS["source_url_heatmap.sql"] == (TableScan(EVENTS, ("trafficfrom", "url")),)


# --- choosing column chunks ---------------------------------------------------------------------


def test_a_scan_reads_the_footer_and_only_the_chunks_of_its_columns() -> None:
    # GIVEN one file of two row groups with three columns
    files = [
        footer(
            "events/year=2026/month=3/day=7/hour=14/part-0.parquet",
            group(device=ColumnChunk(10), url=ColumnChunk(20), event_id=ColumnChunk(400)),
            group(device=ColumnChunk(11), url=ColumnChunk(21), event_id=ColumnChunk(401)),
            footer_bytes=75,
        )
    ]
    # WHEN two columns are read
    scanned = scanned_bytes(files, TableScan(EVENTS, ("device", "url")))
    # THEN the footer and those columns' chunks are counted, event_id is not
    assert scanned == 75 + 10 + 20 + 11 + 21


def test_a_count_reads_only_the_footers() -> None:
    # GIVEN two files
    files = [
        footer("events/year=2026/month=3/day=7/hour=14/a.parquet", group(device=ColumnChunk(9))),
        footer("events/year=2026/month=3/day=7/hour=15/b.parquet", group(device=ColumnChunk(9))),
    ]
    # WHEN a scan reads no column (COUNT(*))
    # THEN it reads the two footers
    assert scanned_bytes(files, TableScan(EVENTS, ())) == 100


def test_row_groups_the_statistics_rule_out_are_skipped_for_every_column() -> None:
    # GIVEN a row group holding only touchproduct 0 and one holding products 0 to 250
    zeros = group(touchproduct=ColumnChunk(5, 0, 0), custid=ColumnChunk(300, 1, 5000))
    products = group(touchproduct=ColumnChunk(70, 0, 250), custid=ColumnChunk(200, 1, 5000))
    files = [footer("events/year=2026/month=3/day=7/hour=14/a.parquet", zeros, products)]
    # WHEN the scan filters touchproduct <> 0
    scan = TableScan(EVENTS, ("touchproduct", "custid"), Comparison("touchproduct", "<>", 0))
    # THEN the first row group is not read at all
    assert scanned_bytes(files, scan) == 50 + 70 + 200


def test_a_chunk_without_statistics_is_always_read() -> None:
    # GIVEN a row group whose filter column has no min/max
    files = [
        footer(
            "events/year=2026/month=3/day=7/hour=14/a.parquet",
            group(touchproduct=ColumnChunk(5), custid=ColumnChunk(300)),
        )
    ]
    scan = TableScan(EVENTS, ("touchproduct", "custid"), Comparison("touchproduct", "<>", 0))
    # THEN it cannot be skipped
    assert scanned_bytes(files, scan) == 50 + 5 + 300


@pytest.mark.parametrize(
    ("comparison", "low", "high", "may_match"),
    [
        (Comparison("url", "=", "beer_checkout"), "beer_cart", "beer_vitrine_nav", True),
        (Comparison("url", "=", "beer_checkout"), "beer_product_detail", "beer_vitrine_nav", False),
        (Comparison("url", "=", "beer_checkout"), "beer_cart", "beer_cart", False),
        (Comparison("url", "=", "beer_checkout"), "beer_checkout", "beer_checkout", True),
        (Comparison("touchproduct", "<>", 0), 0, 0, False),
        (Comparison("touchproduct", "<>", 0), 0, 1, True),
        (Comparison("touchproduct", "<>", 0), 3, 3, True),
        (Comparison("events", ">", 1), 1, 1, False),
        (Comparison("events", ">", 1), 1, 2, True),
    ],
)
def test_a_comparison_is_ruled_out_only_when_no_value_in_the_range_passes(
    comparison: Comparison, low: int | str, high: int | str, may_match: bool
) -> None:
    assert comparison.may_match(ColumnChunk(1, low, high)) is may_match


def test_a_partition_filter_skips_other_partitions_footers_too() -> None:
    # GIVEN files in hours 14 and 15
    files = [
        footer("events/year=2026/month=3/day=7/hour=14/a.parquet", group(device=ColumnChunk(9))),
        footer("events/year=2026/month=3/day=7/hour=15/b.parquet", group(device=ColumnChunk(8))),
    ]
    # WHEN a scan keeps hour 15 only
    scan = TableScan(EVENTS, ("device",), partitions={"year": 2026, "hour": 15})
    # THEN only that file is read
    assert scanned_bytes(files, scan) == 50 + 8


def test_a_query_adds_up_its_scans_a_table_scanned_twice_counts_twice() -> None:
    # GIVEN one events file
    files = {
        EVENTS: [
            footer("events/year=2026/month=3/day=7/hour=14/a.parquet", group(device=ColumnChunk(9)))
        ]
    }
    # WHEN the query scans it for a column and again for a count
    # THEN both scans read the footer
    assert query_bytes(files, QUERY_SCANS["accesses_by_device.sql"]) == (50 + 9) + 50


def test_a_filter_on_a_column_not_read_is_refused() -> None:
    with pytest.raises(ValueError, match="must be read too"):
        TableScan(EVENTS, ("custid",), where=Comparison("touchproduct", "<>", 0))


def test_partition_of_reads_the_name_value_folders() -> None:
    assert partition_of("events/year=2026/month=3/day=7/hour=14/part-0.parquet") == {
        "year": 2026,
        "month": 3,
        "day": 7,
        "hour": 14,
    }


# --- reading footers ----------------------------------------------------------------------------


def test_read_footer_takes_the_chunks_statistics_and_footer_length_from_the_file() -> None:
    # GIVEN a Parquet file of two row groups of 3 rows written in memory
    table = pa.table({"touchproduct": [0, 0, 0, 4, 7, 9], "url": ["a", "a", "b", "c", "c", "d"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=3)
    body = buffer.getvalue()
    # WHEN its footer is read
    read = read_footer("events/year=2026/month=3/day=7/hour=14/part-0.parquet", body)
    # THEN it has both row groups with their statistics
    assert [g.rows for g in read.row_groups] == [3, 3]
    first, second = read.row_groups
    assert (first.columns["touchproduct"].minimum, first.columns["touchproduct"].maximum) == (0, 0)
    assert (second.columns["url"].minimum, second.columns["url"].maximum) == ("c", "d")
    # AND the footer's length is the one the file's trailer states, plus the trailer
    assert read.footer_bytes == int.from_bytes(body[-8:-4], "little") + 8
    assert body[-4:] == b"PAR1"
    # AND each chunk's bytes are its column's total_compressed_size in that row group
    metadata = pq.ParquetFile(pa.BufferReader(body)).metadata
    for index, row_group in enumerate(read.row_groups):
        stated = metadata.row_group(index)
        for position in range(stated.num_columns):
            chunk = stated.column(position)
            assert row_group.columns[chunk.path_in_schema].compressed_bytes == (
                chunk.total_compressed_size
            )
    assert read.partition == {"year": 2026, "month": 3, "day": 7, "hour": 14}
