"""Query results, the ``sql/`` files, and running a statement on Spark SQL or DuckDB.

Each file in ``sql/`` is one Athena named query: plain SQL in the subset Athena (Trino), Spark SQL
and DuckDB share, with an ``ORDER BY`` that fixes the row order. It runs unchanged:

- on Spark SQL, against a Hive metastore's tables (:mod:`.catalog`);
- on DuckDB, against the lake read through the S3 API into a cache folder (:mod:`.duckdb_lake`);
- on Athena, in the stack's workgroup (:mod:`.athena`).

Results are normalised so engines compare row by row (floats to 9 significant digits, timestamps
as ISO text), and printed or saved as a table (Markdown), CSV or JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 10
FORMATS: tuple[str, ...] = ("table", "csv", "json")
"""Output formats: ``table`` is Markdown."""


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

    def to_json(self, limit: int | None = None) -> str:
        """The result (or its first ``limit`` rows) as a JSON array of objects by column."""
        rows = self.rows[:limit] if limit is not None else self.rows
        records = [dict(zip(self.columns, row, strict=True)) for row in rows]
        return json.dumps(records, indent=1, default=str) + "\n"

    def render(self, output_format: str, limit: int | None = None) -> str:
        """The result in ``output_format``: one of :data:`FORMATS`."""
        if output_format == "table":
            return self.to_markdown(limit)
        if output_format == "csv":
            return self.to_csv(limit)
        if output_format == "json":
            return self.to_json(limit)
        raise ValueError(f"unknown format {output_format!r}; the formats are {', '.join(FORMATS)}")


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
