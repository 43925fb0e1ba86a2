"""The aggregated layer's CSV line: RFC 4180 written, read back exactly, control characters refused.

(docs/data-lake.md, The aggregated CSV)
"""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.core.events import InvalidEvent
from clickstream.core.sessions import (
    MinuteSession,
    UnwritableCsvValue,
    csv_line,
    minute_sessions,
    parse_csv_line,
)
from tests.factories import at, make_event
from tests.support.text_values import HOSTILE_URLS

CONTROL_CHARACTERS = [chr(code) for code in range(0x20)] + ["\x7f"]
SPECIAL_CHARACTERS = [
    ",",
    '"',
    "\\",
    "'",
    ";",
    " ",
    "\u2028",
    "\x85",
    "\ufeff",
    "é",
    "中",
    "😀",
    "ש",
]
VALID_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(SPECIAL_CHARACTERS),
        st.characters(exclude_categories=("Cs",), exclude_characters=CONTROL_CHARACTERS),
    )
)
"""Any text the event parser accepts in a field: no control character, no lone surrogate."""


def names(count: int) -> list[str]:
    return [f"c{index}" for index in range(count)]


def test_fields_are_quoted_only_when_they_hold_a_separator_or_a_quote_or_are_empty() -> None:
    # GIVEN plain, comma, quote, backslash and empty fields
    fields = ["plain", "a,b", 'say "hi"', "back\\slash", "", "it's;ok"]
    # WHEN written
    line = csv_line(fields, names(len(fields)))
    # THEN quotes enclose only the comma, quote and empty fields, embedded quotes doubled
    assert line == 'plain,"a,b","say ""hi""",back\\slash,"",it\'s;ok\n'


def test_hostile_urls_survive_a_minute_session_line() -> None:
    # GIVEN one per-minute row per hostile url (as beginurl and endurl)
    for url in HOSTILE_URLS:
        (session,) = minute_sessions([make_event(at("2026-03-07T14:04:05"), custid=9, url=url)])
        # WHEN the row is written as a line and read back
        line = session.to_csv_line()
        fields = parse_csv_line(line)
        # THEN it is one line and every column reads back as written
        assert line.count("\n") == 1 and line.endswith("\n"), url
        assert fields == [str(value) for value in session.row()], url


@settings(database=None, deadline=None, max_examples=400)
@given(st.lists(VALID_TEXT, max_size=12))
def test_any_fields_without_control_characters_read_back_identically(fields: list[str]) -> None:
    # GIVEN any fields without control characters
    # WHEN written as a line
    line = csv_line(fields, names(len(fields)))
    # THEN the line is one line, and reading it back gives exactly the fields
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    assert parse_csv_line(line) == fields
    # ... as it does for an independent RFC 4180 reader (Python's csv module)
    assert next(csv.reader([line[:-1]]), []) == fields


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_the_writer_refuses_a_control_character_rather_than_break_the_line(character: str) -> None:
    # GIVEN a field holding a control character (the event parser never lets one through)
    fields = ["ok", f"a{character}b"]
    # WHEN written THEN the writer refuses, naming the column and the character
    with pytest.raises(UnwritableCsvValue) as refused:
        csv_line(fields, ["first", "second"])
    assert str(refused.value) == (
        f"second: control character U+{ord(character):04X} at character 2"
        " cannot be written to a CSV line"
    )


def test_a_minute_session_with_a_newline_in_its_url_is_not_written() -> None:
    # GIVEN a row whose url holds a newline (impossible from parsed events)
    session = MinuteSession(
        userid=3,
        device="browser",
        minute=at("2026-03-07T14:04:00"),
        events=1,
        beginurl="beer\ncart",
        endurl="beer_cart",
        first_event_time=at("2026-03-07T14:04:05"),
        last_event_time=at("2026-03-07T14:04:05"),
    )
    # WHEN written THEN the writer refuses and names the column
    with pytest.raises(UnwritableCsvValue) as refused:
        session.to_csv_line()
    assert str(refused.value) == (
        "beginurl: control character U+000A at character 5 cannot be written to a CSV line"
    )


def test_an_empty_line_has_no_fields_and_an_empty_quoted_field_is_one_field() -> None:
    assert parse_csv_line("") == [] == parse_csv_line("\n")
    assert csv_line([], []) == "\n"
    assert parse_csv_line('""') == [""]
    assert parse_csv_line("a,") == ["a", ""]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            'a"b,c', "CSV: quote inside an unquoted field at character 2", id="bare-quote"
        ),
        pytest.param(
            ' "a",b', "CSV: quote inside an unquoted field at character 2", id="space-before-quote"
        ),
        pytest.param('x,"abc', "CSV: quoted field opened at character 3 is not closed", id="open"),
        pytest.param('"a""', "CSV: quoted field opened at character 1 is not closed", id="open-2"),
        pytest.param(
            '"a"b,c', "CSV: ',' expected after the closing quote at character 3", id="after-quote"
        ),
        pytest.param("a,\tb", "CSV: control character U+0009 at character 3", id="tab"),
        pytest.param("a,b\r", "CSV: control character U+000D at character 4", id="carriage"),
        pytest.param("a\x00", "CSV: control character U+0000 at character 2", id="nul"),
    ],
)
def test_lines_the_writer_cannot_produce_are_refused_with_a_reason(line: str, reason: str) -> None:
    # GIVEN a line no writer call produces
    # WHEN it is read THEN the reason says what is wrong and where
    with pytest.raises(InvalidEvent) as refused:
        parse_csv_line(line)
    assert refused.value.reason == reason
