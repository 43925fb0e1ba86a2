"""AWS adapters of the sessionizer's ports: DynamoDB open state, Firehose rows, S3 gap sessions.

Items of the state table (``pk``, ``sk`` strings), next to the checkpoints
(``pk = CHECKPOINT#<consumer>``, ``sk = <shard>``): the open state of a key,
``pk = SESSION#<consumer>#<shard>``, ``sk = <custid>#<device>``, with ``custid``, ``device``,
``state`` (compact JSON of :class:`~clickstream.sessionizer.KeyState`), ``close_at`` (µs: the
lowest watermark that closes something of it) and the two keys of the global secondary index
:data:`CLOSE_INDEX`: ``open_pk = OPEN#<consumer>#<shard>`` and
``open_sk = <close_at, 20 digits>#<custid>#<device>``. A Query of the index with
``open_sk < <watermark + 1 µs>`` finds the keys due, earliest first, without reading the others.

A commit writes **one item per key** (the state's put or delete), in one transaction with the
conditional checkpoint put; DynamoDB keeps the index (which still costs write units: a changed
``close_at`` is a delete and a put in the index). The index is eventually consistent, so a
finalizer may see a key due a moment late (it closes on a later run) or see an entry already
settled (loading the state shows nothing to close); the end of the stream reads the table
itself, strongly consistent, so it never misses a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from clickstream.checkpoints import ShardCheckpoint
from clickstream.dynamo import MAX_TRANSACTION_ITEMS, checkpoint_put, commit
from clickstream.sessionizer import (
    GapSessionSink,
    KeyChange,
    KeyState,
    MinuteSessionSink,
    SessionStateStore,
)
from clickstream.sessions import GapSession, MinuteSession, SessionKey
from clickstream.windows import END_OF_STREAM, to_micros

FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_BYTES = 4 * 1024 * 1024
"""PutRecordBatch limits: 500 records and 4 MiB per call."""
BATCH_GET_MAX_KEYS = 100
CLOSE_AT_WIDTH = 20
CLOSE_INDEX = "open-by-close-time"
"""Global secondary index of the state table: open keys by the time they close something."""
DEFAULT_SESSIONS_PREFIX = "sessions/"


# --- DynamoDB open state ----------------------------------------------------------------------


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

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
    ) -> None:
        """One transaction: every change and the conditional checkpoint put."""
        actions = [
            action
            for change in changes
            for action in change_actions(self.table, consumer, shard_id, change)
        ]
        if len(actions) >= MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"{len(actions)} state actions do not fit one transaction with the checkpoint"
            )
        commit(self.client, actions, checkpoint_put(self.table, checkpoint, expected_version))


# --- Firehose per-minute rows -----------------------------------------------------------------


def record_batches(
    payloads: Sequence[bytes],
    max_records: int = FIREHOSE_MAX_RECORDS,
    max_bytes: int = FIREHOSE_MAX_BYTES,
) -> list[list[bytes]]:
    """The payloads in order, cut into PutRecordBatch calls within both limits."""
    batches: list[list[bytes]] = []
    size = 0
    for payload in payloads:
        if len(payload) > max_bytes:
            raise ValueError(f"a record of {len(payload)} bytes exceeds {max_bytes} bytes")
        if not batches or len(batches[-1]) == max_records or size + len(payload) > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(payload)
        size += len(payload)
    return batches


class DeliveryFailed(RuntimeError):
    """Firehose kept refusing some records after every retry."""


class FirehoseMinuteSessionSink(MinuteSessionSink):
    """One CSV line per row (10 columns, no header, ``\\n``-terminated) through PutRecordBatch."""

    def __init__(
        self,
        client: Any,
        delivery_stream: str,
        *,
        max_attempts: int = 5,
        base_delay_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.delivery_stream = delivery_stream
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.sleep = sleep

    def put(self, rows: Sequence[MinuteSession]) -> None:
        """Deliver every row; failed entries are retried with exponential backoff."""
        payloads = [row.to_csv_line().encode("utf-8") for row in rows]
        for batch in record_batches(payloads):
            self._deliver(batch)

    def _deliver(self, batch: list[bytes]) -> None:
        pending = batch
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(self.base_delay_seconds * 2 ** (attempt - 1))
            response = self.client.put_record_batch(
                DeliveryStreamName=self.delivery_stream,
                Records=[{"Data": payload} for payload in pending],
            )
            if not response.get("FailedPutCount"):
                return
            entries = response["RequestResponses"]
            pending = [
                payload
                for payload, entry in zip(pending, entries, strict=True)
                if entry.get("ErrorCode")
            ]
            if not pending:
                return
        raise DeliveryFailed(
            f"{len(pending)} records refused by {self.delivery_stream} "
            f"after {self.max_attempts} attempts"
        )


# --- S3 gap sessions --------------------------------------------------------------------------


def gap_sessions_key(
    sessions: Sequence[GapSession],
    shard_id: str,
    first_seq: str,
    last_seq: str,
    prefix: str = DEFAULT_SESSIONS_PREFIX,
) -> str:
    """``<prefix>YYYY/MM/DD/HH/<shard>-<first seq>-<last seq>.jsonl``.

    The hour is that of the latest session end: the key depends only on what is written, so a
    retried emission overwrites its object.
    """
    hour = max(session.end for session in sessions).astimezone(UTC)
    return f"{prefix}{hour:%Y/%m/%d/%H}/{shard_id}-{first_seq}-{last_seq}.jsonl"


def gap_sessions_body(sessions: Sequence[GapSession]) -> bytes:
    """One compact JSON object per session and line."""
    lines = (json.dumps(s.to_dict(), separators=(",", ":")) + "\n" for s in sessions)
    return "".join(lines).encode("utf-8")


class S3GapSessionSink(GapSessionSink):
    """One JSON-lines object per commit, under :func:`gap_sessions_key`."""

    def __init__(self, client: Any, bucket: str, prefix: str = DEFAULT_SESSIONS_PREFIX) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """PutObject; errors propagate (nothing is committed then, and the batch is retried)."""
        if not sessions:
            return
        self.client.put_object(
            Bucket=self.bucket,
            Key=gap_sessions_key(sessions, shard_id, first_seq, last_seq, self.prefix),
            Body=gap_sessions_body(sessions),
            ContentType="application/x-ndjson",
        )
