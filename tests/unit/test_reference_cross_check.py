"""The DuckDB reference against a second, plain-Python computation, and the mixed data set."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import InvalidEvent, parse_event
from tests.reference.clickstream_reference import (
    TOP_SOURCES,
    UNIQUE_USERS,
    ShardRange,
    compute_reference,
    kinesis_shard_ranges,
)
from tests.reference.datasets import mixed_dataset
from tests.support.reference_lines import TEN_SECONDS, utc

US = timedelta(microseconds=1)


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
