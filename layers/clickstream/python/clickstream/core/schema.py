"""The one event schema: every field's type and bounds, for the stream and the lake alike.

The stream's parser (:func:`clickstream.core.events.parse_event`) enforces these bounds, and the
lake is declared to hold exactly them: the Glue jobs' parsers and the curated Parquet columns
(``glue_jobs/clickstream_glue``), and the catalog's tables and partition projection
(``template.yaml``). ``tests/unit/test_schema.py`` holds the sides equal, so an event the stream
accepts always fits the lake, and a change to one side alone fails the tests
(docs/architecture.md, Event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

INT32_MAX = 2**31 - 1
"""The largest value of the lake's ``int`` columns (Parquet INT32)."""

MAX_TEXT_LENGTH = 256
"""Longest text field, in characters."""

DEVICES: tuple[str, ...] = ("app_mobile", "app_tablet", "browser")

EVENT_YEARS: tuple[int, int] = (2020, 2099)
"""First and last year of the supported event-time range: the curated tables' projected years."""


@dataclass(frozen=True, slots=True)
class TextField:
    """A string of 1 to ``max_length`` characters, not blank, without control characters."""

    name: str
    max_length: int = MAX_TEXT_LENGTH
    allowed: tuple[str, ...] | None = None
    """The only values accepted, or None for any text."""


@dataclass(frozen=True, slots=True)
class IntegerField:
    """A JSON integer (not a boolean) from ``minimum`` to ``maximum``, both included."""

    name: str
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class TimestampField:
    """An ISO-8601 UTC time from ``earliest`` to ``latest``, both included, to the microsecond."""

    name: str
    earliest: datetime
    latest: datetime


Field = TextField | IntegerField | TimestampField

EVENT_ID = TextField("event_id")
CUSTID = IntegerField("custid", 1, INT32_MAX)
TRAFFICFROM = TextField("trafficfrom")
URL = TextField("url")
DEVICE = TextField("device", allowed=DEVICES)
TOUCHPRODUCT = IntegerField("touchproduct", 0, INT32_MAX)
"""0 means the page shows no product."""
EVENT_TIME = TimestampField(
    "trans_timestamp",
    earliest=datetime(EVENT_YEARS[0], 1, 1, tzinfo=UTC),
    latest=datetime(EVENT_YEARS[1], 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
)

EVENT_FIELDS: tuple[Field, ...] = (
    EVENT_ID,
    CUSTID,
    TRAFFICFROM,
    URL,
    DEVICE,
    TOUCHPRODUCT,
    EVENT_TIME,
)
"""The event's fields, in schema order (the order of the JSON line and of the lake's columns)."""
