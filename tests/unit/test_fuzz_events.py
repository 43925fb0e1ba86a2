"""Property-based tests of the event parser: any input parses or is refused with a reason.

The parser is the stream's door: whatever a producer sends, it returns an event or raises
:class:`InvalidEvent`, never anything else, and every valid event survives a JSON round trip.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.core.events import DEVICES, Event, InvalidEvent, parse_event

EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True, database=None)
"""Fixed examples for the suite (derandomized: the same cases every run, nothing stored)."""

VALID_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64
).filter(lambda text: text.strip() != "")
"""Text without control characters or surrogates, not blank: commas, quotes, any script."""

CONTROL_CHARACTERS = st.sampled_from([chr(code) for code in (*range(0x20), 0x7F)])

VALID_EVENTS = st.builds(
    Event,
    event_id=st.uuids().map(str),
    custid=st.integers(min_value=1, max_value=2**31 - 1),
    trafficfrom=VALID_TEXT,
    url=VALID_TEXT,
    device=st.sampled_from(DEVICES),
    touchproduct=st.integers(min_value=0, max_value=2**31 - 1),
    trans_timestamp=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999999)
    ).map(lambda moment: moment.replace(tzinfo=UTC)),
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def outcome(data: bytes) -> Event | str:
    """The parsed event, or the refusal's reason; any other exception fails the test."""
    try:
        return parse_event(data)
    except InvalidEvent as error:
        assert error.reason, "a refusal always says why"
        return error.reason


@EXAMPLES
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_are_refused_with_a_reason(data: bytes) -> None:
    # GIVEN any bytes WHEN parsed THEN an event or a reason, never another exception
    result = outcome(data)
    assert isinstance(result, Event | str)


@EXAMPLES
@given(VALID_EVENTS, st.sampled_from(["event_id", "trafficfrom", "url", "device"]), JSON_VALUES)
def test_any_field_of_any_json_type_parses_or_is_refused(
    event: Event, name: str, value: Any
) -> None:
    # GIVEN a valid event with one field replaced by any JSON value
    document = event.to_dict() | {name: value}
    # WHEN parsed THEN an event or a reason, never another exception
    result = outcome(json.dumps(document).encode("utf-8"))
    # AND a refusal names the field it is about, or the event is what was sent
    if isinstance(result, str):
        assert name in result
    else:
        assert result.to_dict() == document


@EXAMPLES
@given(VALID_EVENTS)
def test_every_valid_event_round_trips_through_its_json_line(event: Event) -> None:
    # GIVEN a valid event (commas, quotes, backslashes, any script) WHEN written and parsed
    parsed = parse_event(event.to_json_line())
    # THEN it is the same event
    assert parsed == event


@EXAMPLES
@given(
    VALID_EVENTS,
    st.sampled_from(["trafficfrom", "url"]),
    CONTROL_CHARACTERS,
    st.integers(min_value=0, max_value=64),
)
def test_a_control_character_in_any_text_field_is_refused(
    event: Event, name: str, control: str, position: int
) -> None:
    # GIVEN a valid event whose text field gets one control character
    text: str = getattr(event, name)
    position = min(position, len(text))
    document = event.to_dict() | {name: text[:position] + control + text[position:]}
    # WHEN parsed THEN it is refused with the field's name in the reason
    result = outcome(json.dumps(document).encode("utf-8"))
    assert isinstance(result, str)
    assert name in result


@EXAMPLES
@given(st.uuids(version=4), st.integers(min_value=2**31, max_value=2**70))
def test_a_custid_beyond_the_lakes_int32_is_refused_at_the_door(
    event_id: uuid.UUID, custid: int
) -> None:
    # GIVEN a custid the curated layer could not store
    document = {
        "event_id": str(event_id),
        "custid": custid,
        "trafficfrom": "google",
        "url": "beer_cart",
        "device": "browser",
        "touchproduct": 0,
        "trans_timestamp": "2026-03-07T14:04:01.000000",
    }
    # WHEN parsed THEN the stream refuses it as the lake would
    result = outcome(json.dumps(document).encode("utf-8"))
    assert isinstance(result, str)
    assert "custid" in result
