"""The window counter's partial batch failures and redrives, on in-memory ports.

A poison event is made with the local stack's test-only fault (``clickstream_local.faults``):
the window counter's rules raise on it, as a bug in them would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers import window_counter
from clickstream.consumers.window_counter import (
    CONSUMER,
    BatchReport,
    handle_batch,
    redrive_batch,
)
from clickstream.core.batch_failures import RecordFailure
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord
from clickstream.core.window_counting import ResultRow, ShardBatchResult
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream.ports import WindowCounterPorts, WindowStateStore
from clickstream.settings import WindowCounterSettings
from clickstream_local.faults import poisoned_window_rules
from tests.factories import at, make_event
from tests.support.fakes import (
    FixedShards,
    MemoryCheckpoints,
    MemoryQuarantine,
    MemoryWindowResults,
    MemoryWindowState,
)
from tests.support.lambda_events import kinesis_event, kinesis_record

SHARD = "shardId-0"
MINUTE = at("2026-03-07T14:04:00")
NOW = at("2026-03-07T14:10:00")
ARRIVED = at("2026-03-07T14:09:58")
SETTINGS = WindowCounterSettings.from_env(
    {
        "STATE_TABLE": "state",
        "RESULTS_TABLE": "results",
        "STREAM_NAME": "stream",
        "QUARANTINE_BUCKET": "lake",
        "ALLOWED_LATENESS_SECONDS": "30",
        "IDLE_TIMEOUT_SECONDS": "60",
    }
)
FIRST = make_event(at("2026-03-07T14:04:01"), custid=1, trafficfrom="google")
SECOND = make_event(at("2026-03-07T14:04:02"), custid=2, trafficfrom="google")
POISON = make_event(at("2026-03-07T14:04:03"), custid=3, trafficfrom="Alexa")
AFTER = make_event(at("2026-03-07T14:04:04"), custid=4, trafficfrom="Alexa")
LATER = make_event(at("2026-03-07T14:04:05"), custid=5, trafficfrom="bing")
POISON_REASON = f"InjectedPoison: event {POISON.event_id} is poison"


@dataclass
class Fakes:
    """The window counter's ports, all in memory, on one shard."""

    checkpoints: MemoryCheckpoints = field(default_factory=MemoryCheckpoints)
    results: MemoryWindowResults = field(default_factory=MemoryWindowResults)
    quarantine: MemoryQuarantine = field(default_factory=MemoryQuarantine)

    def __post_init__(self) -> None:
        self.state: WindowStateStore = MemoryWindowState(self.checkpoints)
        self.ports = WindowCounterPorts(
            checkpoints=self.checkpoints,
            state=self.state,
            results=self.results,
            quarantine=self.quarantine,
            shards=FixedShards([SHARD]),
        )

    def handle(self, *records: tuple[str, Event | bytes]) -> BatchReport:
        return handle_batch(batch(*records), settings=SETTINGS, ports=self.ports, now=NOW)

    def redrive(self, *records: tuple[str, Event | bytes]) -> BatchReport:
        return redrive_batch(batch(*records), settings=SETTINGS, ports=self.ports, now=NOW)

    def users(self) -> int:
        """Unique users of the minute 14:04 (on the one url every event is on)."""
        (row,) = [row for row in self.results.rows(UNIQUE_USERS, 60) if row.window_start == MINUTE]
        return row.value

    def sources(self) -> dict[str, tuple[int, int]]:
        """Top sources of the minute 14:04: (value, late events) by source."""
        rows = self.results.rows(TOP_SOURCES, 60)
        return {r.key: (r.value, r.late_events) for r in rows if r.window_start == MINUTE}


def batch(*records: tuple[str, Event | bytes]) -> dict[str, list[ParsedRecord]]:
    """A Lambda batch of one shard, as parsed by the inbound adapter."""
    return records_by_shard(
        kinesis_event(*(kinesis_record(SHARD, seq, data, ARRIVED) for seq, data in records))
    )


def accounted(report: BatchReport) -> bool:
    """Every record is in exactly one place."""
    return report.records == (
        report.already_applied + report.quarantined + report.valid + report.failed
    )


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The window counter's rules raise on POISON until ``monkeypatch.undo()`` (the fix)."""
    rules = window_counter.process_shard_batch
    monkeypatch.setattr(
        window_counter, "process_shard_batch", poisoned_window_rules(rules, {POISON.event_id})
    )
    yield monkeypatch


def test_a_poison_record_commits_the_records_before_it_and_is_reported(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch with an invalid record, then a poison record in the middle
    fakes = Fakes()
    # WHEN it is handled
    report = fakes.handle(
        ("1", FIRST), ("2", b"{not json"), ("3", SECOND), ("4", POISON), ("5", AFTER)
    )
    # THEN the response names the poison record: Lambda retries from it
    assert report.failures == (RecordFailure(SHARD, "4", POISON_REASON, poison=True),)
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "4"}]}
    # AND the records before it are committed, the invalid one quarantined, the rest left over
    assert (report.quarantined, report.valid, report.failed) == (1, 2, 2)
    assert accounted(report)
    assert fakes.checkpoints.load(CONSUMER, SHARD).sequence_number == "3"
    assert [record.sequence_number for record in fakes.quarantine.records] == ["2"]
    # AND the rows hold the committed records only
    assert fakes.users() == 2
    assert fakes.sources() == {"google": (2, 0)}


def test_the_retry_from_a_poison_record_fails_alike_until_the_fix(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch handled up to its poison record
    fakes = Fakes()
    fakes.handle(("1", FIRST), ("2", SECOND), ("3", POISON), ("4", AFTER))
    committed = fakes.checkpoints.load(CONSUMER, SHARD)
    # WHEN Lambda retries from the poison record
    retry = fakes.handle(("3", POISON), ("4", AFTER))
    # THEN nothing is committed, and the same record is reported
    assert retry.failures == (RecordFailure(SHARD, "3", POISON_REASON, poison=True),)
    assert (retry.records, retry.valid, retry.failed, retry.state_writes) == (2, 0, 2, 0)
    assert accounted(retry)
    assert fakes.checkpoints.load(CONSUMER, SHARD) == committed
    # WHEN the code is fixed and Lambda retries again
    poisoned.undo()
    fixed = fakes.handle(("3", POISON), ("4", AFTER))
    # THEN both records commit, once
    assert (fixed.failures, fixed.valid, fixed.failed) == ((), 2, 0)
    assert fakes.users() == 4
    assert fakes.sources() == {"google": (2, 0), "Alexa": (2, 0)}


def test_a_kept_batch_is_skipped_by_a_plain_retry_but_counted_once_by_a_redrive(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a poison record whose batch Lambda gave up on (kept), and a later batch committed
    fakes = Fakes()
    fakes.handle(("1", FIRST), ("2", SECOND), ("3", POISON), ("4", AFTER))
    fakes.handle(("5", LATER))
    checkpoint = fakes.checkpoints.load(CONSUMER, SHARD)
    assert (checkpoint.sequence_number, fakes.users()) == ("5", 3)
    poisoned.undo()  # the fix
    # WHEN the kept records are delivered as a plain batch
    plain = fakes.handle(("3", POISON), ("4", AFTER))
    # THEN the shard checkpoint covers them: they are skipped as applied
    assert (plain.already_applied, plain.valid) == (2, 0)
    assert fakes.users() == 3
    # WHEN they are redriven
    redriven = fakes.redrive(("3", POISON), ("4", AFTER))
    # THEN they count, once; the checkpoint keeps its sequence number and event time
    assert (redriven.already_applied, redriven.valid, redriven.failed, redriven.failures) == (
        0,
        2,
        0,
        (),
    )
    assert fakes.users() == 5
    assert fakes.sources() == {"google": (2, 0), "Alexa": (2, 0), "bing": (1, 0)}
    after = fakes.checkpoints.load(CONSUMER, SHARD)
    assert (after.sequence_number, after.max_event_time, after.watermark) == (
        "5",
        checkpoint.max_event_time,
        checkpoint.watermark,
    )
    assert after.last_event_at == checkpoint.last_event_at
    assert after.version == checkpoint.version + 1
    # WHEN the same batch is redriven again
    rows = dict(fakes.results.items)
    again = fakes.redrive(("3", POISON), ("4", AFTER))
    # THEN no value changes: the rows are rewritten alike, at a newer state version
    assert again.failures == ()
    assert values_of(fakes.results.items.values()) == values_of(rows.values())


def test_a_redrive_judges_lateness_against_the_current_watermark(
    poisoned: pytest.MonkeyPatch,
) -> None:
    # GIVEN a kept poison record, and the shard's event time then moved two minutes on
    fakes = Fakes()
    fakes.handle(("1", FIRST), ("2", POISON))
    fakes.handle(("3", make_event(at("2026-03-07T14:06:30"), custid=9, trafficfrom="bing")))
    poisoned.undo()
    # WHEN the kept record is redriven
    report = fakes.redrive(("2", POISON))
    # THEN its minute is closed by the watermark (14:06:00): it is a late event, not a value
    assert (report.valid, report.late) == (1, 1)
    assert fakes.sources() == {"google": (1, 0), "Alexa": (0, 1)}
    assert fakes.users() == 1


def test_redriving_records_applied_before_changes_nothing() -> None:
    # GIVEN a batch counted in full (a kept batch may hold records committed before)
    fakes = Fakes()
    fakes.handle(("1", FIRST), ("2", SECOND), ("3", POISON))
    fakes.handle(("4", make_event(at("2026-03-07T14:06:30"), custid=9, trafficfrom="bing")))
    before = values_of(fakes.results.items.values())
    # WHEN it is redriven, now that its minute is closed
    report = fakes.redrive(("1", FIRST), ("2", SECOND), ("3", POISON))
    # THEN its events are repeats of events registered before: no value changes
    assert (report.valid, report.duplicates, report.late) == (3, 3, 0)
    assert values_of(fakes.results.items.values()) == before


def test_a_failed_commit_reports_the_first_record_not_committed() -> None:
    # GIVEN a shard with its first two records applied, and a state store that stops writing
    fakes = Fakes()
    fakes.handle(("1", FIRST), ("2", SECOND))

    class Unwritable(MemoryWindowState):
        def apply(self, result: ShardBatchResult) -> None:
            raise TimeoutError("throttled")

    fakes.ports = WindowCounterPorts(
        checkpoints=fakes.checkpoints,
        state=Unwritable(fakes.checkpoints),
        results=fakes.results,
        quarantine=fakes.quarantine,
        shards=FixedShards([SHARD]),
    )
    # WHEN Lambda redelivers them with two new records
    report = fakes.handle(("1", FIRST), ("2", SECOND), ("3", POISON), ("4", AFTER))
    # THEN the first new record is reported, and the applied ones are accounted as such
    assert report.failures == (RecordFailure(SHARD, "3", "TimeoutError: throttled", poison=False),)
    assert (report.already_applied, report.valid, report.failed) == (2, 0, 2)
    assert accounted(report)
    assert fakes.checkpoints.load(CONSUMER, SHARD).sequence_number == "2"


def values_of(rows: Iterable[ResultRow]) -> dict[tuple[str, int, datetime, str], tuple[int, int]]:
    """Each row's (value, late events), by (metric, size, window, key)."""
    return {
        (row.metric, row.size_seconds, row.window_start, row.key): (row.value, row.late_events)
        for row in rows
    }


def test_rows_written_after_a_redrive_carry_a_newer_state_version() -> None:
    # GIVEN a counted batch and its rows
    fakes = Fakes()
    fakes.handle(("1", FIRST))
    (before,) = fakes.results.rows(UNIQUE_USERS, 60)
    # WHEN a redrive commits
    fakes.redrive(("1", FIRST))
    # THEN its rows were computed under the state it committed
    (after,) = fakes.results.rows(UNIQUE_USERS, 60)
    assert after.state_version == before.state_version + 1
