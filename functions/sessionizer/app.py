"""Sessionizer: seed-compatible per-minute sessions (CSV to ``aggregated/``) and gap sessions.

Settings: ``clickstream.session_consumer.SessionizerSettings``. A failed commit raises, so the
whole batch is redelivered; records already applied are skipped by the shard checkpoint, and
re-emitted rows carry the same ids (``sessionid``, ``session_id``) for downstream dedup.
"""

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.dynamo import DynamoCheckpointStore
from clickstream.quarantine import S3QuarantineSink
from clickstream.session_consumer import (
    QuarantineRejected,
    SessionizerSettings,
    SessionPorts,
    handle_batch,
)
from clickstream.session_store import (
    DynamoSessionStateStore,
    FirehoseMinuteSessionSink,
    S3GapSessionSink,
)
from clickstream.streams import iterator_age_ms

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = SessionizerSettings.from_env(os.environ)
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")
ports = SessionPorts(
    checkpoints=DynamoCheckpointStore(dynamodb, settings.state_table),
    state=DynamoSessionStateStore(dynamodb, settings.state_table),
    minute_sink=FirehoseMinuteSessionSink(boto3.client("firehose"), settings.delivery_stream),
    gap_sink=S3GapSessionSink(s3, settings.lake_bucket, settings.sessions_prefix),
    quarantine=QuarantineRejected(
        S3QuarantineSink(s3, settings.lake_bucket, settings.quarantine_prefix)
    ),
)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = handle_batch(event, settings=settings, ports=ports, now=datetime.now(UTC))
    age = iterator_age_ms(event, datetime.now(UTC))
    metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=age)
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=len(outcome.late))
    metrics.add_metric(name="QuarantinedEvents", unit=MetricUnit.Count, value=len(outcome.rejected))
    metrics.add_metric(name="StateWritesPerBatch", unit=MetricUnit.Count, value=outcome.commits)
    metrics.add_metric(name="MinuteSessions", unit=MetricUnit.Count, value=len(outcome.minute_rows))
    metrics.add_metric(name="GapSessions", unit=MetricUnit.Count, value=len(outcome.gap_sessions))
    logger.info(
        "batch sessionised",
        extra={
            "processed": outcome.processed,
            "skipped": outcome.skipped,
            "duplicates": outcome.duplicates,
            "late": len(outcome.late),
            "rejected": len(outcome.rejected),
            "minute_rows": len(outcome.minute_rows),
            "gap_sessions": len(outcome.gap_sessions),
        },
    )
    return {"batchItemFailures": []}
