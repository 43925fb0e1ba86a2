"""Firehose with a Kinesis source, emulated: read the stream, buffer, write S3 objects.

Moto stores delivery streams but neither pulls from Kinesis nor buffers. This emulator reads
every shard from TRIM_HORIZON, appends each record's bytes as-is (Firehose adds no delimiter;
producers end each record with a newline), and writes one object when the buffer reaches
``SizeInMBs`` or has waited ``IntervalInSeconds``, whichever comes first. Object keys follow
Firehose: the rendered ``Prefix`` (``!{timestamp:...}`` uses the arrival time of the buffer's
first record, UTC) followed by ``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``. A failed S3
write is retried with backoff until it succeeds, as Firehose does, so nothing read is dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from clickstream_analytics.shard_reader import ShardReader, list_shard_ids, stream_name_from_arn
from clickstream_local.cfn import Resource

logger = logging.getLogger(__name__)

_JAVA_DATE_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def render_prefix(prefix: str, arrival: datetime, error_type: str | None = None) -> str:
    """Evaluate Firehose's ``!{timestamp:fmt}``, ``!{firehose:...}`` prefix expressions."""

    def expression(match: re.Match[str]) -> str:
        namespace, _, argument = match.group(1).partition(":")
        if namespace == "timestamp":
            pattern = re.sub(
                "|".join(_JAVA_DATE_TOKENS), lambda m: _JAVA_DATE_TOKENS[m.group(0)], argument
            )
            return arrival.strftime(pattern)
        if namespace == "firehose" and argument == "error-output-type":
            return error_type or "processing-failed"
        if namespace == "firehose" and argument == "random-string":
            return uuid.uuid4().hex[:11]
        raise ValueError(f"unsupported Firehose prefix expression !{{{match.group(1)}}}")

    rendered = re.sub(r"!\{([^}]+)\}", expression, prefix)
    if rendered == prefix and "!{" not in prefix:
        rendered = prefix + arrival.strftime("%Y/%m/%d/%H/")
    return rendered


@dataclass(frozen=True)
class DeliveryStreamConfig:
    """The parts of an ``AWS::KinesisFirehose::DeliveryStream`` the emulator needs."""

    name: str
    stream_name: str
    bucket: str
    prefix: str
    error_prefix: str
    buffer_bytes: int
    buffer_seconds: float
    source_role_arn: str = ""
    """The role Firehose reads the source stream with."""
    destination_role_arn: str = ""
    """The role Firehose writes the bucket with."""

    @classmethod
    def from_resource(cls, resource: Resource) -> DeliveryStreamConfig | None:
        """Config for a Kinesis-sourced delivery stream to S3; ``None`` for other kinds."""
        properties = resource.properties
        source = properties.get("KinesisStreamSourceConfiguration")
        destination = properties.get("ExtendedS3DestinationConfiguration") or properties.get(
            "S3DestinationConfiguration"
        )
        if not source or not destination:
            return None
        hints = destination.get("BufferingHints", {})
        return cls(
            name=resource.physical_id,
            stream_name=stream_name_from_arn(source["KinesisStreamARN"]),
            bucket=destination["BucketARN"].split(":::", 1)[1],
            prefix=destination.get("Prefix", ""),
            error_prefix=destination.get("ErrorOutputPrefix", ""),
            buffer_bytes=int(hints.get("SizeInMBs", 5)) * 1024 * 1024,
            buffer_seconds=float(hints.get("IntervalInSeconds", 300)),
            source_role_arn=source.get("RoleARN", ""),
            destination_role_arn=destination.get("RoleARN", ""),
        )


@dataclass
class DeliveryStatus:
    """Counters of one delivery stream, reported by ``status`` and used by ``drain``."""

    name: str
    records_in: int = 0
    records_delivered: int = 0
    bytes_delivered: int = 0
    objects_written: int = 0
    buffered_records: int = 0
    flushes_by_size: int = 0
    flushes_by_interval: int = 0
    flushes_forced: int = 0
    write_failures: int = 0
    caught_up_at: float = 0.0
    last_error: str | None = None


class FirehoseEmulator:
    """Reads all shards of the source stream into one buffer and flushes it to S3."""

    def __init__(
        self,
        config: DeliveryStreamConfig,
        kinesis: Any,
        s3: Any,
        *,
        poll_interval: float = 0.2,
        read_limit: int = 1000,
    ) -> None:
        self.config = config
        self.kinesis = kinesis
        self.s3 = s3
        self.poll_interval = poll_interval
        self.read_limit = read_limit
        self.status = DeliveryStatus(name=config.name)
        self._buffer: list[bytes] = []
        self._buffer_size = 0
        self._buffer_started: float | None = None
        self._first_arrival: datetime | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._shard_caught_up: dict[str, float] = {}

    def start(self) -> None:
        """Start one reader thread per shard and the interval timer."""
        for shard_id in list_shard_ids(self.kinesis, self.config.stream_name):
            reader = ShardReader(self.kinesis, self.config.stream_name, shard_id)
            self._shard_caught_up[shard_id] = 0.0
            self._spawn(f"firehose-{self.config.name}-{shard_id}", self._read_shard, reader)
        self._spawn(f"firehose-{self.config.name}-timer", self._timer)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop reading and flush what is buffered."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.flush(reason="forced")

    def _read_shard(self, reader: ShardReader) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                records, behind = reader.read(self.read_limit)
            except Exception as error:
                self.status.last_error = f"{type(error).__name__}: {error}"
                self._stop.wait(1.0)
                continue
            if records:
                self.add(records)
                continue
            if behind == 0:
                with self._lock:
                    self._shard_caught_up[reader.shard_id] = started
                    self.status.caught_up_at = min(self._shard_caught_up.values())
            self._stop.wait(self.poll_interval)

    def add(self, records: list[dict[str, Any]]) -> None:
        """Append records to the buffer, flushing whenever it reaches the size hint."""
        with self._lock:
            for record in records:
                data: bytes = record["Data"]
                if self._buffer and self._buffer_size + len(data) > self.config.buffer_bytes:
                    self.flush(reason="size")
                if not self._buffer:
                    self._buffer_started = time.monotonic()
                    arrival = record["ApproximateArrivalTimestamp"]
                    self._first_arrival = arrival.astimezone(UTC)
                self._buffer.append(data)
                self._buffer_size += len(data)
                self.status.records_in += 1
            self.status.buffered_records = len(self._buffer)
            if self._buffer_size >= self.config.buffer_bytes:
                self.flush(reason="size")

    def _timer(self) -> None:
        while not self._stop.wait(min(0.2, self.config.buffer_seconds or 0.2)):
            with self._lock:
                started = self._buffer_started
                if started is not None and time.monotonic() - started >= self.config.buffer_seconds:
                    self.flush(reason="interval")

    def flush(self, reason: str, attempts: int = 6) -> str | None:
        """Write the buffer as one object, retrying with backoff; returns the key written.

        If S3 still refuses after ``attempts`` tries, the buffer is kept (nothing is dropped),
        the error is recorded in the status, and the next flush tries again.
        """
        with self._lock:
            if not self._buffer:
                return None
            arrival = self._first_arrival or datetime.now(UTC)
            key = render_prefix(self.config.prefix, arrival) + (
                f"{self.config.name}-1-{arrival.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}"
            )
            body = b"".join(self._buffer)
            for attempt in range(attempts):
                try:
                    self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body)
                    break
                except Exception as error:  # Firehose retries S3 delivery; so do we
                    self.status.write_failures += 1
                    self.status.last_error = f"S3 write failed: {type(error).__name__}: {error}"
                    logger.warning(
                        "S3 write of %s failed (attempt %d): %s", key, attempt + 1, error
                    )
                    time.sleep(min(0.1 * 2**attempt, 2.0))
            else:
                return None
            self.status.records_delivered += len(self._buffer)
            self.status.bytes_delivered += len(body)
            self.status.objects_written += 1
            counter = "flushes_forced" if reason == "forced" else f"flushes_by_{reason}"
            setattr(self.status, counter, getattr(self.status, counter) + 1)
            self._buffer, self._buffer_size = [], 0
            self._buffer_started, self._first_arrival = None, None
            self.status.buffered_records = 0
            self.status.last_error = None
            return key

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the status."""
        with self._lock:
            return asdict(self.status)
