"""One curation step: text objects in, typed and deduplicated Parquet rows out, rejects aside.

Every input line is accounted for: ``lines = quarantined + valid`` and
``valid = rows_added + duplicates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql.types import IntegerType, StructField, StructType, TimestampType

from clickstream_glue.frames import (
    PARTITION_COLUMNS,
    accepted,
    keep_first,
    micros_to_timestamp,
    parse_lines,
    quarantined,
    read_lines,
    with_hour_partitions,
)
from clickstream_glue.lake import merge_into, write_quarantine
from clickstream_glue.records import LineParser
from clickstream_glue.store import ObjectStore


@dataclass(frozen=True)
class CuratedTable:
    """How one source layer becomes one curated table."""

    prefix: str
    """Table folder in the curated bucket, e.g. ``events/``."""
    key: str
    """One row per value of this column."""
    parser: LineParser
    parsed_schema: StructType
    """The parser's columns; timestamps as ``long`` epoch microseconds."""
    timestamp_columns: tuple[str, ...]
    partition_time: str
    """The timestamp column whose UTC hour is the partition."""
    batch_order: tuple[Column, ...]
    """Picks one row per key within a batch (``source`` and ``line`` are available)."""
    merge_order: tuple[Column, ...]
    """Picks between the batch's row and the curated one (use ``lake.ORIGIN`` to break ties)."""
    sort_by: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        """The curated data columns, in order."""
        return self.parsed_schema.fieldNames()

    @property
    def schema(self) -> StructType:
        """The curated schema: real timestamps, then the int partition columns."""
        fields = [
            StructField(f.name, TimestampType()) if f.name in self.timestamp_columns else f
            for f in self.parsed_schema.fields
        ]
        fields += [StructField(name, IntegerType()) for name in PARTITION_COLUMNS]
        return StructType(fields)


def curate(
    spark: SparkSession,
    source: ObjectStore,
    curated: ObjectStore,
    table: CuratedTable,
    keys: Sequence[str],
    quarantine_prefix: str,
    compression: str,
) -> dict[str, Any]:
    """Parse the objects ``keys`` of ``source`` and merge them into ``table``; the counts."""
    lines = read_lines(spark, [source.uri(key) for key in keys])
    parsed = parse_lines(lines, table.parser, table.parsed_schema).localCheckpoint(eager=True)
    rejected = quarantined(parsed)
    counts: dict[str, Any] = {"lines": parsed.count(), "quarantined": rejected.count()}
    if counts["quarantined"]:
        write_quarantine(curated, quarantine_prefix, rejected)
    counts["valid"] = counts["lines"] - counts["quarantined"]
    if not counts["valid"]:
        return counts
    rows = accepted(parsed, table.columns)
    for column in table.timestamp_columns:
        rows = rows.withColumn(column, micros_to_timestamp(column))
    first_of_batch = keep_first(rows, table.key, table.batch_order)
    result = merge_into(
        spark,
        curated,
        table.prefix,
        table.schema,
        with_hour_partitions(first_of_batch, table.partition_time),
        key=table.key,
        order=table.merge_order,
        sort_by=table.sort_by,
        compression=compression,
    )
    counts.update(
        partitions=result.partitions,
        rows_added=result.rows_after - result.rows_before,
        rows_in_touched_partitions=result.rows_after,
        files_written=result.files_written,
        files_replaced=result.files_replaced,
    )
    counts["duplicates"] = counts["valid"] - counts["rows_added"]
    return counts
