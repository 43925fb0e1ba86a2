"""The sessionizer's Lambda batches and its finalizer, on in-memory ports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.consumers.sessionizer import (
    CONSUMER,
    SessionizerOutcome,
    finalize_sessions,
    handle_batch,
)
from clickstream.core.batch_failures import RecordFailure
from clickstream.core.records import RejectedRecord
from clickstream.core.sessions import GapSession, MinuteSession, gap_sessions, minute_sessions
from clickstream.core.windows import END_OF_STREAM
from clickstream.ports import QuarantineSink, SessionizerPorts
from clickstream.settings import SessionizerSettings
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
)
from tests.support.lambda_events import kinesis_event, kinesis_record

SHARDS = ["shardId-0", "shardId-1"]
NOW = at("2026-03-07T15:00:00")
ARRIVED = at("2026-03-07T14:59:59")
SETTINGS = SessionizerSettings.from_env(
    {
        "STATE_TABLE": "sessions",
        "STREAM_NAME": "stream",
        "AGGREGATED_DELIVERY_STREAM": "aggregated",
        "SESSIONS_DELIVERY_STREAM": "sessions",
        "LAKE_BUCKET": "lake",
        "ALLOWED_LATENESS_SECONDS": "30",
        "IDLE_TIMEOUT_SECONDS": "60",
    }
)
FIRST = make_event(at("2026-03-07T14:00:00"), custid=1, url="beer_vitrine_nav")
SECOND = make_event(at("2026-03-07T14:00:10"), custid=1, url="beer_cart")
THIRD = make_event(at("2026-03-07T14:01:10"), custid=1, url="beer_checkout")
FOURTH = make_event(at("2026-03-07T14:01:40"), custid=1, url="beer_checkout")
OTHER = make_event(at("2026-03-07T14:00:05"), custid=2, device="app_mobile")
EVENTS = [FIRST, SECOND, THIRD, FOURTH, OTHER]
BATCH = kinesis_event(
    kinesis_record("shardId-0", "1", FIRST, ARRIVED),
    kinesis_record("shardId-0", "2", SECOND, ARRIVED),
    kinesis_record("shardId-0", "3", b'{"event_id": "x"}', ARRIVED),
    kinesis_record("shardId-0", "4", THIRD, ARRIVED),
    kinesis_record("shardId-0", "5", FOURTH, ARRIVED),
    kinesis_record("shardId-1", "1", OTHER, ARRIVED),
)


@dataclass
class Fakes:
    """The sessionizer's ports, all in memory."""

    state: MemorySessionState = field(default_factory=MemorySessionState)
    minutes: MemoryMinuteSink = field(default_factory=MemoryMinuteSink)
    gaps: MemoryGapSink = field(default_factory=MemoryGapSink)
    quarantine: QuarantineSink = field(default_factory=MemoryQuarantine)

    def __post_init__(self) -> None:
        self.ports = SessionizerPorts(
            self.state.checkpoints, self.state, self.minutes, self.gaps, self.quarantine
        )


def by_id(sessions: Iterable[MinuteSession | GapSession]) -> list[MinuteSession | GapSession]:
    """Sessions in id order."""
    return sorted(
        sessions, key=lambda s: s.sessionid if isinstance(s, MinuteSession) else s.session_id
    )


def handle(fakes: Fakes) -> SessionizerOutcome:
    return handle_batch(records_by_shard(BATCH), settings=SETTINGS, ports=fakes.ports, now=NOW)


def finalize_at(fakes: Fakes, later: timedelta, close: bool = False) -> SessionizerOutcome:
    """The finalizer, ``later`` after the batch was handled."""
    return finalize_sessions(
        settings=SETTINGS,
        ports=fakes.ports,
        shard_ids=SHARDS,
        now=NOW + later,
        close_everything=close,
    )


def test_a_batch_closes_the_minutes_its_own_watermark_passes_and_quarantines_the_invalid() -> None:
    # GIVEN a Lambda batch: one user over two minutes with an invalid record, another user alone
    fakes = Fakes()
    # WHEN it is handled
    outcome = handle(fakes)
    # THEN every record is applied, the invalid one rejected with its reason
    assert (outcome.processed, outcome.skipped, outcome.commits) == (6, 0, 2)
    assert [(r.shard_id, r.sequence_number) for r in outcome.rejected] == [("shardId-0", "3")]
    assert outcome.rejected[0].reason.startswith("missing required field(s)")
    # AND it is in the quarantine, with its data
    assert isinstance(fakes.quarantine, MemoryQuarantine)
    assert [(r.sequence_number, r.data) for r in fakes.quarantine.records] == [
        ("3", b'{"event_id": "x"}')
    ]
    # AND shard 0's watermark (14:01:40 - 30 s) closed its first minute only: two events
    assert outcome.minute_rows == tuple(minute_sessions([FIRST, SECOND]))
    assert fakes.minutes.rows == minute_sessions([FIRST, SECOND])
    assert outcome.gap_sessions == () and fakes.gaps.sessions == []
    # AND each shard's checkpoint holds its last record and its watermark
    checkpoints = {c.shard_id: c for c in fakes.state.checkpoints.all(CONSUMER)}
    assert {s: c.sequence_number for s, c in checkpoints.items()} == {
        "shardId-0": "5",
        "shardId-1": "1",
    }
    assert checkpoints["shardId-0"].watermark == at("2026-03-07T14:01:10")
    assert outcome.watermark == at("2026-03-07T14:01:10")


def test_a_redelivered_batch_is_skipped_whole() -> None:
    # GIVEN a batch handled once
    fakes = Fakes()
    handle(fakes)
    # WHEN Lambda delivers it again
    again = handle(fakes)
    # THEN every record is found applied: nothing is emitted, quarantined or committed
    assert (again.processed, again.skipped, again.commits) == (0, 6, 0)
    assert again.minute_rows == () and again.rejected == ()
    assert len(fakes.minutes.rows) == 1
    assert isinstance(fakes.quarantine, MemoryQuarantine) and len(fakes.quarantine.puts) == 1


def test_a_quarantine_that_cannot_write_reports_its_chunk_before_the_commit() -> None:
    # GIVEN a quarantine that cannot write
    class Unreachable(QuarantineSink):
        def put(self, records: Sequence[RejectedRecord]) -> None:
            raise OSError("S3 unreachable")

    fakes = Fakes(quarantine=Unreachable())
    # WHEN the batch is handled
    outcome = handle(fakes)
    # THEN shard 0, whose chunk holds the invalid record, resumes at its first record, with why
    assert outcome.failures == (
        RecordFailure("shardId-0", "1", "OSError: S3 unreachable", poison=False),
    )
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    # AND shard 1 committed its record: every record is applied or left for the retry
    assert (outcome.processed, outcome.skipped, outcome.failed) == (1, 0, 5)
    # AND nothing of the invalid record's chunk was emitted or committed
    assert fakes.state.checkpoints.load(CONSUMER, "shardId-0").sequence_number is None
    assert fakes.minutes.rows == []
    assert [shard for _, shard, _ in fakes.state.states] == ["shardId-1"]


def test_finalize_closes_idle_shards_then_everything_at_the_end_of_the_stream() -> None:
    # GIVEN a handled batch
    fakes = Fakes()
    handle(fakes)
    # WHEN the finalizer runs 30 s later (not idle yet) THEN nothing closes
    assert finalize_at(fakes, timedelta(seconds=30)) == SessionizerOutcome()
    # WHEN it runs two minutes later (idle: event time moves on with the clock, 90 s net)
    idle = finalize_at(fakes, timedelta(minutes=2))
    # THEN shard 0 reaches 14:03:10 and shard 1 14:01:35: their open minutes close, but not
    # their gap sessions (30-minute inactivity timeout)
    assert by_id(idle.minute_rows) == by_id(minute_sessions([THIRD, FOURTH, OTHER]))
    assert idle.gap_sessions == ()
    assert idle.commits == 2
    # WHEN the stream ends
    end = finalize_at(fakes, timedelta(minutes=2), close=True)
    # THEN both gap sessions close, no state is left, and every shard is at the end
    assert end.minute_rows == ()
    assert by_id(end.gap_sessions) == by_id(gap_sessions(EVENTS))
    assert fakes.state.states == {}
    assert {c.watermark for c in fakes.state.checkpoints.all(CONSUMER)} == {END_OF_STREAM}
    # AND the sinks hold exactly the reference sessions of the valid events
    assert by_id(fakes.minutes.rows) == by_id(minute_sessions(EVENTS))
    assert by_id(fakes.gaps.sessions) == by_id(gap_sessions(EVENTS))
