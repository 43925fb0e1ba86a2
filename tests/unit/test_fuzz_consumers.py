"""Property-based tests of the stream consumers on in-memory ports: any lines, any batch cuts.

For any mix of valid events, exact repeats and invalid lines, cut into batches anywhere, no
exception escapes, no record is left failed, and every line is accounted for exactly once:
``lines = counted + duplicates + late + quarantined``. Repeats may also carry another url,
source or device: every window, per-minute row and gap session equals that of the first
occurrences alone. Every per-minute session row the sessionizer emits reads back from its CSV
line unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers.window_counter import finalize, handle_batch
from clickstream.core.events import DEVICES, InvalidEvent, parse_event
from clickstream.core.sessions import parse_csv_line
from clickstream.core.window_counting import ResultRow
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream.settings import WindowCounterSettings
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryQuarantine,
    MemoryWindowResults,
    memory_window_counter_ports,
)
from tests.support.lambda_events import kinesis_event, kinesis_record
from tests.support.sessionizer import Pipeline, record
from tests.support.text_values import HOSTILE_URLS

EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True, database=None)
SHARD = "shardId-0"
START = at("2026-03-07T14:00:00")
ARRIVED = START + timedelta(minutes=10)
SETTINGS = WindowCounterSettings.from_env(
    {
        "STATE_TABLE": "state",
        "RESULTS_TABLE": "results",
        "STREAM_NAME": "stream",
        "QUARANTINE_BUCKET": "lake",
        "ALLOWED_LATENESS_SECONDS": "20",
        "IDLE_TIMEOUT_SECONDS": "60",
    }
)

VALID_LINES = st.builds(
    lambda custid, url, source, device, offset: make_event(
        START + timedelta(microseconds=offset),
        custid=custid,
        url=url,
        trafficfrom=source,
        device=device,
    ).to_json_line(),
    custid=st.integers(min_value=1, max_value=6),
    url=st.sampled_from(["beer_cart", "wine_cart", *HOSTILE_URLS]),
    source=st.sampled_from(["google", "Alexa", 'say "hi", again']),
    device=st.sampled_from(DEVICES),
    offset=st.integers(min_value=0, max_value=300_000_000),
)
INVALID_LINES = st.one_of(
    # A record's line ends at a newline: bytes holding one are several lines.
    st.binary(max_size=40).map(lambda data: data.replace(b"\n", b" ")),
    st.just(b"{not json"),
    VALID_LINES.map(lambda line: line.replace(b'"url":"', b'"url":"\\n', 1)),
    VALID_LINES.map(lambda line: line.replace(b'"custid":', b'"custid":1099511627776', 1)),
)


@st.composite
def stream_lines(draw: st.DrawFn, differing_repeats: bool = False) -> list[bytes]:
    """Valid events, exact repeats of earlier lines and invalid lines, in any order; with
    ``differing_repeats``, also repeats of earlier events' ids with another url, source or
    device (the same custid and time)."""
    lines: list[bytes] = []
    kinds = "vvvvrxd" if differing_repeats else "vvvvrx"
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=80)):
        valid = [line for line in lines if _valid(line)]
        if kind == "r" and lines:
            lines.append(lines[draw(st.integers(min_value=0, max_value=len(lines) - 1))])
        elif kind == "d" and valid:
            original = parse_event(draw(st.sampled_from(valid)))
            changed = replace(
                original,
                url=draw(st.sampled_from(["beer_cart", "wine_cart", *HOSTILE_URLS])),
                trafficfrom=draw(st.sampled_from(["google", "Alexa", "bing"])),
                device=draw(st.sampled_from(DEVICES)),
            )
            lines.append(changed.to_json_line())
        elif kind == "x":
            lines.append(draw(INVALID_LINES))
        else:
            lines.append(draw(VALID_LINES))
    return lines


@st.composite
def cuts(draw: st.DrawFn, count: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) batches covering ``count`` records, of any sizes."""
    batches, start = [], 0
    while start < count:
        size = draw(st.integers(min_value=1, max_value=30))
        batches.append((start, min(count, start + size)))
        start += size
    return batches


@dataclass(frozen=True)
class LineCounts:
    """What the lines hold, computed without the consumers."""

    invalid: int
    valid: int
    distinct: int


def line_counts(lines: list[bytes]) -> LineCounts:
    ids: Counter[str] = Counter()
    invalid = 0
    for line in lines:
        try:
            ids[parse_event(line).event_id] += 1
        except InvalidEvent:
            invalid += 1
    return LineCounts(invalid, sum(ids.values()), len(ids))


@EXAMPLES
@given(st.data())
def test_the_window_counter_accounts_for_every_line_however_batches_are_cut(
    data: st.DataObject,
) -> None:
    # GIVEN any lines, repeats that differ included, cut into batches anywhere
    lines = data.draw(stream_lines(differing_repeats=True))
    batches = data.draw(cuts(len(lines)))
    # WHEN each batch is handled, then the stream ends
    results, quarantine, handled = count_windows(lines, batches)
    # THEN every line is counted, a duplicate, late or quarantined, exactly once
    expected = line_counts(lines)
    rows = results.rows(TOP_SOURCES, 60)
    counted = sum(row.value for row in rows)
    late = sum(row.late_events for row in rows)
    quarantined = len(quarantine.records)
    assert handled == len(lines)
    assert quarantined == expected.invalid
    assert counted + late == expected.distinct
    assert len(lines) == counted + (expected.valid - expected.distinct) + late + quarantined
    assert all(row.final for row in rows)
    # AND every window equals the first occurrences alone, counted in one batch
    reference, _, _ = count_windows(first_occurrences(lines), [(0, len(first_occurrences(lines)))])
    for metric, size in ((UNIQUE_USERS, 15), (UNIQUE_USERS, 60), (TOP_SOURCES, 60)):
        assert row_values(results.rows(metric, size)) == row_values(reference.rows(metric, size))


@EXAMPLES
@given(st.data())
def test_the_window_counter_gives_the_same_rows_when_lines_are_packed_into_records(
    data: st.DataObject,
) -> None:
    # GIVEN any lines that are not blank, packed into Kinesis records of any sizes, and those
    # records cut into batches anywhere
    lines = [line for line in data.draw(stream_lines(differing_repeats=True)) if line.strip()]
    packs = data.draw(cuts(len(lines)))
    records = [b"".join(line + b"\n" for line in lines[start:end]) for start, end in packs]
    batches = data.draw(cuts(len(records)))
    # WHEN they are counted, and the same lines one per record in one batch
    packed, packed_quarantine, handled = count_windows(records, batches)
    single, single_quarantine, _ = count_windows(lines, [(0, len(lines))])
    # THEN every line was handled as one event, and the rows and quarantine are the same
    # (a record of one line is quarantined as sent, with its newline if it had one)
    assert handled == len(lines)
    assert sorted(r.data.rstrip(b"\n") for r in packed_quarantine.records) == sorted(
        r.data.rstrip(b"\n") for r in single_quarantine.records
    )
    for metric, size in ((UNIQUE_USERS, 15), (UNIQUE_USERS, 60), (TOP_SOURCES, 60)):
        assert row_values(packed.rows(metric, size)) == row_values(single.rows(metric, size))


def count_windows(
    lines: list[bytes], batches: list[tuple[int, int]]
) -> tuple[MemoryWindowResults, MemoryQuarantine, int]:
    """The window counter over the records ``lines`` (one line each, or several packed) in
    ``batches``, then the end of the stream: its rows, its quarantine and how many events it
    handled; no batch may leave a record failed."""
    results, quarantine = MemoryWindowResults(), MemoryQuarantine()
    ports = memory_window_counter_ports([SHARD], results=results, quarantine=quarantine)
    handled = 0
    for start, end in batches:
        event = kinesis_event(
            *(kinesis_record(SHARD, str(n + 1), lines[n], ARRIVED) for n in range(start, end))
        )
        report = handle_batch(records_by_shard(event), settings=SETTINGS, ports=ports, now=ARRIVED)
        assert report.response() == {"batchItemFailures": []}
        handled += report.records
    finalize(settings=SETTINGS, ports=ports, shard_ids=[SHARD], now=ARRIVED, close_all=True)
    return results, quarantine, handled


def first_occurrences(lines: list[bytes]) -> list[bytes]:
    """The valid lines whose event_id did not occur before, in order."""
    seen: set[str] = set()
    kept: list[bytes] = []
    for line in lines:
        if _valid(line) and (event_id := parse_event(line).event_id) not in seen:
            seen.add(event_id)
            kept.append(line)
    return kept


def row_values(rows: list[ResultRow]) -> list[tuple[object, ...]]:
    """What a reader sees of each row, in window then key order."""
    return sorted(
        (row.window_start, row.key, row.value, row.late_events, row.rank, row.final) for row in rows
    )


@EXAMPLES
@given(st.data())
def test_the_sessionizer_accounts_for_every_line_and_its_rows_read_back(
    data: st.DataObject,
) -> None:
    # GIVEN any lines, repeats that differ included, replayed in batches of any one size
    lines = data.draw(stream_lines(differing_repeats=True))
    batch_size = data.draw(st.integers(min_value=1, max_value=40))
    records = [record(str(n + 1), line) for n, line in enumerate(lines)]
    pipeline = Pipeline()
    # WHEN they are sessionised and the stream ends
    outcome = pipeline.replay(records, batch_size).plus(pipeline.close_all())
    # THEN nothing failed and every record was applied once
    assert outcome.failures == ()
    assert (outcome.processed, outcome.failed) == (len(lines), 0)
    # AND exactly the invalid lines were quarantined
    expected = line_counts(lines)
    assert len(pipeline.quarantine.records) == expected.invalid
    # AND every per-minute row reads back from its CSV line unchanged
    for row in pipeline.minute_sink.rows:
        assert parse_csv_line(row.to_csv_line().rstrip("\n")) == [str(v) for v in row.row()]
    # AND every distinct valid event is in a row, a duplicate or late
    sessionized = {json.loads(line)["custid"] for line in lines if _valid(line)}
    assert {row.row()[1] for row in pipeline.minute_sink.rows} <= sessionized
    # AND the rows and sessions equal those of the first occurrences alone, in one batch
    firsts = first_occurrences(lines)
    reference = Pipeline()
    reference.replay([record(str(n + 1), line) for n, line in enumerate(firsts)], len(firsts) or 1)
    reference.close_all()
    assert sorted(map(str, pipeline.minute_sink.rows)) == sorted(
        map(str, reference.minute_sink.rows)
    )
    assert sorted(map(str, pipeline.gap_sink.sessions)) == sorted(
        map(str, reference.gap_sink.sessions)
    )


def _valid(line: bytes) -> bool:
    try:
        parse_event(line)
    except InvalidEvent:
        return False
    return True
