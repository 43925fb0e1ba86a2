"""The DuckDB reference of the stream semantics: hand-computed cases and a second computation."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import InvalidEvent, parse_event
from tests.reference.clickstream_reference import (
    TOP_SOURCES,
    UNIQUE_USERS,
    Reference,
    ShardRange,
    compute_reference,
    kinesis_shard_ranges,
    shard_for,
)
from tests.reference.datasets import mixed_dataset

ONE_SHARD = kinesis_shard_ranges(1)
TWO_SHARDS = kinesis_shard_ranges(2)
TEN_SECONDS = timedelta(seconds=10)
US = timedelta(microseconds=1)


def utc(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DDTHH:MM:SS[.ffffff]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def line(
    number: int,
    moment: str,
    *,
    custid: int = 1,
    url: str = "beer_cart",
    trafficfrom: str = "google",
    device: str = "browser",
) -> str:
    """A valid event line whose event_id is the UUID with integer value ``number``."""
    return json.dumps(
        {
            "event_id": str(uuid.UUID(int=number)),
            "custid": custid,
            "trafficfrom": trafficfrom,
            "url": url,
            "device": device,
            "touchproduct": 0,
            "trans_timestamp": moment,
        }
    )


def write(tmp_path: Path, lines: Sequence[str | bytes]) -> Path:
    """The lines as a JSON-lines file."""
    path = tmp_path / "events.jsonl"
    raw = [item.encode("utf-8") if isinstance(item, str) else item for item in lines]
    path.write_bytes(b"".join(item + b"\n" for item in raw))
    return path


def reference(
    tmp_path: Path,
    lines: Sequence[str | bytes],
    lateness: timedelta = TEN_SECONDS,
    ranges: list[ShardRange] = ONE_SHARD,
    **timeouts: timedelta,
) -> Reference:
    return compute_reference(write(tmp_path, lines), ranges, lateness, **timeouts)


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


# --- Minute sessions ---------------------------------------------------------------------------


def test_minute_sessions_split_at_the_minute_and_keep_the_seed_columns(tmp_path: Path) -> None:
    # GIVEN user 7 browsing across 14:01:00, and twice at the same instant on a tablet
    lines = [
        line(1, "2026-03-07T14:00:50.700000", custid=7, url="beer_vitrine_nav"),
        line(2, "2026-03-07T14:00:59.999999", custid=7, url="beer_product_detail"),
        line(3, "2026-03-07T14:01:00.000000", custid=7, url="beer_cart"),
        line(5, "2026-03-07T14:01:10.000000", custid=7, device="app_tablet", url="beer_cart"),
        line(4, "2026-03-07T14:01:10.000000", custid=7, device="app_tablet", url="beer_checkout"),
        line(6, "2026-03-07T14:01:11.000000", custid=7, device="app_mobile"),
    ]
    # WHEN the reference is computed
    rows = reference(tmp_path, lines, lateness=timedelta(minutes=1)).minute_sessions
    # THEN each (custid, device, minute) is one row; equal times are ordered by event_id
    assert rows == [
        (
            "7_bro_1772892000",
            7,
            "browser",
            "2026-03-07 14:00:00",
            2,
            "beer_vitrine_nav",
            "beer_product_detail",
            "00:50",
            "00:59",
            9,
        ),
        (
            "7_bro_1772892060",
            7,
            "browser",
            "2026-03-07 14:01:00",
            1,
            "beer_cart",
            "beer_cart",
            "01:00",
            "01:00",
            0,
        ),
        (
            "7_mob_1772892060",
            7,
            "app_mobile",
            "2026-03-07 14:01:00",
            1,
            "beer_cart",
            "beer_cart",
            "01:11",
            "01:11",
            0,
        ),
        (
            "7_tab_1772892060",
            7,
            "app_tablet",
            "2026-03-07 14:01:00",
            2,
            "beer_checkout",
            "beer_cart",
            "01:10",
            "01:10",
            0,
        ),
    ]


def test_minute_sessions_leave_out_events_late_for_their_minute(tmp_path: Path) -> None:
    # GIVEN W = 14:01:00, then an event of 14:00:30
    lines = [line(1, "2026-03-07T14:01:10"), line(2, "2026-03-07T14:00:30")]
    # WHEN the reference is computed
    rows = reference(tmp_path, lines).minute_sessions
    # THEN only the 14:01 minute has a session
    assert [row[3] for row in rows] == ["2026-03-07 14:01:00"]


# --- Gap sessions ------------------------------------------------------------------------------


def test_a_gap_equal_to_the_timeout_continues_the_session(tmp_path: Path) -> None:
    # GIVEN events at 14:00, 14:30 (gap = 30 min) and 15:00:00.000001 (gap = 30 min + 1 µs)
    lines = [
        line(1, "2026-03-07T14:00:00.000000", trafficfrom="Alexa"),
        line(2, "2026-03-07T14:30:00.000000", url="beer_checkout"),
        line(3, "2026-03-07T15:00:00.000001", url="beer_vitrine_nav"),
    ]
    # WHEN the reference is computed
    sessions = reference(tmp_path, lines).gap_sessions
    # THEN the equal gap continues the session and the longer one starts a new one
    assert sessions == [
        {
            "session_id": "1_bro_1772892000000000",
            "custid": 1,
            "device": "browser",
            "start": "2026-03-07T14:00:00.000000",
            "end": "2026-03-07T14:30:00.000000",
            "trafficfrom": "Alexa",
            "entry_url": "beer_cart",
            "exit_url": "beer_checkout",
            "page_count": 2,
            "duration_seconds": 1800.0,
            "reached_checkout": True,
        },
        {
            "session_id": "1_bro_1772895600000001",
            "custid": 1,
            "device": "browser",
            "start": "2026-03-07T15:00:00.000001",
            "end": "2026-03-07T15:00:00.000001",
            "trafficfrom": "google",
            "entry_url": "beer_vitrine_nav",
            "exit_url": "beer_vitrine_nav",
            "page_count": 1,
            "duration_seconds": 0.0,
            "reached_checkout": False,
        },
    ]


def test_a_session_is_cut_when_an_event_reaches_24_hours_after_its_start(tmp_path: Path) -> None:
    # GIVEN a user active every 20 minutes for 24 hours and 20 minutes
    start = utc("2026-03-07T14:00:00")
    moments = [start + timedelta(minutes=20 * k) for k in range(74)]
    lines = [line(k + 1, moment.isoformat()[:26]) for k, moment in enumerate(moments)]
    # WHEN the reference is computed
    sessions = reference(tmp_path, lines).gap_sessions
    # THEN the event at exactly start + 24 h opens the second session
    assert [(s["start"], s["page_count"]) for s in sessions] == [
        ("2026-03-07T14:00:00.000000", 72),
        ("2026-03-08T14:00:00.000000", 2),
    ]
    assert sessions[0]["duration_seconds"] == 85200.0


def test_gap_session_timeouts_are_parameters(tmp_path: Path) -> None:
    # GIVEN events 5 min apart
    lines = [line(n, f"2026-03-07T14:{5 * n:02d}:00.000123") for n in range(1, 5)]
    # WHEN the timeouts are 4 minutes of inactivity and then 10 minutes of length
    by_gap = reference(tmp_path, lines, inactivity_timeout=timedelta(minutes=4)).gap_sessions
    by_cap = reference(tmp_path, lines, max_duration=timedelta(minutes=10)).gap_sessions
    # THEN each event is alone, or sessions are cut every 10 minutes
    assert [s["page_count"] for s in by_gap] == [1, 1, 1, 1]
    assert [s["page_count"] for s in by_cap] == [2, 2]
    assert by_cap[0]["duration_seconds"] == 300.0


def test_events_before_the_watermark_are_left_out_of_gap_sessions_only(tmp_path: Path) -> None:
    # GIVEN W = 14:00:19, then events at 14:00:16 (before W) and at 14:00:19 (on W)
    lines = [
        line(1, "2026-03-07T14:00:29"),
        line(2, "2026-03-07T14:00:16", url="beer_checkout"),
        line(3, "2026-03-07T14:00:19", url="beer_vitrine_nav"),
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN the 14:00:16 event counts in its open window but not in the gap session
    assert result.counts.late == {15: 0, 60: 0}
    assert result.counts.gap_late == 1
    assert result.unique_users[(15, utc("2026-03-07T14:00:15"), "beer_checkout")] == 1
    [session] = result.gap_sessions
    assert (session["page_count"], session["entry_url"]) == (2, "beer_vitrine_nav")
    assert session["reached_checkout"] is False


def test_session_ids_tell_devices_apart(tmp_path: Path) -> None:
    # GIVEN the same user on the three devices at the same moment
    lines = [
        line(n, "2026-03-07T14:00:00.5", device=device)
        for n, device in enumerate(("app_mobile", "app_tablet", "browser"), start=1)
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN both kinds of session ids are unique per device
    assert [s["session_id"] for s in result.gap_sessions] == [
        "1_mob_1772892000500000",
        "1_tab_1772892000500000",
        "1_bro_1772892000500000",
    ]
    assert sorted(row[0] for row in result.minute_sessions) == [
        "1_bro_1772892000",
        "1_mob_1772892000",
        "1_tab_1772892000",
    ]


# --- A second, plain-Python computation ----------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CODES = {"app_mobile": "mob", "app_tablet": "tab", "browser": "bro"}


def _python_reference(
    path: Path,
    ranges: list[ShardRange],
    lateness: timedelta,
    timeout: timedelta = timedelta(minutes=30),
    cap: timedelta = timedelta(hours=24),
) -> dict[str, Any]:
    """The same semantics, event by event, with dictionaries and loops."""
    raw = path.read_bytes().split(b"\n")
    if raw[-1] == b"":
        raw.pop()
    quarantined: list[tuple[int, str]] = []
    seen: set[str] = set()
    duplicates = 0
    top: dict[str, datetime] = {}
    users: defaultdict[tuple[int, datetime, str], set[int]] = defaultdict(set)
    sources: Counter[tuple[datetime, str]] = Counter()
    late: Counter[tuple[str, int, datetime, str]] = Counter()
    late_sizes: Counter[int] = Counter()
    minutes: defaultdict[tuple[int, str, datetime], list[Any]] = defaultdict(list)
    gap_events: defaultdict[tuple[int, str], list[Any]] = defaultdict(list)
    gap_late = 0
    for number, record in enumerate(raw, start=1):
        try:
            event = parse_event(record)
        except InvalidEvent as error:
            quarantined.append((number, error.reason))
            continue
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        digest = int(hashlib.md5(str(event.custid).encode()).hexdigest(), 16)
        shard = next(name for name, low, high in ranges if low <= digest <= high)
        moment = event.trans_timestamp
        watermark = top[shard] - lateness if shard in top else None
        top[shard] = max(moment, top.get(shard, moment))
        for size in (15, 60):
            start = _EPOCH + timedelta(seconds=size) * (
                (moment - _EPOCH) // timedelta(seconds=size)
            )
            is_late = watermark is not None and start + timedelta(seconds=size) <= watermark
            late_sizes[size] += is_late
            if is_late:
                late[(UNIQUE_USERS, size, start, event.url)] += 1
                if size == 60:
                    late[(TOP_SOURCES, size, start, event.trafficfrom)] += 1
                continue
            users[(size, start, event.url)].add(event.custid)
            if size == 60:
                sources[(start, event.trafficfrom)] += 1
                minutes[(event.custid, event.device, start)].append(event)
        if watermark is not None and moment < watermark:
            gap_late += 1
        else:
            gap_events[(event.custid, event.device)].append(event)

    ranked: dict[tuple[datetime, str], tuple[int, int]] = {}
    for window in {start for start, _ in sources}:
        names = sorted((-n, name) for (start, name), n in sources.items() if start == window)
        for rank, (negative, name) in enumerate(names, start=1):
            ranked[(window, name)] = (-negative, rank)

    rows = []
    for (custid, device, minute), group in minutes.items():
        group.sort(key=lambda e: (e.trans_timestamp, e.event_id))
        first, last = group[0].trans_timestamp, group[-1].trans_timestamp
        rows.append(
            (
                f"{custid}_{_CODES[device]}_{int((minute - _EPOCH).total_seconds())}",
                custid,
                device,
                minute.strftime("%Y-%m-%d %H:%M:00"),
                len(group),
                group[0].url,
                group[-1].url,
                first.strftime("%M:%S"),
                last.strftime("%M:%S"),
                (last - first) // timedelta(seconds=1),
            )
        )

    sessions = []
    for (custid, device), group in gap_events.items():
        group.sort(key=lambda e: (e.trans_timestamp, e.event_id))
        current: list[Any] = []
        for event in group:
            if current and (
                event.trans_timestamp - current[-1].trans_timestamp > timeout
                or event.trans_timestamp >= current[0].trans_timestamp + cap
            ):
                sessions.append(_session(custid, device, current))
                current = []
            current.append(event)
        sessions.append(_session(custid, device, current))
    sessions.sort(key=lambda s: (s["start"], s["custid"], s["device"]))

    distinct = len(seen)
    return {
        "unique_users": {key: len(ids) for key, ids in users.items()},
        "source_counts": ranked,
        "late": dict(late),
        "minute_sessions": sorted(rows),
        "gap_sessions": sessions,
        "quarantined": tuple(quarantined),
        "lines": len(raw),
        "duplicates": duplicates,
        "distinct": distinct,
        "late_sizes": {size: late_sizes[size] for size in (15, 60)},
        "counted": {size: distinct - late_sizes[size] for size in (15, 60)},
        "gap_late": gap_late,
    }


def _session(custid: int, device: str, events: list[Any]) -> dict[str, Any]:
    start, end = events[0].trans_timestamp, events[-1].trans_timestamp
    return {
        "session_id": f"{custid}_{_CODES[device]}_{(start - _EPOCH) // US}",
        "custid": custid,
        "device": device,
        "start": start.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "trafficfrom": events[0].trafficfrom,
        "entry_url": events[0].url,
        "exit_url": events[-1].url,
        "page_count": len(events),
        "duration_seconds": (end - start).total_seconds(),
        "reached_checkout": any(event.url == "beer_checkout" for event in events),
    }


@pytest.mark.parametrize(
    ("seed", "shards", "lateness"),
    [
        (1, 4, timedelta(seconds=10)),
        (2, 3, timedelta(0)),
        (3, 1, timedelta(minutes=2)),
        (4, 2, timedelta(seconds=5, microseconds=250)),
    ],
)
def test_reference_equals_a_plain_python_computation_on_a_mixed_dataset(
    tmp_path: Path, seed: int, shards: int, lateness: timedelta
) -> None:
    # GIVEN a mixed dataset
    path = tmp_path / "mixed.jsonl"
    planted = mixed_dataset(path, seed, shards=shards, lateness=lateness)
    ranges = kinesis_shard_ranges(shards)
    # WHEN the DuckDB reference and the plain computation both run over it
    result = compute_reference(path, ranges, lateness)
    expected = _python_reference(path, ranges, lateness)
    # THEN every result is identical
    assert result.unique_users == expected["unique_users"]
    assert result.source_counts == expected["source_counts"]
    assert result.late == expected["late"]
    assert result.minute_sessions == expected["minute_sessions"]
    assert result.gap_sessions == expected["gap_sessions"]
    counts = result.counts
    assert counts.quarantined == expected["quarantined"]
    assert (counts.lines, counts.duplicates, counts.distinct) == (
        expected["lines"],
        expected["duplicates"],
        expected["distinct"],
    )
    assert counts.late == expected["late_sizes"]
    assert counts.counted == expected["counted"]
    assert counts.gap_late == expected["gap_late"]
    # AND both agree with what the generator tracked while writing
    assert (counts.lines, counts.distinct) == (planted.lines, planted.distinct_events)
    assert counts.duplicates == planted.duplicate_lines
    assert counts.late == planted.late_by_size
    assert counts.gap_late == planted.gap_late


def test_the_mixed_dataset_reconciles_and_exercises_every_rule(tmp_path: Path) -> None:
    # GIVEN the default mixed dataset over four shards
    path = tmp_path / "mixed.jsonl"
    planted = mixed_dataset(path, 7, shards=4, lateness=TEN_SECONDS)
    # WHEN the reference is computed
    result = compute_reference(path, kinesis_shard_ranges(4), TEN_SECONDS)
    counts = result.counts
    # THEN every line is accounted for, and every distinct event is counted or late per size
    assert counts.lines == len(counts.quarantined) + counts.duplicates + counts.distinct
    for size in (15, 60):
        assert counts.distinct == counts.counted[size] + counts.late[size]
    assert sum(result.late.values()) == counts.late[15] + 2 * counts.late[60]
    assert sum(n for n, _ in result.source_counts.values()) == counts.counted[60]
    assert sum(row[4] for row in result.minute_sessions) == counts.counted[60]
    assert sum(s["page_count"] for s in result.gap_sessions) == counts.distinct - counts.gap_late
    # AND the dataset really contains what it promises
    assert len(set(result.shard_of_custid.values())) == 4
    assert all(len(custids) >= 2 for custids in planted.custids_by_shard.values())
    assert min(planted.malformed.values()) > 0
    assert len(counts.quarantined) == sum(planted.malformed.values())
    assert planted.far_duplicates > 0 and planted.out_of_order > 0
    assert planted.late > 0 and planted.late_15s_only > 0 and planted.before_watermark > 0
    assert planted.window_edges > 0 and planted.watermark_edges > 0
    assert planted.gap_exactly_timeout > 0 and planted.gap_timeout_plus_1us > 0
    assert counts.late[15] > counts.late[60] > 0
    assert counts.gap_late > counts.late[15]
    per_window = Counter((start, n) for (start, _), (n, _) in result.source_counts.items())
    assert max(per_window.values()) > 1, "some window has sources tied on their count"
    marathon = [s for s in result.gap_sessions if s["custid"] == planted.marathon_custid]
    assert planted.span > timedelta(hours=24)
    assert len(marathon) >= 2
    assert marathon[0]["duration_seconds"] < 24 * 3600
    breaks = _breaks_between_sessions(result.gap_sessions)
    assert timedelta(minutes=30) + US in breaks
    assert timedelta(minutes=30) not in breaks


def _breaks_between_sessions(sessions: list[dict[str, Any]]) -> set[timedelta]:
    """Time from the end of each session to the start of the next one of the same key."""
    by_key: defaultdict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for session in sessions:
        by_key[(session["custid"], session["device"])].append(session)
    breaks: set[timedelta] = set()
    for group in by_key.values():
        for before, after in itertools.pairwise(group):
            breaks.add(utc(after["start"]) - utc(before["end"]))
    return breaks


def test_mixed_dataset_is_deterministic(tmp_path: Path) -> None:
    # GIVEN / WHEN the same seed is written twice and another seed once
    first = mixed_dataset(tmp_path / "a.jsonl", 11, shards=2, events=300)
    again = mixed_dataset(tmp_path / "b.jsonl", 11, shards=2, events=300)
    other = mixed_dataset(tmp_path / "c.jsonl", 12, shards=2, events=300)
    # THEN the same seed gives the same bytes and summary, another seed other bytes
    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.late_by_size == again.late_by_size
    assert first.path.read_bytes() != other.path.read_bytes()
