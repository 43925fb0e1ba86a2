"""The window counter's Lambda batches and its finalizer, on in-memory ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers.window_counter import CONSUMER, BatchReport, finalize, handle_batch
from clickstream.core.batch_failures import RecordFailure
from clickstream.core.records import RejectedRecord
from clickstream.core.window_counting import ResultRow
from clickstream.core.windows import END_OF_STREAM, TOP_SOURCES, UNIQUE_USERS
from clickstream.ports import QuarantineSink, WindowCounterPorts
from clickstream.settings import WindowCounterSettings
from tests.factories import at, make_event
from tests.support.fakes import (
    FixedShards,
    MemoryCheckpoints,
    MemoryQuarantine,
    MemoryWindowResults,
    MemoryWindowState,
)
from tests.support.lambda_events import kinesis_event, kinesis_record

SHARDS = ["shardId-0", "shardId-1"]
NOW = at("2026-03-07T14:10:00")
ARRIVED = at("2026-03-07T14:09:58.5")
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
EVENTS = [
    make_event(at("2026-03-07T14:04:01"), custid=1, url="beer_cart", trafficfrom="google"),
    make_event(at("2026-03-07T14:04:02"), custid=2, url="beer_cart", trafficfrom="google"),
    make_event(at("2026-03-07T14:04:03"), custid=3, url="beer_cart", trafficfrom="Alexa"),
]
BATCH = kinesis_event(
    kinesis_record("shardId-0", "1", EVENTS[0], ARRIVED),
    kinesis_record("shardId-0", "2", b"{not json", ARRIVED),
    kinesis_record("shardId-0", "3", EVENTS[1], ARRIVED),
    kinesis_record("shardId-1", "1", EVENTS[2], ARRIVED),
)


@dataclass
class Fakes:
    """The window counter's ports, all in memory."""

    checkpoints: MemoryCheckpoints = field(default_factory=MemoryCheckpoints)
    results: MemoryWindowResults = field(default_factory=MemoryWindowResults)
    quarantine: QuarantineSink = field(default_factory=MemoryQuarantine)

    def __post_init__(self) -> None:
        self.ports = WindowCounterPorts(
            checkpoints=self.checkpoints,
            state=MemoryWindowState(self.checkpoints),
            results=self.results,
            quarantine=self.quarantine,
            shards=FixedShards(SHARDS),
        )

    @property
    def memory_quarantine(self) -> MemoryQuarantine:
        assert isinstance(self.quarantine, MemoryQuarantine)
        return self.quarantine


def handle(fakes: Fakes) -> BatchReport:
    return handle_batch(records_by_shard(BATCH), settings=SETTINGS, ports=fakes.ports, now=NOW)


def finalize_at(
    fakes: Fakes, later: timedelta, shards: list[str] = SHARDS, close_all: bool = False
) -> int:
    """The finalizer, ``later`` after the batch was handled."""
    return finalize(
        settings=SETTINGS, ports=fakes.ports, shard_ids=shards, now=NOW + later, close_all=close_all
    )


def values(rows: Sequence[ResultRow]) -> dict[str, tuple[int, int | None, bool]]:
    """Each row's (value, rank, final) by key."""
    return {row.key: (row.value, row.rank, row.final) for row in rows}


def test_a_batch_is_counted_across_shards_into_rows_and_its_invalid_record_quarantined() -> None:
    # GIVEN a Lambda batch with two shards' events and one invalid record
    fakes = Fakes()
    # WHEN it is handled
    report = handle(fakes)
    # THEN every record is accounted for, and each shard wrote its 3 windows, its registry
    # bucket and its checkpoint
    assert report == BatchReport(
        records=4,
        already_applied=0,
        quarantined=1,
        valid=3,
        duplicates=0,
        late=0,
        failed=0,
        state_writes=10,
        result_rows=7,
        stale_rows=0,
        iterator_age_ms=1500,
    )
    assert report.response() == {"batchItemFailures": []}
    # AND the rows merge both shards: three users on the page, sources ranked by count
    assert values(fakes.results.rows(UNIQUE_USERS, 15)) == {"beer_cart": (3, None, False)}
    assert values(fakes.results.rows(UNIQUE_USERS, 60)) == {"beer_cart": (3, None, False)}
    assert values(fakes.results.rows(TOP_SOURCES, 60)) == {
        "google": (2, 1, False),
        "Alexa": (1, 2, False),
    }
    # AND the invalid record is quarantined with its shard, data and reason
    quarantined = fakes.memory_quarantine.records
    assert [(r.shard_id, r.sequence_number, r.data) for r in quarantined] == [
        ("shardId-0", "2", b"{not json")
    ]
    assert quarantined[0].reason.startswith("malformed JSON")
    # AND each shard's checkpoint holds its last record and its watermark
    checkpoints = {c.shard_id: c for c in fakes.checkpoints.all(CONSUMER)}
    assert {s: c.sequence_number for s, c in checkpoints.items()} == {
        "shardId-0": "3",
        "shardId-1": "1",
    }
    assert checkpoints["shardId-0"].watermark == at("2026-03-07T14:03:32")


def test_a_redelivered_batch_commits_nothing_and_rewrites_its_rows() -> None:
    # GIVEN a batch handled once
    fakes = Fakes()
    handle(fakes)
    rows_before = dict(fakes.results.items)
    # WHEN Lambda delivers it again
    report = handle(fakes)
    # THEN every record is found applied: no state write, no second quarantine object
    assert (report.records, report.already_applied, report.quarantined) == (4, 4, 0)
    assert report.state_writes == 0
    assert len(fakes.memory_quarantine.puts) == 1
    # AND every row of the windows it touched is rewritten, unchanged (a crash after the
    # commit loses no row): 4 per shard, now that both shards' sources are in the minute
    assert report.result_rows == 8
    assert fakes.results.items == rows_before


def test_a_quarantine_that_cannot_write_reports_the_shard_before_its_commit() -> None:
    # GIVEN a quarantine that cannot write
    class Unreachable(QuarantineSink):
        def put(self, records: Sequence[RejectedRecord]) -> None:
            raise OSError("S3 unreachable")

    fakes = Fakes(quarantine=Unreachable())
    # WHEN the batch with an invalid record is handled
    report = handle(fakes)
    # THEN the shard of the invalid record did not commit: it resumes at its first record
    assert report.failures == (
        RecordFailure("shardId-0", "1", "OSError: S3 unreachable", poison=False),
    )
    assert report.response() == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert fakes.checkpoints.load(CONSUMER, "shardId-0").sequence_number is None
    # AND the other shard committed: every record is applied or left for the retry
    assert (report.records, report.valid, report.failed) == (4, 1, 3)
    assert values(fakes.results.rows(TOP_SOURCES, 60)) == {"Alexa": (1, 1, False)}


def test_finalize_leaves_windows_open_while_a_shard_is_not_idle() -> None:
    # GIVEN a handled batch, and the finalizer 30 s later (under the idle timeout)
    fakes = Fakes()
    handle(fakes)
    # WHEN it runs THEN no watermark moves and no row is rewritten
    assert finalize_at(fakes, timedelta(seconds=30)) == 0
    assert not any(row.final for row in fakes.results.rows(UNIQUE_USERS, 15))


def test_finalize_makes_windows_final_once_every_shard_is_idle() -> None:
    # GIVEN a handled batch, and the finalizer two minutes later (idle for 120 s)
    fakes = Fakes()
    handle(fakes)
    # WHEN it runs
    rewritten = finalize_at(fakes, timedelta(minutes=2))
    # THEN each idle watermark moved on with the clock: max event time + 120 s - 30 s
    checkpoints = {c.shard_id: c for c in fakes.checkpoints.all(CONSUMER)}
    assert checkpoints["shardId-0"].watermark == at("2026-03-07T14:05:32")
    assert checkpoints["shardId-1"].watermark == at("2026-03-07T14:05:33")
    # AND the four rows of the windows ended by then are rewritten final, values unchanged
    assert rewritten == 4
    assert values(fakes.results.rows(UNIQUE_USERS, 15)) == {"beer_cart": (3, None, True)}
    assert values(fakes.results.rows(TOP_SOURCES, 60)) == {
        "google": (2, 1, True),
        "Alexa": (1, 2, True),
    }


def test_a_shard_that_never_delivered_holds_windows_open_until_the_end_of_the_stream() -> None:
    # GIVEN a stream of three shards, one of which never delivered anything
    fakes = Fakes()
    handle(fakes)
    shards = [*SHARDS, "shardId-2"]
    later = timedelta(minutes=2)
    # WHEN the finalizer runs on idle time THEN nothing is final: shard 2 has no watermark
    assert finalize_at(fakes, later, shards) == 0
    assert not any(row.final for row in fakes.results.rows(TOP_SOURCES, 60))
    # WHEN the stream is ended THEN every shard is at the end and every row is final
    assert finalize_at(fakes, later, shards, close_all=True) == 4
    watermarks = {c.shard_id: c.watermark for c in fakes.checkpoints.all(CONSUMER)}
    assert watermarks == dict.fromkeys(shards, END_OF_STREAM)
    assert all(row.final for row in fakes.results.rows(UNIQUE_USERS, 60))
    assert all(row.final for row in fakes.results.rows(TOP_SOURCES, 60))


def test_a_batch_rewrites_the_unique_users_rows_of_its_keys_and_every_source_of_its_minute() -> (
    None
):
    # GIVEN a handled batch: one page and two sources in the 14:04 minute
    fakes = Fakes()
    handle(fakes)
    # WHEN a later batch brings one event of another page, from one of those sources
    other_page = make_event(
        at("2026-03-07T14:04:05"), custid=4, url="wine_cart", trafficfrom="Alexa"
    )
    later = kinesis_event(kinesis_record("shardId-0", "4", other_page, ARRIVED))
    fakes.results.items.clear()
    report = handle_batch(records_by_shard(later), settings=SETTINGS, ports=fakes.ports, now=NOW)
    # THEN only its own page's unique-users rows are written (the other page's did not change)
    assert values(fakes.results.rows(UNIQUE_USERS, 15)) == {"wine_cart": (1, None, False)}
    assert values(fakes.results.rows(UNIQUE_USERS, 60)) == {"wine_cart": (1, None, False)}
    # AND every source of its minute is rewritten, since one count moves the others' ranks
    assert values(fakes.results.rows(TOP_SOURCES, 60)) == {
        "Alexa": (2, 1, False),
        "google": (2, 2, False),
    }
    assert report.result_rows == 4
