"""Window counter: unique users per URL (15 s, 1 min) and events per source (1 min), exactly once.

Settings: ``clickstream.window_consumer.WindowCounterSettings``. A failed commit raises, so the
whole batch is redelivered; records already applied are skipped by the shard checkpoint.
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
from clickstream.window_consumer import WindowCounterSettings, handle_batch
from clickstream.window_results import DynamoWindowResults
from clickstream.window_store import DynamoWindowStateStore

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = WindowCounterSettings.from_env(os.environ)
dynamodb = boto3.client("dynamodb")
kinesis = boto3.client("kinesis")
checkpoints = DynamoCheckpointStore(dynamodb, settings.state_table)
state = DynamoWindowStateStore(
    dynamodb, settings.state_table, retention_days=settings.retention_days
)
results = DynamoWindowResults(dynamodb, settings.results_table)
quarantine = S3QuarantineSink(
    boto3.client("s3"), settings.quarantine_bucket, settings.quarantine_prefix
)


def stream_shards() -> list[str]:
    """Every shard of the stream: a shard that has delivered nothing still holds windows open."""
    shards = kinesis.list_shards(StreamName=settings.stream_name)["Shards"]
    return [shard["ShardId"] for shard in shards]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = handle_batch(
        event,
        settings=settings,
        checkpoints=checkpoints,
        state=state,
        results=results,
        quarantine=quarantine,
        shard_ids=stream_shards,
        now=datetime.now(UTC),
    )
    metrics.add_metric(
        name="IteratorAge", unit=MetricUnit.Milliseconds, value=report.iterator_age_ms
    )
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=report.late)
    metrics.add_metric(name="QuarantinedEvents", unit=MetricUnit.Count, value=report.quarantined)
    metrics.add_metric(name="StateWritesPerBatch", unit=MetricUnit.Count, value=report.state_writes)
    logger.info("batch counted", extra={"report": report.__dict__})
    return {"batchItemFailures": []}
