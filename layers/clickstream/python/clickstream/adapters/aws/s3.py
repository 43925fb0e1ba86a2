"""S3 sinks: the quarantine every consumer shares, and the sessionizer's gap sessions.

Quarantined records are JSON lines (:func:`clickstream.core.records.quarantine_line`), one object
per call under :func:`clickstream.core.records.quarantine_key`; gap sessions are JSON lines, one
object per commit under :func:`gap_sessions_key`. Both keys depend on what is written alone, so
a retry overwrites its own object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient

from clickstream.core.records import RejectedRecord, quarantine_key, quarantine_line
from clickstream.core.sessions import GapSession
from clickstream.ports import GapSessionSink, QuarantineSink

DEFAULT_SESSIONS_PREFIX = "sessions/"


class S3QuarantineSink(QuarantineSink):
    """One JSON-lines S3 object per call, under a deterministic key (see :func:`quarantine_key`)."""

    def __init__(
        self,
        s3: BaseClient,
        bucket: str,
        prefix: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self._clock = clock

    def put(self, records: Sequence[RejectedRecord]) -> None:
        """PutObject of the records' lines; errors propagate (the batch is then retried)."""
        if not records:
            return
        self._s3.put_object(
            Bucket=self.bucket,
            Key=quarantine_key(records, self.prefix, self._clock()),
            Body="".join(quarantine_line(record) for record in records).encode("utf-8"),
            ContentType="application/x-ndjson",
        )


def gap_sessions_key(
    sessions: Sequence[GapSession],
    shard_id: str,
    first_seq: str,
    last_seq: str,
    prefix: str = DEFAULT_SESSIONS_PREFIX,
) -> str:
    """``<prefix>YYYY/MM/DD/HH/<shard>-<first seq>-<last seq>.jsonl``.

    The hour is that of the latest session end: the key depends only on what is written, so a
    retried emission overwrites its object.
    """
    hour = max(session.end for session in sessions).astimezone(UTC)
    return f"{prefix}{hour:%Y/%m/%d/%H}/{shard_id}-{first_seq}-{last_seq}.jsonl"


def gap_sessions_body(sessions: Sequence[GapSession]) -> bytes:
    """One compact JSON object per session and line."""
    lines = (json.dumps(s.to_dict(), separators=(",", ":")) + "\n" for s in sessions)
    return "".join(lines).encode("utf-8")


class S3GapSessionSink(GapSessionSink):
    """One JSON-lines object per commit, under :func:`gap_sessions_key`."""

    def __init__(self, client: Any, bucket: str, prefix: str = DEFAULT_SESSIONS_PREFIX) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(
        self, sessions: Sequence[GapSession], shard_id: str, first_seq: str, last_seq: str
    ) -> None:
        """PutObject; errors propagate (nothing is committed then, and the batch is retried)."""
        if not sessions:
            return
        self.client.put_object(
            Bucket=self.bucket,
            Key=gap_sessions_key(sessions, shard_id, first_seq, last_seq, self.prefix),
            Body=gap_sessions_body(sessions),
            ContentType="application/x-ndjson",
        )
