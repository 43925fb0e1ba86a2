"""The one inbound adapter: a Lambda Kinesis event into parsed records, grouped by shard.

Every consumer reads its batch here. Each record's data is decoded from base64, split into its
events (a record may pack several JSON lines, :func:`clickstream.core.records.split_record`) and
each event parsed ONCE into a :class:`~clickstream.core.records.ParsedRecord` (its event, or its
rejection with the reason), so no consumer parses again. Here every consumer also gets the
clock-skew check: an event more than ``max_clock_skew`` ahead of its record's
``approximateArrivalTimestamp`` is rejected (:func:`clickstream.core.records.parse_record`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.core.records import (
    DEFAULT_MAX_CLOCK_SKEW,
    ParsedRecord,
    ShardRecord,
    parse_record,
    rejected,
    split_record,
)

UNKNOWN_SHARD = "unknown-shard"
NOT_BASE64 = "record data is not valid base64"


def parse_lambda_record(
    record: Mapping[str, Any], max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> list[ParsedRecord]:
    """Read ``{"eventID": "<shard>:<seq>", "kinesis": {"data", "sequenceNumber", ...}}``: its
    events, in order, one per line of a packed record.

    Data that is not valid base64 is rejected whole (kept as text, undecoded) without parsing.
    An event more than ``max_clock_skew`` ahead of ``approximateArrivalTimestamp`` is rejected; a
    record without that field (never one Lambda delivers) is not skew-checked.
    """
    kinesis = record["kinesis"]
    arrival = kinesis.get("approximateArrivalTimestamp")
    raw = kinesis.get("data", "")
    shard_id = str(record.get("eventID", "")).split(":", 1)[0] or UNKNOWN_SHARD
    sequence_number = str(kinesis["sequenceNumber"])
    moment = datetime.fromtimestamp(float(arrival), UTC) if arrival is not None else None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        text = str(raw).encode("utf-8", "replace")
        return [rejected(ShardRecord(shard_id, sequence_number, text, moment), NOT_BASE64)]
    whole = ShardRecord(shard_id, sequence_number, data, moment)
    return [parse_record(event, max_clock_skew) for event in split_record(whole)]


def parse_lambda_records(
    records: Iterable[Mapping[str, Any]], max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> list[ParsedRecord]:
    """:func:`parse_lambda_record` of each record: every event, in the Lambda event's order."""
    return [parsed for record in records for parsed in parse_lambda_record(record, max_clock_skew)]


def records_by_shard(
    event: Mapping[str, Any], max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> dict[str, list[ParsedRecord]]:
    """The event's parsed records grouped by shard, each shard's in order."""
    by_shard: dict[str, list[ParsedRecord]] = {}
    for parsed in parse_lambda_records(event.get("Records", []), max_clock_skew):
        by_shard.setdefault(parsed.record.shard_id, []).append(parsed)
    return by_shard


def iterator_age_ms(event: Mapping[str, Any], now: datetime) -> int:
    """How far behind the stream a Lambda Kinesis batch is: ``now`` minus its oldest arrival.

    The same figure as Lambda's ``IteratorAge`` metric, per invocation; 0 for an empty batch.
    """
    arrivals = [r["kinesis"]["approximateArrivalTimestamp"] for r in event.get("Records", [])]
    if not arrivals:
        return 0
    return max(0, int((now.timestamp() - min(arrivals)) * 1000))
