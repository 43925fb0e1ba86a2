"""DynamoDB helpers shared by the adapters: attribute values, checkpoint items, the commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint

MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems call."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python values to DynamoDB attribute values (ints, strings, sets, bools...)."""
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values to plain Python values."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def checkpoint_key(consumer: str, shard_id: str) -> dict[str, Any]:
    """Primary key of a checkpoint item in a consumer's state table."""
    return {"pk": {"S": f"CHECKPOINT#{consumer}"}, "sk": {"S": shard_id}}


def checkpoint_put(
    table: str, checkpoint: ShardCheckpoint, expected_version: int
) -> dict[str, Any]:
    """A TransactWriteItems ``Put`` of ``checkpoint``, conditional on the version read."""
    item = {
        **checkpoint_key(checkpoint.consumer, checkpoint.shard_id),
        **to_attributes(checkpoint.to_item()),
    }
    if expected_version == 0:
        return {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk) OR version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": "0"}},
            }
        }
    return {
        "Put": {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
    }


def commit(
    client: Any,
    updates: Sequence[dict[str, Any]],
    checkpoint: dict[str, Any],
    with_checkpoint: Sequence[dict[str, Any]] = (),
) -> None:
    """Apply a batch's state ``updates`` and its conditional ``checkpoint`` put.

    Up to 99 actions go in one transaction with the checkpoint: all or nothing. More updates are
    sent in transactions of 99 actions, each guarded by a ``ConditionCheck`` of the checkpoint's
    version, the last one carrying the checkpoint itself; a conflict stops at the first chunk
    that sees it. The updates are idempotent (set unions), so chunks a conflicting batch already
    applied are harmless when the batch is recomputed. The actions ``with_checkpoint`` always go
    in the checkpoint's own transaction, so they commit exactly when it does. A failed
    checkpoint condition raises CheckpointConflict.
    """
    per_transaction = MAX_TRANSACTION_ITEMS - 1
    last_room = per_transaction - len(with_checkpoint)
    if last_room < 0:
        raise ValueError(f"{len(with_checkpoint)} actions do not fit the checkpoint's transaction")
    split = 0  # updates before ``split`` go in full transactions ahead of the checkpoint's
    while len(updates) - split > last_room:
        split += per_transaction
    split = min(split, len(updates))
    guard = _guard(checkpoint)
    transactions = [
        [*updates[i : min(i + per_transaction, split)], guard]
        for i in range(0, split, per_transaction)
    ]
    transactions.append([*updates[split:], *with_checkpoint, checkpoint])
    for actions in transactions:
        try:
            client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if _checkpoint_condition_failed(error, checkpoint_index=len(actions) - 1):
                raise CheckpointConflict("checkpoint changed since it was read") from error
            raise


def _guard(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A ``ConditionCheck`` with the same condition as the checkpoint ``Put``."""
    put = checkpoint["Put"]
    return {
        "ConditionCheck": {
            "TableName": put["TableName"],
            "Key": {"pk": put["Item"]["pk"], "sk": put["Item"]["sk"]},
            "ConditionExpression": put["ConditionExpression"],
            "ExpressionAttributeValues": put["ExpressionAttributeValues"],
        }
    }


def _checkpoint_condition_failed(error: ClientError, checkpoint_index: int) -> bool:
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    if len(reasons) > checkpoint_index:
        return reasons[checkpoint_index].get("Code") == "ConditionalCheckFailed"
    return "ConditionalCheckFailed" in str(error)
