"""Window state on a real moto server: exactly-once in effect, merged shards, result rows."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.adapters.aws.window_state import DynamoWindowStateStore, window_updates
from clickstream.consumers.window_counter import CONSUMER as CONSUMER_OF_HANDLER
from clickstream.consumers.window_counter import handle_batch, materialize, run_batch
from clickstream.core.checkpoints import CheckpointConflict
from clickstream.core.events import Event
from clickstream.core.first_occurrences import event_digest
from clickstream.core.records import ParsedRecord, ShardRecord, parse_records
from clickstream.core.window_counting import ResultRow, ShardBatchResult, process_shard_batch
from clickstream.core.windows import (
    TOP_SOURCES,
    UNIQUE_USERS,
    WindowKey,
    rank_sources,
    window_start,
)
from clickstream.ports import WindowCounterPorts
from clickstream.settings import WindowCounterSettings
from clickstream_local.aws import local_client
from tests.factories import at, make_event
from tests.support.fakes import FixedShards, MemoryQuarantine

pytestmark = pytest.mark.integration

CONSUMER = "windows"
NOW = at("2026-03-07T15:00:00")
LATENESS = timedelta(minutes=10)
URLS = ("beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout")
SOURCES = ("google", "facebook.com", "Alexa", "amazon.com", "email_CampanhaBeer")


@dataclass(frozen=True)
class Stack:
    """The clients and stores of one test's tables."""

    client: Any
    table: str
    checkpoints: DynamoCheckpointStore
    state: DynamoWindowStateStore
    results: DynamoWindowResults


def create_table(client: Any, name: str) -> None:
    """A table with string ``pk``/``sk`` keys, on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def stack(moto_endpoint: str, stack_name: str) -> Stack:
    client = local_client("dynamodb", moto_endpoint)
    state, results = f"{stack_name}-window-state", f"{stack_name}-window-results"
    create_table(client, state)
    create_table(client, results)
    return Stack(
        client=client,
        table=state,
        checkpoints=DynamoCheckpointStore(client, state),
        state=DynamoWindowStateStore(client, state, retention_days=2),
        results=DynamoWindowResults(client, results),
    )


def shard_records(
    events: list[Event], first: int = 1, shard_id: str = "shardId-0"
) -> list[ParsedRecord]:
    return parse_records(
        ShardRecord(shard_id, str(first + n), event.to_json_line(), NOW)
        for n, event in enumerate(events)
    )


def run(stack: Stack, batch: list[ParsedRecord], shard_id: str = "shardId-0") -> ShardBatchResult:
    ports = WindowCounterPorts(
        checkpoints=stack.checkpoints,
        state=stack.state,
        results=stack.results,
        quarantine=MemoryQuarantine(),
        shards=FixedShards([shard_id]),
    )
    commit = run_batch(batch, shard_id, CONSUMER, ports, allowed_lateness=LATENESS, now=NOW)
    assert commit.failure is None, commit.failure
    return commit.result


def snapshot(stack: Stack) -> list[dict[str, Any]]:
    """Every item of the state table, in key order."""
    items = stack.client.scan(TableName=stack.table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def sample_events(count: int, seed: int) -> list[Event]:
    """Seeded events over three minutes, in time order, a few users on several pages."""
    rng = random.Random(seed)
    start = at("2026-03-07T14:03:00")
    moments = sorted(
        start + timedelta(microseconds=rng.randrange(180_000_000)) for _ in range(count)
    )
    return [
        make_event(
            moment,
            custid=rng.randint(1, 12),
            url=rng.choice(URLS),
            trafficfrom=rng.choice(SOURCES),
        )
        for moment in moments
    ]


def test_a_batch_applied_twice_changes_nothing(stack: Stack) -> None:
    # GIVEN a batch committed once
    batch = shard_records(sample_events(30, seed=1))
    first = run(stack, batch)
    after_first = snapshot(stack)
    # WHEN Lambda redelivers it after the success
    again = run(stack, batch)
    # THEN nothing was committed and no item changed
    assert not again.has_new_records
    assert snapshot(stack) == after_first
    # AND a stale commit of the same result is refused without touching the state
    with pytest.raises(CheckpointConflict):
        stack.state.apply(first)
    assert snapshot(stack) == after_first


def test_a_crash_before_the_checkpoint_then_a_retry_equals_one_clean_application(
    stack: Stack, stack_name: str
) -> None:
    # GIVEN a batch whose state updates landed but whose checkpoint did not (a crash)
    events = sample_events(40, seed=2)
    batch = shard_records(events)
    crashed = stack.checkpoints.load(CONSUMER, "shardId-0")
    result = process_shard_batch(batch, crashed, allowed_lateness=LATENESS, now=NOW)
    for update in window_updates(stack.table, result, 2):
        stack.client.update_item(**update["Update"])
    # WHEN the batch is retried in full
    run(stack, batch)
    # THEN the state equals one clean application on a fresh table
    clean_table = f"{stack_name}-clean"
    create_table(stack.client, clean_table)
    clean = Stack(
        client=stack.client,
        table=clean_table,
        checkpoints=DynamoCheckpointStore(stack.client, clean_table),
        state=DynamoWindowStateStore(stack.client, clean_table, retention_days=2),
        results=stack.results,
    )
    run(clean, batch)
    assert snapshot(stack) == snapshot(clean)


def expected_rows(
    events: list[Event],
) -> dict[tuple[str, int, datetime, str], tuple[int, int | None]]:
    """The window rules computed directly: distinct custids per url, distinct events per source.

    (docs/architecture.md, Stream semantics: Windows)
    """
    unique: dict[tuple[int, datetime, str], set[int]] = defaultdict(set)
    sources: dict[datetime, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        for size in (15, 60):
            unique[(size, window_start(event.trans_timestamp, size), event.url)].add(event.custid)
        minute = window_start(event.trans_timestamp, 60)
        sources[minute][event.trafficfrom].add(event.event_id)
    rows: dict[tuple[str, int, datetime, str], tuple[int, int | None]] = {
        (UNIQUE_USERS, size, start, url): (len(custids), None)
        for (size, start, url), custids in unique.items()
    }
    for minute, by_source in sources.items():
        counts = {source: len(ids) for source, ids in by_source.items()}
        for rank, source, count in rank_sources(counts):
            rows[(TOP_SOURCES, 60, minute, source)] = (count, rank)
    return rows


def test_two_shards_with_duplicates_and_redeliveries_give_the_direct_computation(
    stack: Stack,
) -> None:
    # GIVEN events routed to two shards by custid, some sent twice, in batches of 7
    events = sample_events(120, seed=3)
    shards: dict[str, list[Event]] = {"shardId-0": [], "shardId-1": []}
    for n, event in enumerate(events):
        stream = shards[f"shardId-{event.custid % 2}"]
        stream.append(event)
        if n % 9 == 0:
            stream.append(event)
    touched: list[WindowKey] = []
    # WHEN each shard's batches are processed, every third batch delivered twice
    for shard_id, stream in shards.items():
        records = shard_records(stream, shard_id=shard_id)
        for n, offset in enumerate(range(0, len(records), 7)):
            batch = records[offset : offset + 7]
            touched.extend(run(stack, batch, shard_id).deltas)
            if n % 3 == 0:
                run(stack, batch, shard_id)
    rows = materialize(stack.state, stack.checkpoints, CONSUMER, list(shards), touched)
    stack.results.write(rows)
    # THEN the rows equal the direct computation, none late, none final yet
    got = {(r.metric, r.size_seconds, r.window_start, r.key): (r.value, r.rank) for r in rows}
    assert got == expected_rows(events)
    assert not any(row.late_events or row.final for row in rows)
    # AND the results table holds the same rows, sorted by window then key
    stored = stack.results.rows(TOP_SOURCES, 60)
    assert sorted(stored, key=sort_key) == sorted(
        (r for r in rows if r.metric == TOP_SOURCES), key=sort_key
    )
    assert [r.window_start for r in stored] == sorted(r.window_start for r in stored)


def sort_key(row: ResultRow) -> tuple[datetime, str]:
    return (row.window_start, row.key)


def test_late_events_are_reported_and_final_follows_the_slowest_shard(stack: Stack) -> None:
    # GIVEN shard 0 far ahead and shard 1 at the start of 14:03
    early = make_event(at("2026-03-07T14:03:01"), custid=2, trafficfrom="google")
    run(stack, shard_records([early], shard_id="shardId-1"), "shardId-1")
    run(stack, shard_records([make_event(at("2026-03-07T14:30:00"), custid=1)]), "shardId-0")
    # WHEN shard 0 then receives an event of 14:03, and a late copy of shard 1's event
    late = make_event(at("2026-03-07T14:03:02"), custid=1, trafficfrom="google")
    result = run(stack, shard_records([late, early], first=2), "shardId-0")
    rows = materialize(
        stack.state, stack.checkpoints, CONSUMER, ["shardId-0", "shardId-1"], result.deltas
    )
    # THEN only the genuinely late event is reported; the copy is a duplicate
    google = next(r for r in rows if r.metric == TOP_SOURCES and r.key == "google")
    assert (google.value, google.late_events, google.rank) == (1, 1, 1)
    assert result.late == 2
    # AND the window is not final while shard 1 lags
    assert not google.final


def test_a_batch_touching_more_than_99_window_keys_commits(stack: Stack) -> None:
    # GIVEN one minute with 50 pages and 50 sources: 150 (window, key) items
    minute = at("2026-03-07T14:04:00")
    events = [
        make_event(
            minute + timedelta(seconds=n % 15),
            custid=n + 1,
            url=f"page_{n:02}",
            trafficfrom=f"source_{n:02}",
        )
        for n in range(50)
    ]
    batch = shard_records(events)
    # WHEN it commits, and is redelivered
    result = run(stack, batch)
    assert len(result.deltas) == 150
    state_after = snapshot(stack)
    run(stack, batch)
    # THEN every key is stored once, and the redelivery changed nothing
    sources = stack.state.read_window(TOP_SOURCES, 60, minute)
    assert len(sources) == 50 and all(v.value == 1 for v in sources.values())
    assert len(stack.state.read_window(UNIQUE_USERS, 15, minute)) == 50
    assert stack.checkpoints.load(CONSUMER, "shardId-0") == result.checkpoint
    assert snapshot(stack) == state_after
    # AND its 150 result rows are written in batches
    rows = materialize(stack.state, stack.checkpoints, CONSUMER, ["shardId-0"], result.deltas)
    stack.results.write(rows)
    assert len(stack.results.rows(UNIQUE_USERS, 60)) == 50
    assert [r.rank for r in stack.results.rows(TOP_SOURCES, 60)] == list(range(1, 51))


def test_a_row_computed_from_older_state_never_replaces_a_newer_one(stack: Stack) -> None:
    # GIVEN shard 0's batch committed and its rows computed, but not written yet
    minute = at("2026-03-07T14:04:00")
    first = run(stack, shard_records([make_event(minute, custid=1, url="beer_cart")]), "shardId-0")
    shards = ["shardId-0", "shardId-1"]
    older = materialize(stack.state, stack.checkpoints, CONSUMER, shards, first.deltas)
    # AND meanwhile shard 1 committed another user of the same page and wrote its rows
    second = run(
        stack,
        shard_records([make_event(minute + timedelta(seconds=5), custid=2, url="beer_cart")]),
        "shardId-1",
    )
    newer = materialize(stack.state, stack.checkpoints, CONSUMER, shards, second.deltas)
    assert stack.results.write(newer) == len(newer)
    # WHEN shard 0's rows arrive last
    written = stack.results.write(older)
    # THEN none of them replaced a newer row: the page still counts both users
    assert written == 0
    assert max(row.state_version for row in older) < min(row.state_version for row in newer)
    cart = [row for row in stack.results.rows(UNIQUE_USERS, 60) if row.key == "beer_cart"]
    assert [(row.value, row.state_version) for row in cart] == [(2, newer[0].state_version)]
    # AND rows of the same version are rewritten (a redelivered batch rewrites its rows)
    assert stack.results.write(newer) == len(newer)


def test_a_repeat_with_other_fields_in_a_later_batch_counts_once(stack: Stack) -> None:
    # GIVEN an event committed in one batch
    minute = at("2026-03-07T14:04:00")
    first = make_event(minute + timedelta(seconds=3), custid=1, url="beer_cart")
    run(stack, shard_records([first]))
    # WHEN a later batch repeats its event_id with another url, source and device
    repeat = replace(first, url="wine_cart", trafficfrom="bing", device="app_mobile")
    other = make_event(minute + timedelta(seconds=4), custid=2, url="wine_cart")
    result = run(stack, shard_records([repeat, other], first=2))
    # THEN the repeat is a duplicate: its first occurrence decides every window
    assert (result.valid, result.duplicates, result.distinct) == (2, 1, 1)
    users = stack.state.read_window(UNIQUE_USERS, 60, minute)
    sources = stack.state.read_window(TOP_SOURCES, 60, minute)
    assert {key: value.value for key, value in users.items()} == {"beer_cart": 1, "wine_cart": 1}
    assert {key: value.value for key, value in sources.items()} == {"google": 2}
    # AND the registry holds each event once, in its 15-second bucket
    bucket = window_start(first.trans_timestamp, 15)
    registered = stack.state.registered("shardId-0", [bucket])
    assert registered == {bucket: {event_digest(first.event_id), event_digest(other.event_id)}}


def test_a_batch_over_many_buckets_commits_in_parts_with_its_registrations(stack: Stack) -> None:
    # GIVEN one batch whose 80 events fall in 80 buckets of 15 seconds, then its repeats
    start = at("2026-03-07T14:00:00")
    events = [
        make_event(start + timedelta(seconds=15 * n), custid=n + 1, url=f"page_{n % 3}")
        for n in range(80)
    ]
    repeats = [replace(event, url="elsewhere", trafficfrom="bing") for event in events]
    records = shard_records(events + repeats)
    ports = WindowCounterPorts(
        checkpoints=stack.checkpoints,
        state=stack.state,
        results=stack.results,
        quarantine=MemoryQuarantine(),
        shards=FixedShards(["shardId-0"]),
    )
    settings = WindowCounterSettings.from_env(
        {
            "STATE_TABLE": stack.table,
            "RESULTS_TABLE": "results",
            "STREAM_NAME": "stream",
            "QUARANTINE_BUCKET": "lake",
            "ALLOWED_LATENESS_SECONDS": str(int(LATENESS.total_seconds()) * 3),
        }
    )
    # WHEN it is handled
    report = handle_batch({"shardId-0": records}, settings=settings, ports=ports, now=NOW)
    # THEN every record committed, in parts of at most 32 buckets, and each repeat is a duplicate
    assert report.response() == {"batchItemFailures": []}
    assert (report.valid, report.duplicates, report.failed) == (160, 80, 0)
    assert stack.checkpoints.load(CONSUMER_OF_HANDLER, "shardId-0").sequence_number == "160"
    buckets = [window_start(event.trans_timestamp, 15) for event in events]
    registered = stack.state.registered("shardId-0", buckets)
    assert sum(len(digests) for digests in registered.values()) == 80
    registry_items = [item for item in snapshot(stack) if item["pk"]["S"].startswith("REGISTRY#")]
    assert len(registry_items) == 80
    assert len({item["sk"]["S"] for item in registry_items}) == 3  # three commits: 32 + 32 + 16
    # AND no source but the first occurrences' is counted
    sources = stack.state.read_window(TOP_SOURCES, 60, start)
    assert set(sources) == {"google"}
