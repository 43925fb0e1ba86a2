"""Window results: merged window state turned into rows, and the results table.

A window is final once the stream's watermark (the lowest over the shards, see
:func:`clickstream.checkpoints.combined_watermark`) reaches its end. Top-sources rows carry an
ordinal rank: count descending, ties by name (:func:`clickstream.windows.rank_sources`); keys
with no on-time event (only late ones) get no rank.

**Results table layout**: ``pk = "<metric>#<size_seconds>"``,
``sk = "<window_start ISO-8601>#<key>"`` (fixed-width timestamps, so rows sort by time), plus
the fields of :class:`ResultRow`.

**Concurrent writers.** Invocations of different shards, and the finalizer, rewrite the rows of
the windows they touch at the same time. Each row carries the consumer's
:func:`~clickstream.checkpoints.state_version` read before its state was, and is written only
if the stored row's version is not higher. So a row computed from older state never replaces a
newer one, and once every writer is done each row reflects every commit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from clickstream.checkpoints import CheckpointStore, combined_watermark, state_version
from clickstream.dynamo import from_attributes, to_attributes
from clickstream.events import format_timestamp, parse_timestamp
from clickstream.window_store import WindowStateStore, WindowValue
from clickstream.windows import TOP_SOURCES, WindowKey, is_final, rank_sources

_NEWER_OR_SAME = "attribute_not_exists(state_version) OR state_version <= :version"


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
    state_version: int = 0
    """The consumer's state version the row was computed under (see the module docstring)."""

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
            "state_version": self.state_version,
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
            state_version=int(item.get("state_version", 0)),
        )


def window_rows(
    metric: str,
    size_seconds: int,
    window_start: datetime,
    values: Mapping[str, WindowValue],
    watermark: datetime | None,
    version: int = 0,
) -> list[ResultRow]:
    """The rows of one window, ordered by rank (top-sources) or by key, at state ``version``."""
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
            state_version=version,
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
    """Current rows of every window in ``touched`` (all its keys, so ranks are complete).

    The checkpoints are read before the state, so the rows' version never overstates the state.
    """
    current = checkpoints.all(consumer)
    version = state_version(current)
    watermark = combined_watermark(current, list(shard_ids))
    windows = sorted({(key.metric, key.size_seconds, key.window_start) for key in touched})
    rows: list[ResultRow] = []
    for metric, size_seconds, window_start in windows:
        values = store.read_window(metric, size_seconds, window_start)
        rows.extend(window_rows(metric, size_seconds, window_start, values, watermark, version))
    return rows


class WindowResultsSink(ABC):
    """Where result rows are published."""

    @abstractmethod
    def write(self, rows: Sequence[ResultRow]) -> int:
        """Upsert the rows; a stored row of a higher state version is kept. Returns rows written."""


class DynamoWindowResults(WindowResultsSink):
    """Result rows in a DynamoDB table keyed ``pk = <metric>#<size>, sk = <start>#<key>``."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def write(self, rows: Sequence[ResultRow]) -> int:
        """Put each row unless the stored one has a higher state version; returns rows written."""
        written = 0
        for row in rows:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=to_attributes(row.to_item()),
                    ConditionExpression=_NEWER_OR_SAME,
                    ExpressionAttributeValues={":version": {"N": str(row.state_version)}},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
            written += 1
        return written

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
