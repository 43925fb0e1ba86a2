"""Stream processing on the whole local stack equals an independent DuckDB computation of §3.

A mixed JSON-lines file (several shards, out-of-order events within the lateness, duplicates,
events later than the lateness, window edges, malformed lines) is replayed through the real
stream, runner and consumers; after a drain and the end of the stream, the window results and
both kinds of sessions are compared exactly with ``tests.reference``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.core.records import parse_records
from clickstream.core.window_counting import ResultRow
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream.generator.producer import send_records
from clickstream_analytics.reconcile import (
    read_gap_sessions,
    read_minute_sessions,
    stream_accounting,
    stream_records,
)
from clickstream_cli.traffic import FINALIZER, ReplayFile, invoke_function
from clickstream_local.stack import LocalStack, StackState
from tests.reference.clickstream_reference import Reference, compute_reference
from tests.reference.datasets import mixed_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]
"""The module's stack starts and drains in the first test's setup: a whole-batch invocation of
about 290 records can exceed the window counter's 120 s timeout on the emulator (about a
thousand DynamoDB calls, each far slower than on AWS), and the drain then waits for the
mapping's bisection to get through."""

LATENESS = timedelta(seconds=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, StackState]]:
    """A whole local stack with 10 s lateness; idle advance off so only the data decides."""
    local = LocalStack(home=tmp_path_factory.mktemp("stream-stack"))
    state, _ = local.up(
        {"AllowedLatenessSeconds": "10", "IdleTimeoutSeconds": "86400", "ShardCount": "3"}
    )
    yield local, state
    local.down(keep_lake=False)


def shard_ranges(state: StackState) -> list[tuple[str, int, int]]:
    """The stream's real shard hash-key ranges."""
    stream = state.template().resource("ClickstreamStream").physical_id
    shards = state.client("kinesis").list_shards(StreamName=stream)["Shards"]
    return [
        (
            s["ShardId"],
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in shards
    ]


def replay(state: StackState, path: Path) -> None:
    """Send every line, valid or not, in file order (what `replay --include-invalid` does)."""
    stream = state.template().resource("ClickstreamStream").physical_id
    records = ReplayFile(path, include_invalid=True).records()
    report = send_records(records, KinesisRecordStream(state.client("kinesis"), stream))
    assert report.unaccepted == []


def window_rows(state: StackState, metric: str, size: int) -> list[ResultRow]:
    table = state.template().resource("WindowResultsTable").physical_id
    return DynamoWindowResults(state.client("dynamodb"), table).rows(metric, size)


@pytest.fixture(scope="module")
def replayed(
    stack: tuple[LocalStack, StackState], tmp_path_factory: pytest.TempPathFactory
) -> tuple[StackState, Reference, Any]:
    """The mixed file replayed, drained, the stream ended; and its reference results."""
    local, state = stack
    path = tmp_path_factory.mktemp("data") / "mixed.jsonl"
    ranges = shard_ranges(state)
    planted = mixed_dataset(path, seed=11, shards=ranges, events=800, lateness=LATENESS)
    replay(state, path)
    local.drain(timeout=600)
    invoke_function(state, FINALIZER, {"close_all": True})
    return state, compute_reference(path, ranges, LATENESS), planted


def test_the_dataset_mixes_every_hard_case(replayed: tuple[StackState, Reference, Any]) -> None:
    _, reference, planted = replayed
    assert len({shard for shard in reference.shard_of_custid.values()}) == 3
    assert planted.duplicate_lines and planted.out_of_order and planted.late
    assert planted.window_edges and reference.counts.quarantined


def test_window_results_equal_the_reference(replayed: tuple[StackState, Reference, Any]) -> None:
    state, reference, _ = replayed
    assert_windows_equal(state, reference)


def assert_windows_equal(state: StackState, reference: Reference) -> None:
    """Every window result row equals the reference: values, ranks, late counts, all final."""
    # Unique users per URL, 15 s and 1 min: every row final, values equal
    for size in (15, 60):
        rows = window_rows(state, UNIQUE_USERS, size)
        assert all(row.final for row in rows)
        counted = {(size, r.window_start, r.key): r.value for r in rows if r.value}
        expected = {k: v for k, v in reference.unique_users.items() if k[0] == size}
        assert counted == expected
    # Events per source per minute, with ranks
    rows = window_rows(state, TOP_SOURCES, 60)
    assert all(row.final for row in rows)
    assert {(r.window_start, r.key): (r.value, r.rank) for r in rows if r.value} == (
        reference.source_counts
    )
    # Late events per window and key
    late = {
        (metric, size, r.window_start, r.key): r.late_events
        for metric, size in ((UNIQUE_USERS, 15), (UNIQUE_USERS, 60), (TOP_SOURCES, 60))
        for r in window_rows(state, metric, size)
        if r.late_events
    }
    assert late == reference.late


def test_sessions_equal_the_reference(replayed: tuple[StackState, Reference, Any]) -> None:
    state, reference, _ = replayed
    assert_sessions_equal(state, reference)


def assert_sessions_equal(state: StackState, reference: Reference) -> None:
    """Minute sessions (deduplicated by sessionid) and gap sessions equal the reference."""
    bucket = state.template().resource("RawBucket").physical_id
    minute = read_minute_sessions(state.client("s3"), bucket)
    expected = [tuple(str(value) for value in row) for row in reference.minute_sessions]
    assert sorted(minute) == sorted(expected)
    assert read_gap_sessions(state.client("s3"), bucket) == reference.gap_sessions


def test_every_line_is_counted_late_or_quarantined(
    replayed: tuple[StackState, Reference, Any],
) -> None:
    state, reference, _ = replayed
    counts = reference.counts
    # lines = quarantined + duplicates + distinct, and distinct = counted + late for each size
    assert counts.lines == len(counts.quarantined) + counts.duplicates + counts.distinct
    for size in (15, 60):
        assert counts.distinct == counts.counted[size] + counts.late[size]
    # the consumers quarantined exactly the malformed lines, each once, with a reason
    s3 = state.client("s3")
    bucket = state.template().resource("RawBucket").physical_id
    for prefix in ("quarantine/window-counter/", "quarantine/sessionizer/"):
        reasons: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for line in body.splitlines():
                    record = json.loads(line)
                    reasons[f"{record['shard_id']}:{record['sequence_number']}"] = record["reason"]
        assert len(reasons) == len(counts.quarantined), prefix
        assert all(reasons.values())
    # ... and the stack's own account (what `clickstream summary` prints) adds up the same way
    stream = state.template().resource("ClickstreamStream").physical_id
    table = state.template().resource("WindowStateTable").physical_id
    dynamodb = state.client("dynamodb")
    records = stream_records(state.client("kinesis"), stream)
    skew = timedelta(seconds=int(state.parameter("MaxClockSkewSeconds")))
    account = stream_accounting(parse_records(records, skew), s3, bucket, dynamodb, table)
    assert (account.records, account.quarantined, account.duplicates) == (
        counts.lines,
        len(counts.quarantined),
        counts.duplicates,
    )
    assert (account.counted, account.late) == (counts.counted[60], counts.late[60])
    assert account.ok
