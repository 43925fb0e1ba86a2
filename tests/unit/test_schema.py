"""One schema for the stream and the lake: the core's bounds, the Glue side and the catalog agree.

The core (``clickstream.core.schema``) states every field's type and bounds once. The Glue jobs'
Spark schemas (``clickstream_glue.schemas``), their line parsers and the catalog's curated tables
in ``template.yaml`` must hold exactly those: a change to one side alone fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
)

from clickstream.core.events import FIELDS, InvalidEvent, parse_event
from clickstream.core.schema import (
    CUSTID,
    DEVICES,
    EVENT_FIELDS,
    EVENT_TIME,
    EVENT_YEARS,
    INT32_MAX,
    MAX_TEXT_LENGTH,
    TOUCHPRODUCT,
    Field,
    IntegerField,
    TextField,
    TimestampField,
)
from clickstream_glue.records import event_row, gap_session_row, minute_session_row
from clickstream_glue.schemas import EVENT_SCHEMA, GAP_SESSION_SCHEMA, MINUTE_SESSION_SCHEMA

CURATED_TABLES: dict[str, StructType] = {
    "curated_events": EVENT_SCHEMA,
    "curated_sessions": MINUTE_SESSION_SCHEMA,
    "curated_gap_sessions": GAP_SESSION_SCHEMA,
}
"""Each curated catalog table and the Spark schema of the rows the Glue jobs write to it."""

INTEGER_RANGES: dict[type[DataType], tuple[int, int]] = {
    IntegerType: (-(2**31), 2**31 - 1),
    LongType: (-(2**63), 2**63 - 1),
}
CATALOG_TYPES: dict[type[DataType], str] = {
    StringType: "string",
    IntegerType: "int",
    LongType: "timestamp",  # parsed as epoch microseconds, written as a Parquet timestamp
    DoubleType: "double",
    BooleanType: "boolean",
}
VALID_EVENT: dict[str, Any] = {
    "event_id": "0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a",
    "custid": 42,
    "trafficfrom": "google",
    "url": "beer_cart",
    "device": "browser",
    "touchproduct": 7,
    "trans_timestamp": "2026-03-07T14:04:56.683790",
}


def curated_table(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``TableInput`` of the catalog table called ``name``."""
    (found,) = [
        spec["Properties"]["TableInput"]
        for spec in template["Resources"].values()
        if spec["Type"] == "AWS::Glue::Table" and spec["Properties"]["TableInput"]["Name"] == name
    ]
    return found


def catalog_columns(template: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """The (name, type) columns the catalog declares for table ``name``."""
    columns = curated_table(template, name)["StorageDescriptor"]["Columns"]
    return [(column["Name"], column["Type"]) for column in columns]


def spark_type_of(field: Field) -> type[DataType]:
    """The Spark type the Glue parsers must give ``field``: the narrowest that holds its bounds."""
    if isinstance(field, TextField):
        return StringType
    if isinstance(field, TimestampField):
        return LongType
    return next(
        kind
        for kind, (low, high) in INTEGER_RANGES.items()
        if low <= field.minimum and field.maximum <= high
    )


def event_line(**changes: Any) -> str:
    return json.dumps({**VALID_EVENT, **changes})


# ---------------------------------------------------------------------------- the core


def test_the_event_is_the_schema_in_order() -> None:
    # GIVEN the core's schema
    # THEN the parser's fields are its fields, in its order, with the lake's int32 bounds
    assert tuple(VALID_EVENT) == FIELDS
    assert (CUSTID.minimum, CUSTID.maximum) == (1, INT32_MAX)
    assert (TOUCHPRODUCT.minimum, TOUCHPRODUCT.maximum) == (0, INT32_MAX)
    assert INT32_MAX == 2**31 - 1
    # AND every text field has the one length limit; the device is one of three
    texts = [field for field in EVENT_FIELDS if isinstance(field, TextField)]
    assert {field.max_length for field in texts} == {MAX_TEXT_LENGTH}
    assert [field.name for field in texts if field.allowed] == ["device"]
    assert DEVICES == ("app_mobile", "app_tablet", "browser")


def test_the_event_time_range_is_whole_years() -> None:
    # GIVEN the supported event-time range
    first, last = EVENT_YEARS
    # THEN it runs from the first microsecond of the first year to the last of the last year
    assert EVENT_TIME.earliest == datetime(first, 1, 1, tzinfo=UTC)
    assert EVENT_TIME.latest + timedelta(microseconds=1) == datetime(last + 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("field", [CUSTID, TOUCHPRODUCT], ids=lambda f: f.name)
def test_the_parser_holds_each_integer_to_its_bounds(field: IntegerField) -> None:
    # GIVEN an integer field of the event
    # WHEN its bounds and the values just outside are parsed
    # THEN the bounds are accepted and the values outside are rejected with the range
    for inside in (field.minimum, field.maximum):
        assert getattr(parse_event(event_line(**{field.name: inside})), field.name) == inside
    for outside in (field.minimum - 1, field.maximum + 1):
        with pytest.raises(InvalidEvent, match=rf"\[{field.minimum}, {field.maximum}\]$"):
            parse_event(event_line(**{field.name: outside}))


# ---------------------------------------------------------------------------- the Glue side


def test_the_curated_events_columns_are_the_event_fields() -> None:
    # GIVEN the Spark schema of the curated events the Glue job writes
    # THEN its columns are the event's fields, in order, each of the type its bounds need
    assert tuple(EVENT_SCHEMA.fieldNames()) == FIELDS
    for field in EVENT_FIELDS:
        assert type(EVENT_SCHEMA[field.name].dataType) is spark_type_of(field), field.name


@pytest.mark.parametrize(
    ("schema", "column", "field"),
    [
        (EVENT_SCHEMA, "custid", CUSTID),
        (EVENT_SCHEMA, "touchproduct", TOUCHPRODUCT),
        (MINUTE_SESSION_SCHEMA, "userid", CUSTID),
        (GAP_SESSION_SCHEMA, "custid", CUSTID),
    ],
    ids=["events-custid", "events-touchproduct", "minute-userid", "gap-custid"],
)
def test_every_lake_integer_column_has_the_core_upper_bound(
    schema: StructType, column: str, field: IntegerField
) -> None:
    # GIVEN an integer column of a curated table that holds an event field
    kind = type(schema[column].dataType)
    # THEN its type's largest value is the core's bound, no more and no less
    assert INTEGER_RANGES[kind][1] == field.maximum


def test_the_session_parsers_hold_custid_to_the_core_bounds() -> None:
    # GIVEN a per-minute row and a gap session of the largest and the next custid
    largest, beyond = CUSTID.maximum, CUSTID.maximum + 1
    minute = "{0}_bro_1772892240,{0},browser,2026-03-07 14:04:00,1,a,a,04:00,04:00,0"
    gap = {
        "session_id": "s",
        "device": "browser",
        "start": "2026-03-07T14:00:00",
        "end": "2026-03-07T14:00:00",
        "trafficfrom": "google",
        "entry_url": "a",
        "exit_url": "a",
        "page_count": 1,
        "duration_seconds": 0.0,
        "reached_checkout": False,
    }
    # WHEN they are parsed
    # THEN the largest custid is kept and the next one is refused, as the stream does
    assert minute_session_row(minute.format(largest))[1] == largest
    assert gap_session_row(json.dumps({**gap, "custid": largest}))[1] == largest
    assert event_row(event_line(custid=largest))[1] == largest
    with pytest.raises(InvalidEvent, match="userid: 2147483648 is out of range"):
        minute_session_row(minute.format(beyond))
    with pytest.raises(InvalidEvent, match="custid: 2147483648 is out of range"):
        gap_session_row(json.dumps({**gap, "custid": beyond}))
    with pytest.raises(InvalidEvent, match="custid: 2147483648 is out of range"):
        event_row(event_line(custid=beyond))


# ---------------------------------------------------------------------------- the catalog


@pytest.mark.parametrize("name", sorted(CURATED_TABLES))
def test_each_curated_catalog_table_declares_the_glue_columns(
    template: dict[str, Any], name: str
) -> None:
    # GIVEN a curated table of the catalog and the rows the Glue jobs write to it
    schema = CURATED_TABLES[name]
    expected = [(f.name, CATALOG_TYPES[type(f.dataType)]) for f in schema.fields]
    # THEN the catalog declares the same columns, in order, of the same types
    assert catalog_columns(template, name) == expected


@pytest.mark.parametrize("name", sorted(CURATED_TABLES))
def test_each_curated_table_projects_the_event_time_range(
    template: dict[str, Any], name: str
) -> None:
    # GIVEN a curated table, partitioned by the hour of an event time
    parameters = curated_table(template, name)["Parameters"]
    # THEN its projected years are the schema's range, and every hour of them is projected
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.year.range"] == f"{EVENT_YEARS[0]},{EVENT_YEARS[1]}"
    assert parameters["projection.month.range"] == "1,12"
    assert parameters["projection.day.range"] == "1,31"
    assert parameters["projection.hour.range"] == "0,23"


def test_every_curated_table_of_the_catalog_is_checked(template: dict[str, Any]) -> None:
    # GIVEN the catalog's Parquet tables
    parquet = {
        spec["Properties"]["TableInput"]["Name"]
        for spec in template["Resources"].values()
        if spec["Type"] == "AWS::Glue::Table"
        and spec["Properties"]["TableInput"]["Parameters"].get("classification") == "parquet"
    }
    # THEN they are exactly the curated tables held to the schema above
    assert parquet == set(CURATED_TABLES)
