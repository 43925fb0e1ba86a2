"""Exactly-once in effect under faults: results still equal the independent reference.

The same kind of mixed file is replayed while a third of the consumer invocations fail on
purpose (half before the handler runs, half after it committed, so the runner redelivers), a
competing writer keeps bumping the shard checkpoints (conditional-write failures), and the stack
daemon is killed with SIGKILL mid-replay and restarted (every shard is read again from the start).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from clickstream_cli.traffic import FINALIZER, invoke_function
from clickstream_local.stack import LocalStack, StackState
from tests.e2e.test_stream_semantics import (
    assert_sessions_equal,
    assert_windows_equal,
    replay,
    shard_ranges,
)
from tests.factories import wait_for
from tests.reference.clickstream_reference import compute_reference
from tests.reference.datasets import mixed_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LATENESS = timedelta(seconds=10)


@pytest.fixture
def faulty_stack(tmp_path: Path) -> Iterator[tuple[LocalStack, StackState]]:
    """A local stack whose runner fails 30 % of consumer invocations on purpose."""
    os.environ["CLICKSTREAM_FAULT_RATE"] = "0.3"
    local = LocalStack(home=tmp_path / "stack")
    try:
        state, _ = local.up(
            {"AllowedLatenessSeconds": "10", "IdleTimeoutSeconds": "86400", "ShardCount": "2"}
        )
        yield local, state
    finally:
        del os.environ["CLICKSTREAM_FAULT_RATE"]
        local.down(keep_lake=False)


class CheckpointBumper:
    """A competing writer: keeps raising the version of every consumer checkpoint."""

    def __init__(self, state: StackState) -> None:
        template = state.template()
        self.tables = [
            template.resource(name).physical_id
            for name in ("WindowStateTable", "SessionStateTable")
        ]
        self.client = state.client("dynamodb")
        self.bumps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CheckpointBumper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for table in self.tables:
                for consumer in ("window-counter", "sessionizer"):
                    items = self.client.query(
                        TableName=table,
                        KeyConditionExpression="pk = :pk",
                        ExpressionAttributeValues={":pk": {"S": f"CHECKPOINT#{consumer}"}},
                    )["Items"]
                    for item in items:
                        self.client.update_item(
                            TableName=table,
                            Key={"pk": item["pk"], "sk": item["sk"]},
                            UpdateExpression="SET version = version + :one",
                            ExpressionAttributeValues={":one": {"N": "1"}},
                        )
                        self.bumps += 1


def records_done(local: LocalStack) -> int:
    """Records the window counter's and sessionizer's pollers did since their daemon started."""
    pollers = local.services_status()["pollers"]
    return sum(p["records_done"] for p in pollers if "search-indexer" not in p["function"])


def test_results_survive_faults_redeliveries_conflicts_and_a_crash(
    faulty_stack: tuple[LocalStack, StackState], tmp_path: Path
) -> None:
    local, state = faulty_stack
    # GIVEN a mixed file, split in two halves (order kept)
    ranges = shard_ranges(state)
    whole = tmp_path / "mixed.jsonl"
    mixed_dataset(whole, seed=23, shards=ranges, events=600, lateness=LATENESS)
    lines = whole.read_bytes().split(b"\n")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
    second.write_bytes(b"\n".join(lines[len(lines) // 2 :]))
    # WHEN the first half is replayed under injected faults and checkpoint conflicts: the
    # competing writer has bumped a checkpoint and the consumers have done some records
    with CheckpointBumper(state) as bumper:
        replay(state, first)
        wait_for(lambda: bumper.bumps > 0 and records_done(local) > 0, timeout=300)
        # AND the daemon is killed mid-replay and restarted (all shards read again from the start)
        state = local.restart_daemon()
        bumps_before_restart = bumper.bumps
        replay(state, second)
        # AND the new daemon's consumers also commit under conflicts
        wait_for(
            lambda: bumper.bumps > bumps_before_restart and records_done(local) > 0, timeout=300
        )
    local.drain(timeout=600)
    invoke_function(state, FINALIZER, {"close_all": True})
    # THEN faults and conflicts really happened
    pollers = local.services_status()["pollers"]
    consumers = [p for p in pollers if "search-indexer" not in p["function"]]
    assert sum(p["function_errors"] for p in consumers) > 0
    assert bumper.bumps > 0
    assert sum(p["records_to_destination"] for p in consumers) == 0
    # AND the results are exactly those of processing each event once
    reference = compute_reference(whole, ranges, LATENESS)
    assert_windows_equal(state, reference)
    assert_sessions_equal(state, reference)
