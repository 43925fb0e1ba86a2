"""Seed-compatible per-minute rows and inactivity-gap sessions. Pure.

The rules of (docs/architecture.md, Stream semantics: Sessions).

Everywhere here a repeated ``event_id`` counts once (the first one wins), and events of one key
are ordered by ``(trans_timestamp, event_id)``, so ties in time give the same result every run.

**Per-minute sessions** reproduce the old stagger-window SQL: one row per (custid, device,
minute of ``trans_timestamp``). The ``sessionid`` keeps the old shape
``<custid>_<device code>_<minute>``, where ``<minute>`` is the epoch second of the minute's start
(the old ``UNIX_TIMESTAMP(STEP(... BY INTERVAL '1' MINUTE)) / 1000``) and the device code is the
first three letters of the device's last ``_``-separated word (:data:`DEVICE_CODES`: ``mob``,
``tab``, ``bro``). The old SQL took the first three letters of the whole name, so app_mobile and
app_tablet both became ``app`` and collided; e.g. ``42_mob_1772892240``.

**Gap sessions** follow the web-analytics standard, per (custid, device):

- a gap strictly longer than ``inactivity_timeout`` starts a new session; a gap exactly equal
  to it does not;
- an event at or after ``session start + max_duration`` starts a new session, so a session
  spans at most ``max_duration - 1 µs``;
- ``duration_seconds`` is a float, exact to the microsecond (``(end - start)`` in µs / 10^6);
- ``session_id`` is ``<custid>_<device code>_<start in µs since the epoch>``.

:func:`gap_sessions` is the reference over a complete set of events; :class:`GapSessionizer`
computes the same sessions incrementally, batch after batch, from events that arrive out of order
within the allowed lateness.

**CSV lines** (:func:`csv_line`, :func:`parse_csv_line`) are RFC 4180, one row per line: a field
holding a comma or a double quote, or an empty field, is enclosed in double quotes, and a double
quote inside it is doubled; every other character, backslashes included, is written as it is. A
control character (U+0000 to U+001F, U+007F) is refused: the event parser never lets one through,
and a newline or carriage return would cut the row in two.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from clickstream.core.events import (
    Event,
    InvalidEvent,
    event_from_dict,
    format_timestamp,
    parse_timestamp,
)
from clickstream.core.windows import (
    END_OF_STREAM,
    duration_micros,
    from_micros,
    to_micros,
)

DEVICE_CODES: Mapping[str, str] = {"app_mobile": "mob", "app_tablet": "tab", "browser": "bro"}
"""Three-letter device code used in session ids: unique per device."""

MINUTE_SESSION_COLUMNS: tuple[str, ...] = (
    "sessionid",
    "userid",
    "device",
    "aggreg_time",
    "events",
    "beginurl",
    "endurl",
    "begin_min_ss",
    "end_min_ss",
    "totaltime_sec",
)
CHECKOUT_URL = "beer_checkout"
DEFAULT_INACTIVITY_TIMEOUT = timedelta(minutes=30)
DEFAULT_MAX_DURATION = timedelta(hours=24)
STATE_VERSION = 1

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND

SessionKey = tuple[int, str]
"""(custid, device)"""


def device_code(device: str) -> str:
    """The three-letter code of a device, e.g. ``app_tablet`` -> ``tab``."""
    try:
        return DEVICE_CODES[device]
    except KeyError:
        raise ValueError(f"unknown device {device!r}") from None


def event_order(event: Event) -> tuple[datetime, str]:
    """Sort key of events within a session: event time, then event_id."""
    return (event.trans_timestamp, event.event_id)


def unique_events(events: Iterable[Event]) -> list[Event]:
    """The events with repeated event_ids removed; the first occurrence wins, order is kept."""
    seen: set[str] = set()
    kept: list[Event] = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            kept.append(event)
    return kept


# --- CSV lines --------------------------------------------------------------------------------

CSV_SEPARATOR = ","
CSV_QUOTE = '"'
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class UnwritableCsvValue(ValueError):
    """A value no CSV line can carry: it holds a control character."""


def csv_line(values: Sequence[object], columns: Sequence[str]) -> str:
    """``values`` (named by ``columns``, for errors) as one RFC 4180 line ending with ``\\n``.

    Raises :class:`UnwritableCsvValue` for a value holding a control character, rather than
    write a line that readers would split or misread.
    """
    fields: list[str] = []
    for column, value in zip(columns, values, strict=True):
        text = str(value)
        control = _control_character(text)
        if control:
            raise UnwritableCsvValue(f"{column}: {control} cannot be written to a CSV line")
        if not text or CSV_SEPARATOR in text or CSV_QUOTE in text:
            text = CSV_QUOTE + text.replace(CSV_QUOTE, CSV_QUOTE * 2) + CSV_QUOTE
        fields.append(text)
    return CSV_SEPARATOR.join(fields) + "\n"


def parse_csv_line(line: str) -> list[str]:
    """The fields of one line as :func:`csv_line` writes it (its final ``\\n`` optional).

    An empty line has no fields. Raises :class:`InvalidEvent` for anything else the writer
    cannot produce: a control character, a quote inside an unquoted field, an unclosed quoted
    field, or text between a closing quote and the next separator.
    """
    text = line.removesuffix("\n")
    control = _control_character(text)
    if control:
        raise InvalidEvent(f"CSV: {control}")
    if not text:
        return []
    fields: list[str] = []
    start = 0
    while True:
        if text.startswith(CSV_QUOTE, start):
            value, end = _quoted_field(text, start)
        else:
            separator = text.find(CSV_SEPARATOR, start)
            end = len(text) if separator < 0 else separator
            value = text[start:end]
            quote = value.find(CSV_QUOTE)
            if quote >= 0:
                raise InvalidEvent(
                    f"CSV: quote inside an unquoted field at character {start + quote + 1}"
                )
        fields.append(value)
        if end == len(text):
            return fields
        start = end + 1


def _control_character(text: str) -> str:
    """``control character U+000A at character 3`` for the first one in ``text``, else ``""``."""
    found = _CONTROL_CHARACTER.search(text)
    if found is None:
        return ""
    return f"control character U+{ord(found.group()):04X} at character {found.start() + 1}"


def _quoted_field(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted field opening at ``start``, and where the field ends."""
    pieces: list[str] = []
    position = start + 1
    while True:
        quote = text.find(CSV_QUOTE, position)
        if quote < 0:
            raise InvalidEvent(f"CSV: quoted field opened at character {start + 1} is not closed")
        pieces.append(text[position:quote])
        if text.startswith(CSV_QUOTE, quote + 1):
            pieces.append(CSV_QUOTE)
            position = quote + 2
            continue
        end = quote + 1
        if end < len(text) and text[end] != CSV_SEPARATOR:
            raise InvalidEvent(
                f"CSV: {CSV_SEPARATOR!r} expected after the closing quote at character {end}"
            )
        return "".join(pieces), end


# --- Per-minute sessions ----------------------------------------------------------------------


@dataclass(frozen=True)
class MinuteSession:
    """One seed-compatible row: the events of one (custid, device) within one minute."""

    userid: int
    device: str
    minute: datetime
    events: int
    beginurl: str
    endurl: str
    first_event_time: datetime
    last_event_time: datetime

    @property
    def sessionid(self) -> str:
        """``<custid>_<device code>_<epoch second of the minute>``, unique per key."""
        minute_epoch_seconds = to_micros(self.minute) // _MICROS_PER_SECOND
        return f"{self.userid}_{device_code(self.device)}_{minute_epoch_seconds}"

    @property
    def aggreg_time(self) -> str:
        """The minute as ``YYYY-MM-DD HH:MM:00``."""
        return self.minute.strftime("%Y-%m-%d %H:%M:00")

    @property
    def begin_min_ss(self) -> str:
        """``MM:SS`` of the first event (fractions of a second dropped)."""
        return _minutes_seconds(self.first_event_time)

    @property
    def end_min_ss(self) -> str:
        """``MM:SS`` of the last event (fractions of a second dropped)."""
        return _minutes_seconds(self.last_event_time)

    @property
    def totaltime_sec(self) -> int:
        """Whole seconds between the first and the last event, rounded down."""
        elapsed = to_micros(self.last_event_time) - to_micros(self.first_event_time)
        return elapsed // _MICROS_PER_SECOND

    def row(self) -> tuple[str, int, str, str, int, str, str, str, str, int]:
        """The ten columns, in :data:`MINUTE_SESSION_COLUMNS` order."""
        return (
            self.sessionid,
            self.userid,
            self.device,
            self.aggreg_time,
            self.events,
            self.beginurl,
            self.endurl,
            self.begin_min_ss,
            self.end_min_ss,
            self.totaltime_sec,
        )

    def to_csv_line(self) -> str:
        """The row as one CSV line (:func:`csv_line`): no header, ending with ``\\n``."""
        return csv_line(self.row(), MINUTE_SESSION_COLUMNS)

    @property
    def row_id(self) -> str:
        """``<sessionid>-<first 16 hex digits of the SHA-256 of the CSV line>``.

        A redelivered row has the same id, so it can be dropped; a row revised by a late event of
        the same minute keeps its sessionid but gets a new id, and the revision with the most
        ``events`` is the most complete one (events are only ever added).
        """
        digest = hashlib.sha256(self.to_csv_line().encode("utf-8")).hexdigest()
        return f"{self.sessionid}-{digest[:16]}"


def minute_sessions(events: Iterable[Event]) -> list[MinuteSession]:
    """Per-minute sessions of the events, ordered by minute, custid and device."""
    groups: dict[tuple[int, int, str], list[Event]] = defaultdict(list)
    for event in unique_events(events):
        minute_micros = to_micros(event.trans_timestamp) // _MICROS_PER_MINUTE * _MICROS_PER_MINUTE
        groups[(minute_micros, event.custid, event.device)].append(event)
    sessions: list[MinuteSession] = []
    for (minute_micros, custid, device), group in sorted(groups.items()):
        first = min(group, key=event_order)
        last = max(group, key=event_order)
        sessions.append(
            MinuteSession(
                userid=custid,
                device=device,
                minute=from_micros(minute_micros),
                events=len(group),
                beginurl=first.url,
                endurl=last.url,
                first_event_time=first.trans_timestamp,
                last_event_time=last.trans_timestamp,
            )
        )
    return sessions


def _minutes_seconds(moment: datetime) -> str:
    return f"{moment.minute:02d}:{moment.second:02d}"


# --- Gap sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GapSession:
    """One inactivity-gap session of one (custid, device)."""

    session_id: str
    custid: int
    device: str
    start: datetime
    end: datetime
    trafficfrom: str
    """Traffic source of the first event."""
    entry_url: str
    exit_url: str
    page_count: int
    """Number of (distinct) events."""
    duration_seconds: float
    """``end - start`` in seconds, exact to the microsecond."""
    reached_checkout: bool
    """True when any event's url is ``beer_checkout``."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, timestamps formatted like event timestamps."""
        return {
            "session_id": self.session_id,
            "custid": self.custid,
            "device": self.device,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
            "trafficfrom": self.trafficfrom,
            "entry_url": self.entry_url,
            "exit_url": self.exit_url,
            "page_count": self.page_count,
            "duration_seconds": self.duration_seconds,
            "reached_checkout": self.reached_checkout,
        }

    def to_json_line(self) -> str:
        """The session as one compact JSON object (:meth:`to_dict`) ending with ``\\n``: a line
        of ``sessions/``."""
        return json.dumps(self.to_dict(), separators=(",", ":")) + "\n"


def gap_session_from_events(events: Sequence[Event]) -> GapSession:
    """The session made of ``events``: one key, sorted by :func:`event_order`, not empty."""
    first, last = events[0], events[-1]
    start_micros = to_micros(first.trans_timestamp)
    end_micros = to_micros(last.trans_timestamp)
    return GapSession(
        session_id=f"{first.custid}_{device_code(first.device)}_{start_micros}",
        custid=first.custid,
        device=first.device,
        start=first.trans_timestamp,
        end=last.trans_timestamp,
        trafficfrom=first.trafficfrom,
        entry_url=first.url,
        exit_url=last.url,
        page_count=len(events),
        duration_seconds=(end_micros - start_micros) / _MICROS_PER_SECOND,
        reached_checkout=any(event.url == CHECKOUT_URL for event in events),
    )


def split_sessions(
    ordered: Sequence[Event], inactivity_timeout: timedelta, max_duration: timedelta
) -> list[list[Event]]:
    """Cut the sorted events of one key into sessions, the first event starting the first one."""
    timeout = duration_micros(inactivity_timeout)
    cap = duration_micros(max_duration)
    sessions: list[list[Event]] = []
    start = previous = 0
    for event in ordered:
        moment = to_micros(event.trans_timestamp)
        if not sessions or moment - previous > timeout or moment >= start + cap:
            sessions.append([])
            start = moment
        sessions[-1].append(event)
        previous = moment
    return sessions


def gap_sessions(
    events: Iterable[Event],
    inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
) -> list[GapSession]:
    """Reference gap sessions of a complete set of events, ordered by start, custid, device."""
    by_key: dict[SessionKey, list[Event]] = defaultdict(list)
    for event in unique_events(events):
        by_key[(event.custid, event.device)].append(event)
    sessions: list[GapSession] = []
    for group in by_key.values():
        ordered = sorted(group, key=event_order)
        for session_events in split_sessions(ordered, inactivity_timeout, max_duration):
            sessions.append(gap_session_from_events(session_events))
    return sorted(sessions, key=_session_order)


class AddOutcome(StrEnum):
    """What :meth:`GapSessionizer.add` did with an event."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    """Its event_id is already in an open session."""
    LATE = "late"
    """Its time is before the watermark of the last close: it could change a closed session."""


class GapSessionizer:
    """Incremental gap sessions for a stream consumer; the state survives via ``to_dict``.

    Open events are kept per (custid, device), sorted by :func:`event_order`. ``close_expired``
    re-cuts each key's open events into sessions and closes, in time order, each session that no
    event at or after the watermark can change any more:

    - its last event + ``inactivity_timeout`` < watermark (any later event opens a new one), or
    - watermark >= its start + ``max_duration`` (the cap is reached).

    This relies on every event accepted afterwards being at or after that watermark, so ``add``
    rejects as late any event earlier than the highest watermark passed to ``close_expired``.
    With that, the closed sessions equal :func:`gap_sessions` over all accepted events, whatever
    their arrival order. A duplicate of an event of an already closed session is reported late.
    """

    def __init__(
        self,
        inactivity_timeout: timedelta = DEFAULT_INACTIVITY_TIMEOUT,
        max_duration: timedelta = DEFAULT_MAX_DURATION,
    ) -> None:
        if inactivity_timeout < timedelta(0) or max_duration <= timedelta(0):
            raise ValueError("inactivity_timeout must be >= 0 and max_duration > 0")
        self.inactivity_timeout = inactivity_timeout
        self.max_duration = max_duration
        self.watermark: datetime | None = None
        self._open: dict[SessionKey, list[Event]] = {}
        self._open_ids: set[str] = set()

    @property
    def open_event_count(self) -> int:
        """How many events wait in open sessions."""
        return len(self._open_ids)

    def add(self, event: Event) -> AddOutcome:
        """Add one event to the open sessions of its key, unless it is a duplicate or late."""
        if event.event_id in self._open_ids:
            return AddOutcome.DUPLICATE
        if self.watermark is not None and event.trans_timestamp < self.watermark:
            return AddOutcome.LATE
        key = (event.custid, event.device)
        bisect.insort(self._open.setdefault(key, []), event, key=event_order)
        self._open_ids.add(event.event_id)
        return AddOutcome.ADDED

    def close_expired(self, watermark: datetime) -> list[GapSession]:
        """Close the sessions the watermark makes final; ordered by start, custid, device."""
        current = watermark if self.watermark is None else max(self.watermark, watermark)
        self.watermark = current
        watermark_micros = to_micros(current)
        timeout = duration_micros(self.inactivity_timeout)
        cap = duration_micros(self.max_duration)
        closed: list[GapSession] = []
        for key in list(self._open):
            pending = split_sessions(self._open[key], self.inactivity_timeout, self.max_duration)
            while pending:
                start = to_micros(pending[0][0].trans_timestamp)
                last = to_micros(pending[0][-1].trans_timestamp)
                if not (last + timeout < watermark_micros or watermark_micros >= start + cap):
                    break
                closed.append(self._close(pending.pop(0)))
            self._keep_open(key, pending)
        return sorted(closed, key=_session_order)

    def close_all(self) -> list[GapSession]:
        """End of stream: close every open session; later events are all late."""
        self.watermark = END_OF_STREAM
        closed: list[GapSession] = []
        for key in list(self._open):
            for session_events in split_sessions(
                self._open[key], self.inactivity_timeout, self.max_duration
            ):
                closed.append(self._close(session_events))
            self._keep_open(key, [])
        return sorted(closed, key=_session_order)

    def to_dict(self) -> dict[str, Any]:
        """The whole state as a JSON-ready mapping."""
        return {
            "version": STATE_VERSION,
            "inactivity_timeout_us": duration_micros(self.inactivity_timeout),
            "max_duration_us": duration_micros(self.max_duration),
            "watermark": None if self.watermark is None else format_timestamp(self.watermark),
            "open_events": [
                event.to_dict() for key in sorted(self._open) for event in self._open[key]
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GapSessionizer:
        """Rebuild the state written by :meth:`to_dict`."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sessionizer state version {data.get('version')!r}")
        sessionizer = cls(
            inactivity_timeout=timedelta(microseconds=int(data["inactivity_timeout_us"])),
            max_duration=timedelta(microseconds=int(data["max_duration_us"])),
        )
        for document in data["open_events"]:
            sessionizer.add(event_from_dict(document))
        watermark = data["watermark"]
        sessionizer.watermark = None if watermark is None else parse_timestamp(watermark)
        return sessionizer

    def _close(self, session_events: list[Event]) -> GapSession:
        for event in session_events:
            self._open_ids.discard(event.event_id)
        return gap_session_from_events(session_events)

    def _keep_open(self, key: SessionKey, pending: list[list[Event]]) -> None:
        remaining = [event for session_events in pending for event in session_events]
        if remaining:
            self._open[key] = remaining
        else:
            del self._open[key]


def _session_order(session: GapSession) -> tuple[datetime, int, str]:
    return (session.start, session.custid, session.device)
