"""Count what the pipeline holds at each stage and reconcile it with what was sent."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from clickstream.adapters.aws.window_state import partial_from_item
from clickstream.core.events import InvalidEvent, parse_event
from clickstream.core.records import ParsedRecord, ShardRecord, split_record
from clickstream.core.sessions import MINUTE_SESSION_COLUMNS, parse_csv_line
from clickstream.core.sketch import ERROR_BOUND
from clickstream.core.window_counting import WindowPartial, WindowValue, merge_partials
from clickstream.core.windows import TOP_SOURCES
from clickstream_analytics.shard_reader import ShardReader, list_shard_ids


def stream_records(kinesis: Any, stream_name: str) -> list[ShardRecord]:
    """Every event's record in the stream with its shard, position and arrival time: a packed
    Kinesis record gives one per line, as the consumers see it (:func:`split_record`)."""
    records: list[ShardRecord] = []
    for shard_id in list_shard_ids(kinesis, stream_name):
        reader = ShardReader(kinesis, stream_name, shard_id, starting_position="TRIM_HORIZON")
        while True:
            batch, behind = reader.read(10000)
            for record in batch:
                whole = ShardRecord(
                    shard_id,
                    record["SequenceNumber"],
                    record["Data"],
                    record["ApproximateArrivalTimestamp"].astimezone(UTC),
                )
                records.extend(split_record(whole))
            if not batch and behind == 0:
                break
    return records


def stream_data(kinesis: Any, stream_name: str) -> list[bytes]:
    """The data of every event in the stream, shard by shard, from the trim horizon."""
    return [record.data for record in stream_records(kinesis, stream_name)]


def event_id_counts(records: Iterable[bytes]) -> Counter[str | None]:
    """``event_id`` of every record (``None`` for records without one)."""
    return Counter(_event_id(record) for record in records)


def stream_event_ids(kinesis: Any, stream_name: str) -> Counter[str | None]:
    """``event_id`` of every record in the stream (``None`` for records without one)."""
    return event_id_counts(stream_data(kinesis, stream_name))


@dataclass(frozen=True)
class LakeCount:
    """Objects, lines and the ``event_id`` of each line under one S3 prefix."""

    objects: int
    lines: int
    ids: Counter[str | None]


def lake_event_ids(s3: Any, bucket: str, prefix: str) -> LakeCount:
    """Read every object under ``prefix`` and count its JSON lines by ``event_id``."""
    objects, lines = 0, 0
    ids: Counter[str | None] = Counter()
    for body in object_bodies(s3, bucket, prefix):
        objects += 1
        for line in body.splitlines():
            if line.strip():
                lines += 1
                ids[_event_id(line)] += 1
    return LakeCount(objects, lines, ids)


def _event_id(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    value = document.get("event_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def search_document_ids(client: Any, index_pattern: str, event_ids: Iterable[str]) -> set[str]:
    """Which of ``event_ids`` are searchable documents (after a refresh) in ``index_pattern``.

    ``client`` is an ``opensearchpy.OpenSearch`` (a stack's :meth:`search_client`).
    """
    client.indices.refresh(index=index_pattern, ignore_unavailable=True, allow_no_indices=True)
    wanted = sorted(set(event_ids))
    found: set[str] = set()
    for offset in range(0, len(wanted), 1000):
        chunk = wanted[offset : offset + 1000]
        response = client.search(
            index=index_pattern,
            body={"size": len(chunk), "_source": False, "query": {"ids": {"values": chunk}}},
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        found.update(hit["_id"] for hit in response["hits"]["hits"])
    return found


def search_document_count(client: Any, index_pattern: str) -> int:
    """All documents in ``index_pattern``."""
    response = client.count(index=index_pattern, ignore_unavailable=True, allow_no_indices=True)
    return int(response["count"])


@dataclass(frozen=True)
class Reconciliation:
    """This run's events at each stage of the raw path.

    A run may send an ``event_id`` more than once (a replay that repeats events, a producer's
    retry): every count is of records, each id as often as it was sent.
    """

    sent: int
    accepted: int
    stream_records: int
    raw_objects: int
    raw_lines: int
    raw_lines_of_run: int
    missing_in_stream: int
    missing_in_raw: int
    duplicated_in_raw: int
    distinct_sent: int = 0
    search_documents: int | None = None
    searchable_of_run: int | None = None
    indexable_of_run: int | None = None
    """Distinct ids of this run the search indexer takes (valid events); all when None."""

    @property
    def ok(self) -> bool:
        """Sent = stream records = raw lines, each id in the raw layer as often as sent, and
        one search document per distinct id sent (when searched)."""
        raw_ok = (
            self.sent == self.accepted == self.stream_records == self.raw_lines_of_run
            and self.missing_in_stream == self.missing_in_raw == self.duplicated_in_raw == 0
        )
        indexable = self.distinct_sent if self.indexable_of_run is None else self.indexable_of_run
        return raw_ok and self.searchable_of_run in (None, indexable)

    def lines(self) -> list[str]:
        """A printable summary, one fact per line."""
        rows = [
            ("events sent", self.sent),
            ("distinct event_ids sent", self.distinct_sent),
            ("events accepted by the stream", self.accepted),
            ("records of this run in the stream", self.stream_records),
            ("raw objects in rawdata/ (all runs)", self.raw_objects),
            ("raw lines in rawdata/ (all runs)", self.raw_lines),
            ("raw lines of this run", self.raw_lines_of_run),
            ("records sent but missing in the stream", self.missing_in_stream),
            ("records sent but missing in rawdata/", self.missing_in_raw),
            ("raw lines beyond the records sent", self.duplicated_in_raw),
        ]
        if self.searchable_of_run is not None and self.search_documents is not None:
            rows += [
                ("documents in OpenSearch (all runs)", self.search_documents),
                ("event_ids of this run searchable", self.searchable_of_run),
            ]
            if self.indexable_of_run is not None:
                rows.append(("valid event_ids of this run (to index)", self.indexable_of_run))
        width = max(len(label) for label, _ in rows)
        text = [f"  {label:<{width}}  {value:>9,}" for label, value in rows]
        searched = (
            "" if self.searchable_of_run is None else "; each valid one a document in OpenSearch"
        )
        verdict = (
            "RECONCILED: sent = stream records = raw lines; every event_id in rawdata/ as often"
            " as sent" + searched
            if self.ok
            else "NOT RECONCILED: see the counts above"
        )
        return [*text, f"  {verdict}"]


def reconcile(
    sent_ids: Iterable[str],
    accepted: int,
    stream_ids: Counter[str | None],
    lake: LakeCount,
    searchable: set[str] | None = None,
    search_documents: int | None = None,
    indexable: set[str] | None = None,
) -> Reconciliation:
    """Compare the ids a run sent (each as often as sent) with the stream's and the raw
    layer's contents; ``indexable`` are the ids the search indexer takes (all when None)."""
    sent: Counter[str] = Counter(sent_ids)
    return Reconciliation(
        sent=sum(sent.values()),
        accepted=accepted,
        stream_records=sum(stream_ids[key] for key in sent),
        raw_objects=lake.objects,
        raw_lines=lake.lines,
        raw_lines_of_run=sum(lake.ids[key] for key in sent),
        missing_in_stream=sum(max(0, count - stream_ids[key]) for key, count in sent.items()),
        missing_in_raw=sum(max(0, count - lake.ids[key]) for key, count in sent.items()),
        duplicated_in_raw=sum(max(0, lake.ids[key] - count) for key, count in sent.items()),
        distinct_sent=len(sent),
        search_documents=search_documents,
        searchable_of_run=None if searchable is None else len(set(sent) & searchable),
        indexable_of_run=None if indexable is None else len(set(sent) & indexable),
    )


def read_minute_sessions(
    s3: Any, bucket: str, prefix: str = "aggregated/"
) -> list[tuple[str, ...]]:
    """Per-minute session rows (CSV) deduplicated by sessionid, keeping the fullest revision.

    Each line is read as the sessionizer writes it (:func:`parse_csv_line`); lines end at ``\\n``
    only, so a url holding U+2028 or U+0085 stays in its row. A line that is not such a row
    raises ``InvalidEvent`` naming the object and the line.
    """
    best: dict[str, tuple[str, ...]] = {}
    for key, body in object_items(s3, bucket, prefix):
        for number, line in enumerate(body.decode("utf-8").split("\n"), start=1):
            if not line:
                continue
            row = _minute_session_fields(line, f"s3://{bucket}/{key}:{number}")
            current = best.get(row[0])
            if current is None or int(row[4]) > int(current[4]):
                best[row[0]] = tuple(row)
    return sorted(best.values(), key=lambda row: (row[3], int(row[1]), row[2]))


def read_gap_sessions(s3: Any, bucket: str, prefix: str = "sessions/") -> list[dict[str, Any]]:
    """Gap sessions (JSON lines) deduplicated by session_id, keeping the fullest revision."""
    best: dict[str, dict[str, Any]] = {}
    for body in object_bodies(s3, bucket, prefix):
        for line in body.splitlines():
            if line.strip():
                session = json.loads(line)
                current = best.get(session["session_id"])
                if current is None or session["page_count"] > current["page_count"]:
                    best[session["session_id"]] = session
    return sorted(best.values(), key=lambda s: (s["start"], s["custid"], s["device"]))


def _minute_session_fields(line: str, where: str) -> list[str]:
    """The ten fields of a per-minute session line; ``InvalidEvent`` naming ``where`` if not."""
    try:
        fields = parse_csv_line(line)
    except InvalidEvent as error:
        raise InvalidEvent(f"{where}: {error.reason}") from None
    if len(fields) != len(MINUTE_SESSION_COLUMNS):
        raise InvalidEvent(
            f"{where}: expected {len(MINUTE_SESSION_COLUMNS)} CSV columns, got {len(fields)}"
        )
    for index in (1, 4):
        if not re.fullmatch(r"\d{1,19}", fields[index], re.ASCII):
            raise InvalidEvent(f"{where}: {MINUTE_SESSION_COLUMNS[index]} is not an integer")
    return fields


def object_bodies(s3: Any, bucket: str, prefix: str) -> Iterable[bytes]:
    """The body of every object under ``prefix``, in key order."""
    for _, body in object_items(s3, bucket, prefix):
        yield body


def object_items(s3: Any, bucket: str, prefix: str) -> Iterable[tuple[str, bytes]]:
    """The key and body of every object under ``prefix``, in key order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"], s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()


@dataclass(frozen=True)
class StreamAccounting:
    """Where every record of the stream ended up in the window counter (1-minute windows)."""

    records: int
    not_events: int
    skewed: int
    quarantined: int
    duplicates: int
    counted: int
    late: int
    kept: int = 0
    """Records in the window counter's batches kept in the failed-batch bucket, not redriven."""
    approximate: int = 0
    """(minute, source) counts that are sketch estimates."""
    approximate_total: int = 0
    """The sum of those estimates."""

    @property
    def invalid(self) -> int:
        """Records the consumers' own rule refuses: not events, or too far ahead of arrival."""
        return self.not_events + self.skewed

    @property
    def accounted(self) -> int:
        """quarantined + duplicates + counted + late."""
        return self.quarantined + self.duplicates + self.counted + self.late

    @property
    def tolerance(self) -> int:
        """How far ``accounted`` may be from ``records``: the sketches' error bound, else 0."""
        return math.floor(self.approximate_total * ERROR_BOUND)

    @property
    def ok(self) -> bool:
        """records = quarantined + duplicates + counted + late (within the sketches' bound), only
        invalid records quarantined, and no record waiting in a kept batch."""
        balanced = abs(self.records - self.accounted) <= self.tolerance
        return balanced and self.quarantined == self.invalid and self.kept == 0

    def lines(self) -> list[str]:
        """A printable account, one fact per line, then the verdict."""
        rows = [
            ("records in the stream (all runs)", self.records),
            ("not valid events (the consumers' own parser)", self.not_events),
            ("ahead of their arrival by more than MaxClockSkewSeconds", self.skewed),
            ("quarantined by the window counter", self.quarantined),
            ("repeated event_ids (counted once)", self.duplicates),
            ("counted in 1-minute windows", self.counted),
            ("late (their window was final)", self.late),
            ("in kept batches, awaiting clickstream redrive", self.kept),
            ("approximate (minute, source) counts (sketches)", self.approximate),
        ]
        width = max(len(label) for label, _ in rows)
        text = [f"  {label:<{width}}  {value:>9,}" for label, value in rows]
        equation = (
            f"{self.records:,} = {self.quarantined:,} + {self.duplicates:,} + {self.counted:,}"
            f" + {self.late:,}"
        )
        if self.approximate:
            equation += f" (counts within ±{self.tolerance:,}, the sketches' {ERROR_BOUND:.3%})"
        if self.ok:
            verdict = "ACCOUNTED"
        elif self.kept:
            verdict = f"NOT ACCOUNTED YET ({self.kept:,} records await `clickstream redrive`)"
        else:
            verdict = "NOT ACCOUNTED"
        return [
            *text,
            f"  {verdict}: records = quarantined + duplicates + counted + late: {equation}",
        ]


def stream_accounting(
    records: Sequence[ParsedRecord],
    s3: Any,
    bucket: str,
    dynamodb: Any,
    state_table: str,
    kept: int = 0,
) -> StreamAccounting:
    """Account for the stream's ``records`` with the window counter's quarantine and state.

    Each record comes judged by the consumers' own rule (:func:`parse_records`): the parser, then
    the clock skew against its arrival, with the stack's ``MaxClockSkewSeconds``. Top sources
    count ``COUNT(*)`` per minute and source, so their values and late counts add up to the
    distinct valid events, each in exactly one (minute, source). A quarantined record counts once
    per (shard, sequence number): a batch retried after its quarantine write stores it again.
    ``kept`` is the number of records the window counter's kept batches hold.
    """
    not_events = skewed = 0
    valid_ids: Counter[str] = Counter()
    for record in records:
        event = record.event
        if event is not None:
            valid_ids[event.event_id] += 1
        elif _is_event(record.record.data):
            skewed += 1
        else:
            not_events += 1
    quarantined = len(
        {
            (entry["shard_id"], entry["sequence_number"])
            for body in object_bodies(s3, bucket, "quarantine/window-counter/")
            for entry in map(json.loads, filter(None, body.splitlines()))
        }
    )
    values = minute_source_values(dynamodb, state_table)
    estimates = [value.value for value in values if value.approximate]
    return StreamAccounting(
        records=len(records),
        not_events=not_events,
        skewed=skewed,
        quarantined=quarantined,
        duplicates=sum(valid_ids.values()) - len(valid_ids),
        counted=sum(value.value for value in values),
        late=sum(value.late for value in values),
        kept=kept,
        approximate=len(estimates),
        approximate_total=sum(estimates),
    )


def _is_event(data: bytes) -> bool:
    """True when ``data`` parses as an event (whatever its time against its arrival)."""
    try:
        parse_event(data)
    except InvalidEvent:
        return False
    return True


def minute_source_values(dynamodb: Any, state_table: str) -> list[WindowValue]:
    """Every (minute, source) of the window state, its shards' partials merged.

    Read from the state, not from the result rows: a batch writes its rows after its state commits,
    so a row trails its state while a batch is between the two.
    """
    prefix = f"W#{TOP_SOURCES}#60#"
    arguments: dict[str, Any] = {
        "TableName": state_table,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": prefix}},
        "ConsistentRead": True,
    }
    partials: dict[str, list[WindowPartial]] = defaultdict(list)
    while True:
        response = dynamodb.scan(**arguments)
        for item in response["Items"]:
            partials[item["pk"]["S"]].append(partial_from_item(TOP_SOURCES, item))
        if "LastEvaluatedKey" not in response:
            break
        arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return [value for group in partials.values() for value in merge_partials(group).values()]
