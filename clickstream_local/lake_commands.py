"""CLI commands of the data lake: run the Glue workflows, reconcile, sync the catalog, query."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream.events import InvalidEvent
from clickstream_glue.records import LineParser, event_row, gap_session_row, minute_session_row
from clickstream_local.catalog import catalog_tables, sync_metastore
from clickstream_local.queries import (
    QueryResult,
    curated_parquet_tables,
    download_tables,
    duckdb_connection,
    run_duckdb,
    run_spark,
    save_result,
    sql_files,
)
from clickstream_local.reconcile import object_bodies
from clickstream_local.stack import LocalStack, StackError, StackState

SAMPLE_ROWS = 10


def print_curate_reports(reports: list[dict[str, Any]]) -> None:
    """One line per curated table a job run touched."""
    if not reports:
        print("Glue: no new objects to curate")
    for report in reports:
        for table, counts in report.get("tables", {}).items():
            if not counts.get("inputs"):
                print(f"  {report['job']:<32} {table:<16} no new objects")
                continue
            print(
                f"  {report['job']:<32} {table:<16} {counts['inputs']:>4} objects"
                f" {counts.get('lines', 0):>8,} lines:"
                f" {counts.get('rows_added', 0):>8,} rows added,"
                f" {counts.get('duplicates', 0):,} duplicates, {counts.get('quarantined', 0):,}"
                f" quarantined ({report['seconds']} s)"
            )


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
        for line in body.decode("utf-8", errors="replace").splitlines():
            lines += 1
            try:
                row = parser(line)
            except InvalidEvent:
                rejected += 1
                continue
            keys[row[0]] = max(keys.get(row[0], 0), size(row))
    return LayerCount(lines, rejected, keys)


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


def reconcile_lake(state: StackState, cache: Path) -> tuple[list[str], bool]:
    """Compare each source layer's distinct keys (and fullest revisions) with its curated table."""
    s3 = state.client("s3")
    template = state.template()
    raw_bucket = template.resource("RawBucket").physical_id
    database = template.resource("GlueDatabase").physical_id
    tables = curated_parquet_tables(catalog_tables(state.client("glue"), database))
    duck = duckdb_connection(tables, download_tables(s3, tables, cache))
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


def spark_session(state: StackState, home: Path) -> Any:
    """A local SparkSession on the stack's S3 with the stack's Hive metastore."""
    from clickstream_local.spark import local_spark_session

    return local_spark_session(
        state.endpoint_url, metastore_dir=home / "metastore", app_name="query"
    )


def run_query(state: StackState, home: Path, name: str, engine: str) -> QueryResult:
    """Run ``sql/<name>.sql`` on Spark SQL over the synced metastore, or on DuckDB."""
    queries = sql_files(Path(state.template_path).parent / "sql")
    if name not in queries:
        raise StackError(f"no query {name!r}; the queries are: {', '.join(queries)}")
    database = state.template().resource("GlueDatabase").physical_id
    glue = state.client("glue")
    if engine == "duckdb":
        tables = curated_parquet_tables(catalog_tables(glue, database))
        duck = duckdb_connection(
            tables, download_tables(state.client("s3"), tables, home / "duckdb")
        )
        return run_duckdb(duck, queries[name])
    spark = spark_session(state, home)
    sync_metastore(spark, glue, state.client("s3"), database)
    return run_spark(spark, database, queries[name])


def cmd_curate(arguments: argparse.Namespace) -> int:
    """``clickstream curate``."""
    stack = LocalStack()
    state = stack.running()
    print_curate_reports(stack.run_glue())
    lines, ok = reconcile_lake(state, stack.home / "duckdb")
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_catalog(arguments: argparse.Namespace) -> int:
    """``clickstream catalog``: the template's tables in the local Hive metastore."""
    stack = LocalStack()
    state = stack.running()
    database = state.template().resource("GlueDatabase").physical_id
    spark = spark_session(state, stack.home)
    registered = sync_metastore(spark, state.client("glue"), state.client("s3"), database)
    for table, partitions in registered.items():
        print(f"  {database}.{table:<24} {partitions:>5} partitions")
    print(f"Hive metastore: {stack.home / 'metastore'}")
    return 0


def cmd_query(arguments: argparse.Namespace) -> int:
    """``clickstream query NAME``: run, save CSV + Markdown, print the sample."""
    stack = LocalStack()
    state = stack.running()
    if arguments.list:
        for name, text in sql_files(Path(state.template_path).parent / "sql").items():
            print(f"  {name:<28} {text.splitlines()[0].lstrip('- ')}")
        return 0
    if not arguments.name:
        raise StackError("give a query name (see `clickstream query --list`)")
    result = run_query(state, stack.home, arguments.name, arguments.engine)
    out = arguments.out or stack.home / "results"
    files = save_result(result, arguments.name, out)
    print(result.to_markdown(SAMPLE_ROWS))
    print(
        f"{len(result.rows)} rows on {arguments.engine}; saved {', '.join(str(f) for f in files)}"
    )
    return 0


def add_commands(commands: Any) -> None:
    """Register ``curate``, ``catalog`` and ``query`` on the CLI's subparsers."""
    curate_parser = commands.add_parser(
        "curate", help="run the Glue workflows on new lake objects now, then reconcile the lake"
    )
    curate_parser.set_defaults(handler=cmd_curate)
    catalog = commands.add_parser(
        "catalog", help="register the template's tables in the Hive metastore"
    )
    catalog.set_defaults(handler=cmd_catalog)
    query = commands.add_parser("query", help="run a sql/ query locally and save the result")
    query.add_argument("name", nargs="?", help="file name in sql/ without .sql, e.g. top_products")
    query.add_argument("--engine", choices=("spark", "duckdb"), default="spark")
    query.add_argument(
        "--out", type=Path, help="folder for the CSV and Markdown (default .local/results)"
    )
    query.add_argument("--list", action="store_true", help="list the queries")
    query.set_defaults(handler=cmd_query)
