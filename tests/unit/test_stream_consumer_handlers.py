"""The window counter's and the sessionizer's Lambda handlers: partial batch responses, redrives.

Each handler runs on in-memory ports; a poison event is made with the local stack's test-only
fault (``clickstream_local.faults``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clickstream.consumers import sessionizer, window_counter
from clickstream.core.events import Event
from clickstream.ports import SessionizerPorts
from clickstream_local.faults import poisoned_session_rules, poisoned_window_rules
from tests.factories import at, make_event
from tests.support.fakes import (
    MemoryCheckpoints,
    MemoryGapSink,
    MemoryMinuteSink,
    MemoryQuarantine,
    MemorySessionState,
    memory_window_counter_ports,
)
from tests.support.lambda_events import kinesis_event, kinesis_record
from tests.support.metrics import emitted_metrics

ROOT = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000000"
ARRIVED = at("2026-03-07T14:05:00")
FIRST = make_event(at("2026-03-07T14:04:01"), custid=1)
POISON = make_event(at("2026-03-07T14:04:02"), custid=2)
AFTER = make_event(at("2026-03-07T14:04:03"), custid=3)
LATER = make_event(at("2026-03-07T14:04:04"), custid=4)
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamTest",
    "STATE_TABLE": "state",
    "RESULTS_TABLE": "results",
    "STREAM_NAME": "stream",
    "QUARANTINE_BUCKET": "lake",
    "AGGREGATED_DELIVERY_STREAM": "aggregated",
    "SESSIONS_DELIVERY_STREAM": "sessions",
    "LAKE_BUCKET": "lake",
}


@dataclass
class LambdaContext:
    function_name: str = "clickstream-consumer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    aws_request_id: str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def load_app(name: str) -> ModuleType:
    """A handler module, imported as Lambda would, with the test's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in ENVIRONMENT.items():
            patch.setenv(key, value)
        path = ROOT / "functions" / name / "app.py"
        spec = importlib.util.spec_from_file_location(f"{name}_app", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def event(*records: tuple[str, Event], redrive: bool = False) -> dict[str, Any]:
    lambda_event = kinesis_event(*(kinesis_record(SHARD, seq, e, ARRIVED) for seq, e in records))
    return {**lambda_event, "redrive": {"source": "s3://kept/key"}} if redrive else lambda_event


@pytest.fixture
def window_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, MemoryCheckpoints]]:
    app = load_app("window_counter")
    checkpoints = MemoryCheckpoints()
    ports = memory_window_counter_ports([SHARD], checkpoints=checkpoints)
    monkeypatch.setattr(app, "ports", ports)
    yield app, checkpoints


@pytest.fixture
def session_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, MemorySessionState]]:
    app = load_app("sessionizer")
    state = MemorySessionState()
    ports = SessionizerPorts(
        state.checkpoints, state, MemoryMinuteSink(), MemoryGapSink(), MemoryQuarantine()
    )
    monkeypatch.setattr(app, "ports", ports)
    yield app, state


def test_the_window_counter_names_its_poison_record_and_applies_a_redrive(
    window_app: tuple[ModuleType, MemoryCheckpoints],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, checkpoints = window_app
    rules = window_counter.process_shard_batch
    poisoned = poisoned_window_rules(rules, {POISON.event_id})
    monkeypatch.setattr(window_counter, "process_shard_batch", poisoned)
    # WHEN a batch with a poison record in the middle is handled
    response = app.lambda_handler(event(("1", FIRST), ("2", POISON), ("3", AFTER)), LambdaContext())
    # THEN the response names it, and two records are left for the retry
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert emitted_metrics(capsys.readouterr().out)["FailedRecords"] == 2
    # WHEN the shard moves on, the code is fixed and the kept records are redriven
    app.lambda_handler(event(("4", LATER)), LambdaContext())
    monkeypatch.setattr(window_counter, "process_shard_batch", rules)
    response = app.lambda_handler(event(("2", POISON), ("3", AFTER), redrive=True), LambdaContext())
    # THEN they are applied although the checkpoint covers them: 3 windows, 1 registry bucket
    # and the checkpoint
    assert response == {"batchItemFailures": []}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["FailedRecords"], metrics["StateWritesPerBatch"]) == (0, 5)
    assert checkpoints.load(window_counter.CONSUMER, SHARD).sequence_number == "4"


def test_the_sessionizer_names_its_poison_record_and_applies_a_redrive(
    session_app: tuple[ModuleType, MemorySessionState],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, state = session_app
    rules = sessionizer.accept_events
    monkeypatch.setattr(
        sessionizer, "accept_events", poisoned_session_rules(rules, {POISON.event_id})
    )
    # WHEN a batch with a poison record in the middle is handled
    response = app.lambda_handler(event(("1", FIRST), ("2", POISON), ("3", AFTER)), LambdaContext())
    # THEN the response names it, and two records are left for the retry
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert emitted_metrics(capsys.readouterr().out)["FailedRecords"] == 2
    # WHEN the shard moves on, the code is fixed and the kept records are redriven
    app.lambda_handler(event(("4", LATER)), LambdaContext())
    monkeypatch.setattr(sessionizer, "accept_events", rules)
    response = app.lambda_handler(event(("2", POISON), ("3", AFTER), redrive=True), LambdaContext())
    # THEN they are applied although the checkpoint covers them: each key has its state
    assert response == {"batchItemFailures": []}
    keys = {key for _, _, key in state.states}
    assert keys == {(custid, "browser") for custid in (1, 2, 3, 4)}
    assert state.checkpoints.load(sessionizer.CONSUMER, SHARD).sequence_number == "4"
