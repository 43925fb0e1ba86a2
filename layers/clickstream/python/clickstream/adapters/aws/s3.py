"""The S3 sink of the quarantine every consumer shares.

Quarantined records are JSON lines (:func:`clickstream.core.records.quarantine_line`), one object
per call under :func:`clickstream.core.records.quarantine_key`. The key depends on what is
written alone, so a retry overwrites its own object. (Gap sessions go through Firehose:
:mod:`clickstream.adapters.aws.firehose`.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from botocore.client import BaseClient

from clickstream.core.records import RejectedRecord, quarantine_key, quarantine_line
from clickstream.ports import QuarantineSink


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
