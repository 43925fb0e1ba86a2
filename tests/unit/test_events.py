"""The event model: strict parsing with precise reasons, and JSON-lines serialisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from clickstream.core.events import (
    FIELDS,
    MAX_EVENT_BYTES,
    MAX_TEXT_LENGTH,
    Event,
    InvalidEvent,
    check_event_time,
    event_from_dict,
    format_timestamp,
    parse_event,
    parse_timestamp,
)

EVENT_ID = "0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a"
VALID: dict[str, Any] = {
    "event_id": EVENT_ID,
    "custid": 42,
    "trafficfrom": "email_CampanhaBeer",
    "url": "beer_product_detail",
    "device": "app_mobile",
    "touchproduct": 117,
    "trans_timestamp": "2026-03-07T14:04:56.683790",
}


def record(**changes: Any) -> str:
    """The valid record as a JSON line, with fields replaced (or removed when set to ...)."""
    document = {key: value for key, value in {**VALID, **changes}.items() if value is not ...}
    return json.dumps(document)


def reason_of(data: bytes | str) -> str:
    """The reason ``parse_event`` rejects ``data`` with; fails the test if it is accepted."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(data)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


# ---------------------------------------------------------------------------- round trip


def test_valid_record_parses_into_an_event() -> None:
    # GIVEN a record carrying every schema field
    # WHEN it is parsed
    event = parse_event(record())
    # THEN every field is typed, and the timestamp is timezone-aware UTC
    assert event == Event(
        event_id=EVENT_ID,
        custid=42,
        trafficfrom="email_CampanhaBeer",
        url="beer_product_detail",
        device="app_mobile",
        touchproduct=117,
        trans_timestamp=datetime(2026, 3, 7, 14, 4, 56, 683790, tzinfo=UTC),
    )
    assert event.partition_key == "42"


def test_json_line_is_one_compact_object_in_schema_order() -> None:
    # GIVEN a parsed event
    event = parse_event(record())
    # WHEN it is serialised
    line = event.to_json_line()
    # THEN it is one compact JSON object ending in a single newline, fields in schema order
    assert isinstance(line, bytes)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert b" " not in line
    assert list(json.loads(line)) == list(FIELDS)
    assert line == (json.dumps(VALID, separators=(",", ":")) + "\n").encode()


def test_json_line_parses_back_to_the_same_event() -> None:
    # GIVEN an event built in code with a non-ASCII referrer
    event = Event(
        event_id=EVENT_ID,
        custid=1,
        trafficfrom="promoção_verão",
        url="beer_cart",
        device="browser",
        touchproduct=0,
        trans_timestamp=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )
    # WHEN it is serialised and parsed again
    again = parse_event(event.to_json_line())
    # THEN nothing is lost
    assert again == event


def test_bytes_and_text_input_are_equivalent() -> None:
    # GIVEN the same record as text and as UTF-8 bytes, with a trailing newline
    text = record() + "\n"
    # WHEN both are parsed
    # THEN they give the same event
    assert parse_event(text) == parse_event(text.encode("utf-8"))


def test_largest_allowed_record_is_accepted() -> None:
    # GIVEN a valid record padded with whitespace to exactly MAX_EVENT_BYTES
    line = record()
    padded = line + " " * (MAX_EVENT_BYTES - len(line.encode()))
    assert len(padded.encode()) == MAX_EVENT_BYTES
    # WHEN it is parsed
    # THEN the limit is inclusive
    assert parse_event(padded).custid == 42


def test_uppercase_event_id_is_normalised_to_lowercase() -> None:
    # GIVEN a canonical UUID written in upper case
    # WHEN the record is parsed
    event = parse_event(record(event_id=EVENT_ID.upper()))
    # THEN the idempotency key is the lowercase form, so duplicates compare equal
    assert event.event_id == EVENT_ID


def test_text_fields_at_the_length_limit_are_accepted() -> None:
    # GIVEN text fields of exactly MAX_TEXT_LENGTH characters
    longest = "x" * MAX_TEXT_LENGTH
    # WHEN the record is parsed
    event = parse_event(record(trafficfrom=longest, url=longest))
    # THEN they are kept as they are
    assert event.trafficfrom == event.url == longest


# ---------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-07T14:04:56.683790", "2026-03-07T14:04:56.683790"),
        ("2026-03-07T14:04:56.683790Z", "2026-03-07T14:04:56.683790"),
        ("2026-03-07T14:04:56.683790+00:00", "2026-03-07T14:04:56.683790"),
        ("2026-03-07T14:04:56.5", "2026-03-07T14:04:56.500000"),
        ("2026-03-07T14:04:56.123Z", "2026-03-07T14:04:56.123000"),
        ("2026-03-07T14:04:56", "2026-03-07T14:04:56.000000"),
        ("2026-03-07T14:04:56+00:00", "2026-03-07T14:04:56.000000"),
        ("2024-02-29T00:00:00", "2024-02-29T00:00:00.000000"),
        ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000000"),
        ("2099-12-31T23:59:59.999999", "2099-12-31T23:59:59.999999"),
    ],
    ids=[
        "naive-6-digits",
        "zulu",
        "plus-zero-offset",
        "1-digit-fraction",
        "3-digits-zulu",
        "no-fraction",
        "no-fraction-offset",
        "leap-day",
        "first-supported-microsecond",
        "last-supported-microsecond",
    ],
)
def test_accepted_timestamps_are_normalised_to_six_digits(text: str, expected: str) -> None:
    # GIVEN a UTC timestamp in one of the accepted spellings
    # WHEN the record is parsed and written again
    event = parse_event(record(trans_timestamp=text))
    # THEN the time is UTC and the output has no offset and exactly six fractional digits
    assert event.trans_timestamp.tzinfo is UTC
    assert json.loads(event.to_json_line())["trans_timestamp"] == expected
    assert parse_event(event.to_json_line()) == event


@pytest.mark.parametrize(
    "text",
    [
        "2019-12-31T23:59:59.999999",
        "2100-01-01T00:00:00",
        "1970-01-01T00:00:00",
        "9999-12-31T23:59:59.999999",
        "0999-01-02T03:04:05.000006",
        "0001-01-01T00:00:00",
    ],
    ids=[
        "just-before",
        "just-after",
        "epoch",
        "last-datetime",
        "year-below-1000",
        "first-datetime",
    ],
)
def test_times_outside_the_supported_range_are_rejected(text: str) -> None:
    # GIVEN a real UTC time outside the years the curated tables' partitions cover
    # WHEN the record is parsed
    reason = reason_of(record(trans_timestamp=text))
    # THEN the reason gives the time and the supported range
    moment = format_timestamp(parse_timestamp(text))
    assert reason == (
        f"trans_timestamp: {moment} is outside the supported range "
        "2020-01-01T00:00:00.000000 to 2099-12-31T23:59:59.999999"
    )


def test_the_range_check_names_the_field_it_is_given() -> None:
    # GIVEN a time before the range, for another field than trans_timestamp
    # WHEN it is checked
    with pytest.raises(InvalidEvent) as caught:
        check_event_time(datetime(2019, 1, 1, tzinfo=UTC), "start")
    # THEN the reason names that field; a time inside is returned as it is
    assert caught.value.reason.startswith("start: 2019-01-01T00:00:00.000000 is outside")
    inside = datetime(2026, 3, 7, tzinfo=UTC)
    assert check_event_time(inside, "start") is inside


def test_format_timestamp_converts_aware_times_to_utc() -> None:
    # GIVEN the same instant expressed at +02:00
    moment = datetime(2026, 3, 7, 16, 4, 56, 7, tzinfo=timezone(timedelta(hours=2)))
    # WHEN it is formatted
    # THEN it is written as the UTC wall time, without an offset
    assert format_timestamp(moment) == "2026-03-07T14:04:56.000007"


def test_parse_timestamp_returns_aware_utc() -> None:
    # GIVEN a timestamp with fewer fractional digits
    # WHEN it is parsed on its own
    moment = parse_timestamp("2026-03-07T14:04:56.68379Z")
    # THEN the fraction is read as microseconds, right-padded
    assert moment == datetime(2026, 3, 7, 14, 4, 56, 683790, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2026-03-07 14:04:56", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("07/03/2026 14:04:56", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04:56.1234567", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04:56+02:00", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04:56-00:00", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04:56z", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-03-07T14:04:56\n", ["trans_timestamp", "not ISO-8601 UTC"]),
        (" 2026-03-07T14:04:56", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("２０２６-03-07T14:04:56", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("", ["trans_timestamp", "not ISO-8601 UTC"]),
        ("2026-02-30T00:00:00", ["trans_timestamp", "not a real date/time"]),
        ("2025-02-29T00:00:00", ["trans_timestamp", "not a real date/time"]),
        ("2026-03-07T24:00:00", ["trans_timestamp", "not a real date/time"]),
        ("2026-13-01T00:00:00", ["trans_timestamp", "not a real date/time"]),
        ("0000-01-01T00:00:00", ["trans_timestamp", "not a real date/time"]),
    ],
    ids=[
        "space-separator",
        "local-format",
        "date-only",
        "no-seconds",
        "seven-fraction-digits",
        "non-utc-offset",
        "minus-zero-offset",
        "lowercase-z",
        "trailing-newline",
        "leading-space",
        "non-ascii-digits",
        "empty",
        "feb-30",
        "feb-29-non-leap",
        "hour-24",
        "month-13",
        "year-zero",
    ],
)
def test_bad_timestamps_are_rejected(text: str, words: list[str]) -> None:
    # GIVEN a record whose timestamp is not an accepted UTC ISO-8601 time
    # WHEN it is parsed
    reason = reason_of(record(trans_timestamp=text))
    # THEN the reason names the field and the problem
    for word in words:
        assert word in reason


# ---------------------------------------------------------------------------- bad records


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ('{"event_id": ', ["malformed JSON", "line 1 column 14"]),
        ('{"custid": 1,}', ["malformed JSON", "line 1 column 14"]),
        ("{'custid': 1}", ["malformed JSON", "line 1 column 2"]),
        ('{"a": 1}\n{"b": 2}', ["malformed JSON", "Extra data", "line 2 column 1"]),
        ("not json", ["malformed JSON", "line 1 column 1"]),
        ("[1, 2, 3]", ["expected a JSON object", "list"]),
        ("42", ["expected a JSON object", "int"]),
        ('"text"', ["expected a JSON object", "str"]),
        ("null", ["expected a JSON object", "NoneType"]),
        (b"\xff\xfe", ["not valid UTF-8", "byte 0"]),
        (b'{"url": "caf\xe9"}', ["not valid UTF-8", "byte 12"]),
        ("\ud800", ["not valid Unicode", "unpaired surrogate"]),
        ("", ["record is empty"]),
        (b"", ["record is empty"]),
        (" \t\r\n", ["record is empty"]),
        ("x" * (MAX_EVENT_BYTES + 1), [f"{MAX_EVENT_BYTES + 1} bytes", f"{MAX_EVENT_BYTES}-byte"]),
        (
            "é" * (MAX_EVENT_BYTES // 2 + 1),
            [f"{MAX_EVENT_BYTES + 2} bytes", f"{MAX_EVENT_BYTES}-byte limit"],
        ),
    ],
    ids=[
        "truncated-json",
        "trailing-comma",
        "single-quotes",
        "two-objects",
        "not-json",
        "array",
        "number",
        "string",
        "null",
        "non-utf8-bytes",
        "latin1-bytes",
        "lone-surrogate-text",
        "empty-text",
        "empty-bytes",
        "whitespace-only",
        "oversized",
        "oversized-in-utf8-bytes",
    ],
)
def test_undecodable_records_are_rejected(data: bytes | str, words: list[str]) -> None:
    # GIVEN a record that is not a decodable JSON object
    # WHEN it is parsed
    reason = reason_of(data)
    # THEN the reason says what is wrong, and where
    for word in words:
        assert word in reason


def test_oversized_record_is_rejected_before_it_is_decoded() -> None:
    # GIVEN an otherwise valid record padded beyond the limit
    data = record() + " " * MAX_EVENT_BYTES
    # WHEN it is parsed
    reason = reason_of(data)
    # THEN the size is the reason, not anything about its content
    assert reason == (
        f"record is {len(data.encode())} bytes, over the {MAX_EVENT_BYTES}-byte limit"
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"custid": ...}, ["missing required field(s): custid"]),
        (
            {"event_id": ..., "trans_timestamp": ...},
            ["missing required field(s): event_id, trans_timestamp"],
        ),
        ({"session": "abc"}, ["unknown field(s): session"]),
        ({"Custid": 1, "zzz": 2}, ["unknown field(s): Custid, zzz"]),
    ],
    ids=["one-missing", "two-missing", "one-unknown", "two-unknown"],
)
def test_missing_and_unknown_fields_are_named(changes: dict[str, Any], words: list[str]) -> None:
    # GIVEN a record with fields missing or added
    # WHEN it is parsed
    reason = reason_of(record(**changes))
    # THEN the reason names the fields, in schema order for missing ones
    for word in words:
        assert word in reason


def test_repeated_field_is_rejected() -> None:
    # GIVEN a record that sets custid twice (readers disagree on which value wins)
    data = record().replace('"custid": 42', '"custid": 42, "custid": 43')
    # WHEN it is parsed
    reason = reason_of(data)
    # THEN the ambiguity is the reason
    assert reason == "duplicate field: custid"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"custid": "42"}, "custid: expected integer, got string"),
        ({"custid": True}, "custid: expected integer, got boolean"),
        ({"custid": 42.0}, "custid: expected integer, got number"),
        ({"custid": None}, "custid: expected integer, got null"),
        ({"touchproduct": 1.5}, "touchproduct: expected integer, got number"),
        ({"touchproduct": [1]}, "touchproduct: expected integer, got array"),
        ({"device": 1}, "device: expected string, got integer"),
        ({"url": {"path": "/"}}, "url: expected string, got object"),
        ({"trafficfrom": False}, "trafficfrom: expected string, got boolean"),
        ({"event_id": 7}, "event_id: expected string, got integer"),
        ({"trans_timestamp": 1772892296.68379}, "trans_timestamp: expected string, got number"),
        ({"trans_timestamp": 1772892296}, "trans_timestamp: expected string, got integer"),
    ],
    ids=[
        "custid-string",
        "custid-bool",
        "custid-float",
        "custid-null",
        "touchproduct-float",
        "touchproduct-array",
        "device-int",
        "url-object",
        "trafficfrom-bool",
        "event-id-int",
        "timestamp-float",
        "timestamp-int",
    ],
)
def test_wrong_types_are_rejected(changes: dict[str, Any], expected: str) -> None:
    # GIVEN a record with a field of the wrong JSON type
    # WHEN it is parsed
    # THEN the reason names the field, the expected and the actual type
    assert reason_of(record(**changes)) == expected


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"custid": 0}, ["custid: 0 is out of range", "[1, "]),
        ({"custid": -5}, ["custid: -5 is out of range"]),
        ({"custid": 2**31}, ["custid: 2147483648 is out of range [1, 2147483647]"]),
        ({"custid": 2**63}, ["custid", "out of range", "[1, 2147483647]"]),
        ({"touchproduct": -1}, ["touchproduct: -1 is out of range", "[0, "]),
        ({"touchproduct": 2**31}, ["touchproduct: 2147483648 is out of range [0, 2147483647]"]),
    ],
    ids=[
        "custid-zero",
        "custid-negative",
        "custid-over-int32",
        "custid-over-int64",
        "touchproduct-negative",
        "touchproduct-over-int32",
    ],
)
def test_out_of_range_integers_are_rejected(changes: dict[str, Any], words: list[str]) -> None:
    # GIVEN a record with an integer outside its range
    # WHEN it is parsed
    reason = reason_of(record(**changes))
    # THEN the reason names the field, the value and the range
    for word in words:
        assert word in reason


def test_integers_at_the_int32_limit_are_accepted() -> None:
    # GIVEN the largest custid and product id the lake's int columns hold
    # WHEN the record is parsed
    event = parse_event(record(custid=2**31 - 1, touchproduct=2**31 - 1))
    # THEN both are kept
    assert (event.custid, event.touchproduct) == (2_147_483_647, 2_147_483_647)


def test_touchproduct_zero_means_no_product() -> None:
    # GIVEN a page showing no product
    # WHEN the record is parsed
    # THEN 0 is a valid product id
    assert parse_event(record(touchproduct=0)).touchproduct == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"trafficfrom": ""}, "trafficfrom: must not be empty"),
        ({"url": "   "}, "url: must not be empty"),
        ({"event_id": ""}, "event_id: must not be empty"),
        ({"device": ""}, "device: must not be empty"),
        (
            {"url": "u" * (MAX_TEXT_LENGTH + 1)},
            f"url: {MAX_TEXT_LENGTH + 1} characters, over the {MAX_TEXT_LENGTH} limit",
        ),
        ({"url": "beer\ud800"}, "url: contains an unpaired UTF-16 surrogate"),
    ],
    ids=["empty", "blank", "empty-event-id", "empty-device", "too-long", "lone-surrogate"],
)
def test_bad_text_is_rejected(changes: dict[str, Any], expected: str) -> None:
    # GIVEN a record with an empty, overlong or unencodable text field
    # WHEN it is parsed
    # THEN the reason names the field and the problem
    assert reason_of(record(**changes)) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"url": "beer_product\ndetail"},
            "url: contains control character U+000A at position 12",
        ),
        (
            {"trafficfrom": "\x00google"},
            "trafficfrom: contains control character U+0000 at position 0",
        ),
        (
            {"trafficfrom": "google\x1f"},
            "trafficfrom: contains control character U+001F at position 6",
        ),
        ({"url": "beer\x7fcart"}, "url: contains control character U+007F at position 4"),
        ({"url": "beer\tcart\r\n"}, "url: contains control character U+0009 at position 4"),
        ({"device": "browser\r"}, "device: contains control character U+000D at position 7"),
        (
            {"event_id": EVENT_ID + "\x00"},
            "event_id: contains control character U+0000 at position 36",
        ),
    ],
    ids=[
        "newline",
        "nul-first",
        "unit-separator",
        "delete",
        "first-of-several",
        "device",
        "event-id",
    ],
)
def test_control_characters_are_rejected(changes: dict[str, Any], expected: str) -> None:
    # GIVEN a text field holding a control character (U+0000-U+001F or U+007F)
    # WHEN the record is parsed
    # THEN the reason names the field, the code point and where it is (counted from 0)
    assert reason_of(record(**changes)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "beer,cart",
        'say "cheers"',
        "back\\slash",
        "promoção_verão",
        "ビール",
        "\u0080\u009f\u00a0",
        "line\u2028para\u2029",
        "emoji 🍺",
        "tab\\t as two characters",
    ],
    ids=[
        "comma",
        "quotes",
        "backslash",
        "accents",
        "cjk",
        "c1-and-nbsp",
        "line-separators",
        "emoji",
        "escaped-tab",
    ],
)
def test_any_other_text_is_kept_as_sent(text: str) -> None:
    # GIVEN text with commas, quotes, backslashes or any non-control Unicode
    # WHEN it is sent as the url and the source, and parsed
    event = parse_event(record(url=text, trafficfrom=text))
    # THEN it is kept exactly, and survives the JSON line
    assert event.url == event.trafficfrom == text
    assert parse_event(event.to_json_line()) == event


@pytest.mark.parametrize(
    "device", ["desktop", "Browser", "app_mobile ", "APP_TABLET"], ids=lambda d: repr(d)
)
def test_unknown_device_is_rejected(device: str) -> None:
    # GIVEN a device outside the three known values (matching is exact)
    # WHEN the record is parsed
    reason = reason_of(record(device=device))
    # THEN the reason names the value and lists the allowed ones
    assert reason == f"device: {device!r} is not one of app_mobile, app_tablet, browser"


@pytest.mark.parametrize(
    ("event_id", "words"),
    [
        ("not-a-uuid", ["event_id", "is not a UUID"]),
        ("0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6", ["event_id", "is not a UUID"]),
        ("0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6g", ["event_id", "is not a UUID"]),
        ("0b9a6b0e3f6e4d379a4c1f2e3d4c5b6a", ["event_id", "not in canonical", "8-4-4-4-12"]),
        ("{0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a}", ["event_id", "not in canonical"]),
        ("urn:uuid:0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a", ["event_id", "not in canonical"]),
        ("0b9a6b0e3f6e-4d37-9a4c-1f2e-3d4c5b6a", ["event_id", "not in canonical"]),
    ],
    ids=[
        "not-a-uuid",
        "too-short",
        "non-hex",
        "no-hyphens",
        "braces",
        "urn",
        "misplaced-hyphens",
    ],
)
def test_bad_event_ids_are_rejected(event_id: str, words: list[str]) -> None:
    # GIVEN a record whose idempotency key is not a canonical UUID
    # WHEN it is parsed
    reason = reason_of(record(event_id=event_id))
    # THEN the reason says whether it is no UUID at all or a non-canonical spelling
    for word in words:
        assert word in reason


def test_event_from_dict_validates_decoded_documents() -> None:
    # GIVEN documents already decoded from JSON
    # WHEN they are validated
    # THEN a valid one gives the event, and anything else is rejected with a reason
    assert event_from_dict(dict(VALID)) == parse_event(record())
    with pytest.raises(InvalidEvent, match="expected a JSON object, got tuple"):
        event_from_dict(tuple(VALID.items()))
