"""Search benchmarks on a real local OpenSearch, each against a baseline measured in the same run.

1. Bulk indexing docs/s through the indexer's own path (``_bulk`` in bounded chunks) versus one
   index request per document, on the same node with the same kind of events.
2. Event-to-searchable latency on the whole local stack: PutRecords of one event at a steady rate,
   then the time until a search finds it (runner batching window + indexer + index refresh).
3. Index size per document: the bulk run's indices (the project's index template: one shard, no
   replica), refreshed and force-merged to one segment, as an index settles once it stops
   taking writes; their primary store bytes over their documents. Not against a baseline: the
   cost model (``clickstream cost``) sizes the domain's storage with it.

The figures go to ``bench/results/search.json`` (``bench/results.py``).

Run: ``make bench`` (or ``.venv/bin/python bench/bench_search.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch, TransportError

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.adapters.aws.opensearch import OpenSearchIndex
from clickstream.core.events import Event
from clickstream.core.search_documents import (
    bulk_actions,
    chunk_actions,
    document,
    index_name,
    index_template,
)
from clickstream.generator import generate
from clickstream.generator.producer import event_record
from clickstream_local.opensearch import start_opensearch
from clickstream_local.stack import LocalStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.results
from bench.results import RESULTS_DIRECTORY, write_results


def events(count: int, seed: int, start: datetime | None = None) -> list[Event]:
    start = start or datetime(2026, 3, 7, tzinfo=UTC)
    return list(generate("classic", seed=seed, start=start, rate=50, count=count))


def bench_bulk_versus_single(
    client: OpenSearch, bulk_docs: int, single_docs: int
) -> dict[str, float]:
    """Docs/s through the indexer's ``_bulk`` path and through one index request per document."""
    bulk_index = OpenSearchIndex(client, "bench-bulk")
    bulk_index.ensure_template()
    client.indices.put_index_template(name="bench-single", body=index_template("bench-single"))

    def bulk_run(batch: list[Event]) -> float:
        started = time.perf_counter()
        for chunk in chunk_actions(bulk_actions(batch, "bench-bulk")):
            results = bulk_index.bulk(chunk)
            assert all(result.ok for result in results)
        return len(batch) / (time.perf_counter() - started)

    def single_run(batch: list[Event]) -> float:
        started = time.perf_counter()
        for e in batch:
            client.index(index=index_name(e, "bench-single"), id=e.event_id, body=document(e))
        return len(batch) / (time.perf_counter() - started)

    single_run(events(50, seed=1))  # warm both paths and create the indices
    bulk_run(events(500, seed=2))
    bulk, single = [], []
    for repeat in range(3):
        runs = [(bulk, bulk_run, bulk_docs), (single, single_run, single_docs)]
        for results, action, count in runs if repeat % 2 == 0 else reversed(runs):
            results.append(action(events(count, seed=100 + repeat)))
    return {
        "bulk_docs_per_s": statistics.median(bulk),
        "single_docs_per_s": statistics.median(single),
    }


def index_size(client: OpenSearch, prefix: str) -> dict[str, float]:
    """Primary store bytes per document of the indices ``<prefix>-*``, merged to one segment."""
    pattern = f"{prefix}-*"
    client.indices.refresh(index=pattern)
    client.indices.forcemerge(index=pattern, max_num_segments=1, request_timeout=300)
    primaries = client.indices.stats(index=pattern, metric="docs,store")["_all"]["primaries"]
    documents = primaries["docs"]["count"]
    size = primaries["store"]["size_in_bytes"]
    return {
        "index_documents": float(documents),
        "index_bytes": float(size),
        "index_bytes_per_document": size / documents,
    }


def bench_latency(events_count: int, rate: float) -> dict[str, float]:
    """p50/p95 seconds from PutRecords to searchable, on a fresh local stack."""
    with tempfile.TemporaryDirectory() as home:
        stack = LocalStack(home=Path(home))
        state, _ = stack.up()
        try:
            template = state.template()
            stream = KinesisRecordStream(
                state.client("kinesis"), template.resource("ClickstreamStream").physical_id
            )
            search = OpenSearch(hosts=[state.opensearch_url], timeout=30)
            now = datetime.now(UTC)
            sample = events(events_count, seed=7, start=now)
            pending: dict[str, float] = {}
            latencies: list[float] = []
            interval = 1.0 / rate
            next_send = time.perf_counter()
            queue = list(sample)
            deadline = time.perf_counter() + events_count / rate + 120
            while (queue or pending) and time.perf_counter() < deadline:
                if queue and time.perf_counter() >= next_send:
                    event = queue.pop(0)
                    pending[event.event_id] = time.perf_counter()
                    stream.put_records([event_record(event)])
                    next_send += interval
                if pending:
                    found = _searchable(search, list(pending))
                    seen_at = time.perf_counter()
                    for event_id in found:
                        latencies.append(seen_at - pending.pop(event_id))
                time.sleep(0.02)
            if pending:
                raise RuntimeError(f"{len(pending)} events never became searchable")
        finally:
            stack.down(keep_lake=False)
    latencies.sort()
    return {
        "latency_p50_s": latencies[len(latencies) // 2],
        "latency_p95_s": latencies[int(len(latencies) * 0.95) - 1],
        "latency_events": float(len(latencies)),
    }


def _searchable(client: OpenSearch, event_ids: list[str]) -> list[str]:
    """Which ids a search finds now (none while the day's index is still being created)."""
    try:
        response: dict[str, Any] = client.search(
            index="clickstream-events-*",
            body={
                "size": len(event_ids),
                "_source": False,
                "query": {"ids": {"values": event_ids}},
            },
            ignore_unavailable=True,
        )
    except TransportError as error:
        if error.status_code == 503:
            return []
        raise
    return [hit["_id"] for hit in response["hits"]["hits"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bulk-docs", type=int, default=10000)
    parser.add_argument("--single-docs", type=int, default=1000)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIRECTORY, help="folder of search.json"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        node = start_opensearch(Path(folder) / "opensearch.log")
        try:
            client = OpenSearch(hosts=[node.url], timeout=60)
            throughput = bench_bulk_versus_single(
                client, arguments.bulk_docs, arguments.single_docs
            )
            size = index_size(client, "bench-bulk")
        finally:
            node.stop()
    latency = bench_latency(arguments.latency_events, arguments.rate)
    results = {
        **throughput,
        "bulk_vs_single_ratio": throughput["bulk_docs_per_s"] / throughput["single_docs_per_s"],
        **latency,
        **size,
    }
    for key, value in results.items():
        print(f"{key:<28} {value:,.3f}")
    print(results, file=sys.stderr)
    command = (
        f".venv/bin/python bench/bench_search.py --bulk-docs {arguments.bulk_docs}"
        f" --single-docs {arguments.single_docs} --latency-events {arguments.latency_events}"
        f" --rate {arguments.rate:g}"
    )
    path = write_results("search", results, command, arguments.results_dir)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
