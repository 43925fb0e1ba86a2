"""The clickstream event model: strict parsing, validation and JSON-lines serialisation.

Every raw record either parses into an :class:`Event` or raises :class:`InvalidEvent` whose
``reason`` says precisely what is wrong, so callers can quarantine it with that reason. The
fields' types and bounds are those of :mod:`clickstream.core.schema`, shared with the lake.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickstream.core.schema import (
    CUSTID,
    DEVICE,
    DEVICES,
    EVENT_FIELDS,
    EVENT_ID,
    EVENT_TIME,
    MAX_TEXT_LENGTH,
    TOUCHPRODUCT,
    TRAFFICFROM,
    URL,
    IntegerField,
    TextField,
)

MAX_EVENT_BYTES = 4096
"""Largest serialised event accepted, in bytes (a generated event is about 230 bytes)."""

FIELDS: tuple[str, ...] = tuple(field.name for field in EVENT_FIELDS)
"""The event's field names, in schema order."""

__all__ = [
    "DEVICES",
    "FIELDS",
    "MAX_EVENT_BYTES",
    "MAX_TEXT_LENGTH",
    "Event",
    "InvalidEvent",
    "check_event_time",
    "event_from_dict",
    "format_timestamp",
    "parse_event",
    "parse_timestamp",
]

_TIMESTAMP = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,6}))?(?P<zone>Z|\+00:00)?",
    re.ASCII,
)
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class InvalidEvent(ValueError):
    """A record that is not a valid event; ``reason`` is a one-line, human-readable cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """One clickstream event (docs/architecture.md, Event); ``trans_timestamp`` is aware UTC."""

    event_id: str
    custid: int
    trafficfrom: str
    url: str
    device: str
    touchproduct: int
    trans_timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready mapping, fields in schema order."""
        return {
            "event_id": self.event_id,
            "custid": self.custid,
            "trafficfrom": self.trafficfrom,
            "url": self.url,
            "device": self.device,
            "touchproduct": self.touchproduct,
            "trans_timestamp": format_timestamp(self.trans_timestamp),
        }

    def to_json_line(self) -> bytes:
        """One compact JSON object and a newline, as written to the stream and the lake."""
        return (json.dumps(self.to_dict(), separators=(",", ":")) + "\n").encode("utf-8")

    @property
    def partition_key(self) -> str:
        """Kinesis partition key: ``custid`` keeps each user's events ordered within one shard."""
        return str(self.custid)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and no offset, e.g. ``2026-03-07T14:04:56.683790``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> datetime:
    """Parse an event timestamp; UTC only (no offset, ``Z`` or ``+00:00``), up to microseconds."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise InvalidEvent(
            f"trans_timestamp: {text[:40]!r} is not ISO-8601 UTC like 2026-03-07T14:04:56.683790"
        )
    fraction = (match["fraction"] or "").ljust(6, "0")
    try:
        moment = datetime.strptime(f"{match['base']}.{fraction}", _TIMESTAMP_FORMAT)
    except ValueError as error:
        raise InvalidEvent(f"trans_timestamp: {text!r} is not a real date/time ({error})") from None
    return moment.replace(tzinfo=UTC)


def check_event_time(moment: datetime, name: str = EVENT_TIME.name) -> datetime:
    """``moment``, or :class:`InvalidEvent` when it is outside the supported event-time range.

    The range is the years the curated tables' partition projection covers: a row outside it
    would be written to a partition Athena never reads.
    """
    if not EVENT_TIME.earliest <= moment <= EVENT_TIME.latest:
        raise InvalidEvent(
            f"{name}: {format_timestamp(moment)} is outside the supported range "
            f"{format_timestamp(EVENT_TIME.earliest)} to {format_timestamp(EVENT_TIME.latest)}"
        )
    return moment


def parse_event(data: bytes | str) -> Event:
    """Decode, parse and validate one raw record. Raises :class:`InvalidEvent` with the reason."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
    except UnicodeEncodeError as error:
        raise InvalidEvent(
            f"record is not valid Unicode (unpaired surrogate at character {error.start})"
        ) from None
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"record is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(f"record is not valid UTF-8 (byte {error.start})") from None
    if not text.strip():
        raise InvalidEvent("record is empty")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise InvalidEvent(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return event_from_dict(document)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` object hook: a repeated key is ambiguous (readers disagree on which wins)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidEvent(f"duplicate field: {key}")
        document[key] = value
    return document


def event_from_dict(document: Any) -> Event:
    """Validate a decoded JSON document against the schema. Raises :class:`InvalidEvent`."""
    if not isinstance(document, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(document).__name__}")
    missing = [name for name in FIELDS if name not in document]
    if missing:
        raise InvalidEvent(f"missing required field(s): {', '.join(missing)}")
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise InvalidEvent(f"unknown field(s): {', '.join(unknown)}")
    device = _text(document, DEVICE)
    timestamp = document[EVENT_TIME.name]
    if not isinstance(timestamp, str):
        raise InvalidEvent(f"{EVENT_TIME.name}: expected string, got {_json_type(timestamp)}")
    return Event(
        event_id=_event_id(document),
        custid=_integer(document, CUSTID),
        trafficfrom=_text(document, TRAFFICFROM),
        url=_text(document, URL),
        device=device,
        touchproduct=_integer(document, TOUCHPRODUCT),
        trans_timestamp=check_event_time(parse_timestamp(timestamp)),
    )


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _integer(document: dict[str, Any], field: IntegerField) -> int:
    name, value = field.name, document[field.name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{name}: expected integer, got {_json_type(value)}")
    if not field.minimum <= value <= field.maximum:
        raise InvalidEvent(f"{name}: {value} is out of range [{field.minimum}, {field.maximum}]")
    return value


def _text(document: dict[str, Any], field: TextField) -> str:
    name, value = field.name, document[field.name]
    if not isinstance(value, str):
        raise InvalidEvent(f"{name}: expected string, got {_json_type(value)}")
    if not value.strip():
        raise InvalidEvent(f"{name}: must not be empty")
    if len(value) > field.max_length:
        raise InvalidEvent(f"{name}: {len(value)} characters, over the {field.max_length} limit")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"{name}: contains an unpaired UTF-16 surrogate") from None
    control = _CONTROL_CHARACTER.search(value)
    if control is not None:
        raise InvalidEvent(
            f"{name}: contains control character U+{ord(control.group()):04X} "
            f"at position {control.start()}"
        )
    if field.allowed is not None and value not in field.allowed:
        raise InvalidEvent(f"{name}: {value!r} is not one of {', '.join(field.allowed)}")
    return value


def _event_id(document: dict[str, Any]) -> str:
    value = _text(document, EVENT_ID)
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidEvent(f"event_id: {value[:40]!r} is not a UUID") from None
    if str(parsed) != value.lower():
        raise InvalidEvent(f"event_id: {value[:40]!r} is not in canonical 8-4-4-4-12 UUID form")
    return value.lower()
