"""The failed-batch bucket: the batches the stream consumers gave up on, and their redrive.

Lambda keeps each batch a Kinesis event source mapping gives up on (its retries exhausted, or its
records a day old) as one object under ``aws/lambda/`` of ``FailedBatchBucket``: the invocation
record with the batch's event (:class:`clickstream.adapters.kept_batches.KeptBatch`).

A redrive invokes the batch's function with that event marked ``redrive``, which applies it
exactly once in effect although the shard checkpoint already covers its records
(docs/architecture.md, Stream semantics: Redrive), then moves the object under ``redriven/``
(the same key after it), so the next redrive no longer finds it. A batch redriven twice (the
move failed after the invocation) changes nothing more. A function that still fails on a record
(``batchItemFailures`` in its response) leaves the object where it is; the records before that
one are applied, and applying them again changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickstream.adapters.kept_batches import KEPT_PREFIX, KeptBatch
from clickstream.core.checkpoints import sequence_key
from clickstream_analytics.stack import AnalyticsError, Stack

BUCKET = "FailedBatchBucket"
"""The template's on-failure bucket of the stream consumers."""

REDRIVEN_PREFIX = "redriven/"
"""Where a redriven batch's object is moved: ``redriven/aws/lambda/...``."""

MAX_INVOKE_BYTES = 6 * 1024 * 1024 - 64 * 1024
"""Lambda's 6 MB synchronous payload limit, less room for the request's framing."""

Invoke = Callable[[str, dict[str, Any]], Any]
"""Runs a function (by ARN) on an event and returns its response payload."""


@dataclass(frozen=True)
class RedriveResult:
    """What one redrive did."""

    key: str
    function: str
    records: int
    redriven: bool
    moved_to: str | None = None
    resumes_at: str | None = None
    """The first record the function still failed on (``batchItemFailures``), if any."""


def kept_batches(stack: Stack) -> list[KeptBatch]:
    """Every batch still kept, by function, shard and first sequence number."""
    s3, bucket = stack.client("s3"), stack.physical_id(BUCKET)
    batches = [read_kept(stack, key) for key in _keys(s3, bucket, KEPT_PREFIX)]
    return sorted(
        batches,
        key=lambda b: (b.function_name, b.shard_id, sequence_key(b.first_sequence_number), b.key),
    )


def read_kept(stack: Stack, key: str) -> KeptBatch:
    """The kept batch of one object of the bucket."""
    s3, bucket = stack.client("s3"), stack.physical_id(BUCKET)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise AnalyticsError(f"no kept batch s3://{bucket}/{key}") from None
    return KeptBatch.from_document(key, json.loads(body))


def redrive(stack: Stack, batch: KeptBatch, invoke: Invoke) -> RedriveResult:
    """Apply a kept batch again through its function, then move its object under redriven/."""
    bucket = stack.physical_id(BUCKET)
    source = f"s3://{bucket}/{batch.key}"
    for part in payload_parts(batch.records):
        response = invoke(batch.function_arn, {**batch.redrive_event(source), "Records": part})
        failed = _failed_records(response)
        if failed:
            return RedriveResult(
                batch.key, batch.function_name, len(batch.records), False, resumes_at=failed[0]
            )
    moved_to = mark_redriven(stack, batch.key)
    return RedriveResult(batch.key, batch.function_name, len(batch.records), True, moved_to)


def mark_redriven(stack: Stack, key: str) -> str:
    """Move a kept batch's object under redriven/; returns its new key."""
    s3, bucket = stack.client("s3"), stack.physical_id(BUCKET)
    target = REDRIVEN_PREFIX + key
    s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def payload_parts(
    records: Sequence[Mapping[str, Any]], max_bytes: int = MAX_INVOKE_BYTES
) -> list[list[Mapping[str, Any]]]:
    """The records in order, cut into invocations whose events stay under ``max_bytes``."""
    parts: list[list[Mapping[str, Any]]] = [[]]
    size = 0
    for record in records:
        record_size = len(json.dumps(record)) + 2
        if parts[-1] and size + record_size > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append(record)
        size += record_size
    return parts if parts[-1] else []


def lambda_invoker(stack: Stack) -> Invoke:
    """Invoke a deployed function synchronously; a function error raises AnalyticsError."""
    client = stack.client("lambda")

    def invoke(function_arn: str, event: dict[str, Any]) -> Any:
        response = client.invoke(
            FunctionName=function_arn,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else payload
            raise AnalyticsError(f"{function_arn} failed: {response['FunctionError']}: {message}")
        return payload

    return invoke


def _failed_records(response: Any) -> list[str]:
    if not isinstance(response, Mapping):
        return []
    failures = response.get("batchItemFailures") or []
    return [str(failure["itemIdentifier"]) for failure in failures]


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]
