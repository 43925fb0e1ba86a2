"""Search indexer: Kinesis batches -> OpenSearch daily indices; bad records -> S3 quarantine.

Settings come from the environment (see ``clickstream.search.indexer.IndexerSettings``). The
response names the records to retry (``ReportBatchItemFailures``); everything else in the batch
is indexed or quarantined with its reason.
"""

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.quarantine import QuarantineSink, S3QuarantineSink
from clickstream.search.indexer import (
    IndexerSettings,
    OpenSearchIndex,
    SearchIndex,
    TemplateOnFirstUse,
    index_batch,
)
from clickstream.streams import iterator_age_ms

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"))
settings = IndexerSettings.from_env(os.environ)
index: SearchIndex = TemplateOnFirstUse(OpenSearchIndex.from_settings(settings))
quarantine: QuarantineSink = S3QuarantineSink(
    boto3.client("s3"), settings.quarantine_bucket, settings.quarantine_prefix
)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = index_batch(
        event.get("Records", []),
        index,
        quarantine,
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
