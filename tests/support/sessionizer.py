"""One shard's sessionizer on in-memory ports, and builders of its records and streams.

Shared by the sessionizer's unit tests: ``Pipeline`` runs batches, ``close_all`` and replays
over the fakes of ``tests.support.fakes``; the builders make parsed records, seeded
click streams, and outputs deduplicated by id in the reference's order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clickstream.consumers.sessionizer import (
    SessionizerConfig,
    SessionizerOutcome,
    close_all,
    run_batch,
)
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.events import DEVICES, Event
from clickstream.core.records import ParsedRecord, ShardRecord, parse_record
from clickstream.core.session_rules import SessionRules
from clickstream.core.session_state import KeyChange
from clickstream.core.sessions import GapSession, MinuteSession
from clickstream.ports import SessionizerPorts
from tests.factories import make_event
from tests.support.fakes import (
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
)

SHARD = "shardId-000000000000"
CONSUMER = "sessionizer"
T0 = datetime(2026, 3, 7, 14, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 7, 15, 0, 0, tzinfo=UTC)
LATENESS = timedelta(seconds=30)
TIMEOUT = timedelta(minutes=2)
CAP = timedelta(minutes=10)


# --- In-memory ports --------------------------------------------------------------------------


class MemoryState(MemorySessionState):
    """The in-memory store, able to lose the connection before its next commit."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_commit = False
        self.largest_state = 0

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise ConnectionError("lost the connection before the commit")
        super().commit(consumer, shard_id, changes, checkpoint, expected_version, registrations)
        for change in changes:
            if change.after is not None:
                self.largest_state = max(self.largest_state, len(change.after.to_json()))

    def open_keys(self) -> int:
        return len(self.states)


@dataclass
class Pipeline:
    """One shard's sessionizer with its fakes."""

    store: MemoryState = field(default_factory=MemoryState)
    minute_sink: MemoryMinuteSink = field(default_factory=MemoryMinuteSink)
    gap_sink: MemoryGapSink = field(default_factory=MemoryGapSink)
    quarantine: MemoryQuarantine = field(default_factory=MemoryQuarantine)
    rules: SessionRules = field(default_factory=lambda: SessionRules(LATENESS, TIMEOUT, CAP))
    max_keys: int = 32

    def ports(self) -> SessionizerPorts:
        return SessionizerPorts(
            checkpoints=self.store.checkpoints,
            state=self.store,
            minute_sink=self.minute_sink,
            gap_sink=self.gap_sink,
            quarantine=self.quarantine,
        )

    def config(self) -> SessionizerConfig:
        return SessionizerConfig(self.rules, max_keys_per_commit=self.max_keys)

    def batch(self, records: Sequence[ParsedRecord]) -> SessionizerOutcome:
        return run_batch(records, SHARD, CONSUMER, self.ports(), self.config(), now=NOW)

    def redrive(self, records: Sequence[ParsedRecord]) -> SessionizerOutcome:
        """Apply records kept in the on-failure bucket (a redrive)."""
        ports, config = self.ports(), self.config()
        return run_batch(records, SHARD, CONSUMER, ports, config, now=NOW, redrive=True)

    def close_all(self) -> SessionizerOutcome:
        return close_all(SHARD, CONSUMER, self.ports(), self.config())

    def replay(self, records: Sequence[ParsedRecord], batch_size: int) -> SessionizerOutcome:
        total = SessionizerOutcome()
        for start in range(0, len(records), batch_size):
            total = total.plus(self.batch(records[start : start + batch_size]))
        return total


# --- Builders ---------------------------------------------------------------------------------


def record(sequence_number: str, data: bytes) -> ParsedRecord:
    """One record of the shard, parsed as the inbound adapter does."""
    return parse_record(ShardRecord(SHARD, sequence_number, data))


def records_of(events: Sequence[Event], first_seq: int = 1) -> list[ParsedRecord]:
    """Parsed records of the events, sequence numbers counting up from ``first_seq``."""
    return [record(str(first_seq + n), event.to_json_line()) for n, event in enumerate(events)]


def clickstream(seed: int, count: int, jitter: timedelta = timedelta(seconds=25)) -> list[Event]:
    """Events of a few keys in arrival order: time moves on with pauses, and arrivals are out of
    order by less than ``jitter`` (under the allowed lateness, so none is late)."""
    rng = random.Random(seed)
    urls = ["beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout"]
    sources = ["google", "facebook.com", "Alexa"]
    clock = T0
    events: list[Event] = []
    for _ in range(count):
        clock += timedelta(seconds=rng.choice([0, 1, 5, 20, 45]), microseconds=rng.randrange(10**6))
        if rng.random() < 0.03:
            clock += timedelta(minutes=rng.choice([1, 3, 7]))
        moment = clock - timedelta(microseconds=rng.randrange(int(jitter / timedelta(0, 0, 1))))
        events.append(
            make_event(
                moment,
                custid=rng.randint(1, 4),
                device=rng.choice(DEVICES),
                url=rng.choice(urls),
                trafficfrom=rng.choice(sources),
            )
        )
    return events


def by_id(rows: Iterable[MinuteSession]) -> list[MinuteSession]:
    """Rows deduplicated by sessionid (they must be identical), in reference order."""
    kept: dict[str, MinuteSession] = {}
    for row in rows:
        assert kept.setdefault(row.sessionid, row) == row
    return sorted(kept.values(), key=lambda row: (row.minute, row.userid, row.device))


def sessions_by_id(sessions: Iterable[GapSession]) -> list[GapSession]:
    """Gap sessions deduplicated by session_id (they must be identical), in reference order."""
    kept: dict[str, GapSession] = {}
    for session in sessions:
        assert kept.setdefault(session.session_id, session) == session
    return sorted(kept.values(), key=lambda s: (s.start, s.custid, s.device))
