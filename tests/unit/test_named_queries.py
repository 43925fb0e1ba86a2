"""The Athena named queries of template.yaml are the files of ``sql/``, word for word."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from clickstream_analytics.queries import sql_files, statement
from clickstream_local.cfn import load_template_document

ROOT = Path(__file__).resolve().parents[2]
SQL = sql_files(ROOT / "sql")

# The statement ends with its outer ORDER BY (plain column terms), optionally followed by LIMIT.
_TERM = r"[A-Za-z_][\w.]*(?:\s+(?:ASC|DESC))?"
_ORDERED_END = re.compile(
    rf"\bORDER\s+BY\s+{_TERM}(?:\s*,\s*{_TERM})*(?:\s+LIMIT\s+\d+)?\Z", re.IGNORECASE
)


@pytest.fixture(scope="module")
def named_queries() -> dict[str, dict[str, Any]]:
    """The template's ``AWS::Athena::NamedQuery`` properties, by logical id."""
    document = load_template_document(ROOT / "template.yaml")
    return {
        logical_id: spec["Properties"]
        for logical_id, spec in document["Resources"].items()
        if spec["Type"] == "AWS::Athena::NamedQuery"
    }


def by_name(named_queries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The named queries' properties by their ``Name``."""
    return {properties["Name"]: properties for properties in named_queries.values()}


def test_every_sql_file_is_one_named_query(named_queries: dict[str, dict[str, Any]]) -> None:
    # GIVEN the files of sql/ and the template's named queries
    assert SQL, "sql/ holds no query"
    names = [properties["Name"] for properties in named_queries.values()]
    # THEN each file is exactly one named query, called by the file's stem
    assert sorted(names) == sorted(SQL)
    # AND its logical id is the stem in CamelCase followed by "Query"
    for logical_id, properties in named_queries.items():
        camel = "".join(part.capitalize() for part in properties["Name"].split("_"))
        assert logical_id == f"{camel}Query"


@pytest.mark.parametrize("name", sorted(SQL))
def test_named_query_text_is_the_file(named_queries: dict[str, dict[str, Any]], name: str) -> None:
    # GIVEN one sql/ file and the named query of the same name
    properties = by_name(named_queries)[name]
    # THEN the query string is the file's whole text, comment lines included
    assert properties["QueryString"].rstrip("\n") == SQL[name].rstrip("\n")
    # AND the description is the file's first comment line
    first_comment = next(line for line in SQL[name].splitlines() if line.startswith("--"))
    assert properties["Description"] == first_comment.removeprefix("--").strip()


def test_named_queries_use_the_project_database_and_workgroup(
    named_queries: dict[str, dict[str, Any]],
) -> None:
    # GIVEN every named query
    for logical_id, properties in named_queries.items():
        # THEN it runs against the lake's catalog database, in the analytics workgroup
        assert properties["Database"] == {"Ref": "GlueDatabase"}, logical_id
        assert properties["WorkGroup"] == {"Ref": "AnalyticsWorkGroup"}, logical_id


@pytest.mark.parametrize("name", sorted(SQL))
def test_sql_file_is_one_statement_with_a_deterministic_order(name: str) -> None:
    # GIVEN one sql/ file without its comment lines
    sql = statement(SQL[name])
    # THEN it is a single statement, without a trailing semicolon
    assert sql
    assert ";" not in sql
    # AND it ends with an ORDER BY (and possibly a LIMIT), so its rows come in a fixed order
    assert _ORDERED_END.search(sql), sql.splitlines()[-1]
