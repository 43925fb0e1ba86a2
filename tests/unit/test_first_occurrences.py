"""The registry of first occurrences: repeats found by bucket, batches cut by buckets."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from clickstream.core.first_occurrences import (
    event_digest,
    first_occurrences,
    part_length,
    registry_bucket,
)
from clickstream.core.records import ShardRecord, parse_records
from tests.factories import at, make_event

MOMENT = at("2026-03-07T14:04:07.250000")


def test_an_event_falls_in_the_15_second_bucket_of_its_time() -> None:
    assert registry_bucket(make_event(MOMENT)) == at("2026-03-07T14:04:00")
    assert registry_bucket(make_event(at("2026-03-07T14:04:15"))) == at("2026-03-07T14:04:15")


def test_a_registered_id_is_a_repeat_whatever_else_it_carries() -> None:
    # GIVEN an event registered in its bucket
    first = make_event(MOMENT, url="beer_cart", trafficfrom="google")
    registered = {registry_bucket(first): frozenset({event_digest(first.event_id)})}
    # WHEN a batch brings it again with other fields, and a new event twice
    repeat = replace(first, url="wine_cart", trafficfrom="bing", device="app_tablet")
    new = make_event(MOMENT + timedelta(seconds=1))
    found = first_occurrences([repeat, new, new], registered)
    # THEN the repeat is dropped; the new event is kept (twice: the batch's own rule decides)
    assert (found.events, found.repeats) == ((new, new), 1)
    # AND only the new event is registered, once
    assert found.registrations == {registry_bucket(new): frozenset({event_digest(new.event_id)})}


def test_a_repeat_in_another_bucket_is_another_event() -> None:
    first = make_event(MOMENT)
    registered = {registry_bucket(first): frozenset({event_digest(first.event_id)})}
    moved = replace(first, trans_timestamp=MOMENT + timedelta(seconds=15))
    assert first_occurrences([moved], registered).repeats == 0


def test_batches_are_cut_after_the_last_record_of_the_allowed_buckets() -> None:
    # GIVEN records in buckets 0, 0, 1, invalid, 2, 1
    seconds = [0, 5, 15, None, 30, 16]
    records = parse_records(
        ShardRecord(
            "shardId-0",
            str(n + 1),
            b"{bad"
            if offset is None
            else make_event(MOMENT + timedelta(seconds=offset)).to_json_line(),
        )
        for n, offset in enumerate(seconds)
    )
    # THEN two buckets take the first four records, three take all, one the first two
    assert part_length(records, max_buckets=2) == 4
    assert part_length(records, max_buckets=3) == 6
    assert part_length(records, max_buckets=1) == 2
    # AND a part always holds at least one record
    assert part_length(records[4:], max_buckets=0) == 1
    assert part_length([], max_buckets=1) == 0
