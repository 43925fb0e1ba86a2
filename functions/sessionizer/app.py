"""Sessionizer: seed-compatible per-minute sessions (CSV to ``aggregated/``) and gap sessions.

Settings: ``clickstream.settings.SessionizerSettings``. A failed commit raises, so the
whole batch is redelivered; records already applied are skipped by the shard checkpoint, and
re-emitted rows carry the same ids (``sessionid``, ``session_id``) for downstream dedup.
"""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.adapters.kinesis_event import iterator_age_ms, records_by_shard
from clickstream.composition import sessionizer_ports
from clickstream.consumers.sessionizer import handle_batch
from clickstream.settings import SessionizerSettings

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = SessionizerSettings.from_env(os.environ)
ports = sessionizer_ports(settings)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = handle_batch(
        records_by_shard(event), settings=settings, ports=ports, now=datetime.now(UTC)
    )
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
