"""Finalizer: on a schedule, closes windows and sessions when traffic stops; `close_all` ends all.

Idle shards' watermarks advance on processing time (``IDLE_TIMEOUT_SECONDS``): windows whose end
the stream's watermark has passed get their final rows, and idle sessions are closed and written.
Invoked with ``{"close_all": true}``, the stream ends: every window and every session is final.
"""

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.dynamo import DynamoCheckpointStore
from clickstream.quarantine import S3QuarantineSink
from clickstream.session_consumer import (
    QuarantineRejected,
    SessionizerSettings,
    SessionPorts,
    finalize_sessions,
)
from clickstream.session_store import (
    DynamoSessionStateStore,
    FirehoseMinuteSessionSink,
    S3GapSessionSink,
)
from clickstream.window_consumer import WindowCounterSettings, finalize
from clickstream.window_results import DynamoWindowResults
from clickstream.window_store import DynamoWindowStateStore

logger = Logger()
window_settings = WindowCounterSettings.from_env(os.environ)
session_settings = SessionizerSettings.from_env(
    {**os.environ, "STATE_TABLE": os.environ["SESSION_STATE_TABLE"]}
)
dynamodb = boto3.client("dynamodb")
kinesis = boto3.client("kinesis")
s3 = boto3.client("s3")
session_ports = SessionPorts(
    checkpoints=DynamoCheckpointStore(dynamodb, session_settings.state_table),
    state=DynamoSessionStateStore(dynamodb, session_settings.state_table),
    minute_sink=FirehoseMinuteSessionSink(
        boto3.client("firehose"), session_settings.delivery_stream
    ),
    gap_sink=S3GapSessionSink(s3, session_settings.lake_bucket, session_settings.sessions_prefix),
    quarantine=QuarantineRejected(
        S3QuarantineSink(s3, session_settings.lake_bucket, session_settings.quarantine_prefix)
    ),
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    close_all = bool((event or {}).get("close_all"))
    shards = kinesis.list_shards(StreamName=window_settings.stream_name)["Shards"]
    shard_ids = [shard["ShardId"] for shard in shards]
    now = datetime.now(UTC)
    rewritten = finalize(
        settings=window_settings,
        checkpoints=DynamoCheckpointStore(dynamodb, window_settings.state_table),
        state=DynamoWindowStateStore(dynamodb, window_settings.state_table),
        results=DynamoWindowResults(dynamodb, window_settings.results_table),
        shard_ids=shard_ids,
        now=now,
        close_all=close_all,
    )
    sessions = finalize_sessions(
        settings=session_settings,
        ports=session_ports,
        shard_ids=shard_ids,
        now=now,
        close_everything=close_all,
    )
    report = {
        "close_all": close_all,
        "rows_rewritten": rewritten,
        "minute_sessions_closed": len(sessions.minute_rows),
        "gap_sessions_closed": len(sessions.gap_sessions),
    }
    logger.info("finalized", extra=report)
    return report
