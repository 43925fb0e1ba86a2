"""Window state in DynamoDB: per-shard partial sets of each (window, key), merged by set union.

**Item layout** (state table, string keys ``pk`` and ``sk``)::

    pk            "W#<metric>#<size_seconds>#<window_start_us>"
    sk            "<key>#<shard_id>"
    window_key    the url (unique-users) or trafficfrom (top-sources)
    shard_id      the shard that wrote the partial
    window_end_us window end, microseconds since the epoch
    expires_at    TTL: window end in epoch seconds + the retention
    members  NS   custids (unique-users) or event digests (top-sources), on time
    events   NS   unique-users only: digests of the on-time events
    late     NS   digests of the late events

A batch sends ONE UpdateItem per (window, key) it touches: ``SET`` of the descriptive
attributes and ``ADD`` of its sets. ``ADD`` on a set is a union, so applying the same batch
twice changes nothing; the updates commit with the shard checkpoint through
:func:`clickstream.adapters.aws.dynamodb.commit`.

A reader unions the partials of all shards
(:func:`clickstream.core.window_counting.merge_partials`). Unique-users items keep ``events``
for that, since their members are custids.

**Bounds.** The sets are exact. DynamoDB stores a number in about 1 byte per 2 significant
digits plus 1, so a digest (≤ 20 digits) or a custid (≤ 19 digits) takes at most
:data:`MAX_NUMBER_BYTES` = 11 bytes. Keeping :data:`RESERVED_BYTES` for keys and the other
attributes, one item holds :data:`MAX_NUMBERS_PER_ITEM` = 36 491 numbers across its sets under
the 400 KB item limit. Per (window, key, shard) that is up to 36 491 distinct events for
top-sources, and for unique-users at least 18 245 on-time events (each adds a digest and at most
one custid; about 26 000 when custids have ≤ 6 digits). A Kinesis shard takes at most
60 000 records a minute, so one key holding most of a busy shard's minute can exceed it: the
UpdateItem is then refused and the batch fails. This core does not yet switch to a sketch
(e.g. HyperLogLog) beyond the bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clickstream.adapters.aws.dynamodb import checkpoint_put, commit
from clickstream.core.window_counting import (
    ShardBatchResult,
    WindowDelta,
    WindowPartial,
    WindowValue,
    merge_partials,
)
from clickstream.core.windows import UNIQUE_USERS, WindowKey, to_micros
from clickstream.ports import WindowStateStore

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit."""
RESERVED_BYTES = 8 * 1024
"""Room kept for the keys (a key may be 256 characters) and the scalar attributes."""
MAX_NUMBER_BYTES = 11
"""Stored size of a number of up to 20 significant digits."""
MAX_NUMBERS_PER_ITEM = (MAX_ITEM_BYTES - RESERVED_BYTES) // MAX_NUMBER_BYTES
"""Numbers one partial item holds across its sets (36 491)."""
DEFAULT_RETENTION_DAYS = 7
_SECONDS_PER_DAY = 86_400
_MICROS_PER_SECOND = 1_000_000


def window_pk(metric: str, size_seconds: int, window_start: datetime) -> str:
    """Partition key of every partial of one window."""
    return f"W#{metric}#{size_seconds}#{to_micros(window_start)}"


def window_sk(key: str, shard_id: str) -> str:
    """Sort key of one shard's partial of one key."""
    return f"{key}#{shard_id}"


def expires_at(window_key: WindowKey, retention_days: int) -> int:
    """TTL of a partial: the window end in epoch seconds plus the retention."""
    end_seconds = to_micros(window_key.window_end) // _MICROS_PER_SECOND
    return end_seconds + retention_days * _SECONDS_PER_DAY


def window_update(
    table: str, window_key: WindowKey, delta: WindowDelta, shard_id: str, retention_days: int
) -> dict[str, Any]:
    """The idempotent TransactWriteItems ``Update`` of one (window, key) partial."""
    values: dict[str, Any] = {
        ":key": {"S": window_key.key},
        ":shard": {"S": shard_id},
        ":end": {"N": str(to_micros(window_key.window_end))},
        ":expires": {"N": str(expires_at(window_key, retention_days))},
    }
    sets = {"members": delta.members, "late": delta.late}
    if window_key.metric == UNIQUE_USERS:
        sets["events"] = delta.events
    additions: list[str] = []
    for name, numbers in sets.items():
        if numbers:
            additions.append(f"{name} :{name}")
            values[f":{name}"] = {"NS": [str(number) for number in sorted(numbers)]}
    expression = (
        "SET window_key = :key, shard_id = :shard, window_end_us = :end, expires_at = :expires"
    )
    if additions:
        expression += " ADD " + ", ".join(additions)
    return {
        "Update": {
            "TableName": table,
            "Key": {
                "pk": {
                    "S": window_pk(
                        window_key.metric, window_key.size_seconds, window_key.window_start
                    )
                },
                "sk": {"S": window_sk(window_key.key, shard_id)},
            },
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
    }


def window_updates(
    table: str, result: ShardBatchResult, retention_days: int
) -> list[dict[str, Any]]:
    """One update per (window, key) the batch touched, in a stable order."""
    shard_id = result.checkpoint.shard_id
    return [
        window_update(table, window_key, delta, shard_id, retention_days)
        for window_key, delta in result.deltas.items()
    ]


def partial_from_item(metric: str, item: Mapping[str, Any]) -> WindowPartial:
    """A stored item (DynamoDB attribute values) as a partial."""

    def numbers(name: str) -> frozenset[int]:
        return frozenset(int(value) for value in item.get(name, {}).get("NS", []))

    members = numbers("members")
    return WindowPartial(
        key=item["window_key"]["S"],
        shard_id=item["shard_id"]["S"],
        members=members,
        events=numbers("events") if metric == UNIQUE_USERS else members,
        late=numbers("late"),
    )


class DynamoWindowStateStore(WindowStateStore):
    """Window partials in a DynamoDB state table; checkpoints in ``checkpoint_table``."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        checkpoint_table: str | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.client = client
        self.table = table
        self.checkpoint_table = checkpoint_table or table
        self.retention_days = retention_days

    def apply(self, result: ShardBatchResult) -> None:
        """Commit the batch's updates and its checkpoint (CheckpointConflict propagates)."""
        updates = window_updates(self.table, result, self.retention_days)
        checkpoint = checkpoint_put(
            self.checkpoint_table, result.checkpoint, result.checkpoint_before.version
        )
        commit(self.client, updates, checkpoint)

    def read_window(
        self, metric: str, size_seconds: int, window_start: datetime
    ) -> dict[str, WindowValue]:
        """Query every partial of the window (strongly consistent) and merge them."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {
                ":pk": {"S": window_pk(metric, size_seconds, window_start)}
            },
            "ConsistentRead": True,
        }
        partials: list[WindowPartial] = []
        while True:
            response = self.client.query(**arguments)
            partials.extend(partial_from_item(metric, item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return merge_partials(partials)
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
