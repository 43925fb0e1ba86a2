"""Window finalizer: on a schedule, closes windows when traffic stops; `close_all` ends it all.

Idle shards' watermarks advance on processing time (``IDLE_TIMEOUT_SECONDS``); windows whose end
the stream's watermark has passed get their final rows. Invoked with ``{"close_all": true}``,
every shard's watermark moves to the end of time, so every window becomes final.
"""

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.dynamo import DynamoCheckpointStore
from clickstream.window_consumer import WindowCounterSettings, finalize
from clickstream.window_results import DynamoWindowResults
from clickstream.window_store import DynamoWindowStateStore

logger = Logger()
settings = WindowCounterSettings.from_env(os.environ)
dynamodb = boto3.client("dynamodb")
kinesis = boto3.client("kinesis")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    close_all = bool(
        (event or {}).get("close_all") or (event or {}).get("detail", {}).get("close_all")
    )
    shards = kinesis.list_shards(StreamName=settings.stream_name)["Shards"]
    rewritten = finalize(
        settings=settings,
        checkpoints=DynamoCheckpointStore(dynamodb, settings.state_table),
        state=DynamoWindowStateStore(dynamodb, settings.state_table),
        results=DynamoWindowResults(dynamodb, settings.results_table),
        shard_ids=[shard["ShardId"] for shard in shards],
        now=datetime.now(UTC),
        close_all=close_all,
    )
    logger.info("windows finalized", extra={"rows_rewritten": rewritten, "close_all": close_all})
    return {"rows_rewritten": rewritten, "close_all": close_all}
