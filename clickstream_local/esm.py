"""The local event-source-mapping runner: Kinesis shards -> Lambda handler, like the real service.

One poller per (function, shard) reads with GetRecords and invokes the handler with the real
Lambda Kinesis event shape. It honours BatchSize, MaximumBatchingWindowInSeconds,
StartingPosition, FunctionResponseTypes=ReportBatchItemFailures (the checkpoint moves to just
before the first failed sequence number and the rest is retried), BisectBatchOnFunctionError,
MaximumRetryAttempts, MaximumRecordAgeInSeconds and an on-failure destination, which receives
the invocation record AWS sends: to an SQS queue or SNS topic the metadata (batch info with shard
and sequence numbers), to an S3 bucket the metadata and the batch itself (``payload``, the
invocation's event as a JSON string) under AWS's key layout
``aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from clickstream_analytics.shard_reader import ShardReader, stream_name_from_arn
from clickstream_local.cfn import Template
from clickstream_local.lambda_worker import Invocation, LocalFunction

logger = logging.getLogger(__name__)

MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit; batches are cut to fit it."""


class Invoker(Protocol):
    """Runs a function on an event and reports a payload or a function error."""

    def invoke(self, event: Any) -> Invocation: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class KinesisMapping:
    """One ``Type: Kinesis`` event of a function, as configured in the template."""

    function: LocalFunction
    event_name: str
    source_arn: str
    stream_name: str
    starting_position: str = "LATEST"
    starting_timestamp: float | None = None
    batch_size: int = 100
    batching_window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    on_failure_arn: str | None = None
    enabled: bool = True

    @property
    def stream_arn(self) -> str:
        """The stream's ARN, also for an enhanced fan-out consumer source."""
        return self.source_arn.split("/consumer/", 1)[0]

    @property
    def uuid(self) -> str:
        """The mapping's id: random on AWS, derived from the function and event here (stable)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.function.arn}#{self.event_name}"))

    @classmethod
    def from_event(
        cls, function: LocalFunction, event_name: str, spec: dict[str, Any]
    ) -> KinesisMapping:
        """Read a resolved SAM ``Kinesis`` event source."""
        properties = spec.get("Properties", {})
        destination = properties.get("DestinationConfig", {}).get("OnFailure", {})
        timestamp = properties.get("StartingPositionTimestamp")
        return cls(
            function=function,
            event_name=event_name,
            source_arn=properties["Stream"],
            stream_name=stream_name_from_arn(properties["Stream"]),
            starting_position=properties.get("StartingPosition", "LATEST"),
            starting_timestamp=float(timestamp) if timestamp is not None else None,
            batch_size=int(properties.get("BatchSize", 100)),
            batching_window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            bisect_on_error=_true(properties.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            maximum_record_age_seconds=int(properties.get("MaximumRecordAgeInSeconds", -1)),
            on_failure_arn=destination.get("Destination"),
            enabled=_true(properties.get("Enabled", True)),
        )


def kinesis_mappings(template: Template, functions: list[LocalFunction]) -> list[KinesisMapping]:
    """Every enabled Kinesis event source of the given functions."""
    mappings = []
    for function in functions:
        for event_name, spec in function.events.items():
            if spec.get("Type") == "Kinesis":
                mapping = KinesisMapping.from_event(function, event_name, spec)
                if mapping.enabled:
                    mappings.append(mapping)
    return mappings


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


@dataclass
class PollerStatus:
    """Counters and progress of one poller, reported by ``status`` and used by ``drain``."""

    function: str
    shard_id: str
    checkpoint: str | None = None
    records_read: int = 0
    records_done: int = 0
    records_to_destination: int = 0
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    retries: int = 0
    bisections: int = 0
    pending: int = 0
    caught_up_at: float = 0.0
    """Start time of the latest poll that found nothing new while nothing was pending."""
    last_error: str | None = None
    oldest_pending_arrival: float | None = None
    """Arrival (epoch seconds) of the oldest record read and not yet done: the iterator age."""
    millis_behind_latest: int = 0
    """MillisBehindLatest of the latest read: how far its position trails the shard's tip."""


class FailureDestination:
    """Sends AWS-shaped on-failure records to an SQS queue, an SNS topic or an S3 bucket.

    ``clients(service)`` gives clients with the function's role credentials: Lambda sends to a
    destination with the execution role, which needs ``sqs:SendMessage``, ``sns:Publish``, or
    ``s3:ListBucket`` on the bucket and ``s3:PutObject`` on the object. A bucket is listed (the
    object's prefix, one key at most) before the put, so a role without ``s3:ListBucket`` is
    refused here as on AWS. ``on_stored(bucket, key)`` is told of each object written.
    """

    def __init__(
        self,
        arn: str,
        clients: Any,
        on_stored: Callable[[str, str], None] | None = None,
    ) -> None:
        self.arn = arn
        self._clients = clients
        self._on_stored = on_stored

    def send(self, document: dict[str, Any], event: dict[str, Any], object_key: str) -> None:
        """Deliver one invocation record: to SQS or SNS the metadata ``document``; to S3 the
        document with ``payload``, the invocation's ``event``, under ``object_key``."""
        _, _, service, _, account, name = self.arn.split(":", 5)
        if service == "sqs":
            sqs = self._clients("sqs")
            queue_url = f"{sqs.meta.endpoint_url.rstrip('/')}/{account}/{name}"
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(document))
        elif service == "sns":
            self._clients("sns").publish(TopicArn=self.arn, Message=json.dumps(document))
        elif service == "s3":
            s3 = self._clients("s3")
            prefix = object_key.rsplit("/", 1)[0] + "/"
            s3.list_objects_v2(Bucket=name, Prefix=prefix, MaxKeys=1)
            body = json.dumps({**document, "payload": json.dumps(event)})
            s3.put_object(
                Bucket=name, Key=object_key, Body=body.encode(), ContentType="application/json"
            )
            if self._on_stored is not None:
                self._on_stored(name, object_key)
        else:
            raise ValueError(f"unsupported on-failure destination {self.arn}")


def failure_object_key(mapping_uuid: str, shard_id: str, moment: datetime) -> str:
    """``aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>``."""
    utc = moment.astimezone(UTC)
    return (
        f"aws/lambda/{mapping_uuid}/{shard_id}/{utc:%Y/%m/%d}/"
        f"{utc:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
    )


def kinesis_event(
    records: list[dict[str, Any]], mapping: KinesisMapping, shard_id: str, region: str
) -> dict[str, Any]:
    """The event Lambda passes to a function for a Kinesis batch."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"],
                    "data": base64.b64encode(record["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": _epoch(record["ApproximateArrivalTimestamp"]),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{record['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": mapping.function.arn.replace(":function:", ":role/").replace(
                    ":lambda:", ":iam:"
                ),
                "awsRegion": region,
                "eventSourceARN": mapping.stream_arn,
            }
            for record in records
        ]
    }


def _epoch(moment: datetime | float) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def failed_sequence_numbers(payload: Any) -> list[str] | None:
    """Item identifiers from a partial batch response; ``None`` if the response is malformed."""
    if payload is None:
        return []
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures", [])
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    identifiers = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return None
        identifiers.append(identifier)
    return identifiers


@dataclass
class _Batch:
    records: list[dict[str, Any]]
    attempts: int = 0
    invocation_count: int = 0
    last_error: str | None = field(default=None)


class ShardPoller:
    """Reads one shard for one mapping and applies Lambda's batch, retry and failure rules."""

    def __init__(
        self,
        mapping: KinesisMapping,
        shard_id: str,
        kinesis: Any,
        invoker: Invoker,
        destination: FailureDestination | None,
        *,
        region: str,
        poll_interval: float = 0.2,
        retry_backoff: float = 0.05,
    ) -> None:
        self.mapping = mapping
        self.shard_id = shard_id
        self.invoker = invoker
        self.destination = destination
        self.region = region
        self.poll_interval = poll_interval
        self.retry_backoff = retry_backoff
        self.reader = ShardReader(
            kinesis,
            mapping.stream_name,
            shard_id,
            starting_position=mapping.starting_position,
            starting_timestamp=mapping.starting_timestamp,
        )
        self.status = PollerStatus(function=mapping.function.name, shard_id=shard_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"esm-{mapping.function.name}-{shard_id}", daemon=True
        )

    def start(self) -> None:
        """Begin polling in a background thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress and release the invoker."""
        self._stop.set()
        self._thread.join(timeout)
        self.invoker.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.collect_batch()
                if batch:
                    self.process(batch)
                else:
                    self._stop.wait(self.poll_interval)
            except Exception as error:  # keep polling; surface the error in status
                logger.exception("poller %s/%s failed", self.mapping.function.name, self.shard_id)
                self.status.last_error = f"{type(error).__name__}: {error}"
                self._stop.wait(1.0)

    def collect_batch(self) -> list[dict[str, Any]]:
        """Read up to BatchSize records, waiting at most MaximumBatchingWindowInSeconds."""
        deadline = time.monotonic() + self.mapping.batching_window_seconds
        batch: list[dict[str, Any]] = []
        size = 0
        while len(batch) < self.mapping.batch_size and not self._stop.is_set():
            started = time.time()
            records, behind = self.reader.read(min(10000, self.mapping.batch_size - len(batch)))
            for record in records:
                size += len(record["Data"]) * 4 // 3 + 512
                batch.append(record)
            self.status.records_read += len(records)
            self.status.pending = len(batch)
            self.status.millis_behind_latest = behind
            if batch:
                self.status.oldest_pending_arrival = _epoch(batch[0]["ApproximateArrivalTimestamp"])
            if not records and not batch and behind == 0:
                self.status.caught_up_at = started
            if batch and size >= MAX_INVOKE_PAYLOAD_BYTES // 2:
                break
            if time.monotonic() >= deadline:
                break
            if not records:
                self._stop.wait(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
        return batch

    def process(self, records: list[dict[str, Any]]) -> None:
        """Invoke until every record is done or sent to the on-failure destination."""
        queue: deque[_Batch] = deque([_Batch(records)])
        while queue:
            batch = queue.popleft()
            batch.records = self._discard_expired(batch)
            if not batch.records:
                continue
            first = batch.records[0]  # batches stay in stream order: the oldest not yet done
            self.status.oldest_pending_arrival = _epoch(first["ApproximateArrivalTimestamp"])
            outcome = self.invoker.invoke(
                kinesis_event(batch.records, self.mapping, self.shard_id, self.region)
            )
            self.status.invocations += 1
            batch.invocation_count += 1
            remaining = self._remaining_after(batch.records, outcome)
            if not remaining:
                self._complete(batch.records)
                continue
            done = batch.records[: len(batch.records) - len(remaining)]
            if done:
                self._complete(done)
            if not outcome.ok and self.mapping.bisect_on_error and len(remaining) > 1:
                self.status.bisections += 1
                middle = len(remaining) // 2
                queue.appendleft(_Batch(remaining[middle:]))
                queue.appendleft(_Batch(remaining[:middle]))
                continue
            batch.attempts += 1
            batch.last_error = outcome.error_type or "PartialBatchFailure"
            if 0 <= self.mapping.maximum_retry_attempts < batch.attempts:
                self._send_to_destination(remaining, "RetryAttemptsExhausted", batch)
                continue
            self.status.retries += 1
            self._stop.wait(min(2.0, self.retry_backoff * 2 ** (batch.attempts - 1)))
            queue.appendleft(_Batch(remaining, batch.attempts, batch.invocation_count))
        self.status.pending = 0
        self.status.oldest_pending_arrival = None

    def _remaining_after(
        self, records: list[dict[str, Any]], outcome: Invocation
    ) -> list[dict[str, Any]]:
        """Records still to process: all on a function error, or from the first reported failure."""
        if not outcome.ok:
            self.status.function_errors += 1
            self.status.last_error = f"{outcome.error_type}: {outcome.error_message}"
            return records
        if not self.mapping.report_batch_item_failures:
            return []
        failed = failed_sequence_numbers(outcome.payload)
        if failed is None:
            self.status.last_error = "malformed batchItemFailures response: whole batch retried"
            self.status.function_errors += 1
            return records
        if not failed:
            return []
        self.status.partial_failures += 1
        positions = {record["SequenceNumber"]: index for index, record in enumerate(records)}
        unknown = [identifier for identifier in failed if identifier not in positions]
        if unknown:
            self.status.last_error = f"batchItemFailures names unknown records {unknown[:3]}"
            return records
        return records[min(positions[identifier] for identifier in failed) :]

    def _discard_expired(self, batch: _Batch) -> list[dict[str, Any]]:
        limit = self.mapping.maximum_record_age_seconds
        if limit < 0:
            return batch.records
        now = time.time()
        is_expired = [now - _epoch(r["ApproximateArrivalTimestamp"]) > limit for r in batch.records]
        expired = [r for r, old in zip(batch.records, is_expired, strict=True) if old]
        if expired:
            self._send_to_destination(expired, "RecordAgeExceeded", batch)
        return [r for r, old in zip(batch.records, is_expired, strict=True) if not old]

    def _complete(self, records: list[dict[str, Any]]) -> None:
        self.status.checkpoint = records[-1]["SequenceNumber"]
        self.status.records_done += len(records)

    def _send_to_destination(
        self, records: list[dict[str, Any]], condition: str, batch: _Batch
    ) -> None:
        now = datetime.now(UTC)
        document = {
            "requestContext": {
                "requestId": f"local-{self.shard_id}-{records[0]['SequenceNumber']}",
                "functionArn": self.mapping.function.arn,
                "condition": condition,
                "approximateInvokeCount": batch.invocation_count,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": batch.last_error or "",
            },
            "version": "1.0",
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(records[0]["ApproximateArrivalTimestamp"]),
                "approximateArrivalOfLastRecord": _iso(records[-1]["ApproximateArrivalTimestamp"]),
                "batchSize": len(records),
                "streamArn": self.mapping.stream_arn,
            },
        }
        if self.destination is not None:
            event = kinesis_event(records, self.mapping, self.shard_id, self.region)
            key = failure_object_key(self.mapping.uuid, self.shard_id, now)
            self.destination.send(document, event, key)
        else:
            logger.error(
                "discarding %d records with no on-failure destination: %s", len(records), document
            )
        self.status.records_to_destination += len(records)
        self.status.checkpoint = records[-1]["SequenceNumber"]

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the status."""
        return asdict(self.status)


def _iso(moment: datetime | float) -> str:
    value = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
