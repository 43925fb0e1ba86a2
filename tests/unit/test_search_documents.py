"""Search documents: template, daily index names, bulk actions, chunking and error classes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from clickstream.core.search_documents import (
    ALIAS,
    INDEX_PATTERN,
    INDEX_PREFIX,
    TEMPLATE_NAME,
    action_size,
    bulk_actions,
    bulk_body,
    chunk_actions,
    classify_item_error,
    document,
    error_reason,
    index_name,
    index_template,
)
from tests.factories import at, make_event


def test_names_share_one_prefix() -> None:
    assert INDEX_PREFIX == ALIAS == TEMPLATE_NAME == "clickstream-events"
    assert INDEX_PATTERN == "clickstream-events-*"


def test_template_covers_the_daily_indices_with_strict_mappings_and_the_alias() -> None:
    # GIVEN the default prefix
    # WHEN the template is built
    template = index_template()

    # THEN it matches every daily index, adds the alias and maps each field strictly
    assert template["index_patterns"] == ["clickstream-events-*"]
    body = template["template"]
    assert body["aliases"] == {"clickstream-events": {}}
    assert body["settings"]["index"] == {"number_of_shards": 1, "number_of_replicas": 0}
    assert body["mappings"]["dynamic"] == "strict"
    types = {name: spec["type"] for name, spec in body["mappings"]["properties"].items()}
    assert types == {
        "event_id": "keyword",
        "custid": "long",
        "trafficfrom": "keyword",
        "url": "keyword",
        "device": "keyword",
        "touchproduct": "long",
        "trans_timestamp": "date",
        "@timestamp": "date",
    }
    properties = body["mappings"]["properties"]
    assert properties["trans_timestamp"]["format"].startswith("strict_date_optional_time")
    assert properties["@timestamp"]["format"].startswith("strict_date_optional_time")


def test_template_follows_a_custom_prefix_and_replicas() -> None:
    # GIVEN another prefix and one replica
    template = index_template("t1-events", replicas=1)

    # THEN pattern and alias follow the prefix
    assert template["index_patterns"] == ["t1-events-*"]
    assert template["template"]["aliases"] == {"t1-events": {}}
    assert template["template"]["settings"]["index"]["number_of_replicas"] == 1


def test_every_document_field_is_mapped() -> None:
    # GIVEN a document (strict mapping refuses unmapped fields)
    fields = set(document(make_event(at("2026-03-07T14:04:56.683790"))))

    # THEN the template maps exactly its fields
    assert fields == set(index_template()["template"]["mappings"]["properties"])


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-03-07T14:04:56.683790", "clickstream-events-2026.03.07"),
        ("2026-03-07T23:59:59.999999", "clickstream-events-2026.03.07"),
        ("2026-03-08T00:00:00.000000", "clickstream-events-2026.03.08"),
        ("2025-12-31T23:59:59.000000", "clickstream-events-2025.12.31"),
    ],
)
def test_index_is_the_utc_day_of_the_event_time(moment: str, expected: str) -> None:
    assert index_name(make_event(at(moment))) == expected


def test_index_uses_the_given_prefix() -> None:
    assert index_name(make_event(at("2026-03-07T00:00:00")), "t1-events") == "t1-events-2026.03.07"


def test_document_holds_every_field_and_a_utc_timestamp() -> None:
    # GIVEN an event
    event = make_event(at("2026-03-07T14:04:56.683790"), custid=7, device="app_mobile")

    # WHEN it becomes a document
    doc = document(event)

    # THEN every field is there and @timestamp is the event time in UTC with Z
    assert doc == {
        "event_id": event.event_id,
        "custid": 7,
        "trafficfrom": "google",
        "url": "beer_vitrine_nav",
        "device": "app_mobile",
        "touchproduct": 0,
        "trans_timestamp": "2026-03-07T14:04:56.683790",
        "@timestamp": "2026-03-07T14:04:56.683790Z",
    }


def test_bulk_actions_create_each_event_under_its_id_in_its_day() -> None:
    # GIVEN events on two days
    first = make_event(at("2026-03-07T23:59:59.000001"))
    second = make_event(at("2026-03-08T00:00:01.000000"))

    # WHEN turned into actions
    actions = bulk_actions([first, second], "p")

    # THEN each is a create op (an existing document is kept) with _id = event_id in its
    # daily index
    assert [(a["_op_type"], a["_index"], a["_id"]) for a in actions] == [
        ("create", "p-2026.03.07", first.event_id),
        ("create", "p-2026.03.08", second.event_id),
    ]
    assert actions[0]["_source"] == document(first)


def test_bulk_body_is_ndjson_metadata_then_source() -> None:
    # GIVEN one action
    event = make_event(at("2026-03-07T14:04:56.683790"))
    (action,) = bulk_actions([event])

    # WHEN serialised
    body = bulk_body([action])

    # THEN it is two JSON lines ending with a newline, and its size is counted exactly
    assert body.endswith("\n")
    metadata, source = (json.loads(line) for line in body.splitlines())
    assert metadata == {"create": {"_index": index_name(event), "_id": event.event_id}}
    assert source == document(event)
    assert action_size(action) == len(body.encode("utf-8"))


def _actions(count: int) -> list[dict]:
    start = at("2026-03-07T14:00:00")
    return bulk_actions(make_event(start + timedelta(seconds=i)) for i in range(count))


def test_chunks_hold_at_most_max_docs_in_order() -> None:
    # GIVEN 1,201 actions
    actions = _actions(1201)

    # WHEN chunked by 500
    chunks = chunk_actions(actions, max_docs=500)

    # THEN three chunks of 500, 500 and 201 keep the order
    assert [len(chunk) for chunk in chunks] == [500, 500, 201]
    assert [a for chunk in chunks for a in chunk] == actions


def test_chunks_stay_under_max_bytes() -> None:
    # GIVEN actions of equal size and a byte bound of just under three of them
    actions = _actions(10)
    size = action_size(actions[0])
    assert all(action_size(a) == size for a in actions)

    # WHEN chunked
    chunks = chunk_actions(actions, max_docs=500, max_bytes=3 * size - 1)

    # THEN each chunk holds two actions and stays under the bound
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 2, 2]
    assert all(sum(action_size(a) for a in chunk) <= 3 * size - 1 for chunk in chunks)


def test_an_action_bigger_than_max_bytes_goes_alone() -> None:
    actions = _actions(3)
    assert [len(c) for c in chunk_actions(actions, max_bytes=1)] == [1, 1, 1]


def test_no_actions_no_chunks() -> None:
    assert chunk_actions([]) == []


@pytest.mark.parametrize(("max_docs", "max_bytes"), [(0, 10), (10, 0)])
def test_chunk_bounds_must_be_positive(max_docs: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        chunk_actions(_actions(1), max_docs=max_docs, max_bytes=max_bytes)


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (429, "es_rejected_execution_exception", "transient"),
        (429, "circuit_breaking_exception", "transient"),
        (503, "unavailable_shards_exception", "transient"),
        (500, "exception", "transient"),
        (502, None, "transient"),
        (400, "es_rejected_execution_exception", "transient"),
        (400, "circuit_breaking_exception", "transient"),
        (400, "mapper_parsing_exception", "permanent"),
        (400, "document_parsing_exception", "permanent"),
        (400, "illegal_argument_exception", "permanent"),
        (400, "strict_dynamic_mapping_exception", "permanent"),
        (404, "index_not_found_exception", "permanent"),
        (409, "version_conflict_engine_exception", "permanent"),
        (413, None, "permanent"),
    ],
)
def test_item_error_classes(status: int, error_type: str | None, expected: str) -> None:
    error = {"type": error_type, "reason": "x"} if error_type else None
    assert classify_item_error(status, error) == expected


def test_a_transient_cause_makes_the_error_transient() -> None:
    # GIVEN a 400 whose cause is a rejected execution
    error = {"type": "exception", "caused_by": {"type": "es_rejected_execution_exception"}}

    # THEN it is retried
    assert classify_item_error(400, error) == "transient"


def test_error_reason_names_status_type_reason_and_cause() -> None:
    error = {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [device] of type [integer]",
        "caused_by": {"type": "number_format_exception", "reason": 'For input string: "browser"'},
    }
    assert error_reason(400, error) == (
        "400 mapper_parsing_exception: failed to parse field [device] of type [integer]"
        ' (caused by number_format_exception: For input string: "browser")'
    )
    assert error_reason(500, None) == "500 unknown error"
