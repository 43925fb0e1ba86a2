"""Catalog tables as HiveQL, partition discovery, schema-inference naming, and query results."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

from clickstream.core.sessions import minute_sessions
from clickstream_analytics.catalog import CatalogTable, create_table_sql, split_location
from clickstream_analytics.duckdb_lake import duckdb_connection
from clickstream_analytics.queries import QueryResult, statement
from clickstream_glue.hive import add_partitions_sql, partition_values, string_literal
from clickstream_glue.inference import (
    CSV_SERDE,
    CSV_SERDE_PROPERTIES,
    InferredTable,
    folder_partitions,
    hive_type,
    task_name,
)
from clickstream_local.cfn import Template
from tests.factories import at, make_event
from tests.support.text_values import HOSTILE_URLS

ROOT = Path(__file__).resolve().parents[2]


def template_tables() -> dict[str, CatalogTable]:
    template = Template.load(ROOT / "template.yaml", stack_name="demo")
    return {
        r.properties["TableInput"]["Name"]: CatalogTable.from_table_input(
            r.properties["TableInput"]
        )
        for r in template.resources("AWS::Glue::Table")
    }


def test_curated_tables_become_parquet_tables_with_int_hive_partitions() -> None:
    # GIVEN the template's curated events table WHEN turned into HiveQL
    table = template_tables()["curated_events"]
    ddl = create_table_sql(table, "db")
    # THEN it is an external Parquet table at the curated bucket, partitions by Hive folders
    assert ddl.startswith("CREATE EXTERNAL TABLE `db`.`curated_events` (`event_id` string,")
    assert "`trans_timestamp` timestamp" in ddl
    assert (
        "PARTITIONED BY (`year` int, `month` int, `day` int, `hour` int) STORED AS PARQUET" in ddl
    )
    assert ddl.endswith("LOCATION 's3://demo-curated-123456789012-us-east-1/events/'")
    assert table.hive_style


def test_text_tables_keep_their_serde_and_json_uses_the_hcatalog_one() -> None:
    # GIVEN the raw JSON and aggregated CSV tables
    tables = template_tables()
    raw, aggregated = tables["rawdata"], tables["aggregated"]
    # THEN JSON reads through the HCatalog SerDe, CSV through OpenCSVSerde with its parameters,
    # the escape character U+0001 written as an escape HiveQL reads back
    assert "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'" in create_table_sql(
        raw, "d"
    )
    csv_ddl = create_table_sql(aggregated, "d")
    assert (
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' WITH SERDEPROPERTIES"
        " ('escapeChar' = '\\u0001', 'quoteChar' = '\"', 'separatorChar' = ',')"
        " STORED AS TEXTFILE" in csv_ddl
    )
    # ... and their partitions are plain folders, found from the location template
    assert not raw.hive_style and not aggregated.hive_style


def test_partitions_are_found_from_the_location_template() -> None:
    # GIVEN a location template and some object URIs
    template = "s3://b/rawdata/${year}/${month}/${day}/${hour}/"
    uris = [
        "s3://b/rawdata/2026/03/07/14/a",
        "s3://b/rawdata/2026/03/07/14/b",
        "s3://b/rawdata/2026/03/07/15/c",
        "s3://b/other/2026/03/07/15/c",
    ]
    # WHEN the partitions are derived THEN one per folder, with its values
    found = partition_values(template, uris)
    assert found == [
        (
            {"year": "2026", "month": "03", "day": "07", "hour": "14"},
            "s3://b/rawdata/2026/03/07/14/",
        ),
        (
            {"year": "2026", "month": "03", "day": "07", "hour": "15"},
            "s3://b/rawdata/2026/03/07/15/",
        ),
    ]
    sql = add_partitions_sql("d", "t", ["year", "month", "day", "hour"], found[:1])
    assert sql == (
        "ALTER TABLE `d`.`t` ADD IF NOT EXISTS PARTITION (`year` = '2026', `month` = '03',"
        " `day` = '07', `hour` = '14') LOCATION 's3://b/rawdata/2026/03/07/14/'"
    )


def test_positional_and_crawler_names_become_the_task_names() -> None:
    # THEN Spark's _cN, a crawler's colN and partition_N get the seed's names
    assert [task_name(f"_c{i}") for i in (0, 3, 9)] == ["sessionid", "aggreg_time", "totaltime_sec"]
    assert task_name("col4") == "events"
    assert [task_name(f"partition_{i}") for i in range(4)] == ["year", "month", "day", "hour"]
    assert task_name("custid") == "custid" and task_name("_c10") == "_c10"


def test_bigint_narrows_to_int_only_when_the_values_fit() -> None:
    assert hive_type("bigint", (1, 2**31 - 1)) == "int"
    assert hive_type("bigint", (1, 2**31)) == "bigint"
    assert hive_type("bigint", None) == "bigint"
    assert hive_type("string", (1, 2)) == "string"


def test_inferred_ddl_carries_partition_projection_for_athena() -> None:
    # GIVEN an inferred table over hour folders
    keys = ["aggregated/2026/03/07/14/x", "aggregated/2026/03/07/15/y"]
    table = InferredTable(
        "t",
        (("sessionid", "string"),),
        ("year", "month", "day", "hour")[: folder_partitions("aggregated/", keys)],
        "S",
        "s3://b/aggregated/",
    )
    ddl = table.ddl("d")
    # THEN its DDL projects the folders, so Athena needs no crawler
    assert "PARTITIONED BY (`year` string, `month` string, `day` string, `hour` string)" in ddl
    assert "'projection.enabled' = 'true'" in ddl and "'projection.hour.digits' = '2'" in ddl
    assert (
        "'storage.location.template' = 's3://b/aggregated/${year}/${month}/${day}/${hour}/'" in ddl
    )


def test_inferred_csv_table_has_the_template_serde_and_string_columns() -> None:
    # GIVEN an aggregated table as Spark infers it (ints and a timestamp)
    inferred = InferredTable(
        "inferred_aggregated",
        (("sessionid", "string"), ("userid", "int"), ("aggreg_time", "timestamp")),
        ("year",),
        CSV_SERDE,
        "s3://b/aggregated/",
    )
    aggregated = template_tables()["aggregated"]
    # THEN it reads through the template's SerDe with the template's parameters
    assert aggregated.serde == inferred.serde == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert aggregated.serde_parameters == inferred.serde_properties == CSV_SERDE_PROPERTIES
    assert CSV_SERDE_PROPERTIES["escapeChar"] == "\u0001"
    # ... and declares every column a string, as the template does, the inferred type commented
    assert {kind for _, kind in aggregated.columns} == {"string"}
    assert inferred.declared_columns == (
        ("sessionid", "string"),
        ("userid", "string"),
        ("aggreg_time", "string"),
    )
    ddl = inferred.ddl("d")
    assert "`userid` string COMMENT 'inferred int',\n" in ddl
    assert "`sessionid` string,\n" in ddl
    assert "WITH SERDEPROPERTIES ('escapeChar' = '\\u0001', 'quoteChar' = '\"'," in ddl


def test_hive_string_literals_escape_quotes_backslashes_and_control_characters() -> None:
    assert string_literal("plain") == "'plain'"
    assert string_literal("it's a \\ and \x01") == "'it\\'s a \\\\ and \\u0001'"


def test_duckdb_reads_the_aggregated_csv_values_exactly(tmp_path: Path) -> None:
    # GIVEN per-minute lines with hostile urls in an hour folder of the aggregated table
    aggregated = template_tables()["aggregated"]
    bucket, prefix = split_location(aggregated.location)
    sessions = [
        session
        for index, url in enumerate(HOSTILE_URLS)
        for session in minute_sessions(
            [make_event(at("2026-03-07T14:04:05"), custid=index + 1, url=url)]
        )
    ]
    hour = tmp_path / bucket / prefix / "2026" / "03" / "07" / "14"
    hour.mkdir(parents=True)
    (hour / "minutes").write_text("".join(s.to_csv_line() for s in sessions), encoding="utf-8")
    # WHEN the table's DuckDB view is read
    duck = duckdb_connection([aggregated], {"aggregated": tmp_path / bucket / prefix})
    rows = duck.execute('SELECT * FROM "aggregated" ORDER BY CAST(userid AS INTEGER)').fetchall()
    # THEN every column reads back as the string written, partitions from the folder
    assert rows == [
        (*(str(value) for value in s.row()), "2026", "03", "07", "14") for s in sessions
    ]


def test_query_results_compare_equal_across_engines_value_types() -> None:
    # GIVEN the same values as Spark (float, datetime) and DuckDB (Decimal) return them
    spark = QueryResult.of(["a", "t"], [(0.1 + 0.2, dt.datetime(2026, 3, 7, 14))])
    duck = QueryResult.of(["a", "t"], [(decimal.Decimal("0.3"), dt.datetime(2026, 3, 7, 14))])
    # THEN they compare equal and render the same
    assert spark == duck
    assert spark.to_csv() == "a,t\n0.3,2026-03-07T14:00:00\n"
    assert spark.to_markdown() == "| a | t |\n|---|---|\n| 0.3 | 2026-03-07T14:00:00 |\n"


def test_a_utc_aware_timestamp_equals_the_same_naive_utc_one() -> None:
    # GIVEN DuckDB's TIMESTAMPTZ (Parquet's UTC-adjusted timestamps) and Spark's naive UTC value
    naive = dt.datetime(2026, 3, 7, 14, 0, 21, 259)
    aware = dt.datetime(2026, 3, 7, 11, 0, 21, 259, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    # THEN both normalise to the same UTC text
    assert QueryResult.of(["t"], [(aware,)]) == QueryResult.of(["t"], [(naive,)])
    assert QueryResult.of(["t"], [(naive,)]).rows == (("2026-03-07T14:00:21.000259",),)


def test_statement_drops_comment_lines() -> None:
    assert statement("-- title\nSELECT 1\n  -- note\nFROM t\n") == "SELECT 1\nFROM t"
