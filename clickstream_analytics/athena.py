"""Athena: a statement run in the stack's workgroup, polled to its end, its rows read back.

``StartQueryExecution`` in the workgroup (its configuration enforces the results location under
the curated bucket), ``GetQueryExecution`` until the query succeeds, fails or is cancelled, then
``GetQueryResults`` page by page. Values come back as text and are typed by the result's column
metadata, so the rows compare with Spark's and DuckDB's.

Only an AWS deployment runs the query: the emulator's Athena answers with canned results, so the
unit tests drive this module with a fake client instead (``tests/unit/test_athena_engine.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from clickstream_analytics.queries import QueryResult, statement
from clickstream_analytics.stack import AnalyticsError

INTEGER_TYPES = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
FLOAT_TYPES = frozenset({"float", "real", "double", "decimal"})
RUNNING_STATES = frozenset({"QUEUED", "RUNNING"})


def run_athena(
    athena: Any,
    text: str,
    *,
    workgroup: str,
    database: str,
    poll_seconds: float = 1.0,
    timeout_seconds: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> QueryResult:
    """Run ``text`` in ``workgroup`` with ``database`` as the current database."""
    execution_id = athena.start_query_execution(
        QueryString=statement(text),
        WorkGroup=workgroup,
        QueryExecutionContext={"Database": database},
    )["QueryExecutionId"]
    waited = 0.0
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
            "Status"
        ]
        state = status["State"]
        if state == "SUCCEEDED":
            break
        if state not in RUNNING_STATES:
            reason = status.get("StateChangeReason", "no reason given")
            raise AnalyticsError(f"Athena query {execution_id} {state.lower()}: {reason}")
        if waited >= timeout_seconds:
            athena.stop_query_execution(QueryExecutionId=execution_id)
            raise AnalyticsError(f"Athena query {execution_id} still {state} after {waited:.0f} s")
        sleep(poll_seconds)
        waited += poll_seconds
    return query_results(athena, execution_id)


def query_results(athena: Any, execution_id: str) -> QueryResult:
    """Every row of a finished query, typed by its column metadata (header row dropped)."""
    columns: list[tuple[str, str]] = []
    rows: list[tuple[Any, ...]] = []
    first_row = True
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        result_set = page["ResultSet"]
        if not columns:
            columns = [
                (column["Name"], column["Type"].lower())
                for column in result_set["ResultSetMetadata"]["ColumnInfo"]
            ]
        for row in result_set["Rows"]:
            texts = [datum.get("VarCharValue") for datum in row["Data"]]
            header = first_row and texts == [name for name, _ in columns]
            first_row = False
            if header:
                continue  # a SELECT's first row repeats the column names
            rows.append(
                tuple(_typed(text, kind) for text, (_, kind) in zip(texts, columns, strict=True))
            )
    return QueryResult.of([name for name, _ in columns], rows)


def _typed(text: str | None, kind: str) -> Any:
    """An Athena value (text) as the Python value of its column type."""
    if text is None:
        return None
    base = kind.split("(", 1)[0]
    if base in INTEGER_TYPES:
        return int(text)
    if base in FLOAT_TYPES:
        return float(text)
    if base == "boolean":
        return text.lower() == "true"
    if base.startswith("timestamp"):
        return datetime.fromisoformat(text)
    if base == "date":
        return date.fromisoformat(text)
    return text
