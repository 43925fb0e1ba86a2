"""Growth benchmarks: how the stream consumers' CPU per event and the Glue events job's time per
row change as the work grows, so that a cost that grows faster than the work shows.

1. Stream consumers. ``max(--sizes)`` realistic events (fixed seed, ``--event-rate`` events per
   second of event time from 2026-03-07 14:00 UTC) are generated once, untimed, as their JSON
   lines. Each consumer then runs alone on them, from fresh in-memory ports, in Lambda Kinesis
   events of ``--batch`` records on one shard, in arrival order. A record arrives at the latest
   event time generated so far, and each batch runs at ``now`` = its last arrival + 1 s. Timed
   per batch, as the Lambda handler does it minus the AWS calls and the logs: the inbound
   adapter's parse of the Lambda event and the consumer's batch function, with the settings
   ``template.yaml`` gives the function:

   - window counter: ``handle_batch`` (state, checkpoint and the result rows it rewrites) with
     the in-memory window state, results, checkpoints and quarantine of ``tests/support/fakes``;
   - sessionizer: ``handle_batch`` with the in-memory session state, checkpoints and sinks;
   - search indexer: ``index_batch``, documents built and sent in bulk to an in-memory index that
     answers as ``create`` does (201 the first time, 409 after) and keeps only the ids.

   Each batch is timed with ``time.process_time`` (CPU of this process) and
   ``time.perf_counter`` (wall). The cumulative times are read when ``n`` events have gone
   through, for every ``n`` in ``--sizes``: a run of ``n`` events is the first ``n`` events of
   the run (same seed, same batches, fresh ports at the start), so one pass of the largest size
   measures every size. Reported per size: CPU and wall µs per event, their ratio to the
   smallest size's, the µs per event of the events between two sizes (the marginal cost), and
   the CPU seconds per batch at ``--per-batch-at`` events (100,000: what the cost model turns
   into Lambda GB-seconds). Every batch must be accounted for in full (nothing failed), else the
   bench stops.
2. Glue events job. On a moto server with ``template.yaml`` provisioned, the raw objects of the
   largest of ``--glue-rows`` are generated once (``bench_lake.raw_objects``: realistic events
   over four hours of event time, ``--events-per-object`` events per object, keyed by the hour
   of their first event). Each row count is the first objects of them, uploaded under the raw
   prefix before its run, so the same traffic grows longer; before the first run the job runs
   once untimed on one object (JVM and Python-worker start-up). The job (the template's script
   and arguments, zstd, ``bench_lake.bench_codec``) then runs from an empty curated table and
   must curate every row once. Reported per row count: rows/s and µs per row from the wall time
   around the job, the job's own seconds, the CPU µs per row of this process and its
   descendants (the JVM and its Python workers; the moto server's are left out) read from
   ``/proc`` around the run, and the ratios of µs per row to the smallest count's. One run per
   count. The machine's load average is recorded at the start and the end: the wall figures
   stretch when other work shares the cores, the CPU figures much less.

Figures go to ``bench/results/growth.json`` (``bench/results.py``); a table goes to stdout.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_growth.py``; trial runs:
``--sizes 5000 10000 --per-batch-at 10000 --glue-rows 20000 40000 --results-dir /tmp/growth``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from clickstream.adapters.kinesis_event import parse_lambda_records, records_by_shard
from clickstream.consumers import search_indexer, sessionizer, window_counter
from clickstream.core.search_documents import Action
from clickstream.generator import generate
from clickstream.ports import (
    ItemResult,
    SearchIndex,
    SearchIndexerPorts,
    SessionizerPorts,
    WindowCounterPorts,
)
from clickstream.settings import IndexerSettings, SessionizerSettings, WindowCounterSettings
from clickstream_local.aws import client_environment
from clickstream_local.cfn import Template
from clickstream_local.moto_server import start_moto, stop_process
from clickstream_local.spark import local_spark_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*, tests.support's fakes
from bench.bench_lake import bench_codec, provision, raw_objects, warm_up_job
from bench.results import RESULTS_DIRECTORY, write_results
from tests.support.fakes import (
    FixedShards,
    MemoryCheckpoints,
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
    MemoryWindowResults,
    MemoryWindowState,
)
from tests.support.lambda_events import kinesis_event, kinesis_record

ROOT = Path(__file__).resolve().parents[1]
SEED = 11
START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
SHARD = "shardId-000000000000"
FIRST_SEQUENCE_NUMBER = 1000
PROCESSING_DELAY = timedelta(seconds=1)
"""How long after a batch's last arrival the batch runs."""

STREAM_SIZES = (10_000, 100_000, 1_000_000)
GLUE_ROWS = (100_000, 1_000_000, 5_000_000)
BATCH_SIZE = 500
EVENT_RATE = 200.0
EVENTS_PER_RAW_OBJECT = 10_000
"""As ``bench_lake`` (1,000,000 events in 100 objects): raw objects keep one size as rows grow."""

CONSUMERS = ("window_counter", "sessionizer", "search_indexer")

Handler = Callable[[dict[str, Any], datetime], None]
"""Runs one Lambda Kinesis event at ``now``; raises unless every record is accounted for."""


# --- Sizes and figures (pure) -----------------------------------------------------------------


def size_label(count: int) -> str:
    """A short name of a count for figure keys: ``10k``, ``1m``, ``5m``; else the number."""
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


@dataclass(frozen=True)
class Mark:
    """Cumulative times when ``events`` events (or rows) had gone through."""

    events: int
    cpu_seconds: float
    wall_seconds: float


def growth_figures(
    name: str, marks: Sequence[Mark], batch_size: int, per_batch_at: int
) -> dict[str, float]:
    """A consumer's figures from its cumulative marks (in increasing size order).

    Per size: CPU and wall µs per event and their ratios to the first size's; between sizes:
    the CPU µs per event of the events in between; and the CPU seconds per batch at the size
    ``per_batch_at``.
    """
    if [mark.events for mark in marks] != sorted({mark.events for mark in marks}):
        raise ValueError("marks must be in strictly increasing size order")
    base = marks[0]
    base_label = size_label(base.events)
    figures: dict[str, float] = {}
    for mark in marks:
        label = size_label(mark.events)
        cpu = mark.cpu_seconds / mark.events * 1e6
        wall = mark.wall_seconds / mark.events * 1e6
        figures[f"{name}_cpu_us_per_event_{label}"] = cpu
        figures[f"{name}_wall_us_per_event_{label}"] = wall
        if mark is not base:
            base_cpu = base.cpu_seconds / base.events * 1e6
            base_wall = base.wall_seconds / base.events * 1e6
            figures[f"{name}_cpu_us_per_event_{label}_vs_{base_label}_ratio"] = cpu / base_cpu
            figures[f"{name}_wall_us_per_event_{label}_vs_{base_label}_ratio"] = wall / base_wall
    for before, after in pairwise(marks):
        key = f"{name}_cpu_us_per_event_from_{size_label(before.events)}_to_"
        key += size_label(after.events)
        spent = after.cpu_seconds - before.cpu_seconds
        figures[key] = spent / (after.events - before.events) * 1e6
    at = next((mark for mark in marks if mark.events == per_batch_at), None)
    if at is None:
        raise ValueError(f"no mark at {per_batch_at} events for the CPU per batch")
    figures[f"{name}_cpu_seconds_per_batch_{batch_size}"] = at.cpu_seconds / (
        at.events / batch_size
    )
    return figures


def glue_figures(marks: Sequence[Mark], job_seconds: Mapping[int, float]) -> dict[str, float]:
    """The events job's figures per row count: rows/s and µs per row (wall), CPU µs per row,
    the job's own seconds, and the ratios of µs per row to the first count's."""
    base = marks[0]
    base_label = size_label(base.events)
    figures: dict[str, float] = {}
    for mark in marks:
        label = size_label(mark.events)
        figures[f"glue_events_us_per_row_{label}"] = mark.wall_seconds / mark.events * 1e6
        figures[f"glue_events_cpu_us_per_row_{label}"] = mark.cpu_seconds / mark.events * 1e6
        figures[f"glue_events_rows_per_second_{label}"] = mark.events / mark.wall_seconds
        figures[f"glue_events_wall_seconds_{label}"] = mark.wall_seconds
        figures[f"glue_events_job_seconds_{label}"] = job_seconds[mark.events]
        if mark is not base:
            for kind, seconds, base_seconds in (
                ("us", mark.wall_seconds, base.wall_seconds),
                ("cpu_us", mark.cpu_seconds, base.cpu_seconds),
            ):
                ratio = (seconds / mark.events) / (base_seconds / base.events)
                figures[f"glue_events_{kind}_per_row_{label}_vs_{base_label}_ratio"] = ratio
    return figures


def stat_fields(stat: str) -> tuple[int, int]:
    """The parent pid and the CPU clock ticks (user and system, the process's own and those of
    its waited-for children) of a ``/proc/<pid>/stat`` line."""
    fields = stat[stat.rindex(")") + 2 :].split()  # from field 3, the state; the name may hold ")"
    return int(fields[1]), sum(int(ticks) for ticks in fields[11:15])


def tree_cpu_seconds(root: int, excluded: int) -> float:
    """CPU seconds of ``root`` and its descendants, but not of ``excluded`` and its own (Linux).

    Counts what Spark does for the job: this process (the driver's Python), the JVM and its
    Python workers, including workers that ended (in their parent's children ticks).
    """
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(path.parent.name)], ticks[int(path.parent.name)] = stat_fields(
                path.read_text()
            )
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, waiting = 0, [root]
    while waiting:
        pid = waiting.pop()
        if pid == excluded:
            continue
        total += ticks.get(pid, 0)
        waiting.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


# --- 1: the stream consumers ------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Generated events as JSON lines, and when each arrived (epoch seconds)."""

    lines: list[bytes]
    arrivals: list[float]


def realistic_traffic(count: int, rate: float) -> Traffic:
    """``count`` realistic events; each arrives at the latest event time generated so far."""
    lines: list[bytes] = []
    arrivals: list[float] = []
    latest = 0.0
    for event in generate("realistic", seed=SEED, start=START, rate=rate, count=count):
        latest = max(latest, event.trans_timestamp.timestamp())
        lines.append(event.to_json_line())
        arrivals.append(latest)
    return Traffic(lines, arrivals)


def lambda_batches(traffic: Traffic, batch_size: int) -> Iterator[tuple[dict[str, Any], datetime]]:
    """Lambda Kinesis events of ``batch_size`` records on one shard, each with its ``now``."""
    for first in range(0, len(traffic.lines), batch_size):
        last = min(first + batch_size, len(traffic.lines))
        records = [
            kinesis_record(
                SHARD,
                str(FIRST_SEQUENCE_NUMBER + position),
                traffic.lines[position],
                datetime.fromtimestamp(traffic.arrivals[position], UTC),
            )
            for position in range(first, last)
        ]
        now = datetime.fromtimestamp(traffic.arrivals[last - 1], UTC) + PROCESSING_DELAY
        yield kinesis_event(*records), now


class IdOnlyIndex(SearchIndex):
    """An in-memory index that keeps the ids it holds and answers each action as ``create``
    does: 201 the first time, 409 (version conflict) once the document exists."""

    def __init__(self) -> None:
        self.ids: set[tuple[str, str]] = set()

    def ensure_template(self) -> None:
        """Nothing to create in memory."""

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """One result per action, in order."""
        results = []
        for action in actions:
            key = (action["_index"], action["_id"])
            if key in self.ids:
                conflict = {"type": "version_conflict_engine_exception", "reason": "exists"}
                results.append(ItemResult(action["_id"], 409, conflict))
            else:
                self.ids.add(key)
                results.append(ItemResult(action["_id"], 201))
        return results


def function_environment(logical_id: str) -> dict[str, str]:
    """The environment ``template.yaml`` gives the function ``logical_id``, with the
    ``AWS_REGION`` Lambda sets."""
    template = Template.load(ROOT / "template.yaml")
    variables = template.resource(logical_id).properties["Environment"]["Variables"]
    return {"AWS_REGION": template.region, **{name: str(v) for name, v in variables.items()}}


def window_counter_handler() -> Handler:
    """The window counter's parse and ``handle_batch`` on fresh in-memory ports."""
    settings = WindowCounterSettings.from_env(function_environment("WindowCounterFunction"))
    checkpoints = MemoryCheckpoints()
    ports = WindowCounterPorts(
        checkpoints=checkpoints,
        state=MemoryWindowState(checkpoints, settings.exact_set_limit),
        results=MemoryWindowResults(),
        quarantine=MemoryQuarantine(),
        shards=FixedShards([SHARD]),
    )

    def handle(event: dict[str, Any], now: datetime) -> None:
        batch = records_by_shard(event, settings.max_clock_skew)
        report = window_counter.handle_batch(batch, settings=settings, ports=ports, now=now)
        if report.failures or report.records != len(event["Records"]):
            raise RuntimeError(f"the window counter did not commit a whole batch: {report}")

    return handle


def sessionizer_handler() -> Handler:
    """The sessionizer's parse and ``handle_batch`` on fresh in-memory ports."""
    settings = SessionizerSettings.from_env(function_environment("SessionizerFunction"))
    checkpoints = MemoryCheckpoints()
    ports = SessionizerPorts(
        checkpoints,
        MemorySessionState(checkpoints),
        MemoryMinuteSink(),
        MemoryGapSink(),
        MemoryQuarantine(),
    )

    def handle(event: dict[str, Any], now: datetime) -> None:
        batch = records_by_shard(event, settings.max_clock_skew)
        outcome = sessionizer.handle_batch(batch, settings=settings, ports=ports, now=now)
        if outcome.failures or outcome.processed + outcome.skipped != len(event["Records"]):
            raise RuntimeError(f"the sessionizer did not commit a whole batch: {outcome}")

    return handle


def search_indexer_handler() -> Handler:
    """The search indexer's parse and ``index_batch`` into a fresh in-memory index."""
    environment = function_environment("SearchIndexerFunction")
    settings = IndexerSettings.from_env(environment)
    ports = SearchIndexerPorts(IdOnlyIndex(), MemoryQuarantine())

    def handle(event: dict[str, Any], now: datetime) -> None:
        records = parse_lambda_records(event["Records"], settings.max_clock_skew)
        outcome = search_indexer.index_batch(
            records,
            ports,
            prefix=settings.index_prefix,
            max_docs=settings.bulk_max_docs,
            max_bytes=settings.bulk_max_bytes,
        )
        accounted = (
            outcome.indexed
            + outcome.already_indexed
            + outcome.quarantined
            + outcome.duplicates_in_batch
        )
        if outcome.failed_sequence_numbers or accounted != len(records):
            raise RuntimeError(f"the search indexer did not index a whole batch: {outcome}")

    return handle


HANDLERS: dict[str, Callable[[], Handler]] = {
    "window_counter": window_counter_handler,
    "sessionizer": sessionizer_handler,
    "search_indexer": search_indexer_handler,
}


def measure_consumer(
    handler: Handler, traffic: Traffic, sizes: Sequence[int], batch_size: int
) -> list[Mark]:
    """Cumulative CPU and wall seconds of ``handler`` after each of ``sizes`` events.

    Only the handler's call is timed, not building the Lambda events.
    """
    if any(size % batch_size for size in sizes) or max(sizes) > len(traffic.lines):
        raise ValueError(f"sizes must be multiples of {batch_size} within the traffic")
    wanted = set(sizes)
    marks: list[Mark] = []
    cpu = wall = 0.0
    done = 0
    for event, now in lambda_batches(traffic, batch_size):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        handler(event, now)
        cpu += time.process_time() - cpu_started
        wall += time.perf_counter() - wall_started
        done += len(event["Records"])
        if done in wanted:
            marks.append(Mark(done, cpu, wall))
    return marks


def bench_consumers(
    sizes: Sequence[int], batch_size: int, rate: float, per_batch_at: int
) -> dict[str, float]:
    """Every consumer's growth figures, each consumer alone on the same traffic."""
    started = time.perf_counter()
    traffic = realistic_traffic(max(sizes), rate)
    print(f"generated {len(traffic.lines):,} events in {time.perf_counter() - started:.0f} s")
    figures: dict[str, float] = {}
    for name in CONSUMERS:
        marks = measure_consumer(HANDLERS[name](), traffic, sorted(sizes), batch_size)
        figures.update(growth_figures(name, marks, batch_size, per_batch_at))
        print(f"{name}: {marks[-1].cpu_seconds:.0f} s CPU over {marks[-1].events:,} events")
    return figures


# --- 2: the Glue events job -------------------------------------------------------------------


def bench_glue(row_counts: Sequence[int], events_per_object: int) -> dict[str, float]:
    """The events job's wall, CPU and own seconds at each row count, on one moto server and Spark.

    The raw objects of the largest count are generated once; each count is the first objects
    of them, uploaded before its run (the job's outputs are cleared by ``bench_codec``).
    """
    counts = sorted(row_counts)
    if any(rows % events_per_object for rows in counts):
        raise ValueError(f"row counts must be multiples of {events_per_object}")
    marks: list[Mark] = []
    job_seconds: dict[int, float] = {}
    spark = None
    with tempfile.TemporaryDirectory() as folder:
        process, endpoint = start_moto(Path(folder) / "moto.log")
        try:
            os.environ.update(client_environment(endpoint))
            lake = provision(endpoint)
            started = time.perf_counter()
            bodies = raw_objects(counts[-1], counts[-1] // events_per_object)
            print(f"generated {counts[-1]:,} raw rows in {time.perf_counter() - started:.0f} s")
            spark = local_spark_session(endpoint, app_name="bench-growth")
            uploaded = 0
            for rows in counts:
                for key, body in bodies[uploaded : rows // events_per_object]:
                    lake.raw.put(key, body)
                if uploaded == 0:
                    warm_up_job(lake)
                uploaded = rows // events_per_object
                cpu_before = tree_cpu_seconds(os.getpid(), excluded=process.pid)
                run = bench_codec(lake, "zstd", rows)
                cpu = tree_cpu_seconds(os.getpid(), excluded=process.pid) - cpu_before
                marks.append(Mark(rows, cpu, run["wall_seconds"]))
                job_seconds[rows] = run["report_seconds"]
                print(f"glue events job: {rows:,} rows in {run['wall_seconds']:.0f} s")
        finally:
            if spark is not None:
                spark.stop()
            stop_process(process.pid)
    return glue_figures(marks, job_seconds)


# --- Report -----------------------------------------------------------------------------------


def print_table(
    figures: Mapping[str, float],
    sizes: Sequence[int],
    row_counts: Sequence[int],
    batch_size: int,
    per_batch_at: int,
) -> None:
    """The figures as readable tables."""
    labels = [size_label(size) for size in sorted(sizes)]
    base = labels[0]
    print()
    print(f"Stream consumers, in-memory ports, batches of {batch_size}, one shard")
    header = f"{'consumer':<16}{'events':>8}{'CPU µs/ev':>11}{'× ' + base:>8}"
    print(header + f"{'wall µs/ev':>12}{'× ' + base:>8}{'marginal CPU µs/ev':>20}")
    for name in CONSUMERS:
        for index, label in enumerate(labels):
            ratio = figures.get(f"{name}_cpu_us_per_event_{label}_vs_{base}_ratio", 1.0)
            wall_ratio = figures.get(f"{name}_wall_us_per_event_{label}_vs_{base}_ratio", 1.0)
            marginal = ""
            if index > 0:
                key = f"{name}_cpu_us_per_event_from_{labels[index - 1]}_to_{label}"
                marginal = f"{figures[key]:.1f}"
            print(
                f"{name:<16}{label:>8}{figures[f'{name}_cpu_us_per_event_{label}']:>11.1f}"
                f"{ratio:>8.2f}{figures[f'{name}_wall_us_per_event_{label}']:>12.1f}"
                f"{wall_ratio:>8.2f}{marginal:>20}"
            )
        per_batch = figures[f"{name}_cpu_seconds_per_batch_{batch_size}"]
        print(
            f"{'':<16}CPU per batch of {batch_size} at {size_label(per_batch_at)}:"
            f" {per_batch * 1000:.1f} ms"
        )
    print(
        f"load average (1 min) at start {figures['machine_load_average_1min_at_start']:.1f},"
        f" at end {figures['machine_load_average_1min_at_end']:.1f}"
        f" ({figures['machine_cores']:.0f} cores)"
    )
    if not row_counts:
        return
    glue_labels = [size_label(rows) for rows in sorted(row_counts)]
    print()
    print("Glue events job (local PySpark, moto S3, zstd)")
    base = glue_labels[0]
    print(
        f"{'rows':>8}{'wall s':>9}{'job s':>9}{'rows/s':>10}{'µs/row':>9}{'× ' + base:>8}"
        f"{'CPU µs/row':>12}{'× ' + base:>8}"
    )
    for label in glue_labels:
        ratio = figures.get(f"glue_events_us_per_row_{label}_vs_{base}_ratio", 1.0)
        cpu_ratio = figures.get(f"glue_events_cpu_us_per_row_{label}_vs_{base}_ratio", 1.0)
        print(
            f"{label:>8}{figures[f'glue_events_wall_seconds_{label}']:>9.1f}"
            f"{figures[f'glue_events_job_seconds_{label}']:>9.1f}"
            f"{figures[f'glue_events_rows_per_second_{label}']:>10,.0f}"
            f"{figures[f'glue_events_us_per_row_{label}']:>9.1f}{ratio:>8.2f}"
            f"{figures[f'glue_events_cpu_us_per_row_{label}']:>12.1f}{cpu_ratio:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(STREAM_SIZES))
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="records per batch")
    parser.add_argument("--event-rate", type=float, default=EVENT_RATE, help="event-time rate")
    parser.add_argument(
        "--per-batch-at", type=int, default=100_000, help="size of the CPU-per-batch figure"
    )
    parser.add_argument("--glue-rows", type=int, nargs="*", default=list(GLUE_ROWS))
    parser.add_argument("--events-per-object", type=int, default=EVENTS_PER_RAW_OBJECT)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIRECTORY)
    arguments = parser.parse_args()
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    figures = bench_consumers(
        arguments.sizes, arguments.batch, arguments.event_rate, arguments.per_batch_at
    )
    if arguments.glue_rows:
        figures.update(bench_glue(arguments.glue_rows, arguments.events_per_object))
    figures.update(
        {
            "batch_size_events": float(arguments.batch),
            "event_time_rate_events_per_second": arguments.event_rate,
            "glue_events_per_raw_object": float(arguments.events_per_object),
            "bench_wall_seconds": time.perf_counter() - started,
            "machine_cores": float(os.cpu_count() or 0),
            "machine_load_average_1min_at_start": load_at_start,
            "machine_load_average_1min_at_end": os.getloadavg()[0],
        }
    )
    print_table(
        figures,
        arguments.sizes,
        arguments.glue_rows,
        arguments.batch,
        arguments.per_batch_at,
    )
    command = ".venv/bin/python bench/bench_growth.py " + " ".join(sys.argv[1:])
    path = write_results("growth", figures, command.strip(), arguments.results_dir)
    print(f"\nfigures written to {path}")


if __name__ == "__main__":
    main()
