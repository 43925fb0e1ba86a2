"""The ``sql/`` queries, run locally on Spark SQL (over the metastore) and on DuckDB (over Parquet).

Each file in ``sql/`` is one Athena named query: plain SQL in the subset Athena (Trino), Spark SQL
and DuckDB share, with an ``ORDER BY`` that fixes the row order. Locally it runs:

- on Spark SQL, against the Hive metastore's tables (``clickstream_local.catalog``);
- on DuckDB, against the curated Parquet: the curated tables' folders are copied from the local S3
  to a cache folder and exposed as views with the catalog's table names.

Results are compared row by row (floats to 9 significant digits) and saved as CSV and Markdown.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream_local.catalog import PARQUET_SERDE, CatalogTable, split_location

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one query, values normalised across engines."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> QueryResult:
        """Normalise: decimals and floats to 9 significant digits, timestamps to ISO strings."""
        return cls(tuple(columns), tuple(tuple(_normal(v) for v in row) for row in rows))

    def to_csv(self, limit: int | None = None) -> str:
        """The result (or its first ``limit`` rows) as CSV with a header."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows[:limit] if limit is not None else self.rows)
        return buffer.getvalue()

    def to_markdown(self, limit: int | None = None) -> str:
        """The result (or its first ``limit`` rows) as a Markdown table."""
        lines = ["| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows[:limit] if limit is not None else self.rows:
            lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
        return "\n".join(lines) + "\n"


def _normal(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | float):
        return float(f"{float(value):.9g}")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # DuckDB reads Parquet's UTC-adjusted timestamps as TIMESTAMPTZ; Spark's are naive UTC.
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def sql_files(folder: Path) -> dict[str, str]:
    """Every query of ``folder`` by name (the file name without ``.sql``)."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.sql"))}


def statement(text: str) -> str:
    """The SQL without its ``--`` comment lines and trailing whitespace."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(kept).strip()


def run_spark(spark: Any, database: str, text: str) -> QueryResult:
    """Run on Spark SQL with ``database`` as the current database."""
    spark.sql(f"USE `{database}`")
    frame = spark.sql(statement(text))
    return QueryResult.of(frame.columns, [tuple(row) for row in frame.collect()])


def curated_parquet_tables(tables: Sequence[CatalogTable]) -> list[CatalogTable]:
    """The catalog's Parquet tables: the ones DuckDB reads."""
    return [table for table in tables if table.serde == PARQUET_SERDE]


def download_tables(s3: Any, tables: Sequence[CatalogTable], folder: Path) -> dict[str, Path]:
    """Mirror each table's S3 folder under ``folder`` (stale files removed); local path by name."""
    local: dict[str, Path] = {}
    for table in tables:
        bucket, prefix = split_location(table.location)
        target = folder / bucket / prefix
        wanted: set[Path] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(".parquet"):
                    continue
                path = folder / bucket / item["Key"]
                wanted.add(path)
                if not path.exists() or path.stat().st_size != item["Size"]:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, item["Key"], str(path))
        for stale in target.rglob("*.parquet") if target.exists() else []:
            if stale not in wanted:
                stale.unlink()
        local[table.name] = target
    return local


def duckdb_connection(tables: Sequence[CatalogTable], local: dict[str, Path]) -> Any:
    """An in-memory DuckDB with one view per table over its Parquet files (Hive partitions)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for table in tables:
        types = ", ".join(f"'{name}': {_duckdb_type(kind)}" for name, kind in table.partition_keys)
        files = local[table.name] / "**" / "*.parquet"
        if not any(local[table.name].rglob("*.parquet")):
            columns = ", ".join(
                f"CAST(NULL AS {_duckdb_type(kind)}) AS {name}"
                for name, kind in (*table.columns, *table.partition_keys)
            )
            connection.execute(f"CREATE VIEW {table.name} AS SELECT {columns} WHERE false")
            continue
        connection.execute(
            f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet('{files}',"
            f" hive_partitioning = true, hive_types = {{{types}}})"
        )
    return connection


def _duckdb_type(hive_type: str) -> str:
    return {"int": "INTEGER", "string": "VARCHAR", "bigint": "BIGINT"}.get(
        hive_type, hive_type.upper()
    )


def run_duckdb(connection: Any, text: str) -> QueryResult:
    """Run on DuckDB."""
    cursor = connection.execute(statement(text))
    columns = [description[0] for description in cursor.description]
    return QueryResult.of(columns, cursor.fetchall())


def save_result(result: QueryResult, name: str, folder: Path) -> list[Path]:
    """``<name>.csv`` (everything), ``<name>.sample.csv`` and ``<name>.sample.md`` (10 rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / f"{name}.csv": result.to_csv(),
        folder / f"{name}.sample.csv": result.to_csv(SAMPLE_ROWS),
        folder / f"{name}.sample.md": result.to_markdown(SAMPLE_ROWS),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
