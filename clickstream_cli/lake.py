"""The data lake's commands: ``curate``, ``catalog``, ``query`` and ``glue-docker``.

``query`` reads a deployed stack too (``--stack``): DuckDB over the lake read through the S3 API,
or Athena; Spark SQL over the Hive metastore is the local stack's engine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from clickstream_analytics.catalog import sync_metastore
from clickstream_analytics.engines import ENGINES, named_query, run_statement
from clickstream_analytics.lake import reconcile_lake
from clickstream_analytics.queries import FORMATS, SAMPLE_ROWS, save_result, sql_files
from clickstream_analytics.stack import AnalyticsError
from clickstream_cli.common import local_spark, read_target
from clickstream_local.glue_docker import add_glue_docker_command
from clickstream_local.stack import LocalStack, project_root


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


def cmd_curate(arguments: argparse.Namespace) -> int:
    """``clickstream curate``: run the Glue workflows on new objects, then reconcile the lake."""
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
    database = state.physical_id("GlueDatabase")
    spark = local_spark(state, stack.home)
    registered = sync_metastore(spark, state.client("glue"), state.client("s3"), database)
    for table, partitions in registered.items():
        print(f"  {database}.{table:<24} {partitions:>5} partitions")
    print(f"Hive metastore: {stack.home / 'metastore'}")
    return 0


def cmd_query(arguments: argparse.Namespace) -> int:
    """``clickstream query NAME`` (a ``sql/`` file, saved) or ``--sql TEXT`` (printed)."""
    if arguments.list:
        for name, text in sql_files(project_root() / "sql").items():
            print(f"  {name:<28} {text.splitlines()[0].lstrip('- ')}")
        return 0
    if (arguments.name is None) == (arguments.sql is None):
        raise AnalyticsError("give a query name (see `clickstream query --list`) or --sql")
    if arguments.sql is not None and arguments.out is not None:
        raise AnalyticsError("--out saves a named query's result; redirect the output of --sql")
    local = arguments.stack is None
    engine = arguments.engine or ("spark" if local else "duckdb")
    if engine == "athena" and local:
        raise AnalyticsError(
            "Athena runs on a deployed stack (--stack NAME): the local stack does not emulate it"
        )
    target = read_target(arguments)
    cache = target.home / "duckdb"
    if arguments.sql is not None:
        result = run_statement(target.stack, arguments.sql, engine, cache=cache, spark=target.spark)
        sys.stdout.write(result.render(arguments.format))
        print(f"{len(result.rows)} rows on {engine}", file=sys.stderr)
        return 0
    text = named_query(target.stack, arguments.name)
    result = run_statement(
        target.stack, text, engine, cache=cache, spark=target.spark, curated_only=True
    )
    files = save_result(result, arguments.name, arguments.out or target.home / "results")
    note = f"{len(result.rows)} rows on {engine}; saved {', '.join(str(f) for f in files)}"
    if arguments.format == "table":
        print(result.to_markdown(SAMPLE_ROWS))
        print(note)
    else:
        sys.stdout.write(result.render(arguments.format))
        print(note, file=sys.stderr)
    return 0


def add_commands(commands: Any) -> None:
    """Register ``curate``, ``catalog``, ``query`` and ``glue-docker``."""
    curate_parser = commands.add_parser(
        "curate", help="run the Glue workflows on new lake objects now, then reconcile the lake"
    )
    curate_parser.set_defaults(handler=cmd_curate)
    catalog = commands.add_parser(
        "catalog", help="register the template's tables in the Hive metastore"
    )
    catalog.set_defaults(handler=cmd_catalog)
    query = commands.add_parser(
        "query",
        help="run a sql/ query (saved as CSV and Markdown) or any SQL over the catalog's tables",
    )
    query.add_argument("name", nargs="?", help="file name in sql/ without .sql, e.g. top_products")
    query.add_argument(
        "--sql",
        metavar="TEXT",
        help="a statement over the catalog's tables (rawdata, aggregated, sessions, curated_*)",
    )
    query.add_argument(
        "--engine",
        choices=ENGINES,
        help="spark (local stack, the default there), duckdb (the default on --stack) or athena"
        " (--stack only)",
    )
    query.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (Markdown; a named query prints its first 10 rows), csv or json",
    )
    query.add_argument(
        "--out",
        type=Path,
        help="folder for a named query's CSV and Markdown (default .local/results; with --stack,"
        " .local/stacks/REGION/NAME/results)",
    )
    query.add_argument("--list", action="store_true", help="list the queries")
    query.set_defaults(handler=cmd_query)
    add_glue_docker_command(commands)
