"""DynamoDB helpers shared by the adapters: attribute values, checkpoint items, the commit."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint
from clickstream.core.retry import RetryPolicy

MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems call."""

CAPACITY_REASONS = frozenset({"ProvisionedThroughputExceeded", "ThrottlingError"})
"""Cancellation reasons of a transaction refused for capacity: a provisioned table or index
beyond its capacity, or an on-demand one while it scales. The transaction wrote nothing."""

TRANSACTION_RETRY = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=2.0)
"""Sends of one transaction refused for capacity alone: about 5 s of backoff at most. boto3
retries a throttled single call itself, but not a cancelled transaction."""

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
    *,
    retry: RetryPolicy = TRANSACTION_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> None:
    """Apply a batch's state ``updates`` and its conditional ``checkpoint`` put.

    Up to 99 actions go in one transaction with the checkpoint: all or nothing. More updates are
    sent in transactions of 99 actions, each guarded by a ``ConditionCheck`` of the checkpoint's
    version, the last one carrying the checkpoint itself; a conflict stops at the first chunk
    that sees it. The updates are idempotent (set unions), so chunks a conflicting batch already
    applied are harmless when the batch is recomputed. The actions ``with_checkpoint`` always go
    in the checkpoint's own transaction, so they commit exactly when it does. A failed
    checkpoint condition raises CheckpointConflict. A transaction refused for capacity alone is
    sent again after a full-jitter backoff (``retry``); once that is spent, its ClientError
    propagates as a failed commit, never as a conflict.
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
    backoff = rng or random.Random()
    for actions in transactions:
        try:
            _transact(client, actions, retry, sleep, backoff)
        except ClientError as error:
            if _checkpoint_condition_failed(error, checkpoint_index=len(actions) - 1):
                raise CheckpointConflict("checkpoint changed since it was read") from error
            raise


def _transact(
    client: Any,
    actions: list[dict[str, Any]],
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
) -> None:
    """One TransactWriteItems, sent again while DynamoDB refuses it for capacity alone."""
    for attempt in range(1, retry.max_attempts + 1):
        try:
            client.transact_write_items(TransactItems=actions)
            return
        except ClientError as error:
            if attempt == retry.max_attempts or not refused_for_capacity(error):
                raise
            sleep(retry.delay(attempt, rng))


def refused_for_capacity(error: ClientError) -> bool:
    """A transaction cancelled only because a table or index lacked capacity (throttled).

    Every item's reason is ``None`` or one of :data:`CAPACITY_REASONS`: no condition failed and
    nothing was written, so the same transaction may be sent again. A cancellation without
    reasons is not taken for one.
    """
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    codes = {reason.get("Code") for reason in error.response.get("CancellationReasons") or []}
    return bool(codes & CAPACITY_REASONS) and codes <= CAPACITY_REASONS | {None, "None"}


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
