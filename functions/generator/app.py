"""Scheduled generator: synthesise clickstream events and put them on the Kinesis stream.

Settings come from the environment and the invoking event (see ``clickstream.generator.config``).
In rate mode the run lasts ``duration`` seconds and must end TIMEOUT_MARGIN_SECONDS before the
function timeout. Any record still unaccepted after retries fails the invocation.
"""

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.composition import record_stream
from clickstream.core.retry import RetryPolicy
from clickstream.generator import GeneratorConfig, run_generator

TIMEOUT_MARGIN_SECONDS = 10.0

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
kinesis = boto3.client("kinesis")
retry_policy = RetryPolicy()


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    config = GeneratorConfig.from_sources(os.environ, event, now)
    budget = context.get_remaining_time_in_millis() / 1000 - TIMEOUT_MARGIN_SECONDS
    stream = record_stream(config.stream_name, kinesis)
    report = run_generator(config, stream, now=now, policy=retry_policy, time_budget=budget)

    metrics.add_metric(name="EventsSent", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=report.accepted)
    metrics.add_metric(name="EventsUnaccepted", unit=MetricUnit.Count, value=len(report.unaccepted))
    summary = {key: value for key, value in report.as_dict().items() if key != "unaccepted"}
    logger.info("generator run finished", extra={"config": config.as_dict(), "report": summary})
    for event_id, error_code, message in report.unaccepted:
        logger.error(
            "event not accepted",
            extra={"event_id": event_id, "error_code": error_code, "error_message": message},
        )
    if report.unaccepted:
        raise RuntimeError(f"{len(report.unaccepted)} of {report.sent} events were not accepted")
    return report.as_dict()
