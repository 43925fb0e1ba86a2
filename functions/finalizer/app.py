"""Finalizer: on a schedule, closes windows and sessions when traffic stops; `close_all` ends all.

Idle shards' watermarks advance on processing time (``IDLE_TIMEOUT_SECONDS``): windows whose end
the stream's watermark has passed get their final rows, and idle sessions are closed and written.
Invoked with ``{"close_all": true}``, the stream ends: every window and every session is final.
"""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from clickstream.composition import finalizer
from clickstream.consumers.sessionizer import finalize_sessions
from clickstream.consumers.window_counter import finalize

logger = Logger()
wiring = finalizer(os.environ)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    close_all = bool((event or {}).get("close_all"))
    shard_ids = wiring.window_ports.shards.shard_ids()
    now = datetime.now(UTC)
    rewritten = finalize(
        settings=wiring.window_settings,
        ports=wiring.window_ports,
        shard_ids=shard_ids,
        now=now,
        close_all=close_all,
    )
    sessions = finalize_sessions(
        settings=wiring.session_settings,
        ports=wiring.session_ports,
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
