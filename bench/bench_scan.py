"""Bytes scanned per ``sql/`` query on the curated Parquet, against the raw data (Athena's bill).

Setup (``bench_lake``'s functions): a moto server with ``template.yaml`` provisioned under a
unique stack name; ``--events`` realistic events (fixed seed, four hours of event time) as JSON
lines in ``--objects`` raw objects under ``rawdata/``. The raw lines are parsed back with the
domain parser, and their per-minute sessions and gap sessions (``clickstream.core.sessions``, the
rows the sessionizer writes) go to ``aggregated/`` (CSV lines) and ``sessions/`` (compact JSON
lines, as its Firehose sink sends them), one object per hour. Then the template's two Glue jobs run
on local PySpark, as on AWS: the events job and the sessions job, each once from an empty lake.

Measured from the footers of the curated Parquet files (pyarrow's ``FileMetaData``; see
``bench/parquet_scan.py``): for each ``sql/`` query, the bytes a reader must fetch, as Athena
bills them: the footer of every file of every table scan, plus the column chunks
(``total_compressed_size``) of only the columns the query reads, in only the partitions it keeps
and the row groups its filter cannot rule out by their min/max statistics. The baseline is the
raw bytes of the same data, as Athena over the raw tables would scan them: the raw JSON lines
(``rawdata/``) for ``curated_events``, the CSV (``aggregated/``) for ``curated_sessions``, the
JSON lines (``sessions/``) for ``curated_gap_sessions``, each table once. Goal: at most 2 % of
raw for ``top_products``, ``accesses_by_device`` and ``source_url_heatmap``.

Athena rounds each query up to 10 MB scanned; the figures here are the bytes before that.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_scan.py --events 50000 --objects 10
--results-dir /tmp/scan``). The figures go to ``bench/results/scan.json`` by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession

from clickstream.core.events import Event, parse_event
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream_glue.store import S3Store
from clickstream_local.aws import client_environment
from clickstream_local.cfn import Template
from clickstream_local.glue_local import LocalGlueJob, template_jobs
from clickstream_local.moto_server import start_moto, stop_process
from clickstream_local.spark import local_spark_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ as a package
from bench.bench_lake import ROOT, Lake, provision, raw_objects, run_job
from bench.parquet_scan import (
    EVENTS,
    GAP_SESSIONS,
    MINUTE_SESSIONS,
    QUERY_SCANS,
    TABLE_FOLDERS,
    TABLE_SOURCES,
    ParquetFooter,
    query_bytes,
    query_tables,
    read_footer,
)
from bench.results import RESULTS_DIRECTORY, write_results

SESSIONS_JOB = "AggregatedToCuratedSessionsJob"
GOAL_PERCENT = 2.0
GOAL_QUERIES = ("top_products", "accesses_by_device", "source_url_heatmap")


def upload(store: S3Store, objects: Iterable[tuple[str, bytes]]) -> None:
    """Put every ``(key, body)``."""
    for key, body in objects:
        store.put(key, body)


def events_of(objects: Sequence[tuple[str, bytes]]) -> list[Event]:
    """The events of the raw objects, parsed with the domain parser."""
    return [parse_event(line) for _, body in objects for line in body.splitlines()]


def hourly_objects(
    prefix: str, name: str, rows: Iterable[tuple[datetime, bytes]]
) -> list[tuple[str, bytes]]:
    """Rows ``(moment, line)`` as one object per hour of their moments, Firehose's layout."""
    hours: dict[str, list[bytes]] = defaultdict(list)
    for moment, line in rows:
        hours[f"{moment:%Y/%m/%d/%H}"].append(line)
    return [(f"{prefix}{hour}/{name}", b"".join(lines)) for hour, lines in sorted(hours.items())]


def session_objects(events: Sequence[Event]) -> dict[str, list[tuple[str, bytes]]]:
    """The sessionizer's outputs for ``events`` by curated table: minute CSV, gap-session JSON."""
    minutes = ((row.minute, row.to_csv_line().encode("utf-8")) for row in minute_sessions(events))
    gaps = ((gap.end, gap.to_json_line().encode("utf-8")) for gap in gap_sessions(events))
    return {
        MINUTE_SESSIONS: hourly_objects(
            TABLE_SOURCES[MINUTE_SESSIONS], "bench-minute-sessions", minutes
        ),
        GAP_SESSIONS: hourly_objects(TABLE_SOURCES[GAP_SESSIONS], "bench-gap-sessions.jsonl", gaps),
    }


def sessions_job(events_job: LocalGlueJob) -> LocalGlueJob:
    """The template's sessions job on the stack ``bench_lake.provision`` created."""
    stack = events_job.name.removesuffix("-raw-to-curated-events")
    template = Template.load(ROOT / "template.yaml", stack_name=stack)
    return template_jobs(template, ROOT)[SESSIONS_JOB]


def run_checked(job: LocalGlueJob, tables: Mapping[str, int]) -> None:
    """Run ``job``; every line of each curated table's input must be curated once."""
    report, _ = run_job(job, {})
    for table, lines in tables.items():
        counts = report["tables"][TABLE_FOLDERS[table].rstrip("/")]
        if (counts["lines"], counts["quarantined"], counts["rows_added"]) != (lines, 0, lines):
            raise RuntimeError(f"{job.logical_id} did not curate every {table} line once: {counts}")


def read_footers(store: S3Store) -> dict[str, list[ParquetFooter]]:
    """The footers of every curated Parquet file, by table."""
    return {
        table: [
            read_footer(obj.key, store.get(obj.key))
            for obj in store.list(folder)
            if obj.key.endswith(".parquet")
        ]
        for table, folder in TABLE_FOLDERS.items()
    }


def build_lake(lake: Lake, events: int, objects: int) -> dict[str, int]:
    """Raw events and sessions in the raw bucket; the input lines of each curated table."""
    raw = raw_objects(events, objects)
    upload(lake.raw, raw)
    parsed = events_of(raw)
    del raw
    lines = {EVENTS: len(parsed)}
    for table, bodies in session_objects(parsed).items():
        upload(lake.raw, bodies)
        lines[table] = sum(body.count(b"\n") for _, body in bodies)
    return lines


def measure(lake: Lake, lines: Mapping[str, int]) -> dict[str, float]:
    """Run both jobs (on the active SparkSession), then every query's figures from the footers."""
    events = lines[EVENTS]
    run_checked(lake.job, {EVENTS: events})
    run_checked(
        sessions_job(lake.job), {table: lines[table] for table in (MINUTE_SESSIONS, GAP_SESSIONS)}
    )
    footers = read_footers(lake.curated)
    raw_bytes = {
        table: sum(obj.size for obj in lake.raw.list(prefix))
        for table, prefix in TABLE_SOURCES.items()
    }
    curated_bytes = {
        table: sum(obj.size for obj in lake.curated.list(folder) if obj.key.endswith(".parquet"))
        for table, folder in TABLE_FOLDERS.items()
    }
    figures: dict[str, float] = {
        "events": events,
        "raw_json_bytes": raw_bytes[EVENTS],
        "raw_json_bytes_per_event": raw_bytes[EVENTS] / events,
        "raw_aggregated_csv_bytes": raw_bytes[MINUTE_SESSIONS],
        "raw_sessions_json_bytes": raw_bytes[GAP_SESSIONS],
        "curated_events_parquet_bytes": curated_bytes[EVENTS],
        "curated_parquet_bytes_per_event": curated_bytes[EVENTS] / events,
        "curated_minute_sessions_parquet_bytes": curated_bytes[MINUTE_SESSIONS],
        "curated_gap_sessions_parquet_bytes": curated_bytes[GAP_SESSIONS],
        "curated_events_files": len(footers[EVENTS]),
        "curated_events_row_groups": sum(len(f.row_groups) for f in footers[EVENTS]),
    }
    for file_name, scans in sorted(QUERY_SCANS.items()):
        name = Path(file_name).stem
        needed = query_bytes(footers, scans)
        raw = sum(raw_bytes[table] for table in query_tables(scans))
        figures[f"scan_{name}_bytes"] = needed
        figures[f"scan_{name}_raw_bytes"] = raw
        figures[f"scan_{name}_percent_of_raw"] = 100 * needed / raw
        figures[f"scan_{name}_bytes_per_event"] = needed / events
    return figures


def print_report(figures: Mapping[str, float]) -> None:
    """The figures as a table, with the goal where there is one."""
    print("Bytes scanned per sql/ query: curated Parquet against the raw data")
    print(
        f"  events {figures['events']:,.0f}; raw JSON {figures['raw_json_bytes']:,.0f} bytes"
        f" ({figures['raw_json_bytes_per_event']:.1f} per event); curated events"
        f" {figures['curated_events_parquet_bytes']:,.0f} bytes"
        f" ({figures['curated_parquet_bytes_per_event']:.1f} per event) in"
        f" {figures['curated_events_files']:.0f} files,"
        f" {figures['curated_events_row_groups']:.0f} row groups"
    )
    print(f"  {'query':<28}{'Parquet bytes':>15}{'raw bytes':>15}{'% of raw':>10}  goal")
    for file_name in sorted(QUERY_SCANS):
        name = Path(file_name).stem
        percent = figures[f"scan_{name}_percent_of_raw"]
        goal = ""
        if name in GOAL_QUERIES:
            goal = f"<= {GOAL_PERCENT:g} % {'met' if percent <= GOAL_PERCENT else 'MISSED'}"
        print(
            f"  {name:<28}{figures[f'scan_{name}_bytes']:>15,.0f}"
            f"{figures[f'scan_{name}_raw_bytes']:>15,.0f}{percent:>9.3f}%  {goal}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=100, help="raw objects")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIRECTORY, help="folder of scan.json"
    )
    arguments = parser.parse_args()
    spark: SparkSession | None = None
    with tempfile.TemporaryDirectory() as folder:
        process, endpoint = start_moto(Path(folder) / "moto.log")
        try:
            os.environ.update(client_environment(endpoint))
            lake = provision(endpoint)
            lines = build_lake(lake, arguments.events, arguments.objects)
            spark = local_spark_session(endpoint, app_name="bench-scan")
            figures = measure(lake, lines)
        finally:
            if spark is not None:
                spark.stop()
            stop_process(process.pid)
    print_report(figures)
    command = (
        f".venv/bin/python bench/bench_scan.py --events {arguments.events}"
        f" --objects {arguments.objects}"
    )
    path = write_results("scan", figures, command, arguments.results_dir)
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
