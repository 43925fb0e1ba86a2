"""The local EVENT trigger: the template's rules and batching, on a fake S3 and a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clickstream_local.cfn import Template
from clickstream_local.glue_local import LocalGlueJob
from clickstream_local.glue_trigger import EventTriggerConfig, GlueEventTrigger

ROOT = Path(__file__).resolve().parents[2]


class FakeS3:
    """``list_objects_v2`` pagination over a set of keys."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        return [{"Contents": [{"Key": k} for k in sorted(self.keys) if k.startswith(Prefix)]}]


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(size: int = 3, window: float = 60) -> EventTriggerConfig:
    return EventTriggerConfig("t", "raw", ("rawdata/",), size, window, ())


def make_trigger(
    batch: EventTriggerConfig, s3: FakeS3, clock: Clock, fail: bool = False
) -> tuple[GlueEventTrigger, list[int]]:
    runs: list[int] = []

    def run_jobs(jobs: tuple[LocalGlueJob, ...]) -> list[Any]:
        if fail:
            raise RuntimeError("spark failed")
        runs.append(len(runs) + 1)
        return [{"run": len(runs)}]

    return GlueEventTrigger(batch, s3, run_jobs, clock=clock), runs


def test_the_template_triggers_are_fed_by_their_rules() -> None:
    # GIVEN the project template WHEN its EVENT triggers are read
    template = Template.load(ROOT / "template.yaml", stack_name="demo")
    configs = {c.name: c for c in EventTriggerConfig.all_of(template, ROOT)}
    # THEN each knows its bucket, prefixes, batching and job, as the rules and triggers say
    raw = configs["demo-raw-events-batch"]
    assert raw.bucket == template.resource("RawBucket").physical_id
    assert raw.prefixes == ("rawdata/",)
    assert (raw.batch_size, raw.batch_window_seconds) == (100, 900.0)
    assert [job.logical_id for job in raw.jobs] == ["RawToCuratedEventsJob"]
    sessions = configs["demo-sessions-batch"]
    assert sessions.prefixes == ("aggregated/", "sessions/")
    assert [job.logical_id for job in sessions.jobs] == ["AggregatedToCuratedSessionsJob"]
    assert sessions.jobs[0].script == ROOT / "glue_jobs" / "aggregated_to_curated_sessions.py"


def test_a_batch_runs_when_full() -> None:
    # GIVEN a trigger with batches of 3 and two new objects
    s3, clock = FakeS3(), Clock()
    trigger, runs = make_trigger(config(size=3), s3, clock)
    s3.keys |= {"rawdata/a", "rawdata/b", "other/x"}
    # WHEN polled THEN only the rule's prefix counts, and the batch is not full yet
    assert trigger.poll() == 2
    assert not trigger.due()
    # WHEN a third object arrives THEN the batch is due and runs once
    s3.keys.add("rawdata/c")
    trigger.poll()
    assert trigger.due()
    assert trigger.run_batch() == [{"run": 1}]
    # ... and objects already seen are not events again
    assert trigger.poll() == 0 and not trigger.due() and runs == [1]


def test_a_batch_runs_when_its_window_passes_since_the_first_event() -> None:
    # GIVEN one new object in a 60 s window
    s3, clock = FakeS3(), Clock()
    trigger, _ = make_trigger(config(size=100, window=60), s3, clock)
    s3.keys.add("rawdata/a")
    trigger.poll()
    # WHEN 59 s pass THEN it waits; WHEN the 60th second passes THEN it is due
    clock.now += 59
    s3.keys.add("rawdata/b")
    trigger.poll()
    assert not trigger.due()
    clock.now += 1
    assert trigger.due()


def test_a_failed_run_keeps_its_batch_and_waits_a_window_before_retrying() -> None:
    # GIVEN a full batch whose jobs fail
    s3, clock = FakeS3(), Clock()
    trigger, _ = make_trigger(config(size=1, window=30), s3, clock, fail=True)
    s3.keys.add("rawdata/a")
    trigger.poll()
    # WHEN it runs THEN the error propagates and the batch stays pending with the reason
    with pytest.raises(RuntimeError, match="spark failed"):
        trigger.run_batch()
    snapshot = trigger.snapshot()
    assert snapshot["pending"] == 1 and snapshot["last_error"] == "spark failed"
    # ... and it is not retried before one batch window has passed
    assert not trigger.due()
    clock.now += 30
    assert trigger.due()


def test_failed_runs_are_counted_and_a_successful_run_clears_the_latest_failure() -> None:
    # GIVEN a trigger whose jobs fail on the first run only
    s3, clock = FakeS3(), Clock()
    outcomes = iter([RuntimeError("spark failed"), None])

    def run_jobs(jobs: tuple[LocalGlueJob, ...]) -> list[Any]:
        error = next(outcomes)
        if error is not None:
            raise error
        return []

    trigger = GlueEventTrigger(config(size=1), s3, run_jobs, clock=clock)
    s3.keys.add("rawdata/a")
    trigger.poll()
    # WHEN the first run fails
    with pytest.raises(RuntimeError):
        trigger.run_batch()
    # THEN the status counts it and says the latest run failed
    snapshot = trigger.snapshot()
    assert (snapshot["failed_runs"], snapshot["last_run_failed"]) == (1, True)
    # AND after a successful run the count stays while the latest run is fine
    trigger.run_batch()
    snapshot = trigger.snapshot()
    assert (snapshot["failed_runs"], snapshot["last_run_failed"], snapshot["runs"]) == (1, False, 1)


def test_running_with_nothing_pending_does_nothing() -> None:
    # GIVEN no new object WHEN asked to run THEN no job runs
    trigger, runs = make_trigger(config(), FakeS3(), Clock())
    assert trigger.run_batch() == [] and runs == []
