"""Stream records as every consumer sees them: the inbound record, its parse, its rejection.

A :class:`ShardRecord` is one event's record (its data already decoded from base64). The inbound
adapter parses each record ONCE into a :class:`ParsedRecord`, which holds either the
:class:`~clickstream.core.events.Event` or a :class:`RejectedRecord` (the record and the reason),
so no consumer parses again.

**Packed records.** A Kinesis record may carry several events, one JSON line each, each line
ending with ``\n`` (the generator packs them: Kinesis bills PUT payload units of 25 KB and
Firehose bills every record as at least 5 KB). :func:`split_record` makes one record per event.
The first event keeps the Kinesis sequence number; the event on line ``k`` of the record gets the
position ``<sequence number>.<k>``, which sorts after it and before the next record
(:func:`clickstream.core.checkpoints.sequence_key`). Everything downstream (checkpoints, late
counts, the quarantine) works on these positions; only the Lambda partial batch response maps
them back to the Kinesis record (:func:`record_sequence_number`). Firehose writes the record's
bytes as they are, so ``rawdata/`` keeps one event per line either way.

**Clock skew.** A record's ``arrival`` is Kinesis' ``approximateArrivalTimestamp``: the stream's
clock, which the producer does not control. An event whose ``trans_timestamp`` is more than the
allowed clock skew ahead of its arrival is rejected, since its device clock is wrong and it would
drive the watermark into the future (docs/architecture.md, Watermark and lateness). Events older
than their arrival are not rejected here: lateness decides what becomes of them.

**Quarantine lines.** A rejected record is kept as one JSON line with its reason, its shard and
its sequence number, in one object per batch under a key that depends on the records alone
(:func:`quarantine_key`), so a retried batch overwrites its own object. Consumers store a batch's
records before they commit it, so none is lost to a crash in between; a batch retried with other
boundaries may store a record twice, and readers count each (shard, sequence number) once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from clickstream.core.events import Event, InvalidEvent, format_timestamp, parse_event

DEFAULT_MAX_CLOCK_SKEW = timedelta(seconds=300)
"""How far an event's time may be ahead of its arrival by default (``MaxClockSkewSeconds``)."""
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One record of a shard, in shard order; ``arrival`` is its approximate arrival time."""

    shard_id: str
    sequence_number: str
    data: bytes
    arrival: datetime | None = None


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record that will never be processed (invalid, or refused for good), with the reason."""

    record: ShardRecord
    reason: str

    @property
    def shard_id(self) -> str:
        """The record's shard."""
        return self.record.shard_id

    @property
    def sequence_number(self) -> str:
        """The record's sequence number."""
        return self.record.sequence_number

    @property
    def data(self) -> bytes:
        """The record's bytes."""
        return self.record.data

    @property
    def arrival(self) -> datetime | None:
        """The record's approximate arrival time."""
        return self.record.arrival


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """A record with what parsing it gave: its event, or its rejection."""

    record: ShardRecord
    outcome: Event | RejectedRecord

    @property
    def sequence_number(self) -> str:
        """The record's sequence number."""
        return self.record.sequence_number

    @property
    def event(self) -> Event | None:
        """The event, or None when the record is rejected."""
        return self.outcome if isinstance(self.outcome, Event) else None

    @property
    def rejection(self) -> RejectedRecord | None:
        """The rejection, or None when the record is a valid event."""
        return self.outcome if isinstance(self.outcome, RejectedRecord) else None


POSITION_SEPARATOR = "."
"""Between a Kinesis sequence number and the line of an event in a packed record."""


def event_position(sequence_number: str, line: int) -> str:
    """The position of the event on ``line`` of a record: its sequence number for line 0."""
    return sequence_number if line == 0 else f"{sequence_number}{POSITION_SEPARATOR}{line}"


def record_sequence_number(position: str) -> str:
    """The Kinesis sequence number of the record that holds the event at ``position``."""
    return position.partition(POSITION_SEPARATOR)[0]


def split_record(record: ShardRecord) -> list[ShardRecord]:
    """One record per event of a Kinesis record: one per line that is not blank.

    A record of one line (with or without its ``\n``), or of none, is returned as it is, so
    that parsing judges its whole data. Otherwise line ``k`` (counted from 0, blank lines
    included) becomes a record at :func:`event_position`, with the record's shard and arrival.
    """
    lines = [(index, line) for index, line in enumerate(record.data.split(b"\n")) if line.strip()]
    if len(lines) <= 1:
        return [record]
    return [
        replace(record, sequence_number=event_position(record.sequence_number, index), data=line)
        for index, line in lines
    ]


def rejected(record: ShardRecord, reason: str) -> ParsedRecord:
    """``record``, rejected for ``reason`` without parsing."""
    return ParsedRecord(record, RejectedRecord(record, reason))


def parse_record(
    record: ShardRecord, max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> ParsedRecord:
    """Parse the record's data into an event, or reject it with the reason.

    The reason is the parser's, or the clock skew's when the event's time is more than
    ``max_clock_skew`` ahead of the record's arrival (:func:`clock_skew_reason`). A record without
    an arrival time is not skew-checked: only records built off Lambda (tests, tools) lack one.
    """
    try:
        event = parse_event(record.data)
    except InvalidEvent as error:
        return rejected(record, error.reason)
    if record.arrival is not None:
        reason = clock_skew_reason(event, record.arrival, max_clock_skew)
        if reason is not None:
            return rejected(record, reason)
    return ParsedRecord(record, event)


def parse_records(
    records: Iterable[ShardRecord], max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
) -> list[ParsedRecord]:
    """:func:`parse_record` of each record, in order."""
    return [parse_record(record, max_clock_skew) for record in records]


def clock_skew_reason(event: Event, arrival: datetime, max_clock_skew: timedelta) -> str | None:
    """Why ``event`` is refused, when its time is more than ``max_clock_skew`` after ``arrival``.

    None when it is at most that far ahead (or behind its arrival, by any amount).
    """
    ahead = event.trans_timestamp - arrival
    if ahead <= max_clock_skew:
        return None
    return (
        f"trans_timestamp {format_timestamp(event.trans_timestamp)} is {_seconds(ahead)} s ahead "
        f"of its arrival {format_timestamp(arrival)} "
        f"(allowed clock skew {_seconds(max_clock_skew)} s)"
    )


def quarantine_line(record: RejectedRecord) -> str:
    """One JSON line: data as text when it is UTF-8, else base64 with ``data_base64`` true."""
    try:
        data, encoded = record.data.decode("utf-8"), False
    except UnicodeDecodeError:
        data, encoded = base64.b64encode(record.data).decode("ascii"), True
    line = {
        "sequence_number": record.sequence_number,
        "shard_id": record.shard_id,
        "reason": record.reason,
        "data": data,
        "data_base64": encoded,
    }
    return json.dumps(line, ensure_ascii=False) + "\n"


def quarantine_key(records: Sequence[RejectedRecord], prefix: str, now: datetime) -> str:
    """``<prefix>YYYY/MM/DD/HH/<shard>-<first seq>-<last seq>.jsonl``.

    The hour is the UTC arrival hour of the first record (``now`` only when it is unknown), so
    the key depends on the records alone: a retried batch that quarantines the same records
    overwrites its object instead of adding a second one.
    """
    ordered = sorted(records, key=lambda record: _sequence_order(record.sequence_number))
    first, last = ordered[0], ordered[-1]
    hour = (first.arrival or now).astimezone(UTC)
    return (
        f"{prefix}{hour:%Y/%m/%d/%H}/"
        f"{first.shard_id}-{first.sequence_number}-{last.sequence_number}.jsonl"
    )


def _seconds(duration: timedelta) -> str:
    """A duration in seconds, exact to the microsecond: ``300``, ``300.5``, ``0.000001``."""
    whole, fraction = divmod(duration // _ONE_MICROSECOND, 1_000_000)
    return f"{whole}.{fraction:06d}".rstrip("0") if fraction else str(whole)


def _sequence_order(sequence_number: str) -> tuple[int, str]:
    """Numeric order for Kinesis sequence numbers (decimal strings of varying length)."""
    return len(sequence_number), sequence_number
