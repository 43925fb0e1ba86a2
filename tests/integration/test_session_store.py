"""The sessionizer on its AWS adapters, against a real moto server: DynamoDB state, Firehose, S3."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.adapters.aws.session_state import DynamoSessionStateStore
from clickstream.consumers.sessionizer import (
    SessionizerConfig,
    SessionizerOutcome,
    close_all,
    run_batch,
)
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.events import DEVICES, Event
from clickstream.core.records import ParsedRecord, ShardRecord, parse_records
from clickstream.core.session_rules import SessionRules
from clickstream.core.session_state import KeyChange
from clickstream.core.sessions import SessionKey, gap_sessions, minute_sessions
from clickstream.core.windows import END_OF_STREAM, from_micros
from clickstream.ports import SessionizerPorts
from clickstream_local.aws import local_client
from tests.factories import make_event
from tests.integration.conftest import project_template
from tests.support.sessionizer import CAP, CONSUMER, LATENESS, NOW, SHARD, T0, TIMEOUT

pytestmark = pytest.mark.integration


class CrashBeforeCommit(RuntimeError):
    """The invocation died after emitting, before committing."""


class FlakyStateStore(DynamoSessionStateStore):
    """The DynamoDB store, whose next commit can be made to crash before it is sent."""

    crash_next_commit = False

    def commit(
        self,
        consumer: str,
        shard_id: str,
        changes: Sequence[KeyChange],
        checkpoint: ShardCheckpoint,
        expected_version: int,
        registrations: Mapping[datetime, frozenset[int]] | None = None,
    ) -> None:
        if self.crash_next_commit:
            self.crash_next_commit = False
            raise CrashBeforeCommit("crashed before the commit")
        super().commit(consumer, shard_id, changes, checkpoint, expected_version, registrations)


@dataclass
class Deployment:
    """The sessionizer's resources on moto, and its ports bound to them."""

    dynamodb: Any
    s3: Any
    table: str
    bucket: str
    state: FlakyStateStore
    ports: SessionizerPorts
    config: SessionizerConfig

    def batch(self, records: Sequence[ParsedRecord]) -> SessionizerOutcome:
        return run_batch(records, SHARD, CONSUMER, self.ports, self.config, now=NOW)

    def close_all(self) -> SessionizerOutcome:
        return close_all(SHARD, CONSUMER, self.ports, self.config)

    def objects(self, prefix: str) -> list[bytes]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [
            self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            for item in listing.get("Contents", [])
        ]

    def csv_rows(self) -> list[list[str]]:
        """Every CSV row delivered under ``aggregated/``, repeats included."""
        text = b"".join(self.objects("aggregated/")).decode("utf-8")
        return list(csv.reader(io.StringIO(text)))

    def gap_documents(self) -> list[dict[str, Any]]:
        """Every gap session written under ``sessions/``, repeats included."""
        lines = b"".join(self.objects("sessions/")).decode("utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def gap_lines(self) -> Counter[bytes]:
        """Every gap-session line under ``sessions/``, with the number of times it was written."""
        return Counter(line for body in self.objects("sessions/") for line in body.splitlines())

    def open_keys(self) -> list[SessionKey]:
        """The keys a cold store finds open, replaying the log from the table."""
        cold = DynamoSessionStateStore(self.dynamodb, self.table)
        return cold.due(CONSUMER, SHARD, END_OF_STREAM, limit=10**6)

    def log_items(self) -> list[dict[str, Any]]:
        response = self.dynamodb.scan(TableName=self.table)
        return [item for item in response["Items"] if item["pk"]["S"].startswith("SLOG#")]

    def registry_items(self) -> list[dict[str, Any]]:
        response = self.dynamodb.scan(TableName=self.table)
        return [item for item in response["Items"] if item["pk"]["S"].startswith("REGISTRY#")]


@pytest.fixture
def deployment(moto_endpoint: str, stack_name: str) -> Deployment:
    """A state table, a bucket and two DirectPut delivery streams writing ``aggregated/`` and
    ``sessions/`` to it."""
    dynamodb = local_client("dynamodb", moto_endpoint)
    s3 = local_client("s3", moto_endpoint)
    firehose = local_client("firehose", moto_endpoint)
    table, bucket = f"{stack_name}-sessions", f"{stack_name}-data"
    # the state table as template.yaml declares it
    declared = project_template(stack_name).resource("SessionStateTable").properties
    assert "GlobalSecondaryIndexes" not in declared
    dynamodb.create_table(
        TableName=table,
        KeySchema=declared["KeySchema"],
        AttributeDefinitions=declared["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=bucket)
    for stream, prefix in [
        (f"{stack_name}-agg", "aggregated/"),
        (f"{stack_name}-gap", "sessions/"),
    ]:
        firehose.create_delivery_stream(
            DeliveryStreamName=stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": prefix,
            },
        )
    state = FlakyStateStore(dynamodb, table)
    ports = SessionizerPorts(
        checkpoints=DynamoCheckpointStore(dynamodb, table),
        state=state,
        minute_sink=FirehoseMinuteSessionSink(firehose, f"{stack_name}-agg"),
        gap_sink=FirehoseGapSessionSink(firehose, f"{stack_name}-gap"),
    )
    config = SessionizerConfig(SessionRules(LATENESS, TIMEOUT, CAP))
    return Deployment(dynamodb, s3, table, bucket, state, ports, config)


def clickstream(seed: int, count: int) -> list[Event]:
    """Events of a few keys, out of order by less than the allowed lateness."""
    rng = random.Random(seed)
    urls = ["beer_vitrine_nav", "beer_product_detail", "beer_cart", "beer_checkout"]
    clock = T0
    events: list[Event] = []
    for _ in range(count):
        clock += timedelta(seconds=rng.choice([0, 2, 10, 40]), microseconds=rng.randrange(10**6))
        if rng.random() < 0.05:
            clock += timedelta(minutes=3)
        events.append(
            make_event(
                clock - timedelta(seconds=rng.randrange(20)),
                custid=rng.randint(1, 5),
                device=rng.choice(DEVICES),
                url=rng.choice(urls),
            )
        )
    return events


def records_of(events: Sequence[Event]) -> list[ParsedRecord]:
    return parse_records(
        ShardRecord(SHARD, str(1000 + n), event.to_json_line()) for n, event in enumerate(events)
    )


def replay(deployment: Deployment, records: Sequence[ParsedRecord], size: int) -> None:
    for start in range(0, len(records), size):
        deployment.batch(records[start : start + size])


def deduplicated_csv(rows: list[list[str]]) -> list[list[str]]:
    """One row per sessionid; repeats must be identical."""
    kept: dict[str, list[str]] = {}
    for row in rows:
        assert kept.setdefault(row[0], row) == row
    return list(kept.values())


def deduplicated_sessions(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One document per session_id; repeats must be identical."""
    kept: dict[str, dict[str, Any]] = {}
    for document in documents:
        assert kept.setdefault(document["session_id"], document) == document
    return list(kept.values())


def reference_csv(events: Sequence[Event]) -> list[list[str]]:
    lines = "".join(row.to_csv_line() for row in minute_sessions(events))
    return list(csv.reader(io.StringIO(lines)))


def reference_sessions(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [session.to_dict() for session in gap_sessions(events, TIMEOUT, CAP)]


def by_first_column(rows: list[list[str]]) -> list[list[str]]:
    return sorted(rows, key=lambda row: row[0])


def by_session_id(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(documents, key=lambda document: document["session_id"])


def test_a_replay_in_batches_delivers_exactly_the_reference(deployment: Deployment) -> None:
    # GIVEN a shard's events
    events = clickstream(seed=1, count=150)
    # WHEN they are sessionised in batches of 40, and the stream ends
    replay(deployment, records_of(events), 40)
    deployment.close_all()
    # THEN aggregated/ holds exactly the reference rows (10 columns), each once
    rows = deployment.csv_rows()
    assert all(len(row) == 10 for row in rows)
    assert by_first_column(rows) == by_first_column(reference_csv(events))
    # AND sessions/ exactly the reference gap sessions, and no open state is left
    documents = deployment.gap_documents()
    assert by_session_id(documents) == by_session_id(reference_sessions(events))
    assert deployment.open_keys() == []


def test_repeats_with_another_device_or_url_in_later_batches_count_once(
    deployment: Deployment,
) -> None:
    # GIVEN a shard's events, every fifth one repeated three events later with another device
    # and url
    events = clickstream(seed=4, count=100)
    stream: list[Event] = []
    for position, event in enumerate(events):
        stream.append(event)
        if position >= 3 and (position - 3) % 5 == 0:
            original = events[position - 3]
            other_device = next(device for device in DEVICES if device != original.device)
            stream.append(replace(original, device=other_device, url="wine_cart"))
    records = records_of(stream)
    # WHEN they are sessionised in batches of 4, and the stream ends
    outcomes = [deployment.batch(records[i : i + 4]) for i in range(0, len(records), 4)]
    deployment.close_all()
    # THEN every repeat is a duplicate, or late when its minute was final by then
    duplicates = sum(outcome.duplicates for outcome in outcomes)
    late_ids = [late.event_id for outcome in outcomes for late in outcome.late]
    assert duplicates + len(late_ids) == len(stream) - len(events) == 20
    assert duplicates > 0 and set(late_ids) <= {event.event_id for event in events[::5]}
    # AND aggregated/ and sessions/ hold exactly the reference of the first occurrences alone
    assert by_first_column(deployment.csv_rows()) == by_first_column(reference_csv(events))
    documents = deduplicated_sessions(deployment.gap_documents())
    assert by_session_id(documents) == by_session_id(reference_sessions(events))
    # AND each first occurrence is registered once, in its commit's registry items
    registered = [
        item["digests"]["B"][i : i + 8]
        for item in deployment.registry_items()
        for i in range(0, len(item["digests"]["B"]), 8)
    ]
    assert len(registered) == len(set(registered)) == len(events)


def test_redelivery_of_a_committed_batch_emits_nothing_new(deployment: Deployment) -> None:
    # GIVEN a committed batch
    records = records_of(clickstream(seed=2, count=120))
    deployment.batch(records)
    rows, documents = deployment.csv_rows(), deployment.gap_documents()
    # WHEN it is delivered again
    outcome = deployment.batch(records)
    # THEN every record is skipped and nothing more is written
    assert (outcome.skipped, outcome.commits) == (len(records), 0)
    assert deployment.csv_rows() == rows
    assert deployment.gap_documents() == documents


def test_a_crash_between_emission_and_commit_only_repeats_identical_rows(
    deployment: Deployment,
) -> None:
    # GIVEN a batch that emits, then dies before its commit
    events = clickstream(seed=3, count=160)
    records = records_of(events)
    replay(deployment, records[:80], 40)
    lines_before = deployment.gap_lines()
    deployment.state.crash_next_commit = True
    crashed = deployment.batch(records[80:120])
    assert [failure.reason.split(":")[0] for failure in crashed.failures] == ["CrashBeforeCommit"]
    emitted = deployment.gap_lines() - lines_before
    assert emitted, "the crashed attempt delivered gap sessions before its commit"
    # WHEN Lambda retries it, the rest follows and the stream ends
    deployment.batch(records[80:120])
    # THEN the retry delivered the same gap sessions again, line for line (Firehose keeps both)
    assert deployment.gap_lines() - lines_before == emitted + emitted
    replay(deployment, records[120:], 40)
    deployment.close_all()
    # AND rows were delivered twice, with the same ids and content (checked by the dedup)
    rows = deployment.csv_rows()
    assert len(rows) > len({row[0] for row in rows})
    assert by_first_column(deduplicated_csv(rows)) == by_first_column(reference_csv(events))
    # AND so were gap sessions: one per session_id is the reference
    documents = deployment.gap_documents()
    assert len(documents) > len(deduplicated_sessions(documents))
    assert by_session_id(deduplicated_sessions(documents)) == by_session_id(
        reference_sessions(events)
    )


def test_a_cold_store_replays_the_log_to_the_open_keys_and_close_times(
    deployment: Deployment,
) -> None:
    # GIVEN batches that leave keys open, committed through one (warm) store
    replay(deployment, records_of(clickstream(seed=4, count=60)), 20)
    warm = deployment.state
    close_at = {key: held.close_at for key, held in warm.synced(CONSUMER, SHARD).open.items()}
    assert close_at
    # WHEN a new store (a cold container) reads the table
    cold = DynamoSessionStateStore(deployment.dynamodb, deployment.table)
    # THEN it finds the same states, and the keys due at the median close time, earliest first
    assert cold.load(CONSUMER, SHARD, close_at) == warm.load(CONSUMER, SHARD, close_at)
    ordered = sorted(close_at.items(), key=lambda pair: (pair[1], pair[0]))
    median = ordered[len(ordered) // 2][1]
    due = cold.due(CONSUMER, SHARD, from_micros(median), limit=1000)
    expected = [key for key, moment in ordered if moment <= median]
    assert sorted(due) == sorted(expected)
    assert [close_at[key] for key in due] == sorted(close_at[key] for key in due)
    # ... and the end of the stream sees every open key
    assert sorted(cold.due(CONSUMER, SHARD, END_OF_STREAM, limit=1000)) == sorted(close_at)


def test_a_commit_writes_one_log_entry_whatever_the_number_of_keys(
    deployment: Deployment,
) -> None:
    # GIVEN 200 events of 200 different keys in one 15 s bucket
    events = [
        make_event(T0 + timedelta(milliseconds=10 * n), custid=n + 1, device=DEVICES[n % 3])
        for n in range(200)
    ]
    # WHEN they are sessionised in one batch
    outcome = deployment.batch(records_of(events))
    # THEN one commit wrote one log item (plus one registry item and the checkpoint)
    assert outcome.commits == 1
    assert len(deployment.log_items()) == 1
    assert len(deployment.registry_items()) == 1
    assert len(deployment.open_keys()) == 200


def test_another_writers_commits_are_seen_before_the_next_batch(deployment: Deployment) -> None:
    # GIVEN two stores on the same shard (two containers), the first having read the log
    events = clickstream(seed=6, count=80)
    records = records_of(events)
    replay(deployment, records[:40], 20)
    other = replace(
        deployment.ports, state=DynamoSessionStateStore(deployment.dynamodb, deployment.table)
    )
    # WHEN the other one commits the next batches, then the first one the rest
    for start in (40, 60):
        run_batch(records[start : start + 20], SHARD, CONSUMER, other, deployment.config, now=NOW)
    replay(deployment, records[80:], 20)
    deployment.close_all()
    # THEN the output is exactly the reference: the first store applied the other's entries
    assert by_first_column(deduplicated_csv(deployment.csv_rows())) == by_first_column(
        reference_csv(events)
    )
    assert by_session_id(deployment.gap_documents()) == by_session_id(reference_sessions(events))


def test_old_entries_are_not_read_once_every_key_they_hold_moved_on(
    deployment: Deployment,
) -> None:
    # GIVEN a key written in an early commit, then many commits of other keys
    replay(deployment, records_of(clickstream(seed=8, count=120)), 10)
    items = deployment.log_items()
    newest = max(items, key=lambda item: item["sk"]["S"])
    keep_from = int(newest["keep_from"]["N"])
    # THEN the newest entry names the oldest entry still holding an open key, and a cold store
    # replaying from there finds every open key the warm store holds
    held = deployment.state.synced(CONSUMER, SHARD).open
    assert keep_from == min(entry.version for entry in held.values())
    assert sorted(deployment.open_keys()) == sorted(held)
