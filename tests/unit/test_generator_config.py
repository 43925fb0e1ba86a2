"""Generator settings from environment and event, and run_generator in both modes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickstream.generator import GeneratorConfig, count_mode_events, run_generator
from clickstream.ports import PutOutcome, RecordStream, StreamRecord

NOW = datetime(2026, 3, 7, 14, 4, 0, 123456, tzinfo=UTC)
ENV = {"STREAM_NAME": "clickstream"}


class MemoryStream(RecordStream):
    """Accepts everything and keeps it."""

    def __init__(self) -> None:
        self.records: list[StreamRecord] = []

    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        self.records.extend(records)
        return [PutOutcome(None) for _ in records]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_defaults_need_only_the_stream_name() -> None:
    # WHEN only STREAM_NAME is set
    config = GeneratorConfig.from_sources(ENV, {"detail": {}}, NOW)

    # THEN the defaults apply and the seed comes from the invocation time, in milliseconds
    assert config == GeneratorConfig(
        stream_name="clickstream",
        seed=1772892240123,
        profile="classic",
        mode="count",
        count=600,
        rate=10.0,
        duration=60.0,
    )


def test_environment_variables_are_read() -> None:
    env = {
        **ENV,
        "GENERATOR_PROFILE": "realistic",
        "GENERATOR_MODE": "rate",
        "GENERATOR_COUNT": "100",
        "GENERATOR_RATE": "2.5",
        "GENERATOR_DURATION_SECONDS": "30",
        "GENERATOR_SEED": "42",
    }
    config = GeneratorConfig.from_sources(env, {}, NOW)
    assert (config.profile, config.mode, config.count) == ("realistic", "rate", 100)
    assert (config.rate, config.duration, config.seed) == (2.5, 30.0, 42)


def test_event_keys_override_the_environment_and_detail_wins() -> None:
    # GIVEN a setting in the environment, at the top of the event and in its detail
    env = {**ENV, "GENERATOR_COUNT": "100", "GENERATOR_RATE": "5", "GENERATOR_SEED": "1"}
    event: dict[str, Any] = {"count": 200, "rate": 7, "detail": {"count": 300}}

    # WHEN read
    config = GeneratorConfig.from_sources(env, event, NOW)

    # THEN detail beats the top level, which beats the environment
    assert (config.count, config.rate, config.seed) == (300, 7.0, 1)


def test_names_are_case_insensitive_and_empty_values_are_ignored() -> None:
    env = {**ENV, "GENERATOR_PROFILE": " ", "GENERATOR_SEED": ""}
    config = GeneratorConfig.from_sources(env, {"detail": {"profile": "Realistic"}}, NOW)
    assert config.profile == "realistic"
    assert config.seed == 1772892240123


@pytest.mark.parametrize(
    ("env", "event", "message"),
    [
        ({}, {}, "STREAM_NAME is not set"),
        (ENV, {"detail": {"profile": "uniform"}}, "profile: 'uniform' is not one of"),
        (ENV, {"mode": "burst"}, "mode: 'burst' is not one of count, rate"),
        ({**ENV, "GENERATOR_COUNT": "ten"}, {}, "GENERATOR_COUNT: expected an integer"),
        (ENV, {"detail": {"count": 0}}, "count: must be at least 1"),
        (ENV, {"detail": {"count": 2.5}}, "detail.count: expected an integer"),
        (ENV, {"detail": {"count": True}}, "detail.count: expected an integer"),
        (ENV, {"rate": -1}, "rate: must be a positive number"),
        ({**ENV, "GENERATOR_RATE": "nan"}, {}, "GENERATOR_RATE: must be a positive number"),
        (ENV, {"detail": {"duration": "soon"}}, "detail.duration: expected a number"),
        (ENV, {"detail": {"seed": "x"}}, "detail.seed: expected an integer"),
        (ENV, {"detail": "count=5"}, "event detail must be an object"),
    ],
)
def test_bad_values_raise_a_clear_error(
    env: dict[str, str], event: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorConfig.from_sources(env, event, NOW)


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_count_mode_events_end_now_and_none_is_in_the_future(profile: str) -> None:
    # GIVEN 600 events at 10 per second
    config = GeneratorConfig(stream_name="s", seed=3, profile=profile, count=600, rate=10)

    # WHEN generated for a run at NOW
    events = count_mode_events(config, NOW)

    # THEN they cover about the last minute and none is after NOW
    assert len(events) == 600
    assert all(event.trans_timestamp <= NOW for event in events)
    assert events[0].trans_timestamp >= NOW - timedelta(seconds=90)
    assert events[-1].trans_timestamp >= NOW - timedelta(seconds=5)


def test_classic_count_mode_covers_exactly_count_over_rate_seconds() -> None:
    config = GeneratorConfig(stream_name="s", seed=3, count=600, rate=10)
    events = count_mode_events(config, NOW)
    assert events[0].trans_timestamp == NOW - timedelta(seconds=60)
    assert events[-1].trans_timestamp == NOW - timedelta(seconds=0.1)


def test_run_generator_count_mode_sends_every_event_unpaced() -> None:
    # GIVEN a count-mode config and a stream that accepts everything
    config = GeneratorConfig(stream_name="s", seed=8, profile="realistic", count=1200)
    stream = MemoryStream()

    # WHEN run
    report = run_generator(config, stream, now=NOW, sleep=pytest.fail)

    # THEN every event was sent, in PutRecords chunks, without waiting
    assert (report.sent, report.accepted, report.put_calls) == (1200, 1200, 3)
    expected = [event.event_id for event in count_mode_events(config, NOW)]
    assert [record.event_id for record in stream.records] == expected


def test_run_generator_rate_mode_paces_from_now_for_duration() -> None:
    # GIVEN a rate-mode config of 3 s at 20 events/s
    config = GeneratorConfig(stream_name="s", seed=8, mode="rate", rate=20, duration=3)
    stream = MemoryStream()
    clock = FakeClock()

    # WHEN run on a fake clock
    report = run_generator(config, stream, now=NOW, clock=clock, sleep=clock.sleep)

    # THEN 60 events were sent over about 3 s of (fake) wall time
    assert report.accepted == 60
    assert 2.9 <= clock.now <= 3.25


def test_run_generator_refuses_a_rate_run_longer_than_the_time_budget() -> None:
    config = GeneratorConfig(stream_name="s", seed=8, mode="rate", duration=120)
    stream = MemoryStream()
    with pytest.raises(ValueError, match="does not fit in the 50 s left"):
        run_generator(config, stream, now=NOW, time_budget=50)
    assert stream.records == []
