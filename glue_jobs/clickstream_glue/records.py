"""Pure parsers of the lake's text layers: each line becomes a typed row or an ``InvalidEvent``.

Events use the domain's own :func:`clickstream.core.events.parse_event`, so the batch layer accepts
exactly what the stream layer's parser accepts (the stream's clock-skew check needs each record's
Kinesis arrival time, which raw lines do not carry). Timestamps become microseconds since the
epoch (UTC); Spark turns them into real ``timestamp`` columns.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clickstream.core.events import (
    DEVICES,
    InvalidEvent,
    check_event_time,
    parse_event,
    parse_timestamp,
)
from clickstream.core.schema import INT32_MAX
from clickstream.core.sessions import MINUTE_SESSION_COLUMNS, parse_csv_line

Row = tuple[Any, ...]
LineParser = Callable[[str], Row]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_SECOND = re.compile(r"[0-5]\d:[0-5]\d", re.ASCII)
_AGGREG_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:00", re.ASCII)
_MAX_INT32 = INT32_MAX
"""The lake's ``int`` columns are Parquet INT32 (:mod:`clickstream_glue.schemas`)."""


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware UTC datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def event_row(line: str) -> Row:
    """A raw JSON line as an :data:`~clickstream_glue.schemas.EVENT_SCHEMA` row.

    The line is validated by the stream's own parser, whose bounds (``clickstream.core.schema``)
    fit the lake's columns and partitions; the timestamp is in epoch microseconds.
    """
    event = parse_event(line)
    return (
        event.event_id,
        event.custid,
        event.trafficfrom,
        event.url,
        event.device,
        event.touchproduct,
        micros(event.trans_timestamp),
    )


def minute_session_row(line: str) -> Row:
    """A seed-compatible CSV line (``aggregated/``) as a typed row; aggreg_time in microseconds.

    The line is read exactly as the sessionizer writes it (:func:`parse_csv_line`): quoted
    commas, doubled quotes, backslashes as they are; a line it could not have written is refused.
    """
    fields = parse_csv_line(line)
    if len(fields) != len(MINUTE_SESSION_COLUMNS):
        raise InvalidEvent(f"expected {len(MINUTE_SESSION_COLUMNS)} CSV columns, got {len(fields)}")
    sessionid, userid, device, aggreg_time, events, beginurl, endurl, begin, end, total = fields
    if not sessionid.strip():
        raise InvalidEvent("sessionid: must not be empty")
    if device not in DEVICES:
        raise InvalidEvent(f"device: {device[:40]!r} is not one of {', '.join(DEVICES)}")
    if not _AGGREG_TIME.fullmatch(aggreg_time):
        raise InvalidEvent(f"aggreg_time: {aggreg_time[:40]!r} is not YYYY-MM-DD HH:MM:00")
    minute = _timestamp("aggreg_time", aggreg_time.replace(" ", "T"))
    for name, value in (("begin_min_ss", begin), ("end_min_ss", end)):
        if not _MINUTE_SECOND.fullmatch(value):
            raise InvalidEvent(f"{name}: {value[:40]!r} is not MM:SS")
    for name, value in (("beginurl", beginurl), ("endurl", endurl)):
        if not value.strip():
            raise InvalidEvent(f"{name}: must not be empty")
    return (
        sessionid,
        _int_text("userid", userid, 1, _MAX_INT32),
        device,
        micros(minute),
        _int_text("events", events, 1, _MAX_INT32),
        beginurl,
        endurl,
        begin,
        end,
        _int_text("totaltime_sec", total, 0, 59),
    )


def gap_session_row(line: str) -> Row:
    """A gap-session JSON line (``sessions/``) as a typed row; start and end in microseconds."""
    try:
        document = json.loads(line)
    except json.JSONDecodeError as error:
        raise InvalidEvent(f"malformed JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(document, dict):
        raise InvalidEvent("expected a JSON object")
    expected = {"session_id", "custid", "device", "start", "end", "trafficfrom"}
    expected |= {"entry_url", "exit_url", "page_count", "duration_seconds", "reached_checkout"}
    missing = sorted(expected - set(document))
    if missing:
        raise InvalidEvent(f"missing required field(s): {', '.join(missing)}")
    texts = ("session_id", "device", "start", "end", "trafficfrom", "entry_url", "exit_url")
    for name in texts:
        if not isinstance(document[name], str) or not document[name].strip():
            raise InvalidEvent(f"{name}: expected a non-empty string")
    if document["device"] not in DEVICES:
        raise InvalidEvent(
            f"device: {document['device'][:40]!r} is not one of {', '.join(DEVICES)}"
        )
    start, end = _timestamp("start", document["start"]), _timestamp("end", document["end"])
    if end < start:
        raise InvalidEvent("end: before start")
    duration = document["duration_seconds"]
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or duration < 0
    ):
        raise InvalidEvent("duration_seconds: expected a non-negative number")
    if not isinstance(document["reached_checkout"], bool):
        raise InvalidEvent("reached_checkout: expected a boolean")
    return (
        document["session_id"],
        _int_value("custid", document["custid"], 1),
        document["device"],
        micros(start),
        micros(end),
        document["trafficfrom"],
        document["entry_url"],
        document["exit_url"],
        _int_value("page_count", document["page_count"], 1),
        float(duration),
        document["reached_checkout"],
    )


def _timestamp(name: str, text: str) -> datetime:
    """:func:`parse_timestamp` within the event-time range, its reason naming the field ``name``.

    Session times are event times (a minute's start, a session's first and last event), so they
    lie in the range the stream accepts, and so in the curated tables' projected partitions.
    """
    try:
        moment = parse_timestamp(text)
    except InvalidEvent as error:
        raise InvalidEvent(error.reason.replace("trans_timestamp:", f"{name}:", 1)) from None
    return check_event_time(moment, name)


def _int_text(name: str, text: str, minimum: int, maximum: int) -> int:
    if not re.fullmatch(r"-?\d{1,19}", text, re.ASCII):
        raise InvalidEvent(f"{name}: {text[:40]!r} is not an integer")
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidEvent(f"{name}: {value} is out of range [{minimum}, {maximum}]")
    return value


def _int_value(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{name}: expected an integer")
    if not minimum <= value <= _MAX_INT32:
        raise InvalidEvent(f"{name}: {value} is out of range [{minimum}, {_MAX_INT32}]")
    return value
