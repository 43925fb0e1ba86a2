"""Clock skew against arrival: an event too far ahead of its Kinesis arrival is quarantined.

Kinesis stamps each record with ``approximateArrivalTimestamp``, a clock the producer does not
control. An event more than ``MaxClockSkewSeconds`` ahead of it comes from a wrong clock; every
stream consumer quarantines it through the one inbound adapter, so it never moves a watermark.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clickstream.adapters.kinesis_event import parse_lambda_record, records_by_shard
from clickstream.consumers import sessionizer, window_counter
from clickstream.core.records import (
    DEFAULT_MAX_CLOCK_SKEW,
    ParsedRecord,
    ShardRecord,
    clock_skew_reason,
    parse_record,
)
from clickstream.ports import SearchIndexerPorts, SessionizerPorts
from clickstream.settings import (
    IndexerSettings,
    SessionizerSettings,
    WindowCounterSettings,
    max_clock_skew,
)
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
from tests.support.search_indexer import FakeIndex, FakeQuarantine, index_batch

ROOT = Path(__file__).resolve().parents[2]
ARRIVED = at("2026-11-30T16:00:00")
NOW = at("2026-11-30T16:00:01")
SKEW = timedelta(seconds=300)
WINDOW_ENV = {
    "STATE_TABLE": "state",
    "RESULTS_TABLE": "results",
    "STREAM_NAME": "stream",
    "QUARANTINE_BUCKET": "lake",
    "ALLOWED_LATENESS_SECONDS": "30",
}
SESSION_ENV = {
    "STATE_TABLE": "sessions",
    "STREAM_NAME": "stream",
    "AGGREGATED_DELIVERY_STREAM": "aggregated",
    "SESSIONS_DELIVERY_STREAM": "sessions",
    "LAKE_BUCKET": "lake",
    "ALLOWED_LATENESS_SECONDS": "30",
}
INDEXER_ENV = {
    "OPENSEARCH_URL": "http://127.0.0.1:9",
    "OPENSEARCH_AUTH": "none",
    "QUARANTINE_BUCKET": "lake",
}


def shard_record(moment_ahead: timedelta, arrival: Any = ARRIVED) -> ShardRecord:
    """A record of an event ``moment_ahead`` of its arrival."""
    event = make_event(ARRIVED + moment_ahead)
    return ShardRecord("shardId-0", "1", event.to_json_line(), arrival)


# ---------------------------------------------------------------------------- the rule


def test_an_event_up_to_the_allowed_skew_ahead_of_its_arrival_is_accepted() -> None:
    # GIVEN events at their arrival, and exactly the allowed skew ahead of it
    for ahead in (timedelta(0), SKEW):
        # WHEN each is parsed
        parsed = parse_record(shard_record(ahead), SKEW)
        # THEN it is an event: the bound is inclusive
        assert parsed.event is not None, ahead


def test_an_event_further_ahead_is_rejected_with_both_times_and_the_allowance() -> None:
    # GIVEN an event one microsecond beyond the allowed skew
    parsed = parse_record(shard_record(SKEW + timedelta(microseconds=1)), SKEW)
    # THEN it is rejected, the reason giving its time, how far ahead, its arrival and the skew
    assert parsed.event is None and parsed.rejection is not None
    assert parsed.rejection.reason == (
        "trans_timestamp 2026-11-30T16:05:00.000001 is 300.000001 s ahead of its arrival "
        "2026-11-30T16:00:00.000000 (allowed clock skew 300 s)"
    )


def test_a_device_clock_decades_fast_is_rejected() -> None:
    # GIVEN an event stamped 2099-01-01 that arrived on 2026-11-30 at 16:00
    event = make_event(at("2099-01-01T00:00:00"))
    # WHEN its skew is checked
    reason = clock_skew_reason(event, ARRIVED, SKEW)
    # THEN the reason gives the seconds ahead
    assert reason == (
        "trans_timestamp 2099-01-01T00:00:00.000000 is 2274854400 s ahead of its arrival "
        "2026-11-30T16:00:00.000000 (allowed clock skew 300 s)"
    )


def test_an_event_older_than_its_arrival_is_left_to_lateness() -> None:
    # GIVEN an event a day older than its arrival (a replay, or a device that was offline)
    parsed = parse_record(shard_record(-timedelta(days=1)), SKEW)
    # THEN it is not rejected here: lateness decides whether it still counts
    assert parsed.event is not None


def test_a_record_without_an_arrival_time_is_not_skew_checked() -> None:
    # GIVEN a record built off Lambda, with no arrival time, of an event decades ahead of now
    record = shard_record(timedelta(days=365 * 70), arrival=None)
    # WHEN it is parsed
    # THEN it is an event: there is nothing to compare it with
    assert parse_record(record).event is not None


def test_the_default_allowance_is_five_minutes() -> None:
    # GIVEN records parsed without an explicit allowance
    # THEN the allowance is the template's default of 300 s
    assert parse_record(shard_record(timedelta(seconds=301))).event is None
    assert parse_record(shard_record(timedelta(seconds=300))).event is not None


# ---------------------------------------------------------------------------- the adapter


def test_the_inbound_adapter_applies_the_allowance_it_is_given() -> None:
    # GIVEN a Lambda batch with an event 61 s ahead of its arrival, between two on time
    first, ahead, last = (
        make_event(ARRIVED - timedelta(seconds=2)),
        make_event(ARRIVED + timedelta(seconds=61)),
        make_event(ARRIVED),
    )
    event = kinesis_event(
        kinesis_record("shardId-0", "1", first, ARRIVED),
        kinesis_record("shardId-0", "2", ahead, ARRIVED),
        kinesis_record("shardId-0", "3", last, ARRIVED),
    )
    # WHEN it is read with an allowance of 60 s, and with the default
    strict = records_by_shard(event, timedelta(seconds=60))["shardId-0"]
    default = records_by_shard(event)["shardId-0"]
    # THEN only the event beyond 60 s is rejected, in its place, and the default lets it through
    assert [p.event for p in strict] == [first, None, last]
    rejection = strict[1].rejection
    assert rejection is not None and rejection.sequence_number == "2"
    assert rejection.reason.endswith(
        "is 61 s ahead of its arrival 2026-11-30T16:00:00.000000 (allowed clock skew 60 s)"
    )
    assert [p.event for p in default] == [first, ahead, last]


def test_a_lambda_record_without_an_arrival_time_is_not_skew_checked() -> None:
    # GIVEN a Lambda record without approximateArrivalTimestamp (Lambda always sets it)
    record = kinesis_record("shardId-0", "1", make_event(at("2099-01-01T00:00:00")), ARRIVED)
    del record["kinesis"]["approximateArrivalTimestamp"]
    # WHEN it is read THEN it parses, with no arrival
    (parsed,) = parse_lambda_record(record, timedelta(seconds=1))
    assert parsed.event is not None and parsed.record.arrival is None


# ---------------------------------------------------------------------------- the consumers


def skewed_batch() -> tuple[dict[str, list[ParsedRecord]], list[Any]]:
    """One shard: an event on time, one a day ahead of its arrival, one 10 s after the first."""
    on_time = make_event(at("2026-11-30T15:59:50"), custid=1, url="beer_cart")
    ahead = make_event(at("2026-12-01T16:00:00"), custid=2, url="beer_cart")
    after = make_event(at("2026-11-30T16:00:00"), custid=3, url="beer_cart")
    event = kinesis_event(
        kinesis_record("shardId-0", "1", on_time, ARRIVED),
        kinesis_record("shardId-0", "2", ahead, ARRIVED),
        kinesis_record("shardId-0", "3", after, ARRIVED),
    )
    return records_by_shard(event, SKEW), [on_time, ahead, after]


def test_the_window_counter_quarantines_it_and_its_watermark_does_not_move() -> None:
    # GIVEN the window counter, and a batch with an event a day ahead of its arrival
    checkpoints, quarantine = MemoryCheckpoints(), MemoryQuarantine()
    ports = memory_window_counter_ports(
        ["shardId-0"], checkpoints=checkpoints, quarantine=quarantine
    )
    settings = WindowCounterSettings.from_env(WINDOW_ENV)
    batch, _ = skewed_batch()
    # WHEN the batch is handled
    window_counter.handle_batch(batch, settings=settings, ports=ports, now=NOW)
    # THEN the event ahead is quarantined with its reason, and the others are counted
    assert [(r.sequence_number, r.reason.split(" is ")[1]) for r in quarantine.records] == [
        ("2", "86400 s ahead of its arrival 2026-11-30T16:00:00.000000 (allowed clock skew 300 s)")
    ]
    # AND the watermark is the on-time events' (the last one was not made late by it)
    checkpoint = checkpoints.load(window_counter.CONSUMER, "shardId-0")
    assert checkpoint.watermark == at("2026-11-30T15:59:30")
    assert checkpoint.sequence_number == "3"


def test_the_sessionizer_quarantines_it_and_its_watermark_does_not_move() -> None:
    # GIVEN the sessionizer, and the same batch
    state, quarantine = MemorySessionState(), MemoryQuarantine()
    ports = SessionizerPorts(
        state.checkpoints, state, MemoryMinuteSink(), MemoryGapSink(), quarantine
    )
    settings = SessionizerSettings.from_env(SESSION_ENV)
    batch, _ = skewed_batch()
    # WHEN the batch is handled
    outcome = sessionizer.handle_batch(batch, settings=settings, ports=ports, now=NOW)
    # THEN the event ahead is quarantined, no event is late, and the watermark is the others'
    assert [r.sequence_number for r in quarantine.records] == ["2"]
    assert quarantine.records[0].reason.startswith("trans_timestamp 2026-12-01T16:00:00.000000")
    assert len(outcome.late) == 0
    checkpoint = state.checkpoints.load(sessionizer.CONSUMER, "shardId-0")
    assert checkpoint.watermark == at("2026-11-30T15:59:30")


def test_the_search_indexer_quarantines_it_instead_of_indexing_it() -> None:
    # GIVEN the search indexer, and Lambda records with one event a day ahead of its arrival
    _, (on_time, ahead, after) = skewed_batch()
    records = [
        kinesis_record("shardId-0", str(n), event, ARRIVED)
        for n, event in enumerate((on_time, ahead, after), 1)
    ]
    index, quarantine = FakeIndex(), FakeQuarantine()
    # WHEN they are indexed
    outcome = index_batch(records, index, quarantine)
    # THEN the event ahead is quarantined and the others are indexed
    assert index.indexed_ids() == [on_time.event_id, after.event_id]
    assert [r.sequence_number for r in quarantine.records] == ["2"]
    assert "ahead of its arrival" in quarantine.records[0].reason
    assert (outcome.indexed, outcome.quarantined) == (2, 1)


# ---------------------------------------------------------------------------- the handlers


@dataclass
class LambdaContext:
    function_name: str = "clickstream-consumer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    aws_request_id: str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def load_handler(name: str, env: dict[str, str]) -> ModuleType:
    """``functions/<name>/app.py``, imported under ``env`` with an allowance of 60 s."""
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamTest",
            "MAX_CLOCK_SKEW_SECONDS": "60",
            **env,
        }.items():
            patch.setenv(variable, value)
        spec = importlib.util.spec_from_file_location(
            f"{name}_app_clock_skew", ROOT / "functions" / name / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def fake_ports(name: str, quarantine: MemoryQuarantine) -> Any:
    """In-memory ports of the consumer ``name``, around ``quarantine``."""
    if name == "window_counter":
        return memory_window_counter_ports(["shardId-0"], quarantine=quarantine)
    if name == "sessionizer":
        state = MemorySessionState()
        return SessionizerPorts(
            state.checkpoints, state, MemoryMinuteSink(), MemoryGapSink(), quarantine
        )
    return SearchIndexerPorts(FakeIndex(), quarantine)


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("window_counter", WINDOW_ENV),
        ("sessionizer", SESSION_ENV),
        ("search_indexer", INDEXER_ENV),
    ],
)
def test_each_stream_handler_applies_its_configured_allowance(
    name: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stream consumer's handler configured with MAX_CLOCK_SKEW_SECONDS=60, on fakes
    app = load_handler(name, env)
    assert app.settings.max_clock_skew == timedelta(seconds=60)
    quarantine = MemoryQuarantine()
    app.ports = fake_ports(name, quarantine)
    # WHEN it gets an event 61 s ahead of its arrival (within the default of 300 s)
    arrival = at("2026-03-07T14:05:00")
    ahead = make_event(arrival + timedelta(seconds=61))
    event = kinesis_event(kinesis_record("shardId-0", "1", ahead, arrival))
    app.lambda_handler(event, LambdaContext())
    capsys.readouterr()
    # THEN it quarantines the event with the configured allowance as the reason
    (rejected,) = quarantine.records
    assert rejected.reason.endswith("(allowed clock skew 60 s)")


# ---------------------------------------------------------------------------- settings


def test_every_consumer_reads_the_allowance_from_its_environment() -> None:
    # GIVEN the consumers' environments with and without MAX_CLOCK_SKEW_SECONDS
    def read(extra: dict[str, str]) -> list[timedelta]:
        return [
            WindowCounterSettings.from_env({**WINDOW_ENV, **extra}).max_clock_skew,
            SessionizerSettings.from_env({**SESSION_ENV, **extra}).max_clock_skew,
            IndexerSettings.from_env({**INDEXER_ENV, **extra}).max_clock_skew,
        ]

    # THEN each reads it, and takes 300 s when it is unset
    assert read({}) == [timedelta(seconds=300)] * 3
    assert read({"MAX_CLOCK_SKEW_SECONDS": "90"}) == [timedelta(seconds=90)] * 3
    assert read({"MAX_CLOCK_SKEW_SECONDS": "1.5"}) == [timedelta(seconds=1.5)] * 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "must be at least 1 second"),
        ("-5", "must be at least 1 second"),
        ("nan", "must be at least 1 second"),
        ("inf", "must be at least 1 second"),
        ("five minutes", "must be a number"),
    ],
)
def test_an_unusable_allowance_is_refused_naming_the_variable(text: str, message: str) -> None:
    # WHEN the variable holds something that is no allowance THEN reading it fails, naming it
    with pytest.raises(ValueError, match=f"MAX_CLOCK_SKEW_SECONDS {message}"):
        max_clock_skew({"MAX_CLOCK_SKEW_SECONDS": text})


# ---------------------------------------------------------------------------- the template


def test_the_template_passes_its_allowance_to_the_three_stream_consumers(
    template: dict[str, Any],
) -> None:
    # GIVEN the template's parameter
    parameter = template["Parameters"]["MaxClockSkewSeconds"]
    # THEN it defaults to the core's allowance, and cannot go under Kinesis' millisecond stamps
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == DEFAULT_MAX_CLOCK_SKEW.total_seconds() == 300
    assert parameter["MinValue"] == 1
    # AND exactly the functions that read the stream get it
    readers = {
        logical_id
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == "AWS::Serverless::Function"
        and spec["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .get("MAX_CLOCK_SKEW_SECONDS")
        == {"Ref": "MaxClockSkewSeconds"}
    }
    assert readers == {"WindowCounterFunction", "SessionizerFunction", "SearchIndexerFunction"}
