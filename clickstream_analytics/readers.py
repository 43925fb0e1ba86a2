"""What the stream layer wrote, read from a stack: window results, sessions, and the summary.

- :func:`window_rows`: the window counter's results table (task 4), filtered and ordered;
- :func:`minute_sessions`, :func:`gap_sessions`: the sessionizer's layers in the raw bucket,
  deduplicated by key (the fullest revision wins);
- :func:`stack_summary`: the stream against the raw layer (and the search index, when the stack
  has one), and where each record went in the window counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.core.records import parse_records
from clickstream.core.search_documents import INDEX_PATTERN
from clickstream.core.window_counting import ResultRow
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream_analytics.failed_batches import BUCKET as FAILED_BATCH_BUCKET
from clickstream_analytics.failed_batches import kept_batches
from clickstream_analytics.reconcile import (
    Reconciliation,
    StreamAccounting,
    event_id_counts,
    lake_event_ids,
    read_gap_sessions,
    read_minute_sessions,
    reconcile,
    search_document_count,
    search_document_ids,
    stream_accounting,
    stream_records,
)
from clickstream_analytics.stack import AnalyticsError, Stack

WINDOW_METRICS: dict[str, str] = {"unique-users": UNIQUE_USERS, "top-sources": TOP_SOURCES}
"""The CLI's metric names -> the window counter's."""
WINDOW_SIZES: dict[str, int] = {"15s": 15, "1m": 60}
"""The CLI's window sizes -> seconds."""


def window_rows(
    stack: Stack,
    metric: str,
    size: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    final_only: bool = False,
) -> list[ResultRow]:
    """Result rows of one metric and window size, by window start, rank and key."""
    if (metric, size) == (TOP_SOURCES, 15):
        raise AnalyticsError("top sources are counted per minute only: use --size 1m")
    results = DynamoWindowResults(stack.client("dynamodb"), stack.physical_id("WindowResultsTable"))
    rows = [
        row
        for row in results.rows(metric, size)
        if (not final_only or row.final)
        and (start is None or row.window_start >= start)
        and (end is None or row.window_start < end)
    ]
    return sorted(rows, key=lambda r: (r.window_start, r.rank or 0, r.key))


def minute_sessions(stack: Stack) -> list[tuple[str, ...]]:
    """Per-minute sessions (task 1.1's columns) of ``aggregated/``, one per sessionid."""
    return read_minute_sessions(stack.client("s3"), stack.physical_id("RawBucket"))


def gap_sessions(stack: Stack) -> list[dict[str, Any]]:
    """Gap sessions of ``sessions/``, one per session_id."""
    return read_gap_sessions(stack.client("s3"), stack.physical_id("RawBucket"))


def search_stage(client: Any | None, event_ids: list[str]) -> dict[str, Any]:
    """Searchable ids and the document total for :func:`reconcile`; nothing without a client."""
    if client is None:
        return {}
    return {
        "searchable": search_document_ids(client, INDEX_PATTERN, event_ids),
        "search_documents": search_document_count(client, INDEX_PATTERN),
    }


@dataclass(frozen=True)
class StackSummary:
    """The stream reconciled with the raw layer, and the window counter's account."""

    reconciliation: Reconciliation
    accounting: StreamAccounting | None

    @property
    def ok(self) -> bool:
        """Both reconcile (the account only when the stack has a window counter)."""
        return self.reconciliation.ok and (self.accounting is None or self.accounting.ok)

    def lines(self) -> list[str]:
        """The printable summary."""
        lines = self.reconciliation.lines()
        if self.accounting is not None:
            lines += ["", "window counter:", *self.accounting.lines()]
        return lines


def stack_summary(stack: Stack) -> StackSummary:
    """Every record in the stream against the raw layer, the search index and the window state."""
    records = stream_records(stack.client("kinesis"), stack.physical_id("ClickstreamStream"))
    ids = event_id_counts(record.data for record in records)
    s3, raw_bucket = stack.client("s3"), stack.physical_id("RawBucket")
    lake = lake_event_ids(s3, raw_bucket, "rawdata/")
    sent = [key for key in ids.elements() if key]
    skew = timedelta(seconds=int(stack.parameter("MaxClockSkewSeconds")))
    parsed = parse_records(records, skew)
    valid = {record.event.event_id for record in parsed if record.event is not None}
    search = search_stage(stack.search_client(), sent)
    if search:
        search["indexable"] = valid
    result = reconcile(sent, sum(ids.values()), ids, lake, **search)
    accounting = None
    if stack.has_resource("WindowStateTable"):
        accounting = stream_accounting(
            parsed,
            s3,
            raw_bucket,
            stack.client("dynamodb"),
            stack.physical_id("WindowStateTable"),
            kept=_kept_records(stack, "WindowCounterFunction"),
        )
    return StackSummary(result, accounting)


def _kept_records(stack: Stack, function_logical_id: str) -> int:
    """Records in the function's batches kept in the failed-batch bucket, not redriven yet."""
    if not stack.has_resource(FAILED_BATCH_BUCKET):
        return 0
    name = stack.physical_id(function_logical_id)
    return sum(len(batch.records) for batch in kept_batches(stack) if batch.function_name == name)
