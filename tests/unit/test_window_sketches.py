"""Window partials past the exact-set limit: folding into sketches, merging, rows, item sizes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache

import pytest

from clickstream.adapters.aws.dynamodb import from_attributes
from clickstream.adapters.aws.window_results import row_attributes
from clickstream.adapters.aws.window_state import (
    MAX_EXACT_SET_LIMIT,
    MAX_ITEM_BYTES,
    DynamoWindowStateStore,
    StoredPartial,
    attribute_size,
    item_size,
    partial_attributes,
    rewrite_update,
    window_update,
)
from clickstream.consumers.window_counter import handle_batch
from clickstream.core.records import ParsedRecord, ShardRecord, parse_records
from clickstream.core.sketch import ERROR_BOUND, RELATIVE_STANDARD_ERROR, HyperLogLog
from clickstream.core.window_counting import (
    DEFAULT_EXACT_SET_LIMIT,
    ResultRow,
    WindowDelta,
    WindowPartial,
    WindowValue,
    add_delta,
    merge_partials,
    window_rows,
)
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS, WindowKey
from clickstream.settings import WindowCounterSettings
from clickstream_analytics.dashboard import LatestWindowResults
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryCheckpoints,
    MemoryWindowResults,
    memory_window_counter_ports,
)

WINDOW = at("2026-03-07T14:04:15")
ARRIVED = at("2026-03-07T14:04:40")
NOW = at("2026-03-07T14:04:45")
SETTINGS = WindowCounterSettings.from_env(
    {
        "STATE_TABLE": "state",
        "RESULTS_TABLE": "results",
        "STREAM_NAME": "stream",
        "QUARANTINE_BUCKET": "lake",
    }
)
SALE_PAGE = WindowKey(UNIQUE_USERS, 15, WINDOW, "beer_sale")


def digits(count: int, start: int = 1) -> frozenset[int]:
    return frozenset(range(start, start + count))


@cache
def sale_events(custids: range) -> list[ParsedRecord]:
    """One event per custid on one page, all in the 15 s window at 14:04:15, on shard custid % 4.

    Cached: the two 50 000-user tests share one parse.
    """
    events = [
        make_event(
            WINDOW + timedelta(microseconds=custid % 15_000_000),
            custid=custid,
            url="beer_sale",
            event_id=str(uuid.UUID(int=(1 << 96) + custid)),
        )
        for custid in custids
    ]
    return parse_records(
        ShardRecord(f"shardId-{event.custid % 4}", str(n + 1), event.to_json_line(), ARRIVED)
        for n, event in enumerate(events)
    )


def counted(records: list[ParsedRecord], shard_count: int) -> MemoryWindowResults:
    """The records counted on in-memory ports, in Lambda batches of at most 10 000 records."""
    checkpoints = MemoryCheckpoints()
    results = MemoryWindowResults()
    shards = [f"shardId-{n}" for n in range(shard_count)]
    ports = memory_window_counter_ports(shards, checkpoints=checkpoints, results=results)
    by_shard: dict[str, list[ParsedRecord]] = {shard: [] for shard in shards}
    for record in records:
        by_shard[record.record.shard_id if shard_count > 1 else shards[0]].append(record)
    for offset in range(0, max(len(stream) for stream in by_shard.values()), 10_000):
        batch = {shard: stream[offset : offset + 10_000] for shard, stream in by_shard.items()}
        handle_batch(batch, settings=SETTINGS, ports=ports, now=NOW)
    return results


def sale_row(results: MemoryWindowResults, metric: str = UNIQUE_USERS) -> ResultRow:
    size = 15 if metric == UNIQUE_USERS else 60
    (row,) = [
        row
        for row in results.rows(metric, size)
        if row.window_start == (WINDOW if size == 15 else at("2026-03-07T14:04:00"))
    ]
    return row


# --- Folding ----------------------------------------------------------------------------------


def test_a_set_stays_exact_up_to_the_limit_and_is_folded_past_it() -> None:
    # GIVEN a partial holding 90 users under a limit of 100
    partial = add_delta(WindowPartial("beer_sale", "s-0"), WindowDelta(members=digits(90)), 100)
    # WHEN 10 more users come, then one more
    full = add_delta(partial, WindowDelta(members=digits(10, start=91)), 100)
    folded = add_delta(full, WindowDelta(members=digits(1, start=101)), 100)
    # THEN the set is exact at the limit, and folded into a sketch of all 101 past it
    assert (full.members, full.members_sketch) == (digits(100), None)
    assert folded.members == frozenset()
    assert folded.members_sketch == HyperLogLog.of(digits(101))
    # AND later users collect exactly again until the next fold
    after = add_delta(folded, WindowDelta(members=digits(5, start=200)), 100)
    assert (after.members, after.members_sketch) == (digits(5, start=200), folded.members_sketch)


def test_only_the_set_that_passes_the_limit_is_folded() -> None:
    # GIVEN a batch of 150 on-time events of 40 users and 3 late events, limit 100
    delta = WindowDelta(members=digits(40), events=digits(150, 1000), late=digits(3, 5000))
    # WHEN added to an empty partial
    partial = add_delta(WindowPartial("beer_sale", "s-0"), delta, 100)
    # THEN only the on-time events are a sketch
    assert (partial.members, partial.late) == (digits(40), digits(3, 5000))
    assert partial.members_sketch is None and partial.late_sketch is None
    assert partial.events == frozenset() and partial.events_sketch is not None


def test_a_redelivered_batch_changes_no_estimate() -> None:
    # GIVEN a partial folded by a batch
    batch = WindowDelta(members=digits(500, start=300))
    once = add_delta(WindowPartial("beer_sale", "s-0", members=digits(200)), batch, 400)
    # WHEN the same batch is added again (a crash between the commit and the checkpoint)
    twice = add_delta(once, batch, 400)
    # THEN the value is the same: adding values to a sketch again is a register maximum
    assert merge_partials([twice]) == merge_partials([once])
    assert twice.members_sketch == once.members_sketch


# --- Merging ----------------------------------------------------------------------------------


def test_exact_partials_and_sketches_merge_as_the_sketch_of_the_union() -> None:
    # GIVEN one shard folded to a sketch and two shards still exact, overlapping
    partials = [
        WindowPartial("beer_sale", "s-0", members_sketch=HyperLogLog.of(digits(9_000))),
        WindowPartial("beer_sale", "s-1", members=digits(3_000, start=8_001)),
        WindowPartial("beer_sale", "s-2", members=digits(1_000, start=20_001)),
    ]
    # WHEN merged
    (value,) = merge_partials(partials).values()
    # THEN the value is the estimate of the union's sketch, and approximate
    union = digits(11_000) | digits(1_000, start=20_001)
    assert value == WindowValue(HyperLogLog.of(union).count(), 0, approximate=True)
    assert abs(value.value - len(union)) <= ERROR_BOUND * len(union)


def test_late_stays_exact_while_no_on_time_set_is_folded() -> None:
    # GIVEN exact partials with a late copy of an event counted on time on another shard
    partials = [
        WindowPartial("google", "s-0", digits(5), digits(5), late=frozenset({7})),
        WindowPartial("google", "s-1", digits(3, 10), digits(3, 10), late=frozenset({11, 99})),
    ]
    # THEN the copy is a duplicate, and the row is exact
    assert merge_partials(partials) == {"google": WindowValue(8, 2)}


def test_late_is_an_upper_bound_once_on_time_events_are_folded() -> None:
    # GIVEN a page with exact users but folded on-time events, and two late digests, one of
    # them a late copy of an event folded into the sketch
    partials = [
        WindowPartial(
            "beer_sale",
            "s-0",
            members=digits(50),
            events_sketch=HyperLogLog.of(digits(150, 1000)),
            late=frozenset({1000, 9999}),
        )
    ]
    # WHEN merged
    (value,) = merge_partials(partials).values()
    # THEN the users are exact, but both late digests count: an upper bound, flagged
    assert value == WindowValue(50, 2, approximate=True)


def test_no_late_event_stays_exact_when_on_time_events_are_folded() -> None:
    # GIVEN exact users, folded on-time events and no late event
    partial = WindowPartial("beer_sale", "s-0", digits(50), events_sketch=HyperLogLog.of([1]))
    # THEN the row is exact
    assert merge_partials([partial]) == {"beer_sale": WindowValue(50, 0)}


def test_late_digests_past_the_limit_are_estimated() -> None:
    # GIVEN a replay of an old window: 6 000 late events folded on one shard, 10 on another,
    # one of which is a late copy of an event counted on time there
    partials = [
        WindowPartial("google", "s-0", late_sketch=HyperLogLog.of(digits(6_000))),
        WindowPartial("google", "s-1", digits(1, 9_000), digits(1, 9_000), digits(10, 9_000)),
    ]
    # WHEN merged
    (value,) = merge_partials(partials).values()
    # THEN the late count estimates the late digests not counted on time, approximately
    assert value.value == 1
    assert value.late == HyperLogLog.of(digits(6_000) | digits(9, 9_001)).count()
    assert value.approximate


# --- One busy page, through the consumer on in-memory ports -----------------------------------


@pytest.mark.slow
def test_fifty_thousand_users_of_one_page_in_one_window_are_estimated_within_the_bound() -> None:
    # GIVEN 50 000 distinct users of one page in one 15 s window, on one shard
    records = sale_events(range(1, 50_001))
    # WHEN the window counter counts them in five Lambda batches
    results = counted(records, shard_count=1)
    # THEN the row is approximate and within the stated bound of the exact count
    row = sale_row(results)
    assert row.approximate
    assert (row.standard_error, row.error_bound) == (RELATIVE_STANDARD_ERROR, ERROR_BOUND)
    assert abs(row.value - 50_000) <= ERROR_BOUND * 50_000
    assert row.value == HyperLogLog.of(range(1, 50_001)).count()
    assert row.late_events == 0
    # AND so is the source's count of 50 000 events in its minute
    source = sale_row(results, TOP_SOURCES)
    assert source.approximate and abs(source.value - 50_000) <= ERROR_BOUND * 50_000


@pytest.mark.slow
def test_fifty_thousand_users_over_four_shards_merge_within_the_bound() -> None:
    # GIVEN the same users routed by custid to four shards (12 500 each, past the limit)
    records = sale_events(range(1, 50_001))
    # WHEN each shard's partial is folded and the reader merges the four
    results = counted(records, shard_count=4)
    # THEN the merged row is approximate, within the bound, and the estimate of the sketch of
    # all 50 000 users: merging the shards' sketches is their union
    row = sale_row(results)
    assert row.approximate
    assert abs(row.value - 50_000) <= ERROR_BOUND * 50_000
    assert row.value == HyperLogLog.of(range(1, 50_001)).count()


def test_a_page_at_the_limit_stays_exact() -> None:
    # GIVEN exactly the limit of users on one shard
    records = sale_events(range(4, 4 * DEFAULT_EXACT_SET_LIMIT + 4, 4))
    # WHEN counted
    row = sale_row(counted(records, shard_count=1))
    # THEN the row is exact
    assert (row.value, row.approximate, row.error_bound) == (DEFAULT_EXACT_SET_LIMIT, False, 0.0)


# --- Rows -------------------------------------------------------------------------------------


def test_an_approximate_row_round_trips_through_its_item() -> None:
    # GIVEN the row of an approximate value
    values = {"beer_sale": WindowValue(49_418, 3, approximate=True)}
    (row,) = window_rows(UNIQUE_USERS, 15, WINDOW, values, None, version=7)
    # WHEN written as DynamoDB attributes and read back
    item = from_attributes(row_attributes(row))
    # THEN it carries the flag and the bounds, and reads back equal
    assert (item["approximate"], float(item["error_bound"])) == (True, ERROR_BOUND)
    assert ResultRow.from_item(item) == row
    # AND a row stored before the flag existed reads as exact
    new_fields = ("approximate", "standard_error", "error_bound")
    old = {name: value for name, value in item.items() if name not in new_fields}
    assert not ResultRow.from_item(old).approximate


def test_the_live_page_shows_which_values_are_estimated() -> None:
    # GIVEN an approximate row in the results
    values = {"beer_sale": WindowValue(49_418, 0, approximate=True)}
    rows = window_rows(UNIQUE_USERS, 15, WINDOW, values, None)

    class Sink:
        def rows(self, metric: str, size: int) -> list[ResultRow]:
            return rows if (metric, size) == (UNIQUE_USERS, 15) else []

    # WHEN the live page reads it
    (shown,) = LatestWindowResults(Sink()).rows() or []
    # THEN the row is flagged with its bound
    assert (shown.value, shown.approximate, shown.error_bound) == (49_418, True, ERROR_BOUND)


# --- DynamoDB items ---------------------------------------------------------------------------


def test_item_sizes_follow_dynamodb_rules_on_known_attributes() -> None:
    # THEN names and strings count their UTF-8 bytes, numbers 1 byte per 2 significant digits
    # plus 1, binaries their bytes, sets the sum of their elements
    assert attribute_size({"S": "beer"}) == 4
    assert attribute_size({"S": "ação"}) == 6
    assert attribute_size({"N": "12345"}) == 4
    assert attribute_size({"N": "1.500"}) == 2
    assert attribute_size({"N": "-7"}) == 3
    assert attribute_size({"N": str(2**64 - 1)}) == 11
    assert attribute_size({"B": bytes(4098)}) == 4098
    assert attribute_size({"NS": ["1", "22", "333"]}) == 2 + 2 + 3
    assert attribute_size({"BOOL": True}) == 1
    assert item_size({"pk": {"S": "W#1"}, "late": {"NS": ["12"]}}) == 2 + 3 + 4 + 2


@pytest.mark.parametrize("limit", [DEFAULT_EXACT_SET_LIMIT, MAX_EXACT_SET_LIMIT])
def test_the_largest_item_the_adapter_writes_stays_under_400_kib(limit: int) -> None:
    # GIVEN the largest partial at the limit: three full sets of 20-digit numbers, three full
    # sketches, a 256-character key of 4-byte characters and a long shard id
    def widest(start: int) -> frozenset[int]:
        return frozenset(range(2**64 - start - limit, 2**64 - start))

    sketch = HyperLogLog.of(digits(100_000))
    key = "\U0001f37a" * 256
    partial = WindowPartial(
        key, "shardId-000000009999", widest(0), widest(limit), widest(2 * limit),
        sketch, sketch, sketch,
    )  # fmt: skip
    window_key = WindowKey(UNIQUE_USERS, 15, WINDOW, key)
    # WHEN its whole item is built as the adapter writes it
    item = partial_attributes(window_key, partial, "shardId-000000009999", 7, revision=10**9)
    # THEN it is below DynamoDB's 400 KiB item limit
    assert item_size(item) < MAX_ITEM_BYTES
    assert all(len(item[name]["NS"]) == limit for name in ("members", "events", "late"))
    # AND at the default limit it stays under 40 % of it
    if limit == DEFAULT_EXACT_SET_LIMIT:
        assert item_size(item) < 0.4 * MAX_ITEM_BYTES


def test_a_limit_whose_items_could_pass_400_kib_is_refused() -> None:
    # THEN the store refuses a limit past the computed maximum, and a non-positive one
    assert MAX_EXACT_SET_LIMIT == 11_790
    for limit in (0, MAX_EXACT_SET_LIMIT + 1):
        with pytest.raises(ValueError, match="exact-set limit"):
            DynamoWindowStateStore(object(), "state", exact_limit=limit)


def test_the_limit_is_a_setting() -> None:
    # THEN EXACT_SET_LIMIT sets it, 4 096 by default, and it must be a positive integer
    env = {"STATE_TABLE": "s", "RESULTS_TABLE": "r", "STREAM_NAME": "k", "QUARANTINE_BUCKET": "b"}
    assert SETTINGS.exact_set_limit == 4096
    assert WindowCounterSettings.from_env({**env, "EXACT_SET_LIMIT": "1000"}).exact_set_limit == (
        1000
    )
    with pytest.raises(ValueError, match="EXACT_SET_LIMIT"):
        WindowCounterSettings.from_env({**env, "EXACT_SET_LIMIT": "many"})


def test_an_addition_holds_only_while_its_sets_stay_within_the_limit() -> None:
    # GIVEN a batch of 3 users and 4 on-time events
    delta = WindowDelta(members=digits(3), events=digits(4, 100))
    # WHEN its update is built with a limit of 10
    update = window_update("state", SALE_PAGE, delta, "s-0", 7, exact_limit=10)["Update"]
    # THEN each set it adds to must hold at most the limit less what it adds, and a failed
    # condition returns the item, so the partial can be rewritten without another read
    assert update["ConditionExpression"] == (
        "(attribute_not_exists(members) OR size(members) <= :members_room) AND "
        "(attribute_not_exists(events) OR size(events) <= :events_room)"
    )
    values = update["ExpressionAttributeValues"]
    assert (values[":members_room"], values[":events_room"]) == ({"N": "7"}, {"N": "6"})
    assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    # AND a batch that alone passes the limit cannot be added blindly
    with pytest.raises(ValueError, match="exact-set limit"):
        window_update("state", SALE_PAGE, WindowDelta(members=digits(11)), "s-0", 7, 10)


def test_a_rewrite_folds_and_holds_only_while_the_item_is_as_read() -> None:
    # GIVEN a stored partial at revision 2 with 8 pending users and a sketch
    stored = StoredPartial(
        WindowPartial(
            "beer_sale", "s-0", members=digits(8), events=digits(8),
            members_sketch=HyperLogLog.of(digits(50, 100)),
        ),
        revision=2,
    )  # fmt: skip
    # WHEN a batch of 5 more users is rewritten in, with a limit of 10
    delta = WindowDelta(members=digits(5, 20), events=digits(5, 20))
    update = rewrite_update("state", SALE_PAGE, delta, "s-0", 7, 10, stored)["Update"]
    # THEN the users are folded into the sketch, the emptied sets removed, the revision raised
    values = update["ExpressionAttributeValues"]
    expected = HyperLogLog.of(digits(50, 100) | digits(8) | digits(5, 20))
    assert values[":members_sketch"] == {"B": expected.to_bytes()}
    assert values[":revision"] == {"N": "3"}
    assert update["UpdateExpression"].endswith(" REMOVE #members, #events")
    # AND it holds only if nobody changed the item since it was read
    assert update["ConditionExpression"] == (
        "revision = :read_revision AND size(members) = :read_members AND "
        "size(events) = :read_events AND attribute_not_exists(late)"
    )
    assert (values[":read_revision"], values[":read_members"]) == ({"N": "2"}, {"N": "8"})
