"""The sessionizer's open state in DynamoDB, indexed by close time, committed with the checkpoint.

Items of the state table (``pk``, ``sk`` strings), next to the checkpoints
(``pk = CHECKPOINT#<consumer>``, ``sk = <shard>``): the open state of a key,
``pk = SESSION#<consumer>#<shard>``, ``sk = <custid>#<device>``, with ``custid``, ``device``,
``state`` (compact JSON of :class:`~clickstream.core.session_state.KeyState`), ``close_at``
(µs: the lowest watermark that closes something of it) and the two keys of the global
secondary index :data:`CLOSE_INDEX`: ``open_pk = OPEN#<consumer>#<shard>`` and
``open_sk = <close_at, 20 digits>#<custid>#<device>``. A Query of the index with
``open_sk < <watermark + 1 µs>`` finds the keys due, earliest first, without reading the others.

A commit writes **one item per key** (the state's put or delete) and one registry item per
bucket of its events' first occurrences (:mod:`clickstream.adapters.aws.first_occurrences`), in
one transaction with the conditional checkpoint put; DynamoDB keeps the index (which still costs
write units: a changed ``close_at`` is a delete and a put in the index). The index is eventually
consistent, so a finalizer may see a key due a moment late (it closes on a later run) or see an
entry already settled (loading the state shows nothing to close); the end of the stream reads the
table itself, strongly consistent, so it never misses a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from clickstream.adapters.aws.dynamodb import MAX_TRANSACTION_ITEMS, checkpoint_put, commit
from clickstream.adapters.aws.first_occurrences import read_registered, registry_puts
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.session_state import KeyChange, KeyState
from clickstream.core.sessions import SessionKey
from clickstream.core.windows import END_OF_STREAM, to_micros
from clickstream.ports import SessionStateStore

BATCH_GET_MAX_KEYS = 100
CLOSE_AT_WIDTH = 20
CLOSE_INDEX = "open-by-close-time"
"""Global secondary index of the state table: open keys by the time they close something."""


def state_key(consumer: str, shard_id: str, key: SessionKey) -> dict[str, Any]:
    """Primary key of a key's open-state item."""
    custid, device = key
    return {"pk": {"S": f"SESSION#{consumer}#{shard_id}"}, "sk": {"S": f"{custid}#{device}"}}


def index_entry(consumer: str, shard_id: str, key: SessionKey, close_at: int) -> dict[str, Any]:
    """The close-time index attributes of a key's state item."""
    custid, device = key
    return {
        "open_pk": {"S": f"OPEN#{consumer}#{shard_id}"},
        "open_sk": {"S": f"{close_at:0{CLOSE_AT_WIDTH}d}#{custid}#{device}"},
    }


def change_actions(
    table: str, consumer: str, shard_id: str, change: KeyChange
) -> list[dict[str, Any]]:
    """The TransactWriteItems action of one key: one put or delete, idempotent."""
    if change.after is None or change.close_at_after is None:
        return [{"Delete": {"TableName": table, "Key": state_key(consumer, shard_id, change.key)}}]
    item = {
        **state_key(consumer, shard_id, change.key),
        "custid": {"N": str(change.after.custid)},
        "device": {"S": change.after.device},
        "state": {"S": change.after.to_json()},
        "close_at": {"N": str(change.close_at_after)},
        **index_entry(consumer, shard_id, change.key, change.close_at_after),
    }
    return [{"Put": {"TableName": table, "Item": item}}]


class DynamoSessionStateStore(SessionStateStore):
    """Open states in the state table (indexed by close time), committed with the checkpoint."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def load(
        self, consumer: str, shard_id: str, keys: Iterable[SessionKey]
    ) -> dict[SessionKey, KeyState]:
        """BatchGetItem (strongly consistent), 100 keys a call, unprocessed keys retried."""
        wanted = list(dict.fromkeys(keys))
        states: dict[SessionKey, KeyState] = {}
        for start in range(0, len(wanted), BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        state_key(consumer, shard_id, k)
                        for k in wanted[start : start + BATCH_GET_MAX_KEYS]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    state = KeyState.from_json(
                        int(item["custid"]["N"]), item["device"]["S"], item["state"]["S"]
                    )
                    states[state.key] = state
                request = response.get("UnprocessedKeys") or {}
        return states

    def due(
        self, consumer: str, shard_id: str, watermark: datetime, limit: int
    ) -> list[SessionKey]:
        """Keys with ``close_at <= watermark``, earliest first (every key at the end of stream)."""
        if limit <= 0:
            return []
        if watermark == END_OF_STREAM:
            return self._all_open(consumer, shard_id)[:limit]
        bound = to_micros(watermark) + 1
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": CLOSE_INDEX,
            "KeyConditionExpression": "open_pk = :pk AND open_sk < :bound",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"OPEN#{consumer}#{shard_id}"},
                ":bound": {"S": f"{bound:0{CLOSE_AT_WIDTH}d}"},
            },
            "Limit": limit,
        }
        keys: list[SessionKey] = []
        while len(keys) < limit:
            response = self.client.query(**arguments)
            for item in response["Items"]:
                _, custid, device = item["open_sk"]["S"].split("#", 2)
                keys.append((int(custid), device))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return list(dict.fromkeys(keys))[:limit]

    def _all_open(self, consumer: str, shard_id: str) -> list[SessionKey]:
        """Every open key of the shard from the table (strongly consistent), by close time."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"SESSION#{consumer}#{shard_id}"}},
            "ProjectionExpression": "custid, device, close_at",
            "ConsistentRead": True,
        }
        found: list[tuple[int, SessionKey]] = []
        while True:
            response = self.client.query(**arguments)
            for item in response["Items"]:
                key = (int(item["custid"]["N"]), item["device"]["S"])
                found.append((int(item["close_at"]["N"]), key))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return [key for _, key in sorted(found)]

    def registered(
        self, consumer: str, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registry items of each bucket, one strongly consistent Query per bucket."""
        return read_registered(self.client, self.table, consumer, shard_id, buckets)

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        """One transaction: every change, the registrations and the conditional checkpoint."""
        actions = [
            action
            for change in changes
            for action in change_actions(self.table, consumer, shard_id, change)
        ]
        registry = registry_puts(
            self.table, consumer, shard_id, checkpoint.version, registrations or {}
        )
        if len(actions) + len(registry) >= MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"{len(actions)} state actions and {len(registry)} registry items do not fit one"
                " transaction with the checkpoint"
            )
        put = checkpoint_put(self.table, checkpoint, expected_version)
        commit(self.client, actions, put, with_checkpoint=registry)
