"""The sessionizer consumer: one Lambda batch in, minute sessions and gap sessions out.

Per shard, :func:`clickstream.sessionizer.run_batch` applies the records exactly once in effect
(see ``clickstream.checkpoints``); closed per-minute sessions go to Firehose (``aggregated/``) as
the old table's CSV, closed gap sessions to S3 (``sessions/``) as JSON lines, and invalid records
to the quarantine prefix with their reasons. ``finalize_sessions`` closes idle keys on processing
time, or everything at the end of the stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickstream.checkpoints import CheckpointStore, ShardCheckpoint
from clickstream.quarantine import QuarantinedRecord, QuarantineSink
from clickstream.sessionizer import (
    GapSessionSink,
    MinuteSessionSink,
    RejectedRecord,
    RejectedRecordSink,
    SessionizerOutcome,
    SessionStateStore,
    close_all,
    close_idle,
    run_batch,
)
from clickstream.settings import required, seconds
from clickstream.window_consumer import shard_records

CONSUMER = "sessionizer"


@dataclass(frozen=True)
class SessionizerSettings:
    """Configuration from the environment."""

    state_table: str
    stream_name: str
    delivery_stream: str
    lake_bucket: str
    sessions_prefix: str
    quarantine_prefix: str
    allowed_lateness: timedelta
    idle_timeout: timedelta
    inactivity_timeout: timedelta
    max_duration: timedelta

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SessionizerSettings:
        """Read the settings; a missing required variable raises ValueError naming it."""
        return cls(
            state_table=required(env, "STATE_TABLE"),
            stream_name=required(env, "STREAM_NAME"),
            delivery_stream=required(env, "AGGREGATED_DELIVERY_STREAM"),
            lake_bucket=required(env, "LAKE_BUCKET"),
            sessions_prefix=env.get("SESSIONS_PREFIX", "sessions/"),
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "quarantine/sessionizer/"),
            allowed_lateness=seconds(env, "ALLOWED_LATENESS_SECONDS", 30),
            idle_timeout=seconds(env, "IDLE_TIMEOUT_SECONDS", 60),
            inactivity_timeout=timedelta(
                minutes=float(env.get("SESSION_INACTIVITY_MINUTES", "30"))
            ),
            max_duration=timedelta(hours=float(env.get("SESSION_MAX_HOURS", "24"))),
        )


class QuarantineRejected(RejectedRecordSink):
    """Invalid records to the shared S3 quarantine format (reason, shard, sequence number)."""

    def __init__(self, sink: QuarantineSink) -> None:
        self.sink = sink

    def put(self, records: Sequence[RejectedRecord], shard_id: str) -> None:
        """One quarantine object for the records of one commit."""
        if records:
            self.sink.put(
                [QuarantinedRecord(r.sequence_number, shard_id, r.reason, r.data) for r in records]
            )


@dataclass(frozen=True)
class SessionPorts:
    """The adapters the sessionizer writes through."""

    checkpoints: CheckpointStore
    state: SessionStateStore
    minute_sink: MinuteSessionSink
    gap_sink: GapSessionSink
    quarantine: RejectedRecordSink


def handle_batch(
    event: Mapping[str, Any], *, settings: SessionizerSettings, ports: SessionPorts, now: datetime
) -> SessionizerOutcome:
    """Sessionise one Lambda batch, shard by shard."""
    total = SessionizerOutcome()
    for shard_id, records in shard_records(event).items():
        total = total.plus(
            run_batch(
                records,
                shard_id,
                CONSUMER,
                checkpoints=ports.checkpoints,
                state=ports.state,
                minute_sink=ports.minute_sink,
                gap_sink=ports.gap_sink,
                quarantine=ports.quarantine,
                allowed_lateness=settings.allowed_lateness,
                inactivity_timeout=settings.inactivity_timeout,
                max_duration=settings.max_duration,
                now=now,
            )
        )
    return total


def finalize_sessions(
    *,
    settings: SessionizerSettings,
    ports: SessionPorts,
    shard_ids: list[str],
    now: datetime,
    close_everything: bool = False,
) -> SessionizerOutcome:
    """Close what idle shards' watermarks (or the end of the stream) make final."""
    total = SessionizerOutcome()
    known = {c.shard_id: c for c in ports.checkpoints.all(CONSUMER)}
    common: dict[str, Any] = {
        "checkpoints": ports.checkpoints,
        "state": ports.state,
        "minute_sink": ports.minute_sink,
        "gap_sink": ports.gap_sink,
        "allowed_lateness": settings.allowed_lateness,
        "inactivity_timeout": settings.inactivity_timeout,
        "max_duration": settings.max_duration,
    }
    for shard_id in shard_ids:
        if close_everything:
            total = total.plus(close_all(shard_id, CONSUMER, **common))
            continue
        checkpoint = known.get(shard_id, ShardCheckpoint(CONSUMER, shard_id))
        idle = checkpoint.idle_advanced(now, settings.idle_timeout, settings.allowed_lateness)
        if idle is not checkpoint and idle.watermark is not None:
            total = total.plus(close_idle(shard_id, CONSUMER, idle.watermark, **common))
    return total
