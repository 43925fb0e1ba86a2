"""The one composition root: each consumer's ports, built from its settings on AWS.

Handlers read their settings (``clickstream.settings``), ask here for their ports, and call a
consumer. ``client`` makes a boto3 client for a service name (``boto3.client`` by default; the
local stack and tests pass their own); the clients of one call are shared between its ports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.adapters.aws.firehose import FirehoseGapSessionSink, FirehoseMinuteSessionSink
from clickstream.adapters.aws.kinesis import KinesisRecordStream, KinesisShards
from clickstream.adapters.aws.s3 import S3QuarantineSink
from clickstream.adapters.aws.session_state import DynamoSessionStateStore
from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream.adapters.aws.window_state import DynamoWindowStateStore
from clickstream.ports import (
    RecordStream,
    SearchIndexerPorts,
    SessionizerPorts,
    WindowCounterPorts,
)
from clickstream.settings import IndexerSettings, SessionizerSettings, WindowCounterSettings

if TYPE_CHECKING:
    from clickstream.adapters.aws.opensearch import OpenSearchIndex

ClientFactory = Callable[[str], Any]
"""Makes a boto3 client for a service name, like ``boto3.client``."""


def shared_clients(client: ClientFactory = boto3.client) -> ClientFactory:
    """``client``, making at most one client per service."""
    made: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in made:
            made[service] = client(service)
        return made[service]

    return get


def record_stream(stream_name: str, kinesis: Any = None) -> RecordStream:
    """The producer's stream: the Kinesis data stream ``stream_name`` (``kinesis``: its client)."""
    return KinesisRecordStream(kinesis or boto3.client("kinesis"), stream_name)


def window_counter_ports(
    settings: WindowCounterSettings, client: ClientFactory = boto3.client
) -> WindowCounterPorts:
    """DynamoDB checkpoints, state and results, the S3 quarantine and the stream's shards."""
    clients = shared_clients(client)
    dynamodb = clients("dynamodb")
    return WindowCounterPorts(
        checkpoints=DynamoCheckpointStore(dynamodb, settings.state_table),
        state=DynamoWindowStateStore(
            dynamodb,
            settings.state_table,
            retention_days=settings.retention_days,
            exact_limit=settings.exact_set_limit,
        ),
        results=DynamoWindowResults(dynamodb, settings.results_table),
        quarantine=S3QuarantineSink(
            clients("s3"), settings.quarantine_bucket, settings.quarantine_prefix
        ),
        shards=KinesisShards(clients("kinesis"), settings.stream_name),
    )


def sessionizer_ports(
    settings: SessionizerSettings, client: ClientFactory = boto3.client
) -> SessionizerPorts:
    """DynamoDB checkpoints and open state, Firehose minute rows and gap sessions, S3 quarantine."""
    clients = shared_clients(client)
    dynamodb, firehose = clients("dynamodb"), clients("firehose")
    return SessionizerPorts(
        checkpoints=DynamoCheckpointStore(dynamodb, settings.state_table),
        state=DynamoSessionStateStore(dynamodb, settings.state_table),
        minute_sink=FirehoseMinuteSessionSink(firehose, settings.delivery_stream),
        gap_sink=FirehoseGapSessionSink(firehose, settings.sessions_delivery_stream),
        quarantine=S3QuarantineSink(
            clients("s3"), settings.lake_bucket, settings.quarantine_prefix
        ),
    )


def opensearch_index(
    settings: IndexerSettings, *, credentials: Any = None, **options: Any
) -> OpenSearchIndex:
    """The OpenSearch adapter for ``settings`` (not connected yet); ``options`` go to it.

    opensearch-py is imported here, not at the top: only the search indexer's package has it.
    """
    from clickstream.adapters.aws.opensearch import OpenSearchIndex

    return OpenSearchIndex.connect(
        settings.opensearch_url,
        settings.index_prefix,
        auth=settings.auth,
        region=settings.region,
        credentials=credentials,
        **options,
    )


def search_indexer_ports(
    settings: IndexerSettings, client: ClientFactory = boto3.client
) -> SearchIndexerPorts:
    """The OpenSearch index (its template put before the first bulk) and the S3 quarantine."""
    from clickstream.adapters.aws.opensearch import TemplateOnFirstUse

    return SearchIndexerPorts(
        index=TemplateOnFirstUse(opensearch_index(settings)),
        quarantine=S3QuarantineSink(
            client("s3"), settings.quarantine_bucket, settings.quarantine_prefix
        ),
    )


@dataclass(frozen=True)
class Finalizer:
    """What the finalizer drives: the window counter's and the sessionizer's settings and ports."""

    window_settings: WindowCounterSettings
    window_ports: WindowCounterPorts
    session_settings: SessionizerSettings
    session_ports: SessionizerPorts


def finalizer(env: Mapping[str, str], client: ClientFactory = boto3.client) -> Finalizer:
    """Both consumers' ports from the finalizer's environment, sharing their clients.

    The finalizer names the window counter's state table ``STATE_TABLE`` and the sessionizer's
    ``SESSION_STATE_TABLE``.
    """
    clients = shared_clients(client)
    window_settings = WindowCounterSettings.from_env(env)
    session_settings = SessionizerSettings.from_env(env, state_table_variable="SESSION_STATE_TABLE")
    return Finalizer(
        window_settings=window_settings,
        window_ports=window_counter_ports(window_settings, clients),
        session_settings=session_settings,
        session_ports=sessionizer_ports(session_settings, clients),
    )
