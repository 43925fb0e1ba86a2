"""Window partials past the exact-set limit on a real moto server: folds, merges, item sizes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.adapters.aws.window_state import (
    MAX_ITEM_BYTES,
    DynamoWindowStateStore,
    StoredPartial,
    item_size,
    rewrite_update,
    window_updates,
)
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord, ShardRecord, parse_records
from clickstream.core.sketch import ERROR_BOUND, HyperLogLog
from clickstream.core.window_counting import (
    ShardBatchResult,
    WindowDelta,
    WindowValue,
    process_shard_batch,
    window_rows,
)
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS, WindowKey
from clickstream_local.aws import local_client
from tests.factories import at, make_event
from tests.integration.test_window_store import create_table

pytestmark = pytest.mark.integration

CONSUMER = "windows"
WINDOW = at("2026-03-07T14:04:15")
MINUTE = at("2026-03-07T14:04:00")
NOW = at("2026-03-07T14:04:50")
LATENESS = timedelta(minutes=10)


@dataclass(frozen=True)
class Tables:
    """One test's state table, its stores, and a results table."""

    client: Any
    table: str
    checkpoints: DynamoCheckpointStore
    results: DynamoWindowResults

    def state(self, exact_limit: int = 4096) -> DynamoWindowStateStore:
        return DynamoWindowStateStore(
            self.client, self.table, retention_days=2, exact_limit=exact_limit
        )


@pytest.fixture
def tables(moto_endpoint: str, stack_name: str) -> Tables:
    client = local_client("dynamodb", moto_endpoint)
    state, results = f"{stack_name}-window-state", f"{stack_name}-window-results"
    create_table(client, state)
    create_table(client, results)
    return Tables(
        client, state, DynamoCheckpointStore(client, state), DynamoWindowResults(client, results)
    )


def visit(custid: int, url: str = "beer_sale", source: str = "google", offset: int = 0) -> Event:
    """One visit in the 15 s window at 14:04:15, with an id derived from custid and url."""
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{url}/{custid}/{offset}")
    moment = WINDOW + timedelta(microseconds=(custid * 7_919 + offset) % 15_000_000)
    return make_event(moment, custid=custid, url=url, trafficfrom=source, event_id=str(event_id))


class RefusalCounter:
    """A DynamoDB client that counts the transactions it sees cancelled."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refused = 0

    def transact_write_items(self, **arguments: Any) -> Any:
        try:
            return self.client.transact_write_items(**arguments)
        except ClientError:
            self.refused += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def shard_records(events: list[Event], shard_id: str, first: int) -> list[ParsedRecord]:
    return parse_records(
        ShardRecord(shard_id, str(first + n), event.to_json_line(), NOW)
        for n, event in enumerate(events)
    )


def commit_batches(
    state: DynamoWindowStateStore,
    checkpoints: DynamoCheckpointStore,
    events: list[Event],
    shard_id: str = "shardId-0",
    batch_size: int = 10_000,
) -> list[ShardBatchResult]:
    """Commit the events in batches, as the consumer does, after what the shard holds already."""
    results = []
    for offset in range(0, len(events), batch_size):
        checkpoint = checkpoints.load(CONSUMER, shard_id)
        first = int(checkpoint.sequence_number or 0) + 1
        batch = shard_records(events[offset : offset + batch_size], shard_id, first)
        result = process_shard_batch(batch, checkpoint, allowed_lateness=LATENESS, now=NOW)
        state.apply(result)
        results.append(result)
    return results


def items(tables: Tables) -> list[dict[str, Any]]:
    """Every window partial of the state table."""
    scanned = tables.client.scan(TableName=tables.table, ConsistentRead=True)["Items"]
    return [item for item in scanned if item["pk"]["S"].startswith("W#")]


def sale_value(state: DynamoWindowStateStore) -> WindowValue:
    return state.read_window(UNIQUE_USERS, 15, WINDOW)["beer_sale"]


def within_bound(value: int, exact: int) -> bool:
    return abs(value - exact) <= ERROR_BOUND * exact


@pytest.mark.slow
def test_fifty_thousand_users_in_one_window_are_estimated_within_the_bound(
    tables: Tables,
) -> None:
    # GIVEN 50 000 distinct users of one page in one 15 s window, on one shard
    state = tables.state()
    events = [visit(custid) for custid in range(1, 50_001)]
    # WHEN they are committed in five batches of 10 000 through the DynamoDB adapter
    commit_batches(state, tables.checkpoints, events)
    # THEN the merged value is approximate, the sketch of the 50 000 users, within the bound
    value = sale_value(state)
    assert value.approximate and value.late == 0
    assert value.value == HyperLogLog.of(range(1, 50_001)).count()
    assert within_bound(value.value, 50_000)
    sources = state.read_window(TOP_SOURCES, 60, MINUTE)["google"]
    assert sources.approximate and within_bound(sources.value, 50_000)
    # AND no item came near 400 KiB: sketches instead of 50 000 numbers
    sizes = [item_size(item) for item in items(tables)]
    assert len(sizes) == 3 and max(sizes) < 16 * 1024 < MAX_ITEM_BYTES
    # AND the row, written to the results table and read back, says it is approximate
    rows = window_rows(UNIQUE_USERS, 15, WINDOW, {"beer_sale": value}, None, version=5)
    assert tables.results.write(rows) == 1
    (stored,) = tables.results.rows(UNIQUE_USERS, 15)
    assert stored == rows[0]
    assert (stored.approximate, stored.error_bound) == (True, ERROR_BOUND)


@pytest.mark.slow
def test_fifty_thousand_users_over_four_shards_merge_within_the_bound(tables: Tables) -> None:
    # GIVEN the same 50 000 users routed by custid to four shards
    state = tables.state()
    for shard in range(4):
        events = [visit(custid) for custid in range(1, 50_001) if custid % 4 == shard]
        commit_batches(state, tables.checkpoints, events, shard_id=f"shardId-{shard}")
    # WHEN the reader merges the four partials
    value = sale_value(state)
    # THEN the value is the estimate of all the users' sketch, within the bound
    assert value.approximate
    assert value.value == HyperLogLog.of(range(1, 50_001)).count()
    assert within_bound(value.value, 50_000)
    # AND each shard's partial holds a sketch, not 12 500 custids
    sale = [i for i in items(tables) if i["pk"]["S"].startswith("W#unique-users#15#")]
    assert len(sale) == 4 and all("members_sketch" in item for item in sale)


def test_a_partial_filling_up_stays_exact_to_the_limit_then_is_folded(tables: Tables) -> None:
    # GIVEN a limit of 40 and 30 users of a page committed
    state = tables.state(exact_limit=40)
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(1, 31)])
    # WHEN 15 users come, 10 of them already counted: the addition is refused, the partial
    # rewritten, and it stays exact at 35 users
    commit_batches(state, tables.checkpoints, [visit(c, offset=1) for c in range(21, 36)])
    assert sale_value(state) == WindowValue(35, 0)
    # AND 15 new users take it past the limit: it is folded into a sketch
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(36, 51)])
    value = sale_value(state)
    assert value == WindowValue(HyperLogLog.of(range(1, 51)).count(), 0, approximate=True)
    # AND later users are added to the exact set next to the sketch
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(51, 56)])
    (sale,) = [i for i in items(tables) if i["pk"]["S"].startswith("W#unique-users#15#")]
    assert sorted(int(n) for n in sale["members"]["NS"]) == list(range(51, 56))
    assert sale_value(state).value == HyperLogLog.of(range(1, 56)).count()


@pytest.mark.slow
def test_a_fold_in_the_second_transaction_of_a_large_batch_commits_once(tables: Tables) -> None:
    # GIVEN 50 pages and 50 sources (150 partials, two transactions), page_49 with 31 users
    client = RefusalCounter(tables.client)
    state = DynamoWindowStateStore(client, tables.table, retention_days=2, exact_limit=40)
    first = [visit(n + 1, f"page_{n:02}", f"source_{n:02}") for n in range(50)]
    first += [visit(c, "page_49", f"source_{c % 49:02}") for c in range(100, 130)]
    commit_batches(state, tables.checkpoints, first)
    # WHEN a batch brings one more user to every page and 15 more to page_49, whose partials
    # sort into the second transaction and pass the limit
    second = [visit(n + 1, f"page_{n:02}", f"source_{n:02}", offset=1) for n in range(50)]
    second += [visit(c, "page_49", f"source_{c % 49:02}") for c in range(200, 215)]
    (result,) = commit_batches(state, tables.checkpoints, second)
    assert len(result.deltas) == 150
    assert client.refused == 1
    # THEN the batch is committed with its checkpoint, page_49 folded and the others exact
    assert tables.checkpoints.load(CONSUMER, "shardId-0") == result.checkpoint
    pages = state.read_window(UNIQUE_USERS, 60, MINUTE)
    hot = {50, *range(100, 130), *range(200, 215)}
    assert pages["page_49"] == WindowValue(HyperLogLog.of(hot).count(), 0, approximate=True)
    assert all(pages[f"page_{n:02}"] == WindowValue(1, 0) for n in range(49))
    # AND every source still counts its events exactly
    sources = state.read_window(TOP_SOURCES, 60, MINUTE)
    assert sum(value.value for value in sources.values()) == len(first) + len(second)
    assert not any(value.approximate for value in sources.values())


@pytest.mark.slow
def test_a_crash_before_the_checkpoint_then_a_retry_gives_the_clean_estimate(
    tables: Tables, stack_name: str
) -> None:
    # GIVEN a folded partial, then a batch whose rewrite landed but whose checkpoint did not
    state = tables.state()
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(1, 10_001)])
    retry = shard_records([visit(c) for c in range(10_001, 16_001)], "shardId-0", 10_001)
    before = tables.checkpoints.load(CONSUMER, "shardId-0")
    crashed = process_shard_batch(retry, before, allowed_lateness=LATENESS, now=NOW)
    stored = {key: state._read(key, "shardId-0") for key in crashed.deltas}
    for update in window_updates(tables.table, crashed, 2, 4096, stored):
        tables.client.update_item(**update["Update"])
    # WHEN the batch is retried in full
    state.apply(process_shard_batch(retry, before, allowed_lateness=LATENESS, now=NOW))
    # THEN the values equal one clean application of both batches on a fresh table
    clean_table = f"{stack_name}-clean"
    create_table(tables.client, clean_table)
    clean = Tables(
        tables.client,
        clean_table,
        DynamoCheckpointStore(tables.client, clean_table),
        tables.results,
    )
    commit_batches(clean.state(), clean.checkpoints, [visit(c) for c in range(1, 10_001)])
    commit_batches(clean.state(), clean.checkpoints, [visit(c) for c in range(10_001, 16_001)])
    for metric, size, start in ((UNIQUE_USERS, 15, WINDOW), (TOP_SOURCES, 60, MINUTE)):
        assert state.read_window(metric, size, start) == clean.state().read_window(
            metric, size, start
        )
    assert sale_value(state).value == HyperLogLog.of(range(1, 16_001)).count()


def test_a_rewrite_from_a_stale_read_is_refused_and_names_the_item(tables: Tables) -> None:
    # GIVEN a partial read, then changed by another writer (a zombie invocation)
    state = tables.state(exact_limit=40)
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(1, 21)])
    key = WindowKey(UNIQUE_USERS, 15, WINDOW, "beer_sale")
    stale = state._read(key, "shardId-0")
    assert isinstance(stale, StoredPartial) and len(stale.partial.members) == 20
    commit_batches(state, tables.checkpoints, [visit(c) for c in range(21, 23)])
    # WHEN a rewrite computed from the stale read is sent
    delta = WindowDelta(members=frozenset(range(100, 130)))
    update = rewrite_update(tables.table, key, delta, "shardId-0", 2, 40, stale)
    with pytest.raises(ClientError) as refused:
        tables.client.transact_write_items(TransactItems=[update])
    # THEN it is refused, and the cancellation returns the item as it is now
    (reason,) = refused.value.response["CancellationReasons"]
    assert reason["Code"] == "ConditionalCheckFailed"
    assert sorted(int(n) for n in reason["Item"]["members"]["NS"]) == list(range(1, 23))
    assert sale_value(state) == WindowValue(22, 0)


def test_a_window_partial_is_never_stored_beyond_the_limit(tables: Tables) -> None:
    # GIVEN a limit of 40 and batches of every size around it
    state = tables.state(exact_limit=40)
    custid = 0
    for size in (39, 1, 1, 40, 41, 7, 80):
        events = [visit(c) for c in range(custid + 1, custid + size + 1)]
        custid += size
        commit_batches(state, tables.checkpoints, events, batch_size=size)
        # THEN no stored set ever holds more than 40 values
        for item in items(tables):
            for name in ("members", "events", "late"):
                assert len(item.get(name, {}).get("NS", [])) <= 40
    assert sale_value(state).value == HyperLogLog.of(range(1, custid + 1)).count()
