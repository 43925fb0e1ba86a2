"""Parsers of the lake's text layers: typed rows, or an ``InvalidEvent`` naming the problem."""

from __future__ import annotations

import calendar
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickstream.core.events import InvalidEvent
from clickstream.core.sessions import gap_sessions, minute_sessions
from clickstream_glue.records import (
    LineParser,
    event_row,
    gap_session_row,
    micros,
    minute_session_row,
)
from tests.factories import at, make_event
from tests.support.text_values import HOSTILE_URLS

EVENT_ID = "0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a"
EVENT: dict[str, Any] = {
    "event_id": EVENT_ID,
    "custid": 42,
    "trafficfrom": "email_CampanhaBeer",
    "url": "beer_product_detail",
    "device": "app_mobile",
    "touchproduct": 117,
    "trans_timestamp": "2026-03-07T14:04:56.683790",
}
MINUTE_ROW: dict[str, str] = {
    "sessionid": "42_tab_1772892240",
    "userid": "42",
    "device": "app_tablet",
    "aggreg_time": "2026-03-07 14:04:00",
    "events": "3",
    "beginurl": "beer_vitrine_nav",
    "endurl": "beer_cart",
    "begin_min_ss": "04:01",
    "end_min_ss": "04:03",
    "totaltime_sec": "1",
}
GAP_SESSION: dict[str, Any] = {
    "session_id": "7_mob_1772892000000000",
    "custid": 7,
    "device": "app_mobile",
    "start": "2026-03-07T14:00:00.000000",
    "end": "2026-03-07T14:10:00.500000",
    "trafficfrom": "google",
    "entry_url": "beer_home",
    "exit_url": "beer_checkout",
    "page_count": 2,
    "duration_seconds": 600.5,
    "reached_checkout": True,
}


def epoch_micros(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    """Microseconds since the epoch of a whole UTC second, computed without ``micros``."""
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * 1_000_000


def event_line(**changes: Any) -> str:
    """The valid event as a JSON line, with fields replaced (or removed when set to ...)."""
    document = {key: value for key, value in {**EVENT, **changes}.items() if value is not ...}
    return json.dumps(document)


def minute_line(**changes: str) -> str:
    """The valid minute-session row as a CSV line, with columns replaced."""
    return ",".join({**MINUTE_ROW, **changes}.values())


def gap_line(**changes: Any) -> str:
    """The valid gap session as a JSON line, with fields replaced (or removed when set to ...)."""
    document = {key: value for key, value in {**GAP_SESSION, **changes}.items() if value is not ...}
    return json.dumps(document)


def reason_of(parser: LineParser, line: str) -> str:
    """The reason ``parser`` rejects ``line`` with; fails the test if it is accepted."""
    with pytest.raises(InvalidEvent) as caught:
        parser(line)
    return caught.value.reason


# ---------------------------------------------------------------------------- micros


def test_micros_counts_microseconds_since_the_epoch() -> None:
    # GIVEN a moment with a microsecond fraction
    moment = datetime(2026, 3, 7, 14, 4, 56, 683790, tzinfo=UTC)
    # WHEN it is converted
    value = micros(moment)
    # THEN it is the whole seconds since the epoch times 10^6, plus the fraction
    assert value == epoch_micros(2026, 3, 7, 14, 4, 56) + 683_790
    assert value == (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_micros_is_negative_before_the_epoch() -> None:
    # GIVEN the last microsecond before the epoch
    moment = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    # WHEN it is converted
    # THEN it is exactly -1 (no off-by-a-day from negative timedelta days)
    assert micros(moment) == -1


# ---------------------------------------------------------------------------- events


def test_valid_event_line_becomes_the_exact_row() -> None:
    # GIVEN a valid raw event line
    line = event_line()
    # WHEN it is parsed
    row = event_row(line)
    # THEN every column is typed, the timestamp in epoch microseconds
    assert row == (
        EVENT_ID,
        42,
        "email_CampanhaBeer",
        "beer_product_detail",
        "app_mobile",
        117,
        epoch_micros(2026, 3, 7, 14, 4, 56) + 683_790,
    )


def test_event_custid_at_the_int32_limit_is_accepted() -> None:
    # GIVEN a custid equal to the largest value of the lake's int column
    line = event_line(custid=2**31 - 1)
    # WHEN it is parsed
    # THEN it is kept as is
    assert event_row(line)[1] == 2_147_483_647


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param('{"event_id": ', "malformed JSON", id="malformed-json"),
        pytest.param(event_line(url=...), "missing required field(s): url", id="missing-field"),
        pytest.param(event_line(custid="42"), "custid: expected integer", id="wrong-type"),
        pytest.param(event_line(device="desktop"), "device: 'desktop'", id="bad-device"),
        pytest.param(
            event_line(trans_timestamp="07/03/2026 14:04"),
            "trans_timestamp: '07/03/2026 14:04' is not ISO-8601",
            id="bad-timestamp",
        ),
        pytest.param(
            event_line(custid=2**31),
            "custid: 2147483648 is out of range [1, 2147483647]",
            id="custid-above-int32",
        ),
        pytest.param(
            event_line(touchproduct=2**31),
            "touchproduct: 2147483648 is out of range [0, 2147483647]",
            id="touchproduct-above-int32",
        ),
        pytest.param(
            event_line(url="beer\ncart"),
            "url: contains control character U+000A at position 4",
            id="control-character",
        ),
        pytest.param(
            event_line(trans_timestamp="1970-01-01T00:00:00"),
            "trans_timestamp: 1970-01-01T00:00:00.000000 is outside the supported range",
            id="before-the-event-time-range",
        ),
        pytest.param("", "record is empty", id="empty-line"),
        pytest.param("   ", "record is empty", id="blank-line"),
    ],
)
def test_bad_event_lines_are_rejected_with_a_reason(line: str, expected: str) -> None:
    # GIVEN a raw line with one problem
    # WHEN it is parsed
    reason = reason_of(event_row, line)
    # THEN the reason names that problem
    assert expected in reason


# ---------------------------------------------------------------------------- minute sessions


def test_domain_minute_session_csv_line_parses_to_the_typed_row() -> None:
    # GIVEN the CSV line the domain writes for three events of one user, device and minute
    events = [
        make_event(at("2026-03-07T14:04:03.899999"), custid=42, device="app_tablet", url="c"),
        make_event(at("2026-03-07T14:04:01.900000"), custid=42, device="app_tablet", url="a"),
        make_event(at("2026-03-07T14:04:02.000000"), custid=42, device="app_tablet", url="b"),
    ]
    (session,) = minute_sessions(events)
    # WHEN the line is parsed
    row = minute_session_row(session.to_csv_line())
    # THEN the columns are typed and aggreg_time is the minute in epoch microseconds
    minute = epoch_micros(2026, 3, 7, 14, 4, 0)
    assert row == (
        f"42_tab_{minute // 1_000_000}",
        42,
        "app_tablet",
        minute,
        3,
        "a",
        "c",
        "04:01",
        "04:03",
        1,
    )


def test_minute_session_url_with_a_comma_survives_csv_quoting() -> None:
    # GIVEN a domain row whose url holds a comma and a quote, so the CSV writer quotes it
    event = make_event(at("2026-03-07T14:04:05"), custid=9, url='beer,"special"')
    (session,) = minute_sessions([event])
    line = session.to_csv_line()
    assert '"beer,""special"""' in line
    # WHEN the line is parsed
    row = minute_session_row(line)
    # THEN the url is restored exactly, in both url columns
    assert row[5:7] == ('beer,"special"', 'beer,"special"')


def test_hostile_urls_are_read_back_exactly_from_their_csv_lines() -> None:
    # GIVEN per-minute rows whose urls hold commas, quotes, backslashes and any unicode
    for url in HOSTILE_URLS:
        event = make_event(at("2026-03-07T14:04:05"), custid=9, url=url)
        (session,) = minute_sessions([event])
        # WHEN the job's parser reads the line the sessionizer writes
        row = minute_session_row(session.to_csv_line().removesuffix("\n"))
        # THEN both url columns hold the url exactly
        assert row[5:7] == (url, url)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(minute_line() + ",extra", "expected 10 CSV columns, got 11", id="too-many"),
        pytest.param("a,b,c", "expected 10 CSV columns, got 3", id="too-few"),
        pytest.param("", "expected 10 CSV columns, got 0", id="empty-line"),
        pytest.param(minute_line(userid="4x2"), "userid: '4x2' is not an integer", id="userid"),
        pytest.param(
            minute_line(userid="0"), "userid: 0 is out of range [1, 2147483647]", id="userid-zero"
        ),
        pytest.param(
            minute_line(aggreg_time="2026-03-07 14:04:30"),
            "aggreg_time: '2026-03-07 14:04:30' is not YYYY-MM-DD HH:MM:00",
            id="aggreg-time-seconds",
        ),
        pytest.param(
            minute_line(aggreg_time="2026-03-07T14:04:00"),
            "aggreg_time: '2026-03-07T14:04:00' is not YYYY-MM-DD HH:MM:00",
            id="aggreg-time-iso",
        ),
        pytest.param(
            minute_line(begin_min_ss="4:01"), "begin_min_ss: '4:01' is not MM:SS", id="begin"
        ),
        pytest.param(minute_line(end_min_ss="04:60"), "end_min_ss: '04:60' is not MM:SS", id="end"),
        pytest.param(
            minute_line(totaltime_sec="60"),
            "totaltime_sec: 60 is out of range [0, 59]",
            id="totaltime-60",
        ),
        pytest.param(
            minute_line(totaltime_sec="-1"),
            "totaltime_sec: -1 is out of range [0, 59]",
            id="totaltime-negative",
        ),
        pytest.param(minute_line(device="desktop"), "device: 'desktop' is not one of", id="device"),
        pytest.param(minute_line(sessionid=" "), "sessionid: must not be empty", id="sessionid"),
        pytest.param(
            minute_line(beginurl='beer"cart'),
            "CSV: quote inside an unquoted field",
            id="bare-quote",
        ),
        pytest.param(
            minute_line(endurl='"beer_cart'), "CSV: quoted field opened at", id="unclosed-quote"
        ),
        pytest.param(minute_line(beginurl="beer\tcart"), "CSV: control character U+0009", id="tab"),
    ],
)
def test_bad_minute_session_lines_are_rejected_with_a_reason(line: str, expected: str) -> None:
    # GIVEN a CSV line with one problem
    # WHEN it is parsed
    reason = reason_of(minute_session_row, line)
    # THEN the reason names that problem
    assert expected in reason


def test_minute_session_totaltime_bounds_are_inclusive() -> None:
    # GIVEN rows at both ends of 0..59 seconds
    # WHEN they are parsed
    # THEN both are accepted as integers
    assert minute_session_row(minute_line(totaltime_sec="0"))[9] == 0
    assert minute_session_row(minute_line(totaltime_sec="59"))[9] == 59


# ---------------------------------------------------------------------------- gap sessions


def test_domain_gap_session_json_line_parses_to_the_typed_row() -> None:
    # GIVEN the JSON line of a domain gap session of two events ending at checkout
    events = [
        make_event(at("2026-03-07T14:00:00.250000"), custid=7, device="app_mobile", url="home"),
        make_event(
            at("2026-03-07T14:10:00.750001"), custid=7, device="app_mobile", url="beer_checkout"
        ),
    ]
    (session,) = gap_sessions(events)
    line = json.dumps(session.to_dict())
    # WHEN it is parsed
    row = gap_session_row(line)
    # THEN start and end are epoch microseconds and the other columns are typed
    start = epoch_micros(2026, 3, 7, 14, 0, 0) + 250_000
    end = epoch_micros(2026, 3, 7, 14, 10, 0) + 750_001
    assert row == (
        f"7_mob_{start}",
        7,
        "app_mobile",
        start,
        end,
        "google",
        "home",
        "beer_checkout",
        2,
        600.500001,
        True,
    )


def test_gap_session_integer_duration_becomes_a_float() -> None:
    # GIVEN a one-event session whose duration is written as the integer 0
    line = gap_line(end=GAP_SESSION["start"], duration_seconds=0, page_count=1)
    # WHEN it is parsed
    row = gap_session_row(line)
    # THEN the duration column is a float and start equals end
    assert row[9] == 0.0
    assert isinstance(row[9], float)
    assert row[3] == row[4]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("{not json", "malformed JSON", id="malformed-json"),
        pytest.param("[1, 2]", "expected a JSON object", id="not-an-object"),
        pytest.param("", "malformed JSON", id="empty-line"),
        pytest.param(
            gap_line(exit_url=..., page_count=...),
            "missing required field(s): exit_url, page_count",
            id="missing-fields",
        ),
        pytest.param(
            gap_line(end="2026-03-07T13:59:59.999999"), "end: before start", id="end-before-start"
        ),
        pytest.param(
            gap_line(reached_checkout="true"),
            "reached_checkout: expected a boolean",
            id="checkout-string",
        ),
        pytest.param(
            gap_line(reached_checkout=1),
            "reached_checkout: expected a boolean",
            id="checkout-integer",
        ),
        pytest.param(
            gap_line(duration_seconds=-0.5),
            "duration_seconds: expected a non-negative number",
            id="negative-duration",
        ),
        pytest.param(
            gap_line(duration_seconds=True),
            "duration_seconds: expected a non-negative number",
            id="boolean-duration",
        ),
        pytest.param(gap_line(device="tv"), "device: 'tv' is not one of", id="bad-device"),
        pytest.param(gap_line(trafficfrom=""), "trafficfrom: expected a non-empty", id="empty"),
        pytest.param(gap_line(custid=0), "custid: 0 is out of range", id="custid-zero"),
        pytest.param(gap_line(custid=2**31), "custid: 2147483648 is out of range", id="custid-big"),
        pytest.param(gap_line(page_count=2.0), "page_count: expected an integer", id="page-float"),
    ],
)
def test_bad_gap_session_lines_are_rejected_with_a_reason(line: str, expected: str) -> None:
    # GIVEN a JSON line with one problem
    # WHEN it is parsed
    reason = reason_of(gap_session_row, line)
    # THEN the reason names that problem
    assert expected in reason


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_gap_session_duration_is_rejected(token: str) -> None:
    # GIVEN a gap session whose duration is not a finite number (json accepts these tokens)
    line = gap_line(duration_seconds=0.0).replace(
        '"duration_seconds": 0.0', f'"duration_seconds": {token}'
    )
    assert token in line
    # THEN it is rejected with the field's name
    with pytest.raises(InvalidEvent, match="duration_seconds"):
        gap_session_row(line)


def test_timestamp_reasons_name_their_own_field() -> None:
    # GIVEN an impossible aggreg_time and an unreadable gap-session end
    row = "42_bro_1772892240,42,browser,2026-02-30 14:04:00,1,a,b,04:00,04:00,0"
    with pytest.raises(InvalidEvent, match=r"^aggreg_time: .*not a real date"):
        minute_session_row(row)
    with pytest.raises(InvalidEvent, match=r"^end: "):
        gap_session_row(gap_line(end="yesterday"))


# ---------------------------------------------------------------------------- event-time range

FIRST_SUPPORTED = at("2020-01-01T00:00:00")
LAST_SUPPORTED = at("2099-12-31T23:59:59.999999")


@pytest.mark.parametrize("moment", [FIRST_SUPPORTED, LAST_SUPPORTED], ids=["first", "last"])
def test_lines_at_the_edges_of_the_event_time_range_become_rows(moment: datetime) -> None:
    # GIVEN an event at the first or last supported microsecond, with the largest int32 ids
    event = replace(make_event(moment, custid=2**31 - 1), touchproduct=2**31 - 1)
    (minute,) = minute_sessions([event])
    (gap,) = gap_sessions([event])
    # WHEN the lines the lake receives for it are parsed
    event_columns = event_row(event.to_json_line().decode())
    minute_columns = minute_session_row(minute.to_csv_line())
    gap_columns = gap_session_row(json.dumps(gap.to_dict()))
    # THEN none fails: the times are the event's (or its minute's), the ids are kept
    assert event_columns[6] == micros(moment)
    assert (event_columns[1], event_columns[5]) == (2**31 - 1, 2**31 - 1)
    assert minute_columns[3] == micros(moment.replace(second=0, microsecond=0))
    assert minute_columns[1] == gap_columns[1] == 2**31 - 1
    assert (gap_columns[3], gap_columns[4]) == (micros(moment), micros(moment))


@pytest.mark.parametrize(
    ("parser", "line", "expected"),
    [
        pytest.param(
            event_row,
            event_line(trans_timestamp="2100-01-01T00:00:00"),
            "trans_timestamp: 2100-01-01T00:00:00.000000 is outside the supported range",
            id="event-after",
        ),
        pytest.param(
            minute_session_row,
            minute_line(aggreg_time="2019-12-31 23:59:00"),
            "aggreg_time: 2019-12-31T23:59:00.000000 is outside the supported range",
            id="minute-before",
        ),
        pytest.param(
            gap_session_row,
            gap_line(start="9999-12-31T23:59:59.999999", end="9999-12-31T23:59:59.999999"),
            "start: 9999-12-31T23:59:59.999999 is outside the supported range",
            id="gap-start-after",
        ),
        pytest.param(
            gap_session_row,
            gap_line(start="2099-12-31T23:59:00", end="2100-01-01T00:00:00"),
            "end: 2100-01-01T00:00:00.000000 is outside the supported range",
            id="gap-end-after",
        ),
    ],
)
def test_times_outside_the_event_time_range_are_rejected(
    parser: LineParser, line: str, expected: str
) -> None:
    # GIVEN a line whose time no event of the stream can have
    # WHEN it is parsed
    reason = reason_of(parser, line)
    # THEN it is refused with the field and the range, instead of landing in a partition the
    # catalog does not project
    assert reason.startswith(expected)
    assert reason.endswith("2020-01-01T00:00:00.000000 to 2099-12-31T23:59:59.999999")
