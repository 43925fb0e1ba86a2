"""Stream-consumer benchmarks, each against a baseline measured or fixed in the same run.

1. DynamoDB write actions per 1,000 events of the window counter and of the sessionizer, on
   realistic events cut into shard batches of 500 (one shard, arrival order), against the naive
   baseline of one write per event (1,000 per 1,000 events). A counting proxy around the boto3
   client counts every write action sent: each ``Put``/``Update``/``Delete`` inside
   ``TransactWriteItems``, each request of ``BatchWriteItem`` and each standalone
   ``PutItem``/``UpdateItem``/``DeleteItem``. ``ConditionCheck`` actions (the version guards of
   transactions split in several) are reported apart, not as writes. For the window counter the
   core's writes (window state and checkpoint, through ``run_batch``) are told apart from the
   result rows the Lambda then rewrites (``materialize`` + ``DynamoWindowResults.write``).
   The proxy also counts billed request units: write units (1 per KB begun of each item,
   doubled in transactions, by DynamoDB's item size rules) and strongly consistent read units
   of what reads returned. The sessionizer's baseline is its per-key layout (one item per
   changed key with a close-time index, as before the log of commits), whose writes are counted
   from the same commits on the in-memory store: items, and write units with the index upkeep.
   Requests are the write calls sent; ``*_requests_per_1000_events`` counts every call.
2. Records/s through each core in-process, ``run_batch`` of the window counter and of the
   sessionizer, with in-memory fake state and checkpoint stores and with the DynamoDB stores on
   a local moto server: same events, same batches, and the ratio fake/moto. Only ``run_batch`` is
   timed. The sessionizer's sinks are in memory in both runs, so the ratio is the cost of its
   DynamoDB state alone; it runs on the same prefix as in 1, both sides. Fake-store figures are
   medians of ``--repeats`` runs; each moto run is one pass on fresh tables.
3. Event-to-result latency on the whole local stack (2 shards, window counter Lambda behind the
   event-source runner, 1 s batching window). Events are put at a steady rate, each stamped with
   the current time when it is put (a PutRecords call every tick carries the events due). For
   every (15-s window, url) the bench keeps the set of custids sent so far; an event whose custid
   is new in its (window, url) raises that row's expected unique-users value to ``n``. A poller
   queries the results table every ``--poll`` seconds, and such an event counts as seen at the
   first poll (time taken when the answer arrived) where its row's value is at least ``n``.
   Latency = that time - the time just before its PutRecords call; it includes up to one poll
   interval. Events whose custid was already counted in their row cannot change the value and are
   not measured. As shards are processed independently, a newer user from the other shard can
   reach ``n`` first, so this is a proxy, not an exact per-event observation. A warm-up (an event
   on every shard, in a window before the measured ones) is seen before the measurement starts,
   so worker start-up is not counted. Every consumer of the template runs meanwhile (search
   indexer, sessionizer, Firehose) on the same moto server and the same cores.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_stream.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.first_occurrences import registry_puts
from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.adapters.aws.session_state import DynamoSessionStateStore
from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.adapters.aws.window_state import DynamoWindowStateStore
from clickstream.consumers.sessionizer import SessionizerConfig
from clickstream.consumers.sessionizer import run_batch as sessionize_batch
from clickstream.consumers.window_counter import materialize
from clickstream.consumers.window_counter import run_batch as count_batch
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord, ShardRecord, parse_records
from clickstream.core.session_rules import SessionRules
from clickstream.core.session_state import KeyChange
from clickstream.core.window_counting import ShardBatchResult
from clickstream.core.windows import UNIQUE_USERS, window_start
from clickstream.generator import event_record, generate
from clickstream.generator.producer import MAX_RECORDS_PER_CALL
from clickstream.ports import (
    CheckpointStore,
    SessionizerPorts,
    WindowCounterPorts,
    WindowStateStore,
)
from clickstream.ports import SessionStateStore as SessionStore
from clickstream_local.aws import local_client
from clickstream_local.cfn import Template
from clickstream_local.moto_server import start_moto, stop_process
from clickstream_local.stack import LocalStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fakes live in tests.support
from bench.results import write_results
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

SHARD = "shardId-000000000000"
LATENESS = timedelta(seconds=30)
NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
BASELINE_WRITES_PER_1000 = 1000.0
WINDOW_CONSUMER = "window-counter"
SESSION_CONSUMER = "sessionizer"
_WRITE_OPERATIONS = {"put_item", "update_item", "delete_item"}
_TRANSACT_WRITES = ("Put", "Update", "Delete")


# --- Counting proxy ---------------------------------------------------------------------------


def attribute_size(name: str, value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute (name + value), per its item size rules."""
    return len(name.encode("utf-8")) + value_size(value)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value: strings and binaries by length, numbers by digits."""
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "B":
        return len(bytes(data))
    if kind == "N":
        digits = len(str(data).lstrip("-").replace(".", "").strip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + attribute_size(k, v) for k, v in data.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: element}) for element in data)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes of one item, as DynamoDB bills it."""
    return sum(attribute_size(name, value) for name, value in item.items())


def write_units(item: Mapping[str, Any], transactional: bool) -> int:
    """Write request units of one item written: 1 per KB begun, doubled in a transaction."""
    return max(1, math.ceil(item_size(item) / 1024)) * (2 if transactional else 1)


def read_units(items: Iterable[Mapping[str, Any]], per_item: bool) -> float:
    """Strongly consistent read units: 4 KB units per item (GetItem, BatchGetItem) or over the
    items' total (Query), one at least per request."""
    sizes = [item_size(item) for item in items]
    if per_item:
        return float(sum(max(1, math.ceil(size / 4096)) for size in sizes))
    return float(max(1, math.ceil(sum(sizes) / 4096)))


@dataclass
class WriteCounts:
    """Write actions and billed request units sent, per table; ConditionCheck actions apart.

    Read units are counted on the items returned (a Query with a projection is billed on whole
    items, so projected reads are undercounted; only a cold store's first Query projects)."""

    writes: Counter[str] = field(default_factory=Counter)
    units: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    condition_checks: int = 0
    requests: Counter[frozenset[str]] = field(default_factory=Counter)

    def requests_of(self, table: str) -> int:
        """Write requests (calls) that wrote to ``table``."""
        return sum(n for tables, n in self.requests.items() if table in tables)

    def record(self, operation: str, arguments: dict[str, Any]) -> None:
        """Count the write actions and write units of one call."""
        tables: set[str] = set()
        if operation == "transact_write_items":
            for action in arguments["TransactItems"]:
                for kind in _TRANSACT_WRITES:
                    if kind in action:
                        table = action[kind]["TableName"]
                        self.writes[table] += 1
                        self.units[table] += write_units(
                            action[kind].get("Item") or action[kind]["Key"], transactional=True
                        )
                        tables.add(table)
                if "ConditionCheck" in action:
                    self.condition_checks += 1
                    table = action["ConditionCheck"]["TableName"]
                    self.reads[table] += 2  # a transactional read of the checkpoint
        elif operation == "batch_write_item":
            for table, requests in arguments["RequestItems"].items():
                self.writes[table] += len(requests)
                for request in requests:
                    written = request.get("PutRequest", {}).get("Item")
                    key = request.get("DeleteRequest", {}).get("Key", {})
                    self.units[table] += write_units(written or key, transactional=False)
                tables.add(table)
        elif operation in _WRITE_OPERATIONS:
            self.writes[arguments["TableName"]] += 1
            written = arguments.get("Item") or arguments["Key"]
            self.units[arguments["TableName"]] += write_units(written, transactional=False)
            tables.add(arguments["TableName"])
        if tables:
            self.requests[frozenset(tables)] += 1
        for table in tables or _tables_read(operation, arguments):
            self.calls[table] += 1

    def record_response(self, operation: str, arguments: dict[str, Any], response: Any) -> None:
        """Count the read units of one read call from what it returned."""
        if operation in ("query", "scan"):
            self.reads[arguments["TableName"]] += read_units(response["Items"], per_item=False)
        elif operation == "get_item":
            self.reads[arguments["TableName"]] += read_units([response.get("Item", {})], True)
        elif operation == "batch_get_item":
            for table, items in response.get("Responses", {}).items():
                self.reads[table] += read_units(items, per_item=True)


def _tables_read(operation: str, arguments: Mapping[str, Any]) -> set[str]:
    if operation == "batch_get_item":
        return set(arguments["RequestItems"])
    if operation in ("query", "scan", "get_item"):
        return {arguments["TableName"]}
    return set()


class CountingClient:
    """A boto3 DynamoDB client that counts the write actions it sends, and otherwise passes on."""

    def __init__(self, client: Any, counts: WriteCounts) -> None:
        self._client = client
        self.counts = counts

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts.record(name, kwargs)
            response = target(*args, **kwargs)
            self.counts.record_response(name, kwargs, response)
            return response

        return call


# --- The per-key layout, the sessionizer's baseline -------------------------------------------


def per_key_item(shard_id: str, change: KeyChange) -> dict[str, Any]:
    """The item the per-key layout stored for a key: its state, close time and index keys."""
    assert change.after is not None and change.close_at_after is not None
    custid, device = change.key
    return {
        "pk": {"S": f"SESSION#{SESSION_CONSUMER}#{shard_id}"},
        "sk": {"S": f"{custid}#{device}"},
        "custid": {"N": str(custid)},
        "device": {"S": device},
        "state": {"S": change.after.to_json()},
        "close_at": {"N": str(change.close_at_after)},
        "open_pk": {"S": f"OPEN#{SESSION_CONSUMER}#{shard_id}"},
        "open_sk": {"S": f"{change.close_at_after:020d}#{custid}#{device}"},
    }


class PerKeyLayout(MemorySessionState):
    """The in-memory store, counting what the per-key layout wrote for the same commits: one
    item per changed key (put or delete) plus its close-time index upkeep, one per registry
    bucket and the checkpoint, all in transactions."""

    def __init__(self, checkpoints: MemoryCheckpoints) -> None:
        super().__init__(checkpoints)
        self.items = 0
        self.units = 0

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        """Count the per-key layout's writes of this commit, then commit."""
        registry = registry_puts(
            "bench", consumer, shard_id, checkpoint.version, registrations or {}
        )
        self.items += 1 + len(registry) + len(changes)
        self.units += 2  # the checkpoint put (under 1 KB), in the transaction
        self.units += sum(write_units(put["Put"]["Item"], transactional=True) for put in registry)
        for change in changes:
            if change.after is None:
                self.units += 2 + 1  # the delete, and its index entry's
                continue
            self.units += write_units(per_key_item(shard_id, change), transactional=True)
            if change.close_at_before is None:
                self.units += 1  # a new index entry
            elif change.close_at_before != change.close_at_after:
                self.units += 2  # the index entry moves: a delete and a put
        super().commit(consumer, shard_id, changes, checkpoint, expected_version, registrations)


# --- 1 and 2: writes per event and in-process throughput --------------------------------------


def create_table(client: Any, name: str, logical_id: str) -> str:
    """The table as ``template.yaml`` declares ``logical_id`` (keys and indexes), on demand."""
    template = Template.load(Path(__file__).resolve().parents[1] / "template.yaml")
    declared = template.resource(logical_id).properties
    indexes = {k: v for k, v in declared.items() if k == "GlobalSecondaryIndexes"}
    client.create_table(
        TableName=name,
        KeySchema=declared["KeySchema"],
        AttributeDefinitions=declared["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        **indexes,
    )
    return name


def batches(events: Sequence[Event], size: int) -> list[list[Event]]:
    """The events in arrival order, cut into shard batches of ``size``."""
    return [list(events[i : i + size]) for i in range(0, len(events), size)]


def shard_records(batch: Sequence[Event], first: int) -> list[ParsedRecord]:
    """Parsed shard records (as the inbound adapter gives them), sequence numbers from ``first``."""
    return parse_records(
        ShardRecord(SHARD, str(first + n), e.to_json_line(), NOW) for n, e in enumerate(batch)
    )


def run_window_counter(
    cut: Sequence[Sequence[Event]],
    checkpoints: CheckpointStore,
    state: WindowStateStore,
    after_batch: Callable[[ShardBatchResult], None] = lambda _: None,
) -> float:
    """Seconds spent in ``run_batch`` over every batch (``after_batch`` is not timed)."""
    ports = WindowCounterPorts(
        checkpoints=checkpoints,
        state=state,
        results=MemoryWindowResults(),
        quarantine=MemoryQuarantine(),
        shards=FixedShards([SHARD]),
    )
    spent, first = 0.0, 1000
    for batch in cut:
        records = shard_records(batch, first)
        first += len(batch)
        started = time.perf_counter()
        result = count_batch(
            records, SHARD, WINDOW_CONSUMER, ports, allowed_lateness=LATENESS, now=NOW
        ).result
        spent += time.perf_counter() - started
        after_batch(result)
    return spent


def run_sessionizer(
    cut: Sequence[Sequence[Event]], checkpoints: CheckpointStore, state: SessionStore
) -> float:
    """Seconds spent in the sessionizer's ``run_batch`` over every batch."""
    ports = SessionizerPorts(checkpoints, state, MemoryMinuteSink(), MemoryGapSink())
    config = SessionizerConfig(SessionRules(LATENESS))
    spent, first = 0.0, 1000
    for batch in cut:
        records = shard_records(batch, first)
        first += len(batch)
        started = time.perf_counter()
        sessionize_batch(records, SHARD, SESSION_CONSUMER, ports, config, now=NOW)
        spent += time.perf_counter() - started
    return spent


def bench_window_counter(
    endpoint: str, events: Sequence[Event], batch_size: int, repeats: int
) -> dict[str, float]:
    """Window counter: write actions per 1,000 events and records/s, fake versus moto."""
    cut = batches(events, batch_size)
    per_thousand = 1000.0 / len(events)
    fake = []
    for _ in range(repeats):
        checkpoints = MemoryCheckpoints()
        fake.append(run_window_counter(cut, checkpoints, MemoryWindowState(checkpoints)))
    counts = WriteCounts()
    client = CountingClient(local_client("dynamodb", endpoint), counts)
    state_table = create_table(client, "bench-window-state", "WindowStateTable")
    results_table = create_table(client, "bench-window-results", "WindowResultsTable")
    checkpoints = DynamoCheckpointStore(client, state_table)
    state = DynamoWindowStateStore(client, state_table)
    rows = DynamoWindowResults(client, results_table)

    def rewrite_rows(result: ShardBatchResult) -> None:
        rows.write(materialize(state, checkpoints, WINDOW_CONSUMER, [SHARD], result.deltas.keys()))

    moto = run_window_counter(cut, checkpoints, state, rewrite_rows)
    writes = counts.writes[state_table] * per_thousand
    fake_rate, moto_rate = len(events) / statistics.median(fake), len(events) / moto
    return {
        "window_writes_per_1000_events": writes,
        "window_state_write_units_per_1000_events": counts.units[state_table] * per_thousand,
        "window_result_write_units_per_1000_events": counts.units[results_table] * per_thousand,
        "window_read_units_per_1000_events": (
            counts.reads[state_table] + counts.reads[results_table]
        )
        * per_thousand,
        "window_requests_per_1000_events": (counts.calls[state_table] + counts.calls[results_table])
        * per_thousand,
        "window_writes_vs_one_per_event_ratio": writes / BASELINE_WRITES_PER_1000,
        "window_write_requests_per_1000_events": counts.requests_of(state_table) * per_thousand,
        "window_condition_checks_per_1000_events": counts.condition_checks * per_thousand,
        "window_result_row_writes_per_1000_events": counts.writes[results_table] * per_thousand,
        "window_fake_records_per_s": fake_rate,
        "window_moto_records_per_s": moto_rate,
        "window_fake_vs_moto_ratio": fake_rate / moto_rate,
    }


def bench_sessionizer(
    endpoint: str,
    events: Sequence[Event],
    moto_events: int,
    batch_size: int,
    repeats: int,
) -> dict[str, float]:
    """Sessionizer: write actions per 1,000 events and records/s, fake versus moto.

    The moto run takes the first ``moto_events`` events only: moto copies the whole table for
    every action of a transaction, so a commit of ~100 actions on a table of thousands of open
    states takes seconds there. The fake runs once on the same prefix (for the ratio) and once
    on every event, counting the actions the DynamoDB adapter builds for each commit
    (``change_actions`` + the checkpoint put), to show whether the prefix is representative.
    """
    prefix = batches(events[:moto_events], batch_size)
    per_thousand = 1000.0 / moto_events
    fake = []
    for _ in range(repeats):
        checkpoints = MemoryCheckpoints()
        fake.append(run_sessionizer(prefix, checkpoints, MemorySessionState(checkpoints)))
    checkpoints = MemoryCheckpoints()
    per_key = PerKeyLayout(checkpoints)
    run_sessionizer(prefix, checkpoints, per_key)

    counts = WriteCounts()
    client = CountingClient(local_client("dynamodb", endpoint), counts)
    table = create_table(client, "bench-sessions", "SessionStateTable")
    moto = run_sessionizer(
        prefix, DynamoCheckpointStore(client, table), DynamoSessionStateStore(client, table)
    )
    writes = counts.writes[table] * per_thousand
    fake_rate, moto_rate = moto_events / statistics.median(fake), moto_events / moto
    return {
        "session_writes_per_1000_events": writes,
        "session_writes_vs_one_per_event_ratio": writes / BASELINE_WRITES_PER_1000,
        "session_write_units_per_1000_events": counts.units[table] * per_thousand,
        "session_read_units_per_1000_events": counts.reads[table] * per_thousand,
        "session_requests_per_1000_events": counts.calls[table] * per_thousand,
        "session_writes_per_1000_events_per_key_layout": per_key.items * per_thousand,
        "session_write_units_per_1000_events_per_key_layout": per_key.units * per_thousand,
        "session_write_requests_per_1000_events": counts.requests_of(table) * per_thousand,
        "session_condition_checks_per_1000_events": counts.condition_checks * per_thousand,
        "session_fake_records_per_s": fake_rate,
        "session_moto_records_per_s": moto_rate,
        "session_fake_vs_moto_ratio": fake_rate / moto_rate,
        "session_moto_events": float(moto_events),
    }


# --- 3: event-to-result latency on the local stack --------------------------------------------


@dataclass
class Pending:
    """An event that raised its row's expected value, waiting to be seen."""

    row: tuple[datetime, str]
    expected: int
    sent_at: float


@dataclass
class LatencyTracker:
    """Expected unique-users values per (15-s window, url) and the events waiting on them."""

    users: dict[tuple[datetime, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    pending: list[Pending] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    last_sent_at: float = 0.0

    def sent(self, events: Iterable[Event], sent_at: float, measured: bool = True) -> None:
        """Note events put at ``sent_at``; those new to their row wait to be seen."""
        self.last_sent_at = sent_at
        for event in events:
            row = (window_start(event.trans_timestamp, 15), event.url)
            if event.custid in self.users[row]:
                continue
            self.users[row].add(event.custid)
            if measured:
                self.pending.append(Pending(row, len(self.users[row]), sent_at))

    def poll(self, results: DynamoWindowResults) -> None:
        """Query the results table once and settle the events it now shows."""
        values = {(r.window_start, r.key): r.value for r in results.rows(UNIQUE_USERS, 15)}
        seen_at = time.perf_counter()
        waiting: list[Pending] = []
        for item in self.pending:
            if values.get(item.row, 0) >= item.expected:
                self.latencies.append(seen_at - item.sent_at)
            else:
                waiting.append(item)
        self.pending = waiting


def shard_of(partition_key: str, ranges: Sequence[tuple[int, int, str]]) -> str:
    """The shard Kinesis puts a partition key in (MD5 of the key in the shard's hash range)."""
    point = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
    return next(shard for low, high, shard in ranges if low <= point <= high)


def warm_up_events(kinesis: Any, stream: str, moment: datetime, seed: int) -> list[Event]:
    """A few events at ``moment`` with at least one on every shard."""
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    ranges = [
        (
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
            s["ShardId"],
        )
        for s in shards
    ]
    chosen: dict[str, Event] = {}
    for event in generate("realistic", seed=seed, start=moment, rate=50, count=500):
        chosen.setdefault(shard_of(event.partition_key, ranges), event)
        if len(chosen) == len(ranges):
            break
    return [replace(event, trans_timestamp=moment) for event in chosen.values()]


def wait_seen(tracker: LatencyTracker, results: DynamoWindowResults, timeout: float) -> None:
    """Poll until nothing is pending, or raise after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while tracker.pending:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{len(tracker.pending)} events never showed in the results")
        tracker.poll(results)
        time.sleep(0.1)


def bench_latency(seconds: float, rate: float, poll: float, seed: int) -> dict[str, float]:
    """p50/p95 seconds from PutRecords to a results row that includes the event."""
    with tempfile.TemporaryDirectory() as home:
        stack = LocalStack(home=Path(home))
        state, _ = stack.up()
        try:
            template = state.template()
            kinesis = state.client("kinesis")
            stream_name = template.resource("ClickstreamStream").physical_id
            stream = KinesisRecordStream(kinesis, stream_name)
            results = DynamoWindowResults(
                state.client("dynamodb"), template.resource("WindowResultsTable").physical_id
            )
            warm = LatencyTracker()
            warm_events = warm_up_events(
                kinesis, stream_name, datetime.now(UTC) - timedelta(seconds=16), seed
            )
            warm.sent(warm_events, time.perf_counter())
            stream.put_records([event_record(event) for event in warm_events])
            wait_seen(warm, results, timeout=120)

            tracker = LatencyTracker()
            count = int(seconds * rate)
            queue = list(
                generate("realistic", seed=seed, start=datetime.now(UTC), rate=rate, count=count)
            )
            queue.reverse()
            started = time.perf_counter()
            last_poll = 0.0
            sent = 0
            while queue:
                due = min(
                    len(queue),
                    int((time.perf_counter() - started) * rate) + 1 - sent,
                    MAX_RECORDS_PER_CALL,
                )
                if due > 0:
                    stamped = [
                        replace(queue.pop(), trans_timestamp=datetime.now(UTC)) for _ in range(due)
                    ]
                    sent_at = time.perf_counter()
                    outcomes = stream.put_records([event_record(e) for e in stamped])
                    if not all(outcome.accepted for outcome in outcomes):
                        raise RuntimeError("the stream refused records")
                    tracker.sent(stamped, sent_at)
                    sent += due
                if time.perf_counter() - last_poll >= poll:
                    last_poll = time.perf_counter()
                    tracker.poll(results)
                time.sleep(0.01)
            send_seconds = tracker.last_sent_at - started
            wait_seen(tracker, results, timeout=120)
        finally:
            stack.down(keep_lake=False)
    latencies = sorted(tracker.latencies)
    return {
        "latency_p50_s": statistics.quantiles(latencies, n=100)[49],
        "latency_p95_s": statistics.quantiles(latencies, n=100)[94],
        "latency_max_s": latencies[-1],
        "latency_measured_events": float(len(latencies)),
        "latency_events_sent": float(count),
        "latency_achieved_rate_per_s": (count - 1) / send_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--event-rate", type=float, default=200.0, help="event-time rate")
    parser.add_argument(
        "--session-events", type=int, default=20000, help="events of the sessionizer moto run"
    )
    parser.add_argument("--repeats", type=int, default=3, help="fake-store runs (median)")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s put on the stack")
    parser.add_argument("--poll", type=float, default=0.1, help="results poll interval (s)")
    arguments = parser.parse_args()
    events = list(
        generate(
            "realistic", seed=11, start=START, rate=arguments.event_rate, count=arguments.events
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        process, endpoint = start_moto(Path(folder) / "moto.log")
        try:
            window = bench_window_counter(endpoint, events, arguments.batch, arguments.repeats)
            sessions = bench_sessionizer(
                endpoint, events, arguments.session_events, arguments.batch, arguments.repeats
            )
        finally:
            stop_process(process.pid)
    latency = bench_latency(arguments.latency_seconds, arguments.rate, arguments.poll, seed=23)
    results = {
        **window,
        **sessions,
        **latency,
        "events": float(arguments.events),
        "batch_size": float(arguments.batch),
        "baseline_writes_per_1000_events": BASELINE_WRITES_PER_1000,
    }
    for key, value in results.items():
        print(f"{key:<55} {value:,.3f}")
    write_results("stream", results, "make bench (bench/bench_stream.py)")
    json.dump(results, sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()
