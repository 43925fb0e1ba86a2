"""Batches Lambda kept in the on-failure bucket, and the event that redrives one.

When a Kinesis event source mapping gives up on a batch (its retries exhausted, or its records
older than the maximum age), it writes an invocation record to its Amazon S3 on-failure
destination under ``aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>``:
``requestContext`` (the function, the condition), ``responseContext``, ``KinesisBatchInfo``
(shard, first and last sequence numbers, batch size, stream) and ``payload``, the invocation's
event (``{"Records": [...]}``) as a JSON string (AWS Lambda Developer Guide, "Retain discarded
batch records for a Kinesis Data Streams event source").

A redrive invokes the same function with that event and a ``redrive`` field naming the kept
object; the window counter's and the sessionizer's handlers then apply it as a redriven batch
(docs/architecture.md, Stream semantics: Redrive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEPT_PREFIX = "aws/lambda/"
"""Where Lambda writes the invocation records of the batches it gives up on."""

REDRIVE_FIELD = "redrive"
"""The event field that marks an invocation as a redrive (its value names the kept object)."""


@dataclass(frozen=True)
class KeptBatch:
    """One invocation record of the on-failure bucket."""

    key: str
    function_arn: str
    condition: str
    """``RetryAttemptsExhausted`` or ``RecordAgeExceeded``."""
    shard_id: str
    first_sequence_number: str
    last_sequence_number: str
    batch_size: int
    timestamp: str
    """When Lambda gave up on the batch (ISO 8601)."""
    function_error: str
    event: Mapping[str, Any]
    """The invocation's event: ``{"Records": [...]}``, as the function was invoked with."""

    @property
    def function_name(self) -> str:
        """The function's name: the last part of its ARN."""
        return self.function_arn.rsplit(":", 1)[-1]

    @property
    def records(self) -> list[Mapping[str, Any]]:
        """The event's Kinesis records, in shard order."""
        return list(self.event.get("Records", []))

    def redrive_event(self, source: str) -> dict[str, Any]:
        """The event that redrives this batch: its records, marked with where they were kept."""
        return {"Records": self.records, REDRIVE_FIELD: {"source": source}}

    @classmethod
    def from_document(cls, key: str, document: Mapping[str, Any]) -> KeptBatch:
        """Read an invocation record; ValueError when it holds no payload (SQS/SNS shape)."""
        if "payload" not in document:
            raise ValueError(f"{key}: the invocation record has no payload")
        payload = document["payload"]
        event = json.loads(payload) if isinstance(payload, str) else payload
        if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
            raise ValueError(f"{key}: the payload is not a Lambda Kinesis event")
        request = document.get("requestContext", {})
        info = document.get("KinesisBatchInfo", {})
        return cls(
            key=key,
            function_arn=str(request.get("functionArn", "")),
            condition=str(request.get("condition", "")),
            shard_id=str(info.get("shardId", "")),
            first_sequence_number=str(info.get("startSequenceNumber", "")),
            last_sequence_number=str(info.get("endSequenceNumber", "")),
            batch_size=int(info.get("batchSize", len(event["Records"]))),
            timestamp=str(document.get("timestamp", "")),
            function_error=str(document.get("responseContext", {}).get("functionError", "")),
            event=event,
        )


def is_redrive(event: Mapping[str, Any]) -> bool:
    """Whether a Lambda event is a redrive of a kept batch (see the module docstring)."""
    return REDRIVE_FIELD in event
