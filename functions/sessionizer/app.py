"""Sessionizer: seed-compatible per-minute sessions (CSV to ``aggregated/``) and gap sessions.

Settings: ``clickstream.settings.SessionizerSettings``. The response names, per shard, the
first record not committed (a record the rules raise on, or the first after a failed read,
emission or commit): Lambda retries from it, records already applied are skipped by the shard
checkpoint, and re-emitted rows carry the same ids (``sessionid``, ``session_id``) for
downstream dedup. An event with a ``redrive`` field is a batch kept in the on-failure bucket,
applied again.
"""

import os
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.adapters.kept_batches import is_redrive
from clickstream.adapters.kinesis_event import iterator_age_ms, records_by_shard
from clickstream.composition import sessionizer_ports
from clickstream.consumers.sessionizer import handle_batch, redrive_batch
from clickstream.settings import SessionizerSettings

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = SessionizerSettings.from_env(os.environ)
ports = sessionizer_ports(settings)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sessionise = redrive_batch if is_redrive(event) else handle_batch
    outcome = sessionise(
        records_by_shard(event, settings.max_clock_skew),
        settings=settings,
        ports=ports,
        now=datetime.now(UTC),
    )
    age = iterator_age_ms(event, datetime.now(UTC))
    metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=age)
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=len(outcome.late))
    metrics.add_metric(name="QuarantinedEvents", unit=MetricUnit.Count, value=len(outcome.rejected))
    metrics.add_metric(name="StateWritesPerBatch", unit=MetricUnit.Count, value=outcome.commits)
    metrics.add_metric(name="MinuteSessions", unit=MetricUnit.Count, value=len(outcome.minute_rows))
    metrics.add_metric(name="GapSessions", unit=MetricUnit.Count, value=len(outcome.gap_sessions))
    metrics.add_metric(name="FailedRecords", unit=MetricUnit.Count, value=outcome.failed)
    log = logger.warning if outcome.failures else logger.info
    log(
        "batch sessionised",
        extra={
            "processed": outcome.processed,
            "skipped": outcome.skipped,
            "failed": outcome.failed,
            "duplicates": outcome.duplicates,
            "late": len(outcome.late),
            "rejected": len(outcome.rejected),
            "minute_rows": len(outcome.minute_rows),
            "gap_sessions": len(outcome.gap_sessions),
            "failures": [asdict(failure) for failure in outcome.failures],
            "redrive": is_redrive(event),
        },
    )
    return outcome.response()
