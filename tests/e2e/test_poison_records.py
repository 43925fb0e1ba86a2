"""A poison record on the whole local stack: it never stalls its shard, and nothing is lost.

The stack daemon starts with ``CLICKSTREAM_POISON_EVENT_IDS`` naming one event, so the window
counter's and the sessionizer's rules raise on it (``clickstream_local.faults``, a test-only
fault). Its shard commits the records before it, Lambda's retries from it fail, and the rest of
its batch is kept in the failed-batch bucket with its records while the shard moves on. After the
fix (a daemon, and `clickstream redrive`, started without the variable) a plain re-read skips the
kept records as already applied; `clickstream redrive` applies them, once, and running it again
changes nothing. The results then equal the independent reference, as if nothing had failed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import Event
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream_analytics.failed_batches import REDRIVEN_PREFIX
from clickstream_analytics.reconcile import stream_accounting, stream_records
from clickstream_cli.traffic import invoke_function
from clickstream_local.faults import POISON_VARIABLE
from clickstream_local.stack import LocalStack, StackState
from tests.e2e.test_local_stack_cli import run
from tests.e2e.test_stream_semantics import (
    assert_sessions_equal,
    assert_windows_equal,
    replay,
    shard_ranges,
    window_rows,
)
from tests.factories import at, make_event
from tests.reference.clickstream_reference import compute_reference

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LATENESS = timedelta(seconds=30)
MINUTE = at("2026-03-07T14:00:00")
CONSUMERS = ("window-counter", "sessionizer")


def event(second: int, custid: int, trafficfrom: str = "google") -> Event:
    return make_event(
        MINUTE + timedelta(seconds=second), custid=custid, url="beer_cart", trafficfrom=trafficfrom
    )


FIRST, SECOND = event(1, custid=1), event(2, custid=2)
POISON = event(3, custid=3, trafficfrom="Alexa")
AFTER = [event(4, custid=1), event(5, custid=2, trafficfrom="Alexa")]
LATER = event(6, custid=4, trafficfrom="bing")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    """A one-shard stack whose daemon's consumers raise on POISON; idle advance off."""
    home = tmp_path_factory.mktemp("poison-stack")
    local = LocalStack(home=home)
    os.environ[POISON_VARIABLE] = POISON.event_id
    try:
        local.up({"IdleTimeoutSeconds": "86400", "ShardCount": "1"})
    finally:
        del os.environ[POISON_VARIABLE]  # the daemon keeps it; every later process is fixed
    yield local, home
    local.down(keep_lake=False)


def write_lines(path: Path, events: list[Event]) -> Path:
    path.write_bytes(b"".join(e.to_json_line() for e in events))
    return path


def kept(home: Path) -> list[dict[str, Any]]:
    """`clickstream redrive --json`: the kept batches."""
    return json.loads(run(home, "redrive", "--json").stdout)


def users(state: StackState) -> int:
    (row,) = [r for r in window_rows(state, UNIQUE_USERS, 60) if r.window_start == MINUTE]
    return row.value


def results(state: StackState) -> dict[tuple[str, int, str], tuple[int, int]]:
    """Every window row's (value, late events)."""
    return {
        (metric, size, f"{row.window_start}/{row.key}"): (row.value, row.late_events)
        for metric, size in ((UNIQUE_USERS, 15), (UNIQUE_USERS, 60), (TOP_SOURCES, 60))
        for row in window_rows(state, metric, size)
    }


def test_a_poison_record_is_kept_with_its_batch_and_redriven_once_after_the_fix(
    stack: tuple[LocalStack, Path], tmp_path: Path
) -> None:
    local, home = stack
    state = local.running()
    # GIVEN a poison record among good ones on one shard
    replay(state, write_lines(tmp_path / "first.jsonl", [FIRST, SECOND, POISON, *AFTER]))
    # WHEN the consumers have read them
    local.drain(timeout=300)
    # THEN the window counter's and the sessionizer's mappings each kept one batch, which
    # starts at the poison record and holds its records, after their retries failed alike
    batches = kept(home)
    assert sorted(batch["function"] for batch in batches) == [
        f"{state.stack_name}-{consumer}" for consumer in sorted(CONSUMERS)
    ]
    bucket = state.template().resource("FailedBatchBucket").physical_id
    s3 = state.client("s3")
    for batch in batches:
        document = json.loads(s3.get_object(Bucket=bucket, Key=batch["key"])["Body"].read())
        assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert document["requestContext"]["approximateInvokeCount"] == 11
        records = json.loads(document["payload"])["Records"]
        assert records[0]["kinesis"]["sequenceNumber"] == batch["first_sequence_number"]
        ids = [json.loads(_data(record))["event_id"] for record in records]
        assert ids[0] == POISON.event_id
        assert set(ids[1:]) <= {e.event_id for e in AFTER}
    # AND the records before the poison one counted: the shard did not stall
    assert users(state) == 2
    # WHEN a later record arrives THEN the shard moves on past the kept batch
    replay(state, write_lines(tmp_path / "later.jsonl", [LATER]))
    local.drain(timeout=300)
    assert users(state) == 3
    # WHEN the fix is deployed (a daemon without the fault, which reads every shard again)
    state = local.restart_daemon()
    local.drain(timeout=300)
    # THEN the kept records are still missing: the shard checkpoints cover them
    assert users(state) == 3
    before = results(state)
    # WHEN `clickstream redrive --all` runs
    redriven = run(home, "redrive", "--all")
    # THEN both batches are applied and moved under redriven/
    assert "2 of 2 batch(es) redriven" in redriven.stdout
    assert kept(home) == []
    moved = [batch["key"] for batch in batches]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=REDRIVEN_PREFIX).get("Contents", [])
    assert sorted(item["Key"] for item in listed) == sorted(REDRIVEN_PREFIX + k for k in moved)
    # AND the window counts every event of the minute once
    assert users(state) == 4
    assert results(state) != before
    redriven_results = results(state)
    # WHEN redrive runs again, and the same kept batches are applied once more by hand
    again = run(home, "redrive", "--all")
    assert "0 of 0 batch(es) redriven" in again.stdout
    for batch in batches:
        body = s3.get_object(Bucket=bucket, Key=REDRIVEN_PREFIX + batch["key"])["Body"].read()
        document = json.loads(body)
        records = json.loads(document["payload"])["Records"]
        logical_id = _function_logical_id(state, batch["function"])
        response = invoke_function(state, logical_id, {"Records": records, "redrive": {}})
        assert response == {"batchItemFailures": []}
    # THEN nothing changes
    assert results(state) == redriven_results
    # WHEN the stream ends
    run(home, "drain", "--close-windows")
    # THEN windows and sessions equal the reference over every event, each processed once
    whole = write_lines(tmp_path / "whole.jsonl", [FIRST, SECOND, POISON, *AFTER, LATER])
    reference = compute_reference(whole, shard_ranges(state), LATENESS)
    assert_windows_equal(state, reference)
    assert_sessions_equal(state, reference)
    # AND the stack's own account of the stream adds up
    template = state.template()
    stream = template.resource("ClickstreamStream").physical_id
    account = stream_accounting(
        stream_records(state.client("kinesis"), stream),
        s3,
        template.resource("RawBucket").physical_id,
        state.client("dynamodb"),
        template.resource("WindowStateTable").physical_id,
        timedelta(seconds=int(state.parameter("MaxClockSkewSeconds"))),
    )
    assert (account.records, account.counted, account.late) == (6, 6, 0)
    assert account.ok


def _data(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])


def _function_logical_id(state: StackState, name: str) -> str:
    (function,) = [
        f for f in state.template().resources("AWS::Serverless::Function") if f.physical_id == name
    ]
    return function.logical_id
