"""Shard checkpoints in a consumer's DynamoDB state table."""

from __future__ import annotations

from typing import Any

from clickstream.adapters.aws.dynamodb import (
    checkpoint_key,
    checkpoint_put,
    commit,
    from_attributes,
)
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.ports import CheckpointStore


class DynamoCheckpointStore(CheckpointStore):
    """Checkpoints as items ``pk = CHECKPOINT#<consumer>, sk = <shard id>`` of a state table."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def load(self, consumer: str, shard_id: str) -> ShardCheckpoint:
        """The stored checkpoint, or version 0 for a shard never seen."""
        response = self.client.get_item(
            TableName=self.table, Key=checkpoint_key(consumer, shard_id), ConsistentRead=True
        )
        if "Item" not in response:
            return ShardCheckpoint(consumer=consumer, shard_id=shard_id)
        return ShardCheckpoint.from_item(from_attributes(response["Item"]))

    def all(self, consumer: str) -> list[ShardCheckpoint]:
        """Every checkpoint of ``consumer``."""
        items: list[ShardCheckpoint] = []
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"CHECKPOINT#{consumer}"}},
            "ConsistentRead": True,
        }
        while True:
            response = self.client.query(**arguments)
            items.extend(ShardCheckpoint.from_item(from_attributes(i)) for i in response["Items"])
            if "LastEvaluatedKey" not in response:
                return items
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def save(self, checkpoint: ShardCheckpoint, expected_version: int) -> None:
        """Write the checkpoint if nobody changed it since ``expected_version``."""
        commit(self.client, [], checkpoint_put(self.table, checkpoint, expected_version))
