"""Ingestion benchmarks on a local moto server, each against a baseline measured in the same run.

1. Generator -> stream throughput (events/s): generate + serialise + PutRecords with retries,
   against a bare boto3 PutRecords loop over records serialised beforehand.
2. Event-source runner overhead per record: the runner (batching, event shape, checkpointing)
   invoking a no-op handler, in-process and in a worker process, against a bare GetRecords loop
   over the same records.

The figures go to ``bench/results/ingest.json`` (``bench/results.py``).

Run: ``make bench`` (or ``.venv/bin/python bench/bench_ingest.py --events 20000``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.generator import generate, send_events
from clickstream.generator.producer import event_record
from clickstream_analytics.shard_reader import ShardReader
from clickstream_local.aws import local_client
from clickstream_local.esm import KinesisMapping, ShardPoller
from clickstream_local.lambda_worker import (
    InProcessInvoker,
    LocalFunction,
    WorkerInvoker,
    load_handler,
)
from clickstream_local.moto_server import start_moto, stop_process

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.results
from bench.results import RESULTS_DIRECTORY, write_results

ROOT = Path(__file__).resolve().parents[1]
NOOP = ROOT / "bench" / "noop_function"


def new_stream(kinesis: Any, name: str, shards: int) -> str:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    return name


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_generator(kinesis: Any, events: int, repeats: int) -> dict[str, float]:
    """Events/s of generate + send versus a bare PutRecords loop, medians of ``repeats``.

    Each measurement writes to a fresh stream, and the order alternates between repeats, so
    neither side pays for a fuller stream or a colder server.
    """
    start = datetime(2026, 3, 7, tzinfo=UTC)
    ours, bare = [], []
    for repeat in range(repeats):
        prepared = [
            {"Data": r.data, "PartitionKey": r.partition_key}
            for r in map(
                event_record, generate("realistic", seed=99, start=start, rate=100, count=events)
            )
        ]
        our_stream = KinesisRecordStream(kinesis, new_stream(kinesis, f"bench-gen-{repeat}", 2))
        bare_stream = new_stream(kinesis, f"bench-bare-{repeat}", 2)

        def generator_run(seed: int = repeat, stream: KinesisRecordStream = our_stream) -> None:
            send_events(
                generate("realistic", seed=seed, start=start, rate=100, count=events), stream
            )

        def bare_run(records: list[dict[str, Any]] = prepared, name: str = bare_stream) -> None:
            for offset in range(0, len(records), 500):
                kinesis.put_records(StreamName=name, Records=records[offset : offset + 500])

        runs = [(ours, generator_run), (bare, bare_run)]
        for results, action in runs if repeat % 2 == 0 else reversed(runs):
            results.append(events / timed(action))
    return {
        "generator_events_per_s": statistics.median(ours),
        "bare_put_records_per_s": statistics.median(bare),
    }


def bench_runner(kinesis: Any, endpoint: str, events: int) -> dict[str, float]:
    """Seconds per record: bare GetRecords loop, runner in-process, runner with a worker."""
    name = new_stream(kinesis, "bench-runner", 1)
    payload = b'{"event_id":"x","custid":1}\n'
    for offset in range(0, events, 500):
        records = [{"Data": payload, "PartitionKey": "1"} for _ in range(min(500, events - offset))]
        kinesis.put_records(StreamName=name, Records=records)
    (shard_id,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"]]

    def bare_loop() -> None:
        reader = ShardReader(kinesis, name, shard_id, "TRIM_HORIZON")
        seen = 0
        while seen < events:
            records, _ = reader.read(100)
            seen += len(records)

    function = LocalFunction(
        logical_id="Noop",
        name="bench-noop",
        arn="arn:aws:lambda:us-east-1:123456789012:function:bench-noop",
        code_dir=NOOP,
        handler="app.lambda_handler",
        environment={},
        timeout_seconds=30,
        memory_mb=128,
    )
    mapping = KinesisMapping(
        function=function,
        event_name="Bench",
        source_arn=f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}",
        stream_name=name,
        starting_position="TRIM_HORIZON",
        batch_size=100,
    )

    def runner_loop(invoker: Any) -> Callable[[], None]:
        def run() -> None:
            poller = ShardPoller(mapping, shard_id, kinesis, invoker, None, region="us-east-1")
            while poller.status.records_done < events:
                batch = poller.collect_batch()
                poller.process(batch)
            invoker.close()

        return run

    worker = WorkerInvoker(function, {})
    worker.invoke({"Records": []})  # start the worker outside the timing, like a warm container
    return {
        "bare_get_records_s_per_record": timed(bare_loop) / events,
        "runner_in_process_s_per_record": timed(
            runner_loop(InProcessInvoker(load_handler(function), function))
        )
        / events,
        "runner_worker_s_per_record": timed(runner_loop(worker)) / events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIRECTORY, help="folder of ingest.json"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process, endpoint = start_moto(Path(folder) / "moto.log")
        try:
            kinesis = local_client("kinesis", endpoint)
            generator = bench_generator(kinesis, arguments.events, arguments.repeats)
            runner = bench_runner(kinesis, endpoint, arguments.events)
        finally:
            stop_process(process.pid)
    bare = runner["bare_get_records_s_per_record"]
    results = {
        **generator,
        "generator_vs_bare_put_ratio": generator["generator_events_per_s"]
        / generator["bare_put_records_per_s"],
        **runner,
        "runner_in_process_overhead_us_per_record": (
            runner["runner_in_process_s_per_record"] - bare
        )
        * 1e6,
        "runner_worker_overhead_us_per_record": (runner["runner_worker_s_per_record"] - bare) * 1e6,
        "runner_in_process_vs_bare_ratio": runner["runner_in_process_s_per_record"] / bare,
        "runner_worker_vs_bare_ratio": runner["runner_worker_s_per_record"] / bare,
        "events": arguments.events,
    }
    for key, value in results.items():
        shown = value * 1e6 if key.endswith("_s_per_record") else value
        label = key.replace("_s_per_record", "_us_per_record")
        print(f"{label:<45} {shown:,.3f}" if isinstance(value, float) else f"{label:<45} {value}")
    json.dump(results, sys.stderr)
    sys.stderr.write("\n")
    command = (
        f".venv/bin/python bench/bench_ingest.py --events {arguments.events}"
        f" --repeats {arguments.repeats}"
    )
    path = write_results("ingest", results, command, arguments.results_dir)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
