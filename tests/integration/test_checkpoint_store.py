"""The DynamoDB checkpoint store and transactional commit on a real moto server."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.dynamodb import checkpoint_put, commit
from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint
from clickstream_local.aws import local_client
from tests.factories import at

pytestmark = pytest.mark.integration


@pytest.fixture
def table(moto_endpoint: str, stack_name: str) -> tuple[Any, str]:
    """A state table shaped like the consumers' (pk, sk strings, on demand)."""
    client = local_client("dynamodb", moto_endpoint)
    name = f"{stack_name}-state"
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
    return client, name


def add_members(table: str, key: str, members: list[int]) -> dict[str, Any]:
    """An idempotent state update: add numbers to a set."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "W#test"}, "sk": {"S": key}},
            "UpdateExpression": "ADD members :m",
            "ExpressionAttributeValues": {":m": {"NS": [str(m) for m in members]}},
        }
    }


def members(client: Any, table: str, key: str) -> set[int]:
    item = client.get_item(TableName=table, Key={"pk": {"S": "W#test"}, "sk": {"S": key}})
    return {int(v) for v in item.get("Item", {}).get("members", {}).get("NS", [])}


def test_a_checkpoint_commits_once_and_a_stale_writer_is_refused(table: tuple[Any, str]) -> None:
    client, name = table
    store = DynamoCheckpointStore(client, name)
    # GIVEN a shard never seen
    fresh = store.load("windows", "shardId-0")
    assert fresh == ShardCheckpoint("windows", "shardId-0")
    moment = at("2026-03-07T14:04:10")
    first = fresh.advanced(
        sequence_number="10", max_event_time=moment, last_event_at=moment, watermark=moment
    )
    # WHEN a batch commits its state with the checkpoint
    commit(client, [add_members(name, "a", [1, 2])], checkpoint_put(name, first, fresh.version))
    # THEN both are stored
    assert store.load("windows", "shardId-0") == first
    assert members(client, name, "a") == {1, 2}
    # WHEN a redelivery computed from the old checkpoint tries to commit again
    with pytest.raises(CheckpointConflict):
        commit(client, [add_members(name, "a", [3])], checkpoint_put(name, first, fresh.version))
    # THEN nothing of it was applied (one transaction)
    assert members(client, name, "a") == {1, 2}
    assert store.all("windows") == [first]


def test_more_updates_than_a_transaction_holds_are_applied_then_checkpointed(
    table: tuple[Any, str],
) -> None:
    client, name = table
    store = DynamoCheckpointStore(client, name)
    fresh = store.load("windows", "shardId-1")
    moment = at("2026-03-07T14:04:10")
    after = fresh.advanced(
        sequence_number="99", max_event_time=moment, last_event_at=moment, watermark=moment
    )
    updates = [add_members(name, f"k{n}", [n]) for n in range(150)]
    # WHEN a batch touching 150 items commits
    commit(client, updates, checkpoint_put(name, after, fresh.version))
    # THEN every item and the checkpoint are written
    assert all(members(client, name, f"k{n}") == {n} for n in range(150))
    assert store.load("windows", "shardId-1").version == 1
    # AND replaying the same idempotent updates with a stale checkpoint changes no item
    with pytest.raises(CheckpointConflict):
        commit(client, updates, checkpoint_put(name, after, fresh.version))
    assert all(members(client, name, f"k{n}") == {n} for n in range(150))
