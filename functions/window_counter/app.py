"""Window counter: unique users per URL (15 s, 1 min) and events per source (1 min), exactly once.

Settings: ``clickstream.settings.WindowCounterSettings``. The response names, per shard, the
first record not committed (a record the rules raise on, or the first after a failed commit):
Lambda retries from it, and records already applied are skipped by the shard checkpoint. An
event with a ``redrive`` field is a batch kept in the on-failure bucket, applied again.
"""

import os
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.adapters.kept_batches import is_redrive
from clickstream.adapters.kinesis_event import records_by_shard
from clickstream.composition import window_counter_ports
from clickstream.consumers.window_counter import handle_batch, redrive_batch
from clickstream.settings import WindowCounterSettings

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = WindowCounterSettings.from_env(os.environ)
ports = window_counter_ports(settings)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    count = redrive_batch if is_redrive(event) else handle_batch
    report = count(
        records_by_shard(event, settings.max_clock_skew),
        settings=settings,
        ports=ports,
        now=datetime.now(UTC),
    )
    metrics.add_metric(
        name="IteratorAge", unit=MetricUnit.Milliseconds, value=report.iterator_age_ms
    )
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=report.late)
    metrics.add_metric(name="QuarantinedEvents", unit=MetricUnit.Count, value=report.quarantined)
    metrics.add_metric(name="StateWritesPerBatch", unit=MetricUnit.Count, value=report.state_writes)
    metrics.add_metric(name="FailedRecords", unit=MetricUnit.Count, value=report.failed)
    log = logger.warning if report.failures else logger.info
    log("batch counted", extra={"report": asdict(report), "redrive": is_redrive(event)})
    return report.response()
