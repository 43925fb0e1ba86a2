"""The DuckDB reference on hand-computed cases: shards, validation, duplicates and windows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.reference.clickstream_reference import (
    TOP_SOURCES,
    UNIQUE_USERS,
    kinesis_shard_ranges,
    shard_for,
)
from tests.support.reference_lines import TWO_SHARDS, line, reference, utc

# --- Shards ------------------------------------------------------------------------------------


def test_kinesis_shard_ranges_split_the_hash_key_space_evenly() -> None:
    # GIVEN / WHEN the ranges CreateStream gives to 1, 2 and 3 shards
    one, two, three = (kinesis_shard_ranges(n) for n in (1, 2, 3))
    # THEN they cover 0..2^128-1 without gaps, the last shard taking the remainder
    assert one == [("shardId-000000000000", 0, 2**128 - 1)]
    assert two == [
        ("shardId-000000000000", 0, 2**127 - 1),
        ("shardId-000000000001", 2**127, 2**128 - 1),
    ]
    assert [end for _, _, end in three] == [
        113427455640312821154458202477256070484,
        226854911280625642308916404954512140969,
        2**128 - 1,
    ]
    assert [start for _, start, _ in three] == [0, *(end + 1 for _, _, end in three[:2])]


def test_shard_for_reads_the_md5_of_the_custid_as_a_big_endian_integer() -> None:
    # GIVEN md5("1") = c4ca4238..., md5("6") = 1679091c... (upper and lower half of the space)
    # WHEN the custids are placed on two shards
    # THEN the leading byte decides the half
    assert shard_for(1, TWO_SHARDS) == "shardId-000000000001"
    assert shard_for(6, TWO_SHARDS) == "shardId-000000000000"
    # AND explicit, uneven ranges (e.g. after a split) are honoured
    uneven = [("low", 0, 0x16 << 120), ("high", (0x16 << 120) + 1, 2**128 - 1)]
    assert shard_for(6, uneven) == "high"
    with pytest.raises(ValueError, match="no shard"):
        shard_for(6, [("tiny", 0, 1)])


# --- Validation and duplicates -----------------------------------------------------------------


def test_invalid_lines_are_quarantined_with_their_reason(tmp_path: Path) -> None:
    # GIVEN one valid line and four invalid ones
    good = line(1, "2026-03-07T14:00:00.000000")
    lines: list[str | bytes] = [
        good,
        "{not json",
        json.dumps({**json.loads(good), "custid": "1"}),
        good.replace('"beer_cart"', '"beer_\xff"').encode("latin-1"),
        json.dumps({**json.loads(good), "url": "x" * 5000}),
    ]
    # WHEN the reference is computed
    counts = reference(tmp_path, lines).counts
    # THEN each invalid line is quarantined with its line number and reason
    assert counts.lines == 5
    assert [number for number, _ in counts.quarantined] == [2, 3, 4, 5]
    reasons = [reason for _, reason in counts.quarantined]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1] == "custid: expected integer, got string"
    assert reasons[2].startswith("record is not valid UTF-8")
    assert "over the 4096-byte limit" in reasons[3]
    assert (counts.duplicates, counts.distinct) == (0, 1)


def test_a_duplicate_counts_nowhere_and_does_not_move_the_watermark(tmp_path: Path) -> None:
    # GIVEN event 1, then a line reusing its event_id ten minutes later, then event 2
    lines = [
        line(1, "2026-03-07T14:00:00.000000"),
        line(1, "2026-03-07T14:10:00.000000", url="beer_checkout"),
        line(2, "2026-03-07T14:00:05.000000"),
        line(2, "2026-03-07T14:00:05.000000"),
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN the repeats are duplicates: event 2 is not late, and 14:10 appears nowhere
    assert (result.counts.duplicates, result.counts.distinct) == (2, 2)
    assert result.late == {}
    assert result.unique_users == {
        (15, utc("2026-03-07T14:00:00"), "beer_cart"): 1,
        (60, utc("2026-03-07T14:00:00"), "beer_cart"): 1,
    }
    assert result.source_counts == {(utc("2026-03-07T14:00:00"), "google"): (2, 1)}


def test_a_late_event_repeated_is_late_once_and_its_repeat_is_a_duplicate(tmp_path: Path) -> None:
    # GIVEN a watermark of 14:01:10 and then an event of 14:00:50, sent twice
    lines = [
        line(1, "2026-03-07T14:01:20.000000"),
        line(2, "2026-03-07T14:00:50.000000"),
        line(2, "2026-03-07T14:00:50.000000"),
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN the event is late once for each window of each metric, and the repeat is a duplicate
    assert result.late == {
        (UNIQUE_USERS, 15, utc("2026-03-07T14:00:45"), "beer_cart"): 1,
        (UNIQUE_USERS, 60, utc("2026-03-07T14:00:00"), "beer_cart"): 1,
        (TOP_SOURCES, 60, utc("2026-03-07T14:00:00"), "google"): 1,
    }
    assert result.counts.duplicates == 1
    assert result.counts.late == {15: 1, 60: 1}
    assert result.counts.counted == {15: 1, 60: 1}


# --- Windows -----------------------------------------------------------------------------------


def test_window_edges_belong_to_the_window_they_start(tmp_path: Path) -> None:
    # GIVEN events on both sides of 14:00:15 and of 14:01:00, by different users
    lines = [
        line(1, "2026-03-07T14:00:14.999999", custid=1),
        line(2, "2026-03-07T14:00:15.000000", custid=2),
        line(3, "2026-03-07T14:00:59.999999", custid=3),
        line(4, "2026-03-07T14:01:00", custid=4),
    ]
    # WHEN the reference is computed (lateness large enough for nothing to be late)
    users = reference(tmp_path, lines, lateness=timedelta(minutes=5)).unique_users
    # THEN each edge starts a new window, exact to the microsecond
    assert users == {
        (15, utc("2026-03-07T14:00:00"), "beer_cart"): 1,
        (15, utc("2026-03-07T14:00:15"), "beer_cart"): 1,
        (15, utc("2026-03-07T14:00:45"), "beer_cart"): 1,
        (15, utc("2026-03-07T14:01:00"), "beer_cart"): 1,
        (60, utc("2026-03-07T14:00:00"), "beer_cart"): 3,
        (60, utc("2026-03-07T14:01:00"), "beer_cart"): 1,
    }


@pytest.mark.parametrize(
    ("first", "late_sizes"),
    [
        # W = 14:01:00 exactly: the 15 s and 60 s windows ending at 14:01:00 are final.
        ("2026-03-07T14:01:10.000000", {15: 1, 60: 1}),
        # W = 14:00:59.999999: nothing is final yet.
        ("2026-03-07T14:01:09.999999", {15: 0, 60: 0}),
        # W = 14:01:14.999999: both windows, ending at 14:01:00, are final.
        ("2026-03-07T14:01:24.999999", {15: 1, 60: 1}),
    ],
)
def test_an_event_is_late_when_the_watermark_reaches_its_window_end(
    tmp_path: Path, first: str, late_sizes: dict[int, int]
) -> None:
    # GIVEN an event that sets the watermark, then an event in the last microsecond of a minute
    lines = [line(1, first), line(2, "2026-03-07T14:00:59.999999")]
    # WHEN the reference is computed with 10 s of allowed lateness
    counts = reference(tmp_path, lines).counts
    # THEN window_end <= W is late; window_end > W counts
    assert counts.late == late_sizes
    assert {size: counts.counted[size] + counts.late[size] for size in (15, 60)} == {15: 2, 60: 2}


def test_an_event_can_be_late_for_15_seconds_and_count_for_60(tmp_path: Path) -> None:
    # GIVEN W = 14:00:40, then an event of 14:00:20
    lines = [line(1, "2026-03-07T14:00:50"), line(2, "2026-03-07T14:00:20", custid=2)]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN it is late for [14:00:15, 14:00:30) but counts in the minute
    assert result.late == {(UNIQUE_USERS, 15, utc("2026-03-07T14:00:15"), "beer_cart"): 1}
    assert result.unique_users[(60, utc("2026-03-07T14:00:00"), "beer_cart")] == 2
    assert result.counts.late == {15: 1, 60: 0}


def test_unique_users_count_distinct_custids_per_url(tmp_path: Path) -> None:
    # GIVEN users 1 and 2 on the cart (user 1 twice) and user 1 on the checkout
    lines = [
        line(1, "2026-03-07T14:00:01", custid=1),
        line(2, "2026-03-07T14:00:02", custid=1),
        line(3, "2026-03-07T14:00:03", custid=2),
        line(4, "2026-03-07T14:00:04", custid=1, url="beer_checkout"),
    ]
    # WHEN the reference is computed
    users = reference(tmp_path, lines).unique_users
    # THEN each url counts its distinct users
    assert users[(15, utc("2026-03-07T14:00:00"), "beer_cart")] == 2
    assert users[(15, utc("2026-03-07T14:00:00"), "beer_checkout")] == 1


def test_sources_are_ranked_by_count_then_by_name(tmp_path: Path) -> None:
    # GIVEN google, Alexa and email twice each, facebook.com once, in one minute
    sources = ["google", "facebook.com", "Alexa", "email_CampanhaBeer"] * 2
    sources.remove("facebook.com")
    lines = [
        line(n, f"2026-03-07T14:00:{n:02d}", trafficfrom=source)
        for n, source in enumerate(sources, start=1)
    ]
    # WHEN the reference is computed
    counts = reference(tmp_path, lines).source_counts
    # THEN ties are broken by name, in code-point order (upper case first), ranks are ordinal
    minute = utc("2026-03-07T14:00:00")
    assert counts == {
        (minute, "Alexa"): (2, 1),
        (minute, "email_CampanhaBeer"): (2, 2),
        (minute, "google"): (2, 3),
        (minute, "facebook.com"): (1, 4),
    }


def test_watermarks_of_shards_are_independent(tmp_path: Path) -> None:
    # GIVEN custid 1 on shard 1 at 15:00, then custid 6 (shard 0) and custid 1 at 14:00:30
    lines = [
        line(1, "2026-03-07T15:00:00", custid=1),
        line(2, "2026-03-07T14:00:30", custid=6),
        line(3, "2026-03-07T14:00:30", custid=1),
    ]
    # WHEN the reference is computed over two shards
    result = reference(tmp_path, lines, ranges=TWO_SHARDS)
    # THEN only custid 1's shard has a watermark past 14:00:30
    assert result.counts.late == {15: 1, 60: 1}
    assert result.unique_users[(60, utc("2026-03-07T14:00:00"), "beer_cart")] == 1
    assert result.shard_of_custid == {1: "shardId-000000000001", 6: "shardId-000000000000"}
    # AND on a single shard both would be late
    assert reference(tmp_path, lines).counts.late == {15: 2, 60: 2}
