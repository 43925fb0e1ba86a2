"""The generator Lambda handler, with a stub Kinesis client (no AWS, no sockets)."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clickstream.core.retry import RetryPolicy
from clickstream.core.shard_map import hash_key
from clickstream.generator import generate
from tests.support.metrics import emitted_metrics

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "functions" / "generator" / "app.py"
SCHEDULE_EVENT = ROOT / "events" / "generator_schedule.json"
ANY_START = datetime(2000, 1, 1, tzinfo=UTC)  # event ids depend on the seed only


@dataclass
class LambdaContext:
    function_name: str = "clickstream-generator"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:clickstream-generator"
    )
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    remaining_millis: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


HALF = 2**127
SHARDS = [
    {
        "ShardId": "shardId-000000000000",
        "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(HALF - 1)},
        "SequenceNumberRange": {"StartingSequenceNumber": "1"},
    },
    {
        "ShardId": "shardId-000000000001",
        "HashKeyRange": {"StartingHashKey": str(HALF), "EndingHashKey": str(2**128 - 1)},
        "SequenceNumberRange": {"StartingSequenceNumber": "2"},
    },
]


def shard_start(partition_key: str) -> int:
    """The starting hash key of the stub's shard ``partition_key`` hashes to."""
    return 0 if hash_key(partition_key) < HALF else HALF


def record_events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one put record: one JSON line each."""
    return [json.loads(line) for line in record["Data"].splitlines()]


class StubKinesis:
    """Answers ListShards (two shards) and PutRecords like Kinesis; a record holding an event
    whose id is in ``rejected`` always fails."""

    def __init__(self, rejected: set[str] | None = None) -> None:
        self.rejected = rejected or set()
        self.calls: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []

    def list_shards(self, StreamName: str) -> dict[str, Any]:
        return {"Shards": SHARDS}

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append({"StreamName": StreamName, "Records": Records})
        entries: list[dict[str, str]] = []
        for index, record in enumerate(Records):
            if {event["event_id"] for event in record_events(record)} & self.rejected:
                self.refused.append(record)
                entries.append(
                    {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "Rate exceeded for shard shardId-000000000000",
                    }
                )
            else:
                entries.append({"SequenceNumber": str(index), "ShardId": "shardId-000000000000"})
        failed = sum("ErrorCode" in entry for entry in entries)
        return {"FailedRecordCount": failed, "Records": entries}

    def sent_records(self) -> list[dict[str, Any]]:
        return [record for call in self.calls for record in call["Records"]]

    def sent_events(self) -> list[dict[str, Any]]:
        return [event for record in self.sent_records() for event in record_events(record)]


@pytest.fixture(scope="module")
def app() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClickstreamTest")
        spec = importlib.util.spec_from_file_location("generator_app", HANDLER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def kinesis(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> StubKinesis:
    stub = StubKinesis()
    monkeypatch.setattr(app, "kinesis", stub)
    monkeypatch.setattr(app, "retry_policy", RetryPolicy(max_attempts=3, base_delay=0.0))
    monkeypatch.setenv("STREAM_NAME", "clickstream-stream")
    monkeypatch.setenv("GENERATOR_COUNT", "50")
    monkeypatch.setenv("GENERATOR_RATE", "10")
    monkeypatch.setenv("GENERATOR_SEED", "7")
    for name in ("GENERATOR_PROFILE", "GENERATOR_MODE", "GENERATOR_DURATION_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return stub


@pytest.fixture
def schedule_event() -> dict[str, Any]:
    return json.loads(SCHEDULE_EVENT.read_text())


def test_sample_event_is_a_scheduled_event(schedule_event: dict[str, Any]) -> None:
    assert schedule_event["detail-type"] == "Scheduled Event"
    assert schedule_event["source"] == "aws.events"
    assert schedule_event["detail"] == {}
    assert schedule_event["resources"] == [
        "arn:aws:events:us-east-1:123456789012:rule/clickstream-generator-schedule"
    ]


def test_scheduled_invocation_sends_count_events(
    app: ModuleType,
    kinesis: StubKinesis,
    schedule_event: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN count mode with 50 events and seed 7
    # WHEN the schedule invokes the function
    result = app.lambda_handler(schedule_event, LambdaContext())

    # THEN the 50 seeded events went to the configured stream, packed into one record per
    # shard, each event on the shard its custid hashes to, in order
    assert result["sent"] == result["accepted"] == 50
    assert result["unaccepted"] == []
    assert {call["StreamName"] for call in kinesis.calls} == {"clickstream-stream"}
    expected = list(generate("classic", seed=7, start=ANY_START, rate=10, count=50))
    records = kinesis.sent_records()
    assert len(records) == 2
    assert sorted(e["event_id"] for e in kinesis.sent_events()) == sorted(
        e.event_id for e in expected
    )
    shard_of = {e["event_id"]: shard_start(str(e["custid"])) for e in kinesis.sent_events()}
    for record in records:
        events = record_events(record)
        start = int(record["ExplicitHashKey"])
        assert record["PartitionKey"] == str(events[0]["custid"])
        assert [e["event_id"] for e in events] == [
            e.event_id for e in expected if shard_of[e.event_id] == start
        ]
    # AND the metrics were emitted
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics == {"EventsSent": 50, "EventsAccepted": 50, "EventsUnaccepted": 0}


def test_event_detail_overrides_the_environment(
    app: ModuleType, kinesis: StubKinesis, schedule_event: dict[str, Any]
) -> None:
    # GIVEN an event whose detail asks for 20 realistic events
    schedule_event["detail"] = {"profile": "realistic", "count": 20}

    # WHEN invoked
    result = app.lambda_handler(schedule_event, LambdaContext())

    # THEN the detail settings were used
    assert result["accepted"] == 20
    assert len(kinesis.sent_events()) == 20


def test_unaccepted_records_are_logged_and_fail_the_invocation(
    app: ModuleType,
    kinesis: StubKinesis,
    schedule_event: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a stream that keeps rejecting the record holding one of the 50 events
    ids = [e.event_id for e in generate("classic", seed=7, start=ANY_START, rate=10, count=50)]
    kinesis.rejected = {ids[3]}

    # WHEN invoked THEN the invocation fails, naming every event of that record
    with pytest.raises(RuntimeError, match=r"(\d+) of 50 events were not accepted") as failure:
        app.lambda_handler(schedule_event, LambdaContext())
    refused = {e["event_id"] for r in kinesis.refused for e in record_events(r)}
    assert ids[3] in refused and 1 < len(refused) < 50
    assert str(failure.value).startswith(f"{len(refused)} of 50 events")

    # AND the report was logged, then each unaccepted event at ERROR with its id and code
    logs = [r for r in caplog.records if r.name == app.logger.name]
    assert [r.getMessage() for r in logs[:1]] == ["generator run finished"]
    assert logs[0].report["unaccepted_count"] == len(refused)
    assert logs[0].report["accepted"] == 50 - len(refused)
    errors = [r for r in logs if r.levelno == logging.ERROR]
    assert sorted(r.event_id for r in errors) == sorted(refused)
    assert {r.error_code for r in errors} == {"ProvisionedThroughputExceededException"}
    # AND the metrics still went out
    assert emitted_metrics(capsys.readouterr().out)["EventsUnaccepted"] == len(refused)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_rate_run_longer_than_the_remaining_time_is_refused(
    app: ModuleType, kinesis: StubKinesis, schedule_event: dict[str, Any]
) -> None:
    # GIVEN a paced run of 60 s with 30 s left before the timeout
    schedule_event["detail"] = {"mode": "rate", "duration": 60}

    # WHEN / THEN the handler refuses before sending anything
    with pytest.raises(ValueError, match="does not fit"):
        app.lambda_handler(schedule_event, LambdaContext(remaining_millis=30_000))
    assert kinesis.calls == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_missing_stream_name_is_a_clear_error(
    app: ModuleType,
    kinesis: StubKinesis,
    schedule_event: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STREAM_NAME")
    with pytest.raises(ValueError, match="STREAM_NAME is not set"):
        app.lambda_handler(schedule_event, LambdaContext())
