"""The Glue jobs end to end on real local PySpark and the moto S3, as the template declares them.

One stack is provisioned from ``template.yaml`` per module; the jobs run through the same local
runner the stack uses (``clickstream_local.glue_local``) on the run's one SparkSession.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import Event, format_timestamp, parse_event
from clickstream.core.sessions import (
    MINUTE_SESSION_COLUMNS,
    MinuteSession,
    gap_sessions,
    minute_sessions,
)
from clickstream_analytics.catalog import catalog_tables, sync_metastore
from clickstream_analytics.duckdb_lake import (
    curated_parquet_tables,
    download_tables,
    duckdb_connection,
)
from clickstream_analytics.queries import run_duckdb, run_spark, sql_files
from clickstream_local.aws import client_environment, local_client
from clickstream_local.cfn import Template
from clickstream_local.glue_local import LocalGlueJob, run_in_session, template_jobs
from clickstream_local.provision import Provisioner
from tests.integration.conftest import ROOT, project_template
from tests.support.text_values import HOSTILE_URLS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
MALFORMED = [
    b"not json at all",
    b'{"event_id": "x"}',
    b'{"event_id":"6f1c2a3e-0000-4000-8000-000000000001","custid":1,"trafficfrom":"google",'
    b'"url":"beer_cart","device":"toaster","touchproduct":1,'
    b'"trans_timestamp":"2026-03-07T14:00:00.000001"}',
]


def make_events(count: int, seed: int, first_id: int = 1) -> list[Event]:
    """Seeded events over two hours of event time, ids ``first_id`` onwards."""
    rng = random.Random(seed)
    return [
        Event(
            event_id=str(uuid.UUID(int=first_id + index)),
            custid=rng.randint(1, 40),
            trafficfrom=rng.choice(["google", "facebook.com", "email_CampanhaBeer"]),
            url=rng.choice(
                ["beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout"]
            ),
            device=rng.choice(["app_mobile", "app_tablet", "browser"]),
            touchproduct=rng.choice([0, 0, *range(1, 30)]),
            trans_timestamp=START
            + timedelta(seconds=rng.randint(0, 2 * 3600 - 1), microseconds=index),
        )
        for index in range(count)
    ]


def lines(events: list[Event], extra: list[bytes] | None = None) -> bytes:
    """JSON lines of the events, then ``extra`` raw lines."""
    return b"".join(e.to_json_line() for e in events) + b"".join(x + b"\n" for x in extra or [])


def row_of(event: Event) -> tuple[Any, ...]:
    """The curated row an event must become (timestamp as ISO text, partitions as ints)."""
    moment = event.trans_timestamp
    return (
        event.event_id,
        event.custid,
        event.trafficfrom,
        event.url,
        event.device,
        event.touchproduct,
        format_timestamp(moment),
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
    )


class Lake:
    """A provisioned stack: buckets, jobs and helpers to run them."""

    def __init__(self, template: Template, endpoint: str) -> None:
        Provisioner(template, endpoint).provision()
        self.endpoint = endpoint
        self.database = template.resource("GlueDatabase").physical_id
        self.raw = template.resource("RawBucket").physical_id
        self.curated = template.resource("CuratedBucket").physical_id
        self.s3 = local_client("s3", endpoint)
        self.glue = local_client("glue", endpoint)
        self.jobs = template_jobs(template, ROOT)

    def put(self, key: str, body: bytes) -> None:
        """Write one source object to the raw bucket."""
        self.s3.put_object(Bucket=self.raw, Key=key, Body=body)

    def run(self, logical_id: str) -> Any:
        """Run one template job in this process, with the local AWS environment."""
        job: LocalGlueJob = self.jobs[logical_id]
        with pytest.MonkeyPatch.context() as patch:
            for name, value in client_environment(self.endpoint).items():
                patch.setenv(name, value)
            return run_in_session(job)

    def curated_objects(self, prefix: str) -> dict[str, str]:
        """Key → ETag of the curated objects under ``prefix``."""
        found: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.curated, Prefix=prefix
        ):
            found.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
        return found


def serde_of(spark: Any, database: str, table: str) -> dict[str, str]:
    """The SerDe library and storage properties of a metastore table, as Spark describes them."""
    described = spark.sql(f"DESCRIBE TABLE EXTENDED `{database}`.`{table}`").collect()
    wanted = ("Serde Library", "Storage Properties")
    return {row["col_name"]: row["data_type"] for row in described if row["col_name"] in wanted}


def curated_rows(spark: Any, uri: str) -> list[tuple[Any, ...]]:
    """Every row of a curated Parquet folder, timestamps as ISO text, sorted."""
    frame = spark.read.parquet(uri)
    rows = []
    for row in frame.collect():
        rows.append(tuple(format_timestamp(v) if isinstance(v, datetime) else v for v in row))
    return sorted(rows)


@pytest.fixture(scope="module")
def lake(moto_endpoint: str) -> Lake:
    """A fresh stack for the module."""
    name = f"g{uuid.uuid4().hex[:8]}"
    return Lake(project_template(name), moto_endpoint)


def test_events_job_curates_incrementally_and_idempotently(lake: Lake, spark: Any) -> None:
    # GIVEN two raw objects: duplicates within and across them, and three malformed lines
    first, second = make_events(300, seed=1), make_events(200, seed=2, first_id=1000)
    lake.put("rawdata/2026/03/07/14/a", lines(first + first[:5], MALFORMED))
    lake.put("rawdata/2026/03/07/15/b", lines(second + first[100:120]))
    # WHEN the events job runs
    report = lake.run("RawToCuratedEventsJob")["tables"]["events"]
    # THEN every line is accounted for and the curated table holds exactly the distinct events
    assert report["inputs"] == 2
    assert report["lines"] == 300 + 5 + 3 + 200 + 20
    assert report["quarantined"] == 3
    assert report["duplicates"] == 25
    assert report["rows_added"] == 500
    events_uri = f"s3://{lake.curated}/events/"
    assert curated_rows(spark, events_uri) == sorted(row_of(e) for e in first + second)
    # ... partitioned by event hour, one compacted file per partition
    files = [k for k in lake.curated_objects("events/") if k.endswith(".parquet")]
    hours = {e.trans_timestamp.hour for e in first + second}
    assert sorted(k.split("/")[4] for k in files) == sorted(f"hour={h}" for h in hours)
    # ... and the malformed lines sit in the quarantine with their reasons
    quarantine = spark.read.json(f"s3://{lake.curated}/quarantine/raw_to_curated_events/events/")
    reasons = {row["line"]: row["reason"] for row in quarantine.collect()}
    assert set(reasons) == {line.decode() for line in MALFORMED}
    assert reasons["not json at all"].startswith("malformed JSON")
    assert reasons['{"event_id": "x"}'].startswith("missing required field(s)")
    assert "device: 'toaster'" in reasons[MALFORMED[2].decode()]

    # WHEN it runs again with nothing new THEN it reads nothing and changes no object
    before = lake.curated_objects("events/")
    again = lake.run("RawToCuratedEventsJob")["tables"]["events"]
    assert again == {"inputs": 0, "input_bytes": 0}
    assert lake.curated_objects("events/") == before

    # WHEN a new object arrives, repeating old events and adding new ones
    third = make_events(50, seed=3, first_id=5000)
    lake.put("rawdata/2026/03/07/16/c", lines(third + second[:30]))
    later = lake.run("RawToCuratedEventsJob")["tables"]["events"]
    # THEN only that object is read, the repeats are dropped, and partitions stay one file each
    assert (later["inputs"], later["lines"], later["rows_added"], later["duplicates"]) == (
        1,
        80,
        50,
        30,
    )
    assert curated_rows(spark, events_uri) == sorted(row_of(e) for e in first + second + third)
    files = [k for k in lake.curated_objects("events/") if k.endswith(".parquet")]
    assert len(files) == len({k.rsplit("/", 1)[0] for k in files})

    # WHEN the ledger is lost and everything is processed again THEN no row changes
    lake.s3.delete_objects(
        Bucket=lake.curated,
        Delete={
            "Objects": [{"Key": k} for k in lake.curated_objects("_ledger/raw_to_curated_events/")]
        },
    )
    replay = lake.run("RawToCuratedEventsJob")["tables"]["events"]
    assert (replay["inputs"], replay["rows_added"], replay["quarantined"]) == (3, 0, 3)
    assert curated_rows(spark, events_uri) == sorted(row_of(e) for e in first + second + third)
    assert (
        len(spark.read.json(f"s3://{lake.curated}/quarantine/raw_to_curated_events/").collect())
        == 3
    )


@pytest.fixture(scope="module")
def sessions_lake(moto_endpoint: str) -> Iterator[tuple[Lake, list[Event]]]:
    """A stack whose raw, aggregated and sessions layers come from the same events, curated."""
    lake = Lake(project_template(f"s{uuid.uuid4().hex[:8]}"), moto_endpoint)
    events = make_events(600, seed=7)
    early = [e for e in events if e.trans_timestamp < START + timedelta(minutes=90)]
    lake.put("rawdata/2026/03/07/14/all", lines(events))
    # per-minute rows: a first delivery from the early events, then the complete revision
    # (a late event revises its minute's row; the fullest row must win)
    partial = "".join(m.to_csv_line() for m in minute_sessions(early))
    lake.put("aggregated/2026/03/07/15/first", (partial + "only,three,columns\n").encode())
    complete = "".join(m.to_csv_line() for m in minute_sessions(events))
    lake.put("aggregated/2026/03/07/16/second", complete.encode())
    gaps = "".join(json.dumps(g.to_dict()) + "\n" for g in gap_sessions(events))
    lake.put("sessions/2026/03/07/16/s.jsonl", (gaps + '{"session_id": 1}\n').encode())
    lake.run("RawToCuratedEventsJob")
    lake.report = lake.run("AggregatedToCuratedSessionsJob")  # type: ignore[attr-defined]
    yield lake, events


def test_sessions_job_keeps_the_fullest_revision_of_each_session(
    sessions_lake: tuple[Lake, list[Event]], spark: Any
) -> None:
    # GIVEN per-minute rows delivered twice (a partial and a complete revision) and gap sessions
    lake, events = sessions_lake
    report = lake.report["tables"]  # type: ignore[attr-defined]
    # THEN the curated minute sessions are exactly the complete rows, with the task's columns
    expected = minute_sessions(events)
    assert report["minute_sessions"]["quarantined"] == 1
    assert report["minute_sessions"]["rows_added"] == len(expected)
    frame = spark.read.parquet(f"s3://{lake.curated}/minute_sessions/")
    assert frame.columns == [
        "sessionid", "userid", "device", "aggreg_time", "events", "beginurl", "endurl",
        "begin_min_ss", "end_min_ss", "totaltime_sec", "year", "month", "day", "hour",
    ]  # fmt: skip
    assert dict(frame.dtypes)["aggreg_time"] == "timestamp"
    got = sorted(
        (r["sessionid"], r["events"], r["endurl"], r["totaltime_sec"]) for r in frame.collect()
    )
    assert got == sorted((m.sessionid, m.events, m.endurl, m.totaltime_sec) for m in expected)
    # ... and the gap sessions, one per session_id, with typed start and end
    gaps = spark.read.parquet(f"s3://{lake.curated}/gap_sessions/")
    assert report["gap_sessions"]["quarantined"] == 1
    assert sorted(r["session_id"] for r in gaps.collect()) == sorted(
        g.session_id for g in gap_sessions(events)
    )
    assert dict(gaps.dtypes)["session_start"] == "timestamp"


def test_schema_inference_names_and_types(
    sessions_lake: tuple[Lake, list[Event]], spark: Any
) -> None:
    # GIVEN the raw JSON and the aggregated CSV
    lake, events = sessions_lake
    # WHEN the inference job runs (Hive metastore locally)
    report = lake.run("InferSchemasJob")["tables"]
    # THEN the raw schema is the event schema, ints narrowed from bigint, timestamp kept as text
    assert report["inferred_rawdata"]["columns"] == {
        "custid": "int",
        "device": "string",
        "event_id": "string",
        "touchproduct": "int",
        "trafficfrom": "string",
        "trans_timestamp": "string",
        "url": "string",
    }
    # ... the CSV's positional columns carry the task's names, and the folders year..hour
    assert report["inferred_aggregated"]["inferred_types"] == {
        "sessionid": "string",
        "userid": "int",
        "device": "string",
        "aggreg_time": "timestamp",
        "events": "int",
        "beginurl": "string",
        "endurl": "string",
        "begin_min_ss": "string",
        "end_min_ss": "string",
        "totaltime_sec": "int",
    }
    assert report["inferred_aggregated"]["partitions"] == ["year", "month", "day", "hour"]
    # ... declared as strings, as OpenCSVSerde reads them: the columns and types the template
    # declares for the catalog's tables
    declared = {t.name: dict(t.columns) for t in catalog_tables(lake.glue, lake.database)}
    assert report["inferred_aggregated"]["columns"] == dict.fromkeys(
        MINUTE_SESSION_COLUMNS, "string"
    )
    assert report["inferred_aggregated"]["columns"] == declared["aggregated"]
    assert report["inferred_rawdata"]["columns"] == declared["rawdata"]
    # ... through the same SerDe, with the same parameters, as the catalog's aggregated table
    sync_metastore(spark, lake.glue, lake.s3, lake.database)
    serde = serde_of(spark, lake.database, "aggregated")
    assert serde["Serde Library"] == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert 'escapeChar=\x01, quoteChar=", separatorChar=,' in serde["Storage Properties"]
    assert serde_of(spark, lake.database, "inferred_aggregated") == serde
    # ... and the registered tables read every line through HiveQL
    count = spark.sql(f"SELECT COUNT(*) FROM `{lake.database}`.inferred_rawdata").first()[0]
    assert count == len(events)
    rows = spark.sql(
        f"SELECT sessionid, events FROM `{lake.database}`.inferred_aggregated WHERE hour = '16'"
    ).collect()
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (m.sessionid, str(m.events)) for m in minute_sessions(events)
    )


def test_each_sql_file_gives_the_same_rows_on_spark_and_duckdb(
    sessions_lake: tuple[Lake, list[Event]], spark: Any, tmp_path: Path
) -> None:
    # GIVEN the curated tables registered in the metastore from the catalog (as on AWS)
    lake, events = sessions_lake
    glue = local_client("glue", lake.endpoint)
    registered = sync_metastore(spark, glue, lake.s3, lake.database)
    assert registered["curated_events"] == len({e.trans_timestamp.hour for e in events})
    tables = curated_parquet_tables(catalog_tables(glue, lake.database))
    duck = duckdb_connection(tables, download_tables(lake.s3, tables, tmp_path))
    # WHEN every sql/ file runs on both engines THEN the rows are equal and not empty
    queries = sql_files(ROOT / "sql")
    assert len(queries) >= 8
    for name, text in queries.items():
        on_spark, on_duckdb = run_spark(spark, lake.database, text), run_duckdb(duck, text)
        assert on_spark.rows, name
        assert on_spark == on_duckdb, name
    # ... and task 1's answer is the top ten touched products of the events
    touched = Counter(e.touchproduct for e in events if e.touchproduct != 0)
    expected = sorted(touched.items(), key=lambda item: (-item[1], item[0]))[:10]
    top = run_spark(spark, lake.database, queries["top_products"])
    assert [(row[0], row[1]) for row in top.rows] == expected


# ---------------------------------------------------------------------------- hostile values


@dataclass
class HostileLake:
    """A stack whose aggregated layer holds rows with hostile urls, curated once."""

    lake: Lake
    sessions: list[MinuteSession]
    report: dict[str, Any]

    def expected(self) -> list[tuple[str, ...]]:
        """Every row as the aggregated table's string columns, then its hour partition."""
        rows = [tuple(str(value) for value in s.row()) for s in self.sessions]
        return sorted((*row, "2026", "03", "07", "14") for row in rows)


@pytest.fixture(scope="module")
def hostile_lake(moto_endpoint: str) -> HostileLake:
    """Valid events whose urls hold commas, quotes, backslashes and any unicode, sessionised.

    Each customer's minute begins on one hostile url and ends on another, so both url columns
    carry them; the aggregated object is written as the sessionizer writes it and curated.
    """
    lake = Lake(project_template(f"h{uuid.uuid4().hex[:8]}"), moto_endpoint)
    events = [
        Event(
            event_id=str(uuid.UUID(int=9000 + 2 * index + step)),
            custid=index + 1,
            trafficfrom="google",
            url=url,
            device="app_tablet",
            touchproduct=0,
            trans_timestamp=START + timedelta(minutes=index % 50, seconds=5 + step),
        )
        for index in range(len(HOSTILE_URLS))
        for step, url in enumerate((HOSTILE_URLS[index], HOSTILE_URLS[-1 - index]))
    ]
    # the stream's parser accepts every one of these events as it is
    assert [parse_event(event.to_json_line()) for event in events] == events
    sessions = minute_sessions(events)
    body = "".join(session.to_csv_line() for session in sessions).encode("utf-8")
    lake.put("aggregated/2026/03/07/14/hostile", body)
    report = lake.run("AggregatedToCuratedSessionsJob")["tables"]["minute_sessions"]
    return HostileLake(lake, sessions, report)


def test_hostile_urls_read_intact_through_the_aggregated_table_on_spark_sql(
    hostile_lake: HostileLake, spark: Any
) -> None:
    # GIVEN the catalog's tables in the Hive metastore, as the stack registers them
    lake = hostile_lake.lake
    sync_metastore(spark, lake.glue, lake.s3, lake.database)
    # WHEN the raw aggregated table is read with Spark SQL (OpenCSVSerde)
    rows = spark.sql(f"SELECT * FROM `{lake.database}`.`aggregated`").collect()
    # THEN every column holds exactly the string the sessionizer wrote
    assert sorted(tuple(row) for row in rows) == hostile_lake.expected()


def test_hostile_urls_read_intact_through_the_aggregated_table_on_duckdb(
    hostile_lake: HostileLake, tmp_path: Path
) -> None:
    # GIVEN the catalog's aggregated table mirrored for DuckDB
    lake = hostile_lake.lake
    tables = [t for t in catalog_tables(lake.glue, lake.database) if t.name == "aggregated"]
    duck = duckdb_connection(tables, download_tables(lake.s3, tables, tmp_path))
    # WHEN its view is read THEN every column holds exactly the string the sessionizer wrote
    rows = duck.execute('SELECT * FROM "aggregated"').fetchall()
    assert sorted(rows) == hostile_lake.expected()


def test_hostile_urls_reach_curated_sessions_intact(
    hostile_lake: HostileLake, spark: Any, tmp_path: Path
) -> None:
    # GIVEN the aggregated object curated by the sessions job, nothing quarantined
    lake = hostile_lake.lake
    assert (hostile_lake.report["quarantined"], hostile_lake.report["rows_added"]) == (
        0,
        len(hostile_lake.sessions),
    )
    expected = sorted((s.sessionid, s.beginurl, s.endurl) for s in hostile_lake.sessions)
    statement = "SELECT sessionid, beginurl, endurl FROM curated_sessions"
    # WHEN curated_sessions is read with Spark SQL over the metastore
    sync_metastore(spark, lake.glue, lake.s3, lake.database)
    on_spark = spark.sql(statement.replace("FROM ", f"FROM `{lake.database}`.")).collect()
    # ... and with DuckDB over the curated Parquet
    tables = curated_parquet_tables(catalog_tables(lake.glue, lake.database))
    duck = duckdb_connection(tables, download_tables(lake.s3, tables, tmp_path))
    on_duckdb = duck.execute(statement).fetchall()
    # THEN both hold every url exactly as the events carried it
    assert sorted(tuple(row) for row in on_spark) == expected
    assert sorted(on_duckdb) == expected
