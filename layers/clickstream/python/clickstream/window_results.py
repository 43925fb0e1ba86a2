"""Window results: merged window state turned into rows, and the results table.

A window is final once the stream's watermark (the lowest over the shards, see
:func:`clickstream.checkpoints.combined_watermark`) reaches its end. Top-sources rows carry an
ordinal rank: count descending, ties by name (:func:`clickstream.windows.rank_sources`); keys
with no on-time event (only late ones) get no rank.

**Results table layout**: ``pk = "<metric>#<size_seconds>"``,
``sk = "<window_start ISO-8601>#<key>"`` (fixed-width timestamps, so rows sort by time), plus
the fields of :class:`ResultRow`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickstream.checkpoints import CheckpointStore, combined_watermark
from clickstream.dynamo import from_attributes, to_attributes
from clickstream.events import format_timestamp, parse_timestamp
from clickstream.window_store import WindowStateStore, WindowValue
from clickstream.windows import TOP_SOURCES, WindowKey, is_final, rank_sources

_BATCH_WRITE_LIMIT = 25
_UNPROCESSED_ATTEMPTS = 5


@dataclass(frozen=True)
class ResultRow:
    """One key of one window, as shown to readers."""

    metric: str
    size_seconds: int
    window_start: datetime
    window_end: datetime
    key: str
    value: int
    final: bool
    late_events: int
    rank: int | None = None

    def to_item(self) -> dict[str, Any]:
        """The row as plain attribute values, keys included."""
        item: dict[str, Any] = {
            "pk": f"{self.metric}#{self.size_seconds}",
            "sk": f"{format_timestamp(self.window_start)}#{self.key}",
            "metric": self.metric,
            "size_seconds": self.size_seconds,
            "window_start": format_timestamp(self.window_start),
            "window_end": format_timestamp(self.window_end),
            "key": self.key,
            "value": self.value,
            "final": self.final,
            "late_events": self.late_events,
        }
        if self.rank is not None:
            item["rank"] = self.rank
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ResultRow:
        """Inverse of :meth:`to_item`."""
        rank = item.get("rank")
        return cls(
            metric=str(item["metric"]),
            size_seconds=int(item["size_seconds"]),
            window_start=parse_timestamp(str(item["window_start"])),
            window_end=parse_timestamp(str(item["window_end"])),
            key=str(item["key"]),
            value=int(item["value"]),
            final=bool(item["final"]),
            late_events=int(item["late_events"]),
            rank=None if rank is None else int(rank),
        )


def window_rows(
    metric: str,
    size_seconds: int,
    window_start: datetime,
    values: Mapping[str, WindowValue],
    watermark: datetime | None,
) -> list[ResultRow]:
    """The rows of one window, ordered by rank (top-sources) or by key."""
    final = is_final(window_start, size_seconds, watermark)
    window_end = window_start + timedelta(seconds=size_seconds)
    ranks: dict[str, int] = {}
    if metric == TOP_SOURCES:
        counted = {key: value.value for key, value in values.items() if value.value > 0}
        ranks = {key: rank for rank, key, _ in rank_sources(counted)}
    rows = [
        ResultRow(
            metric=metric,
            size_seconds=size_seconds,
            window_start=window_start,
            window_end=window_end,
            key=key,
            value=value.value,
            final=final,
            late_events=value.late,
            rank=ranks.get(key),
        )
        for key, value in values.items()
    ]
    return sorted(rows, key=lambda row: (row.rank is None, row.rank or 0, row.key))


def materialize(
    store: WindowStateStore,
    checkpoints: CheckpointStore,
    consumer: str,
    shard_ids: Sequence[str],
    touched: Iterable[WindowKey],
) -> list[ResultRow]:
    """Current rows of every window in ``touched`` (all its keys, so ranks are complete)."""
    watermark = combined_watermark(checkpoints.all(consumer), list(shard_ids))
    windows = sorted({(key.metric, key.size_seconds, key.window_start) for key in touched})
    rows: list[ResultRow] = []
    for metric, size_seconds, window_start in windows:
        values = store.read_window(metric, size_seconds, window_start)
        rows.extend(window_rows(metric, size_seconds, window_start, values, watermark))
    return rows


class WindowResultsSink(ABC):
    """Where result rows are published."""

    @abstractmethod
    def write(self, rows: Sequence[ResultRow]) -> None:
        """Upsert the rows (a row replaces the previous one of the same window and key)."""


class DynamoWindowResults(WindowResultsSink):
    """Result rows in a DynamoDB table keyed ``pk = <metric>#<size>, sk = <start>#<key>``."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def write(self, rows: Sequence[ResultRow]) -> None:
        """BatchWriteItem puts, 25 at a time, resending unprocessed items with a backoff."""
        for offset in range(0, len(rows), _BATCH_WRITE_LIMIT):
            requests = [
                {"PutRequest": {"Item": to_attributes(row.to_item())}}
                for row in rows[offset : offset + _BATCH_WRITE_LIMIT]
            ]
            pending: dict[str, Any] = {self.table: requests}
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError(f"results table {self.table} left rows unprocessed")

    def rows(self, metric: str, size_seconds: int) -> list[ResultRow]:
        """Every stored row of one metric and size, in window then key order."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{metric}#{size_seconds}"}},
        }
        rows: list[ResultRow] = []
        while True:
            response = self.client.query(**arguments)
            rows.extend(ResultRow.from_item(from_attributes(item)) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return rows
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
