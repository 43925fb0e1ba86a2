"""The Athena engine on a fake client: start in the workgroup, poll, read every page, type values.

The emulator's Athena answers with canned results, so this path is tested here, not end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clickstream_analytics.athena import run_athena
from clickstream_analytics.engines import run_statement
from clickstream_analytics.stack import AnalyticsError

COLUMNS = [
    {"Name": "device", "Type": "varchar"},
    {"Name": "accesses", "Type": "bigint"},
    {"Name": "share", "Type": "double"},
    {"Name": "first_event", "Type": "timestamp(3)"},
    {"Name": "bought", "Type": "boolean"},
]


def row(*values: str | None) -> dict[str, Any]:
    return {"Data": [{} if value is None else {"VarCharValue": value} for value in values]}


class FakePaginator:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
        return self.pages


class FakeAthena:
    """Goes through ``states`` on each GetQueryExecution, then serves ``pages``."""

    def __init__(self, states: list[str], pages: list[list[dict[str, Any]]]) -> None:
        self.states = states
        self.pages = [
            {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS}, "Rows": rows}}
            for rows in pages
        ]
        self.started: dict[str, Any] = {}
        self.stopped: list[str] = []

    def start_query_execution(self, **arguments: Any) -> dict[str, str]:
        self.started = arguments
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        status: dict[str, Any] = {"State": state}
        if state == "FAILED":
            status["StateChangeReason"] = "TABLE_NOT_FOUND: line 1:15: Table 'x' does not exist"
        return {"QueryExecution": {"QueryExecutionId": QueryExecutionId, "Status": status}}

    def get_paginator(self, name: str) -> FakePaginator:
        assert name == "get_query_results"
        return FakePaginator(self.pages)

    def stop_query_execution(self, QueryExecutionId: str) -> None:
        self.stopped.append(QueryExecutionId)


HEADER = row("device", "accesses", "share", "first_event", "bought")


def test_a_query_runs_in_the_workgroup_and_reads_every_page_typed() -> None:
    # GIVEN a query that is queued, runs, then succeeds with two pages of results
    athena = FakeAthena(
        ["QUEUED", "RUNNING", "SUCCEEDED"],
        [
            [HEADER, row("browser", "120", "0.5", "2026-03-07 14:00:00.000", "true")],
            [row("app_mobile", "80", "0.3333333333", None, "false")],
        ],
    )
    sleeps: list[float] = []
    # WHEN it runs
    result = run_athena(
        athena,
        "-- comment\nSELECT device FROM curated_events",
        workgroup="shop-analytics",
        database="db_shop",
        sleep=sleeps.append,
    )
    # THEN it started in the workgroup with the database, without the comment line
    assert athena.started == {
        "QueryString": "SELECT device FROM curated_events",
        "WorkGroup": "shop-analytics",
        "QueryExecutionContext": {"Database": "db_shop"},
    }
    # ... polled until it succeeded
    assert sleeps == [1.0, 1.0]
    # ... and the rows are typed by column, the header row dropped, as the other engines give them
    assert result.columns == ("device", "accesses", "share", "first_event", "bought")
    assert result.rows == (
        ("browser", 120, 0.5, "2026-03-07T14:00:00", True),
        ("app_mobile", 80, 0.333333333, None, False),
    )


def test_a_failed_query_is_an_error_with_athenas_reason() -> None:
    athena = FakeAthena(["RUNNING", "FAILED"], [])
    with pytest.raises(AnalyticsError, match="failed: TABLE_NOT_FOUND"):
        run_athena(athena, "SELECT 1 FROM x", workgroup="wg", database="db", sleep=lambda _: None)


def test_a_query_past_its_time_is_stopped() -> None:
    athena = FakeAthena(["RUNNING"], [])
    with pytest.raises(AnalyticsError, match="still RUNNING"):
        run_athena(
            athena,
            "SELECT 1",
            workgroup="wg",
            database="db",
            timeout_seconds=3,
            sleep=lambda _: None,
        )
    assert athena.stopped == ["q-1"]


class AthenaStack:
    """A stack whose Athena client is the fake, and whose ids are fixed."""

    stack_name = "shop"

    def __init__(self, athena: FakeAthena) -> None:
        self.athena = athena

    def physical_id(self, logical_id: str) -> str:
        return {"GlueDatabase": "db_shop", "AnalyticsWorkGroup": "shop-analytics"}[logical_id]

    def has_resource(self, logical_id: str) -> bool:
        return True

    def client(self, service: str) -> Any:
        assert service == "athena"
        return self.athena

    def sql_folder(self) -> Path:
        return Path("sql")

    def search_client(self) -> None:
        return None


def test_the_athena_engine_uses_the_stacks_workgroup_and_database(tmp_path: Path) -> None:
    # GIVEN a stack whose workgroup output and database are known
    athena = FakeAthena(["SUCCEEDED"], [[HEADER]])
    # WHEN a statement runs on the athena engine
    result = run_statement(AthenaStack(athena), "SELECT 1", "athena", cache=tmp_path)
    # THEN it ran there, and the empty result keeps its columns
    assert athena.started["WorkGroup"] == "shop-analytics"
    assert athena.started["QueryExecutionContext"] == {"Database": "db_shop"}
    assert result.rows == () and len(result.columns) == 5


def test_spark_is_refused_without_a_local_metastore(tmp_path: Path) -> None:
    with pytest.raises(AnalyticsError, match="Spark SQL runs on the local stack only"):
        run_statement(
            AthenaStack(FakeAthena(["SUCCEEDED"], [])), "SELECT 1", "spark", cache=tmp_path
        )
