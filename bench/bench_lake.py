"""Data-lake benchmarks on a local moto server and local PySpark, against baselines of the same run.

Setup: a moto server is started and ``template.yaml`` is provisioned on it under a unique stack
name. ``--events`` realistic events (fixed seed) are generated over four hours of event time
from 2026-03-07 14:00 UTC, serialised as JSON lines (``Event.to_json_line``), cut in arrival
order into ``--objects`` raw objects of equal event counts and put under
``rawdata/YYYY/MM/DD/HH/`` of the raw bucket, the hour being that of the object's first event
(Firehose's layout). Generation and upload are timed apart from everything else. One
``local_spark_session`` (no Hive) serves every step, with the local AWS environment variables
set for the job's boto3. Before any measurement the events job runs once, untimed, on a copy of
the first raw object under another prefix, so JVM and Python-worker start-up are not counted in
the first measured run; its output, ledger and quarantine are then deleted.

1. Compression and size: the events job (``RawToCuratedEventsJob``, the template's script and
   arguments through ``run_in_session``) runs on every raw object with ``--compression snappy``;
   the bytes of every object under ``events/`` of the curated bucket are summed; ``events/``,
   the job's ledger and its quarantine are deleted; the job runs again with ``zstd`` (the
   project's default, so that run is the one left in the lake) and is measured the same way.
   Reported: raw bytes (sum of the raw objects' sizes), curated bytes per codec, and the ratio
   curated/raw per codec (goal: at most 10 %).
2. Job throughput: for each of those two runs, rows/s = input lines / seconds, once with the
   ``seconds`` of the job's report (listing, curation, merge and ledger) and once with the wall
   time measured here around ``run_in_session`` (which also loads the script and starts the job
   context). Each codec runs once. Baseline: plain Spark copies of the same raw objects,
   ``spark.read.json(rawdata/).write.parquet(...)`` into a scratch prefix of the curated bucket
   (Spark's default codec, snappy), without validation, deduplication, sorting or partitioning;
   once with schema inference (an extra pass over the JSON, as a bare ``read.json`` does) and
   once with the explicit raw schema. Each copy runs once, is timed as a whole, and its output
   is deleted. The ratios are job rows/s (wall) over copy rows/s.
3. Query speed: three queries in Spark SQL on the view ``curated_events``, registered either
   over the curated Parquet (``spark.read.parquet(events/)``) or over the raw JSON
   (``spark.read.schema(explicit).json(rawdata/)`` with ``recursiveFileLookup``, where
   ``trans_timestamp`` is converted to a timestamp and year/month/day/hour are derived by the
   jobs' own ``with_hour_partitions``), so the same SQL text runs on both: (a) the top 10
   products (task 1: ``touchproduct <> 0``, count, by count descending then product); (b)
   accesses by device in one hour partition (a filter on year/month/day/hour: partition pruning
   on Parquet, a full scan on JSON); (c) distinct customers per url. Both frames are built once
   before timing (their file listing is not timed). Per query and side: one untimed warm-up
   run, then ``--repeats`` timed runs of ``spark.sql(text).collect()``, the sides alternating
   which goes first. Both sides must return equal rows, else the bench fails. Reported: the
   median seconds per side, the ratio raw/parquet (goal: at least 10x) and the median of the
   three ratios.

4. A steady-state run: after the queries, one more raw object of ``--incremental-events``
   realistic events (another seed) in the last hour of event time is put under ``rawdata/``,
   and the events job runs once more onto the curated table the zstd run left (its ledger
   already holds the earlier runs). Reported: the job's report seconds and the wall time, the
   rows, and the objects the run wrote under ``events/`` (new keys, or keys whose size changed:
   the copy-on-write merge rewrites the partition it touches). Not against a baseline: the cost
   model (``clickstream cost``) takes it as a run's fixed time.
5. What the sessionizer lands in the lake. The same realistic traffic (``--session-events`` of
   it, from the start) goes through the sessionizer's ``handle_batch`` with the settings
   ``template.yaml`` gives the function, on in-memory ports (``tests/support/fakes``), in Lambda
   Kinesis events of ``--session-batch`` records on one shard in arrival order; a record arrives
   at the latest event time generated so far, and a batch runs 1 s after its last arrival. The
   ports' sinks are the Firehose adapters themselves (``FirehoseMinuteSessionSink``,
   ``FirehoseGapSessionSink``), each over a client that accepts every record and counts what it
   is sent (:class:`CountingFirehose`): per 1,000 events, the per-minute rows (CSV lines) and the
   gap sessions (JSON lines), the Firehose records the adapters pack them into (``pack_lines``)
   and the PutRecordBatch calls carrying those, on each delivery stream (``aggregated/``,
   ``sessions/``), with the bytes of each. Records and calls are counted over the second half
   of the batches, once gap sessions close as often as they open (a gap session closes 30
   minutes after its last event: the first half, over an hour of event time by default, is the
   warm-up); rows, sessions and bytes over every event, once the end of the stream has closed
   every session, so each event is in one.

Everything runs on one machine: moto serves S3 from memory in one Python process on the same
cores as Spark (``local[*]``, 4 GB driver). Figures are from one run on a shared, noisy
machine: read them as orders of magnitude, not as exact values. The figures the cost model reads
go to ``bench/results/lake.json`` (``bench/results.py``).

Run: ``make bench`` (or ``.venv/bin/python bench/bench_lake.py --events 50000 --objects 10
--results-dir /tmp/lake``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers import sessionizer
from clickstream.generator import generate
from clickstream.ports import SessionizerPorts
from clickstream.settings import SessionizerSettings
from clickstream_glue.frames import with_hour_partitions
from clickstream_glue.store import S3Store
from clickstream_local.aws import client_environment, local_client
from clickstream_local.cfn import Template
from clickstream_local.glue_local import LocalGlueJob, run_in_session, template_jobs
from clickstream_local.moto_server import start_moto, stop_process
from clickstream_local.provision import Provisioner
from clickstream_local.spark import local_spark_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*, tests.support's fakes
from bench.results import RESULTS_DIRECTORY, write_results
from tests.support.fakes import MemoryCheckpoints, MemoryQuarantine, MemorySessionState
from tests.support.lambda_events import kinesis_event, kinesis_record

ROOT = Path(__file__).resolve().parents[1]
SEED = 31
START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
EVENT_HOURS = 4
JOB = "RawToCuratedEventsJob"
JOB_NAME = "raw_to_curated_events"
RAW_PREFIX = "rawdata/"
EVENTS_PREFIX = "events/"
JOB_OUTPUTS = (EVENTS_PREFIX, f"_ledger/{JOB_NAME}/", f"quarantine/{JOB_NAME}/")
WARMUP_PREFIX = "bench_warmup/"
COPY_PREFIX = "bench_copy/"
CODECS = ("snappy", "zstd")
"""In run order: zstd, the project's default, runs last and stays in the lake."""
SIZE_GOAL = 0.10
QUERY_GOAL = 10.0
VIEW = "curated_events"
QUERY_HOUR = START + timedelta(hours=1)
INCREMENTAL_SEED = SEED + 1
SHARD = "shardId-000000000000"
FIRST_SEQUENCE_NUMBER = 1000
PROCESSING_DELAY = timedelta(seconds=1)

RAW_SCHEMA = StructType(
    [
        StructField("event_id", StringType()),
        StructField("custid", IntegerType()),
        StructField("trafficfrom", StringType()),
        StructField("url", StringType()),
        StructField("device", StringType()),
        StructField("touchproduct", IntegerType()),
        StructField("trans_timestamp", StringType()),
    ]
)

QUERIES: dict[str, str] = {
    "top_products": f"""
        SELECT touchproduct, COUNT(*) AS accesses
        FROM {VIEW}
        WHERE touchproduct <> 0
        GROUP BY touchproduct
        ORDER BY accesses DESC, touchproduct
        LIMIT 10""",
    "device_one_hour": f"""
        SELECT device, COUNT(*) AS accesses
        FROM {VIEW}
        WHERE year = {QUERY_HOUR.year} AND month = {QUERY_HOUR.month}
          AND day = {QUERY_HOUR.day} AND hour = {QUERY_HOUR.hour}
        GROUP BY device
        ORDER BY accesses DESC, device""",
    "customers_per_url": f"""
        SELECT url, COUNT(DISTINCT custid) AS customers
        FROM {VIEW}
        GROUP BY url
        ORDER BY url""",
}


@dataclass(frozen=True)
class Lake:
    """The provisioned stack's buckets and the events job."""

    raw: S3Store
    curated: S3Store
    job: LocalGlueJob


def provision(endpoint: str) -> Lake:
    """Provision ``template.yaml`` under a unique stack name on the moto server."""
    name = f"bench{uuid.uuid4().hex[:8]}"
    template = Template.load(
        ROOT / "template.yaml",
        stack_name=name,
        parameter_overrides={"GlueDatabaseName": f"db_{name}"},
    )
    Provisioner(template, endpoint).provision()
    s3 = local_client("s3", endpoint)
    return Lake(
        raw=S3Store(s3, template.resource("RawBucket").physical_id),
        curated=S3Store(s3, template.resource("CuratedBucket").physical_id),
        job=template_jobs(template, ROOT)[JOB],
    )


def raw_objects(events: int, objects: int) -> list[tuple[str, bytes]]:
    """The generated events as JSON-lines objects, keyed by the hour of their first event."""
    rate = events / (EVENT_HOURS * 3600)
    generated = list(generate("realistic", seed=SEED, start=START, rate=rate, count=events))
    size = -(-len(generated) // objects)
    bodies = []
    for index, first in enumerate(range(0, len(generated), size)):
        chunk = generated[first : first + size]
        key = f"{RAW_PREFIX}{chunk[0].trans_timestamp:%Y/%m/%d/%H}/bench-raw-{index:05d}"
        bodies.append((key, b"".join(event.to_json_line() for event in chunk)))
    return bodies


def write_raw(lake: Lake, events: int, objects: int) -> dict[str, float]:
    """Generate and upload the raw objects; the times and sizes."""
    started = time.perf_counter()
    bodies = raw_objects(events, objects)
    generated = time.perf_counter()
    for key, body in bodies:
        lake.raw.put(key, body)
    uploaded = time.perf_counter()
    listed = lake.raw.list(RAW_PREFIX)
    return {
        "generate_seconds": generated - started,
        "upload_seconds": uploaded - generated,
        "raw_objects": len(listed),
        "raw_hour_prefixes": len({obj.key.rsplit("/", 1)[0] for obj in listed}),
        "raw_bytes": sum(obj.size for obj in listed),
    }


def clear(store: S3Store, prefixes: Sequence[str]) -> None:
    """Delete every object under the prefixes."""
    for prefix in prefixes:
        store.delete([obj.key for obj in store.list(prefix)])


def run_job(job: LocalGlueJob, overrides: dict[str, str]) -> tuple[dict[str, Any], float]:
    """The job's report and the wall seconds of ``run_in_session`` (its own print is muted)."""
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        report = run_in_session(job, overrides)
        wall = time.perf_counter() - started
    return report, wall


def warm_up_job(lake: Lake) -> None:
    """Run the job once on a copy of the first raw object, then delete what it wrote."""
    first = lake.raw.list(RAW_PREFIX)[0].key
    lake.raw.put(f"{WARMUP_PREFIX}{first}", lake.raw.get(first))
    run_job(lake.job, {"raw_prefix": WARMUP_PREFIX})
    clear(lake.curated, JOB_OUTPUTS)
    clear(lake.raw, [WARMUP_PREFIX])


def bench_codec(lake: Lake, codec: str, events: int) -> dict[str, float]:
    """One job run with ``codec`` from an empty curated table: its size and throughput."""
    clear(lake.curated, JOB_OUTPUTS)
    report, wall = run_job(lake.job, {"compression": codec})
    counts = report["tables"]["events"]
    if (counts["lines"], counts["quarantined"], counts["rows_added"]) != (events, 0, events):
        raise RuntimeError(f"the {codec} run did not curate every event once: {counts}")
    written = lake.curated.list(EVENTS_PREFIX)
    return {
        "curated_bytes": sum(obj.size for obj in written),
        "parquet_files": sum(obj.key.endswith(".parquet") for obj in written),
        "partitions": counts["partitions"],
        "lines": counts["lines"],
        "report_seconds": report["seconds"],
        "wall_seconds": wall,
        "rows_per_s_report": counts["lines"] / report["seconds"],
        "rows_per_s_wall": counts["lines"] / wall,
    }


def raw_reader(spark: SparkSession, schema: StructType | None) -> Any:
    """A JSON reader of every object under the raw prefix, with ``schema`` if given."""
    reader = spark.read.option("recursiveFileLookup", "true")
    return reader if schema is None else reader.schema(schema)


def bench_copy(spark: SparkSession, lake: Lake, schema: StructType | None, events: int) -> float:
    """Rows/s of a plain JSON-to-Parquet copy of the raw objects; its output is deleted."""
    started = time.perf_counter()
    raw_reader(spark, schema).json(lake.raw.uri(RAW_PREFIX)).write.mode("overwrite").parquet(
        lake.curated.uri(COPY_PREFIX)
    )
    seconds = time.perf_counter() - started
    clear(lake.curated, [COPY_PREFIX])
    return events / seconds


def raw_events(spark: SparkSession, lake: Lake) -> DataFrame:
    """The raw JSON with a timestamp and the curated table's partition columns."""
    frame = raw_reader(spark, RAW_SCHEMA).json(lake.raw.uri(RAW_PREFIX))
    typed = frame.withColumn("trans_timestamp", F.to_timestamp("trans_timestamp"))
    return with_hour_partitions(typed, "trans_timestamp")


def run_query(spark: SparkSession, frame: DataFrame, text: str) -> tuple[float, list[tuple]]:
    """Seconds of ``spark.sql(text).collect()`` with ``frame`` as the view, and the rows."""
    frame.createOrReplaceTempView(VIEW)
    started = time.perf_counter()
    rows = spark.sql(text).collect()
    return time.perf_counter() - started, [tuple(row) for row in rows]


def bench_queries(spark: SparkSession, lake: Lake, repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per query on Parquet and on raw JSON, and their ratio."""
    sides = {
        "parquet": spark.read.parquet(lake.curated.uri(EVENTS_PREFIX)),
        "raw": raw_events(spark, lake),
    }
    results: dict[str, dict[str, float]] = {}
    for name, text in QUERIES.items():
        answers = {side: run_query(spark, frame, text)[1] for side, frame in sides.items()}
        if answers["parquet"] != answers["raw"]:
            raise RuntimeError(f"{name}: Parquet and raw JSON disagree: {answers}")
        times: dict[str, list[float]] = {side: [] for side in sides}
        for repeat in range(repeats):
            order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
            for side in order:
                seconds, rows = run_query(spark, sides[side], text)
                if rows != answers["parquet"]:
                    raise RuntimeError(f"{name}: {side} returned other rows on repeat {repeat}")
                times[side].append(seconds)
        parquet, raw = statistics.median(times["parquet"]), statistics.median(times["raw"])
        results[name] = {
            "parquet_seconds": parquet,
            "raw_seconds": raw,
            "raw_over_parquet": raw / parquet,
            "result_rows": len(answers["parquet"]),
        }
    return results


def measure(spark: SparkSession, lake: Lake, events: int, repeats: int) -> dict[str, Any]:
    """Every measurement, in order: warm-up, copies, codecs (zstd last), queries."""
    warm_up_job(lake)
    copy_inferred = bench_copy(spark, lake, None, events)
    copy_explicit = bench_copy(spark, lake, RAW_SCHEMA, events)
    codecs = {codec: bench_codec(lake, codec, events) for codec in CODECS}
    for figures in codecs.values():
        figures["job_over_copy_inferred"] = figures["rows_per_s_wall"] / copy_inferred
        figures["job_over_copy_explicit"] = figures["rows_per_s_wall"] / copy_explicit
    queries = bench_queries(spark, lake, repeats)
    return {
        "codecs": codecs,
        "copy": {
            "rows_per_s_inferred_schema": copy_inferred,
            "rows_per_s_explicit_schema": copy_explicit,
        },
        "queries": queries,
        "median_raw_over_parquet": statistics.median(
            q["raw_over_parquet"] for q in queries.values()
        ),
    }


def bench_incremental(lake: Lake, events: int, count: int) -> dict[str, float]:
    """One more run, on one new raw object of ``count`` events in the last hour of event time,
    onto the curated table the zstd run left: the seconds and the objects of a steady run."""
    rate = events / (EVENT_HOURS * 3600)
    start = START + timedelta(hours=EVENT_HOURS - 1)
    new_events = generate("realistic", seed=INCREMENTAL_SEED, start=start, rate=rate, count=count)
    lake.raw.put(
        f"{RAW_PREFIX}{start:%Y/%m/%d/%H}/bench-incremental-00000",
        b"".join(event.to_json_line() for event in new_events),
    )
    before = {(obj.key, obj.size) for obj in lake.curated.list(EVENTS_PREFIX)}
    report, wall = run_job(lake.job, {"compression": "zstd"})
    counts = report["tables"]["events"]
    if (counts["lines"], counts["quarantined"], counts["rows_added"]) != (count, 0, count):
        raise RuntimeError(f"the incremental run did not curate every new event once: {counts}")
    written = [obj for obj in lake.curated.list(EVENTS_PREFIX) if (obj.key, obj.size) not in before]
    return {
        "rows": count,
        "report_seconds": report["seconds"],
        "wall_seconds": wall,
        "objects_written": len(written),
        "bytes_written": sum(obj.size for obj in written),
    }


class CountingFirehose:
    """A Firehose client that accepts every record and counts what it is sent: PutRecordBatch
    calls, the records they carry, the lines in those (rows or sessions) and their bytes."""

    def __init__(self) -> None:
        self.calls = 0
        self.records = 0
        self.lines = 0
        self.bytes = 0

    def put_record_batch(
        self, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> dict[str, Any]:
        """Count the call and its records; every record is accepted."""
        self.calls += 1
        self.records += len(Records)
        for record in Records:
            self.lines += record["Data"].count(b"\n")
            self.bytes += len(record["Data"])
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}


def sessionizer_output(count: int, events: int, batch_size: int) -> dict[str, float]:
    """What the sessionizer sends to its two Firehose delivery streams for the first ``count``
    events of the bench's traffic, per 1,000 events (see 5. in the module docstring)."""
    template = Template.load(ROOT / "template.yaml")
    variables = template.resource("SessionizerFunction").properties["Environment"]["Variables"]
    settings = SessionizerSettings.from_env({name: str(v) for name, v in variables.items()})
    checkpoints = MemoryCheckpoints()
    minutes, gaps = CountingFirehose(), CountingFirehose()
    ports = SessionizerPorts(
        checkpoints,
        MemorySessionState(checkpoints),
        FirehoseMinuteSessionSink(minutes, settings.delivery_stream),
        FirehoseGapSessionSink(gaps, settings.sessions_delivery_stream),
        MemoryQuarantine(),
    )
    rate = events / (EVENT_HOURS * 3600)
    traffic = list(generate("realistic", seed=SEED, start=START, rate=rate, count=count))
    latest = START
    halfway = count // 2 // batch_size * batch_size
    warm: dict[str, int] = {}
    for first in range(0, len(traffic), batch_size):
        if first == halfway:
            warm = {
                "minute_calls": minutes.calls,
                "minute_records": minutes.records,
                "gap_calls": gaps.calls,
                "gap_records": gaps.records,
            }
        records = []
        for position, event in enumerate(traffic[first : first + batch_size], start=first):
            latest = max(latest, event.trans_timestamp)
            sequence_number = str(FIRST_SEQUENCE_NUMBER + position)
            records.append(kinesis_record(SHARD, sequence_number, event, latest))
        batch = records_by_shard(kinesis_event(*records), settings.max_clock_skew)
        outcome = sessionizer.handle_batch(
            batch, settings=settings, ports=ports, now=latest + PROCESSING_DELAY
        )
        if outcome.failures or outcome.processed != len(records):
            raise RuntimeError(f"the sessionizer did not commit a whole batch: {outcome}")
    steady_per_thousand = 1000 / (count - halfway)
    steady = {
        "minute_session_puts_per_1000_events": minutes.calls - warm["minute_calls"],
        "minute_session_records_per_1000_events": minutes.records - warm["minute_records"],
        "gap_session_puts_per_1000_events": gaps.calls - warm["gap_calls"],
        "gap_session_records_per_1000_events": gaps.records - warm["gap_records"],
    }
    sessionizer.finalize_sessions(
        settings=settings, ports=ports, shard_ids=[SHARD], now=latest, close_everything=True
    )
    per_thousand = 1000 / count
    return {
        "minute_session_rows_per_1000_events": minutes.lines * per_thousand,
        "minute_session_csv_bytes_per_row": minutes.bytes / minutes.lines,
        "gap_sessions_per_1000_events": gaps.lines * per_thousand,
        "gap_session_json_bytes_per_1000_events": gaps.bytes * per_thousand,
        **{name: value * steady_per_thousand for name, value in steady.items()},
        "session_events": count,
        "session_batch_size": batch_size,
    }


def lake_figures(results: dict[str, Any]) -> dict[str, float]:
    """The flat figures of ``bench/results/lake.json``."""
    events = results["machine"]["events"]
    raw_bytes = results["setup"]["raw_bytes"]
    figures: dict[str, float] = {
        "events": events,
        "raw_json_bytes": raw_bytes,
        "raw_json_bytes_per_event": raw_bytes / events,
    }
    for codec, codec_figures in results["codecs"].items():
        figures[f"curated_events_{codec}_bytes"] = codec_figures["curated_bytes"]
        figures[f"curated_events_{codec}_bytes_per_event"] = codec_figures["curated_bytes"] / events
        figures[f"curated_events_{codec}_percent_of_raw"] = (
            100 * codec_figures["curated_bytes"] / raw_bytes
        )
        figures[f"events_job_{codec}_rows_per_s"] = codec_figures["rows_per_s_wall"]
        figures[f"events_job_{codec}_report_seconds"] = codec_figures["report_seconds"]
    for key, value in results["copy"].items():
        figures[f"baseline_copy_{key}"] = value
    for name, query in results["queries"].items():
        figures[f"query_{name}_parquet_seconds"] = query["parquet_seconds"]
        figures[f"query_{name}_raw_seconds"] = query["raw_seconds"]
        figures[f"query_{name}_raw_over_parquet_ratio"] = query["raw_over_parquet"]
    figures["query_median_raw_over_parquet_ratio"] = results["median_raw_over_parquet"]
    incremental = results["incremental"]
    figures["events_job_incremental_run_rows"] = incremental["rows"]
    figures["events_job_incremental_run_seconds"] = incremental["report_seconds"]
    figures["events_job_incremental_run_wall_seconds"] = incremental["wall_seconds"]
    figures["events_job_incremental_run_objects_written"] = incremental["objects_written"]
    figures["events_job_incremental_run_bytes_written"] = incremental["bytes_written"]
    figures.update(results["sessions"])
    return figures


def print_report(results: dict[str, Any]) -> None:
    """The figures as a readable report."""
    machine, setup, codecs = results["machine"], results["setup"], results["codecs"]
    raw_bytes = setup["raw_bytes"]
    print("Data-lake benchmark (one run on a shared machine)")
    print(
        f"  cores {machine['cores']}, RAM {machine['ram_gb']:.0f} GB, Spark {machine['spark']},"
        f" Python {machine['python']}"
    )
    print(
        f"  events {machine['events']:,} (realistic, seed {SEED}, {EVENT_HOURS} h of event time),"
        f" raw objects {setup['raw_objects']} in {setup['raw_hour_prefixes']} hour prefixes,"
        f" repeats {machine['repeats']}"
    )
    print(
        f"  generate + serialise {setup['generate_seconds']:.1f} s, upload"
        f" {setup['upload_seconds']:.1f} s, Spark session {setup['spark_start_seconds']:.1f} s"
    )
    print()
    print(f"1. Compression and size (goal: curated/raw <= {SIZE_GOAL:.0%})")
    print(f"  {'raw JSON lines':<16}{raw_bytes:>15,} bytes")
    for codec, figures in codecs.items():
        ratio = figures["curated_bytes"] / raw_bytes
        print(
            f"  {'curated ' + codec:<16}{figures['curated_bytes']:>15,} bytes"
            f"  {ratio:7.2%} of raw  {figures['parquet_files']} files,"
            f" {figures['partitions']} partitions  goal {'met' if ratio <= SIZE_GOAL else 'missed'}"
        )
    smaller = min(codecs, key=lambda codec: codecs[codec]["curated_bytes"])
    larger = max(codecs, key=lambda codec: codecs[codec]["curated_bytes"])
    share = codecs[smaller]["curated_bytes"] / codecs[larger]["curated_bytes"]
    print(f"  smaller: {smaller} ({share:.1%} of {larger})")
    print()
    print("2. Job throughput (input lines / seconds)")
    print(f"  {'run':<30}{'report s':>10}{'wall s':>10}{'rows/s rep':>12}{'rows/s wall':>13}")
    for codec, figures in codecs.items():
        print(
            f"  {'events job, ' + codec:<30}{figures['report_seconds']:>10.1f}"
            f"{figures['wall_seconds']:>10.1f}{figures['rows_per_s_report']:>12,.0f}"
            f"{figures['rows_per_s_wall']:>13,.0f}"
        )
    copy = results["copy"]
    for label, key in (
        ("inferred", "rows_per_s_inferred_schema"),
        ("explicit", "rows_per_s_explicit_schema"),
    ):
        print(f"  {'baseline copy, ' + label + ' schema':<30}{'':>32}{copy[key]:>13,.0f}")
    for codec, figures in codecs.items():
        print(
            f"  job/copy rows/s, {codec}: {figures['job_over_copy_inferred']:.2f} (inferred),"
            f" {figures['job_over_copy_explicit']:.2f} (explicit)"
        )
    print()
    print(
        f"3. Query speed, Spark SQL, median of {machine['repeats']} after one warm-up"
        f" (goal: raw/parquet >= {QUERY_GOAL:.0f}x)"
    )
    print(f"  {'query':<20}{'parquet s':>11}{'raw JSON s':>12}{'raw/parquet':>13}")
    for name, figures in results["queries"].items():
        print(
            f"  {name:<20}{figures['parquet_seconds']:>11.2f}{figures['raw_seconds']:>12.2f}"
            f"{figures['raw_over_parquet']:>12.1f}x"
        )
    median = results["median_raw_over_parquet"]
    print(f"  median ratio {median:.1f}x  goal {'met' if median >= QUERY_GOAL else 'missed'}")
    print()
    incremental = results["incremental"]
    print(
        f"4. A steady-state run: {incremental['rows']:,} new rows onto the curated table in"
        f" {incremental['report_seconds']:.1f} s (report), {incremental['wall_seconds']:.1f} s"
        f" (wall); {incremental['objects_written']} objects written,"
        f" {incremental['bytes_written']:,} bytes"
    )
    print()
    sessions = results["sessions"]
    print(
        f"5. The sessionizer's output per 1,000 events ({sessions['session_events']:,.0f} events,"
        f" batches of {sessions['session_batch_size']:.0f})"
    )
    print(
        f"  per-minute rows {sessions['minute_session_rows_per_1000_events']:.1f}"
        f" ({sessions['minute_session_csv_bytes_per_row']:.1f} bytes each) in"
        f" {sessions['minute_session_records_per_1000_events']:.2f} Firehose records,"
        f" {sessions['minute_session_puts_per_1000_events']:.2f} PutRecordBatch calls"
    )
    print(
        f"  gap sessions {sessions['gap_sessions_per_1000_events']:.1f}"
        f" ({sessions['gap_session_json_bytes_per_1000_events']:,.0f} bytes) in"
        f" {sessions['gap_session_records_per_1000_events']:.2f} Firehose records,"
        f" {sessions['gap_session_puts_per_1000_events']:.2f} PutRecordBatch calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=100, help="raw objects")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per query and side")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--incremental-events", type=int, default=10_000, help="rows of the steady-state run"
    )
    parser.add_argument(
        "--session-events", type=int, default=300_000, help="events through the sessionizer"
    )
    parser.add_argument(
        "--session-batch", type=int, default=500, help="records per sessionizer batch"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIRECTORY, help="folder of lake.json"
    )
    arguments = parser.parse_args()
    spark: SparkSession | None = None
    with tempfile.TemporaryDirectory() as folder:
        process, endpoint = start_moto(Path(folder) / "moto.log")
        try:
            os.environ.update(client_environment(endpoint))
            lake = provision(endpoint)
            setup = write_raw(lake, arguments.events, arguments.objects)
            started = time.perf_counter()
            spark = local_spark_session(endpoint, app_name="bench-lake")
            setup["spark_start_seconds"] = time.perf_counter() - started
            results = {
                "machine": {
                    "cores": os.cpu_count(),
                    "ram_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                    "spark": spark.version,
                    "python": platform.python_version(),
                    "events": arguments.events,
                    "repeats": arguments.repeats,
                },
                "setup": setup,
                **measure(spark, lake, arguments.events, arguments.repeats),
            }
            results["incremental"] = bench_incremental(
                lake, arguments.events, arguments.incremental_events
            )
        finally:
            if spark is not None:
                spark.stop()
            stop_process(process.pid)
    results["sessions"] = sessionizer_output(
        min(arguments.session_events, arguments.events), arguments.events, arguments.session_batch
    )
    print_report(results)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    command = (
        f".venv/bin/python bench/bench_lake.py --events {arguments.events}"
        f" --objects {arguments.objects} --repeats {arguments.repeats}"
    )
    path = write_results("lake", lake_figures(results), command, arguments.results_dir)
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
