"""Exactly-once in effect under faults: results still equal the independent reference.

The same kind of mixed file is replayed in three parts while a third of the consumer invocations
fail on purpose (half before the handler runs, half after it committed, so the runner
redelivers), and a competing writer raises the version of every shard checkpoint after each
commit of its consumer, so the consumers' version-checked commits must respect another writer's.
Between the second and the third part the stack daemon is killed with SIGKILL and restarted
(every shard is read again from the start).

Each step waits for what it needs, never for time to pass: a part is replayed only after the
competing writer has bumped a checkpoint the consumers wrote, and the test goes on only once the
consumers have committed over a bumped version (seen by the competing writer). Whether a given
commit met a conflict (read before the bump) or read the bumped version is the machine's timing;
the retry on a conflict itself is checked deterministically by the unit tests of both consumers.
The writer bumps a checkpoint once per change it sees, never on a clock, so it cannot keep a
consumer from committing however slow the machine is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

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
    """A competing writer: raises the version of every consumer checkpoint that changed.

    It reads the checkpoints over and over, and bumps each one it has not seen yet or that
    someone else wrote since its own last bump. It counts its ``bumps``, its ``passes`` over the
    checkpoints, and the ``commits_over_bumps``: checkpoints a consumer advanced (a new sequence
    number) after this writer bumped them, so over a version this writer wrote.
    """

    def __init__(self, state: StackState) -> None:
        template = state.template()
        self.tables = [
            template.resource(name).physical_id
            for name in ("WindowStateTable", "SessionStateTable")
        ]
        self.client = state.client("dynamodb")
        self.bumps = 0
        self.passes = 0
        self.commits_over_bumps = 0
        self._bumped: dict[tuple[str, str, str], tuple[int, str | None]] = {}
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
                        ConsistentRead=True,
                    )["Items"]
                    for item in items:
                        self._bump(table, item)
            self.passes += 1

    def settled_commits_over_bumps(self) -> int:
        """``commits_over_bumps`` after a whole pass that began after this call."""
        target = self.passes + 2
        wait_for(lambda: self.passes >= target)
        return self.commits_over_bumps

    def _bump(self, table: str, item: dict[str, Any]) -> None:
        key = (table, item["pk"]["S"], item["sk"]["S"])
        if key in self._bumped:
            bumped_version, bumped_position = self._bumped[key]
            if int(item["version"]["N"]) == bumped_version:
                return  # nobody wrote it since the last bump
            if _position(item) != bumped_position:
                self.commits_over_bumps += 1
        bumped = self.client.update_item(
            TableName=table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET version = version + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        self._bumped[key] = (int(bumped["version"]["N"]), _position(bumped))
        self.bumps += 1


def _position(item: dict[str, Any]) -> str | None:
    """The sequence number a checkpoint item says its consumer has applied up to."""
    return item.get("sequence_number", {}).get("S")


def split_lines(path: Path, parts: int) -> list[Path]:
    """``path`` cut into ``parts`` files of consecutive lines, in order, beside it."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    files = [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(1, parts + 1)]
    for n, file in enumerate(files):
        file.write_bytes(b"".join(lines[n * size : (n + 1) * size]))
    return files


def test_results_survive_faults_redeliveries_conflicts_and_a_crash(
    faulty_stack: tuple[LocalStack, StackState], tmp_path: Path
) -> None:
    local, state = faulty_stack
    # GIVEN a mixed file, cut in three parts (order kept)
    ranges = shard_ranges(state)
    whole = tmp_path / "mixed.jsonl"
    mixed_dataset(whole, seed=23, shards=ranges, events=600, lateness=LATENESS)
    first, second, third = split_lines(whole, 3)
    # WHEN the parts are replayed under injected faults and a competing writer: the second part
    # once the writer has bumped a checkpoint the consumers wrote, and the consumers then commit
    # over the bumped versions
    with CheckpointBumper(state) as bumper:
        replay(state, first)
        wait_for(lambda: bumper.bumps > 0, timeout=300)
        replay(state, second)
        wait_for(lambda: bumper.commits_over_bumps > 0, timeout=300)
        # AND the daemon is killed mid-replay and restarted (all shards read again from the
        # start); the new daemon's consumers commit the third part over bumped versions too
        state = local.restart_daemon()
        commits_before_restart = bumper.settled_commits_over_bumps()
        replay(state, third)
        wait_for(lambda: bumper.commits_over_bumps > commits_before_restart, timeout=300)
    local.drain(timeout=600)
    invoke_function(state, FINALIZER, {"close_all": True})
    # THEN faults really happened, and no record went to the on-failure queue
    pollers = local.services_status()["pollers"]
    consumers = [p for p in pollers if "search-indexer" not in p["function"]]
    assert sum(p["function_errors"] for p in consumers) > 0
    assert sum(p["records_to_destination"] for p in consumers) == 0
    # AND the results are exactly those of processing each event once
    reference = compute_reference(whole, ranges, LATENESS)
    assert_windows_equal(state, reference)
    assert_sessions_equal(state, reference)
