"""Writing the curated layer: copy-on-write merge of touched partitions, and the quarantine.

A merge never loses a row and never keeps a duplicate, across runs:

1. find the hour partitions the new rows fall in, and list their current files;
2. read those files, union them with the new rows, keep one row per key;
3. append the merged rows as new files (one per partition: small inputs are compacted);
4. delete the files listed in step 1.

A crash between 3 and 4 leaves duplicates in the touched partitions only until the rerun (the
ledger is not committed, so the same inputs are merged again and the old files removed).
Readers may see them for the moment between 3 and 4.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from clickstream_glue.frames import PARTITION_COLUMNS, keep_first
from clickstream_glue.store import ObjectStore

ORIGIN = F.col("_origin")
"""0 for rows already curated, 1 for new rows: order by it to let the curated row win ties."""

MAX_ROWS_PER_FILE = 5_000_000


@dataclass(frozen=True)
class MergeResult:
    """What one merge did to one curated table."""

    partitions: int
    rows_before: int
    """Rows of the touched partitions before the merge."""
    rows_after: int
    files_replaced: int
    files_written: int


def partition_prefix(table_prefix: str, values: Sequence[int]) -> str:
    """``<table>/year=2026/month=3/day=7/hour=14/``."""
    parts = "/".join(
        f"{name}={value}" for name, value in zip(PARTITION_COLUMNS, values, strict=True)
    )
    return f"{table_prefix}{parts}/"


def merge_into(
    spark: SparkSession,
    store: ObjectStore,
    table_prefix: str,
    schema: StructType,
    new_rows: DataFrame,
    key: str,
    order: Sequence[Column],
    sort_by: Sequence[str],
    compression: str,
) -> MergeResult:
    """Merge ``new_rows`` (schema columns, partition columns included) into the table.

    One row per ``key`` is kept, the first by ``order``; files are sorted by ``sort_by``.
    """
    partitions = sorted(
        tuple(row) for row in new_rows.select(*PARTITION_COLUMNS).distinct().collect()
    )
    prefixes = [partition_prefix(table_prefix, values) for values in partitions]
    old_files = [obj.key for prefix in prefixes for obj in store.list(prefix)]
    candidates = new_rows.select(*schema.fieldNames()).withColumn("_origin", F.lit(1))
    rows_before = 0
    if old_files:
        folders = sorted({store.uri(posixpath.dirname(k) + "/") for k in old_files})
        existing = (
            spark.read.schema(schema).option("basePath", store.uri(table_prefix)).parquet(*folders)
        )
        rows_before = existing.count()
        candidates = existing.withColumn("_origin", F.lit(0)).unionByName(candidates)
    merged = keep_first(candidates, key, order).drop("_origin").localCheckpoint(eager=True)
    rows_after = merged.count()
    (
        merged.repartition(*PARTITION_COLUMNS)
        .sortWithinPartitions(*PARTITION_COLUMNS, *sort_by)
        .write.mode("append")
        .partitionBy(*PARTITION_COLUMNS)
        .option("compression", compression)
        .option("maxRecordsPerFile", MAX_ROWS_PER_FILE)
        .parquet(store.uri(table_prefix))
    )
    replaced = set(old_files)
    written = [
        obj.key
        for prefix in prefixes
        for obj in store.list(prefix)
        if obj.key not in replaced and obj.key.endswith(".parquet")
    ]
    store.delete(old_files)
    return MergeResult(len(partitions), rows_before, rows_after, len(old_files), len(written))


def write_quarantine(store: ObjectStore, prefix: str, rejected: DataFrame) -> None:
    """Rejected lines as JSON (source, line, reason), one folder per source object.

    Folders are replaced, not appended to, so processing a source again rewrites its folder.
    """
    (
        rejected.withColumn("source_id", F.substring(F.sha2("source", 256), 1, 16))
        .repartition("source_id")
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("source_id")
        .json(store.uri(prefix))
    )
