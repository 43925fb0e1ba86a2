"""Search indexer: Kinesis batches -> OpenSearch daily indices; bad records -> S3 quarantine.

Settings come from the environment (see ``clickstream.settings.IndexerSettings``). The
response names the records to retry (``ReportBatchItemFailures``); everything else in the batch
is indexed or quarantined with its reason.
"""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.adapters.kinesis_event import iterator_age_ms, parse_lambda_records
from clickstream.composition import search_indexer_ports
from clickstream.consumers.search_indexer import index_batch
from clickstream.settings import IndexerSettings

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = IndexerSettings.from_env(os.environ)
ports = search_indexer_ports(settings)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = index_batch(
        parse_lambda_records(event.get("Records", []), settings.max_clock_skew),
        ports,
        prefix=settings.index_prefix,
        max_docs=settings.bulk_max_docs,
        max_bytes=settings.bulk_max_bytes,
    )
    age = iterator_age_ms(event, datetime.now(UTC))
    metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=age)
    metrics.add_metric(name="DocumentsIndexed", unit=MetricUnit.Count, value=outcome.indexed)
    metrics.add_metric(
        name="DocumentsQuarantined", unit=MetricUnit.Count, value=outcome.quarantined
    )
    failed = len(outcome.failed_sequence_numbers)
    metrics.add_metric(name="DocumentsFailed", unit=MetricUnit.Count, value=failed)
    log = logger.warning if failed or outcome.search_error else logger.info
    log("batch indexed", extra={"records": len(event.get("Records", [])), **outcome.as_dict()})
    return outcome.response()
