"""The composition root: each consumer's ports from its settings, without connecting anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream import composition
from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.adapters.aws.kinesis import KinesisShards
from clickstream.adapters.aws.s3 import S3QuarantineSink
from clickstream.adapters.aws.session_state import DynamoSessionStateStore
from clickstream.adapters.aws.window_state import DynamoWindowStateStore

FINALIZER_ENV = {
    "STATE_TABLE": "window-state",
    "RESULTS_TABLE": "window-results",
    "SESSION_STATE_TABLE": "session-state",
    "STREAM_NAME": "stream",
    "AGGREGATED_DELIVERY_STREAM": "aggregated",
    "SESSIONS_DELIVERY_STREAM": "sessions",
    "LAKE_BUCKET": "lake",
    "QUARANTINE_BUCKET": "lake",
    "STATE_RETENTION_DAYS": "3",
}


class Clients:
    """A client factory that records the services asked for; each client is a plain object."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, service: str) -> Any:
        self.made.append(service)
        return object()


def test_the_finalizer_wires_both_consumers_on_their_own_tables_sharing_clients() -> None:
    # GIVEN the finalizer's environment (two state tables) and a recording client factory
    clients = Clients()
    # WHEN its ports are composed
    wiring = composition.finalizer(FINALIZER_ENV, clients)
    # THEN the window counter uses STATE_TABLE and the sessionizer SESSION_STATE_TABLE
    window, session = wiring.window_ports, wiring.session_ports
    assert isinstance(window.checkpoints, DynamoCheckpointStore)
    assert isinstance(window.state, DynamoWindowStateStore)
    assert (window.checkpoints.table, window.state.table) == ("window-state", "window-state")
    assert window.state.retention_days == 3
    assert isinstance(session.checkpoints, DynamoCheckpointStore)
    assert isinstance(session.state, DynamoSessionStateStore)
    assert (session.checkpoints.table, session.state.table) == ("session-state", "session-state")
    # AND the sinks and shards come from the same environment
    assert isinstance(session.minute_sink, FirehoseMinuteSessionSink)
    assert session.minute_sink.delivery_stream == "aggregated"
    assert isinstance(session.gap_sink, FirehoseGapSessionSink)
    assert session.gap_sink.delivery_stream == "sessions"
    assert session.gap_sink.client is session.minute_sink.client
    assert isinstance(session.quarantine, S3QuarantineSink)
    assert (session.quarantine.bucket, session.quarantine.prefix) == (
        "lake",
        "quarantine/sessionizer/",
    )
    assert isinstance(window.quarantine, S3QuarantineSink)
    assert window.quarantine.prefix == "quarantine/window-counter/"
    assert isinstance(window.shards, KinesisShards) and window.shards.stream_name == "stream"
    # AND one client is made per service, shared by both consumers
    assert sorted(clients.made) == ["dynamodb", "firehose", "kinesis", "s3"]
    assert window.checkpoints.client is session.checkpoints.client


def test_a_finalizer_without_the_sessions_delivery_stream_fails_naming_it() -> None:
    # GIVEN the finalizer's environment without SESSIONS_DELIVERY_STREAM
    env = {k: v for k, v in FINALIZER_ENV.items() if k != "SESSIONS_DELIVERY_STREAM"}
    # WHEN its ports are composed THEN nothing is wired and the variable is named
    with pytest.raises(ValueError, match=r"^SESSIONS_DELIVERY_STREAM is not set$"):
        composition.finalizer(env, Clients())
