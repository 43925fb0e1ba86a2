"""One statement on one engine, over a stack's catalog: Spark SQL, DuckDB or Athena.

- ``spark``: HiveQL over a metastore that :func:`.catalog.sync_metastore` fills from the stack's
  Glue catalog. The session comes from the caller (locally the stack's Spark with its Derby
  metastore); without one, Spark is refused.
- ``duckdb``: the tables the statement names (a named ``sql/`` query: the curated tables) read
  through the S3 API into ``cache`` and exposed as views (:mod:`.duckdb_lake`).
- ``athena``: the stack's workgroup (:mod:`.athena`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from clickstream_analytics.athena import run_athena
from clickstream_analytics.catalog import CatalogTable, catalog_tables, sync_metastore
from clickstream_analytics.duckdb_lake import (
    curated_parquet_tables,
    download_tables,
    duckdb_connection,
    referenced_tables,
)
from clickstream_analytics.queries import QueryResult, run_duckdb, run_spark, sql_files
from clickstream_analytics.stack import AnalyticsError, Stack

ENGINES: tuple[str, ...] = ("spark", "duckdb", "athena")
SparkFactory = Callable[[], Any]
"""Returns a SparkSession with a Hive metastore (the local stack's)."""


def stack_tables(stack: Stack) -> list[CatalogTable]:
    """Every table of the stack's Glue database."""
    return catalog_tables(stack.client("glue"), stack.physical_id("GlueDatabase"))


def lake_duckdb(stack: Stack, tables: list[CatalogTable], cache: Path) -> Any:
    """DuckDB with a view per table, its objects mirrored from the stack's S3 into ``cache``."""
    return duckdb_connection(tables, download_tables(stack.client("s3"), tables, cache))


def curated_duckdb(stack: Stack, cache: Path) -> Any:
    """DuckDB over the curated tables (the report's and the reconciliation's source)."""
    return lake_duckdb(stack, curated_parquet_tables(stack_tables(stack)), cache)


def named_query(stack: Stack, name: str) -> str:
    """The text of ``sql/<name>.sql``, or an error listing the queries."""
    queries = sql_files(stack.sql_folder())
    if name not in queries:
        raise AnalyticsError(f"no query {name!r}; the queries are: {', '.join(queries)}")
    return queries[name]


def run_statement(
    stack: Stack,
    text: str,
    engine: str,
    *,
    cache: Path,
    spark: SparkFactory | None = None,
    curated_only: bool = False,
) -> QueryResult:
    """Run ``text`` on ``engine`` over the stack's tables.

    ``curated_only`` gives DuckDB only the curated tables (the ``sql/`` files read no other);
    otherwise every table the statement names.
    """
    database = stack.physical_id("GlueDatabase")
    if engine == "duckdb":
        tables = stack_tables(stack)
        chosen = curated_parquet_tables(tables) if curated_only else referenced_tables(text, tables)
        return run_duckdb(lake_duckdb(stack, chosen, cache), text)
    if engine == "athena":
        workgroup = stack.physical_id("AnalyticsWorkGroup")
        return run_athena(stack.client("athena"), text, workgroup=workgroup, database=database)
    if engine == "spark":
        if spark is None:
            raise AnalyticsError(
                "Spark SQL runs on the local stack only: use --engine duckdb or --engine athena"
            )
        session = spark()
        sync_metastore(session, stack.client("glue"), stack.client("s3"), database)
        return run_spark(session, database, text)
    raise AnalyticsError(f"unknown engine {engine!r}; the engines are {', '.join(ENGINES)}")
