"""EventBridge schedules of the template's functions, run locally.

Each enabled ``Type: Schedule`` event with a ``rate(N unit)`` expression invokes its function
every period with the event EventBridge sends. ``cron(...)`` expressions are not run locally
(they are reported in the status).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from clickstream_local.esm import Invoker
from clickstream_local.lambda_worker import LocalFunction

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of ``rate(N unit)``; None for anything else (e.g. cron)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class ScheduledInvocation:
    """One schedule of one function."""

    function: LocalFunction
    event_name: str
    expression: str
    rule_name: str
    period_seconds: float | None
    enabled: bool

    @classmethod
    def all_of(cls, function: LocalFunction) -> list[ScheduledInvocation]:
        """The schedule events of ``function``."""
        found = []
        for event_name, spec in function.events.items():
            if spec.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            properties = spec.get("Properties", {})
            expression = str(properties.get("Schedule") or properties.get("ScheduleExpression"))
            enabled = str(properties.get("Enabled", properties.get("State", True))).lower()
            found.append(
                cls(
                    function=function,
                    event_name=event_name,
                    expression=expression,
                    rule_name=str(properties.get("Name", f"{function.name}-{event_name}")),
                    period_seconds=rate_seconds(expression),
                    enabled=enabled in ("true", "enabled"),
                )
            )
        return found

    def event(self, now: datetime) -> dict[str, Any]:
        """The EventBridge scheduled event."""
        account, region = self.function.arn.split(":")[4], self.function.arn.split(":")[3]
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:events:{region}:{account}:rule/{self.rule_name}"],
            "detail": {},
        }


@dataclass
class ScheduleStatus:
    """Counters of one local schedule."""

    function: str
    expression: str
    running: bool
    invocations: int = 0
    errors: int = 0
    last_error: str | None = None


class ScheduleRunner:
    """Invokes one function on its rate schedule in a background thread."""

    def __init__(self, schedule: ScheduledInvocation, invoker: Invoker) -> None:
        self.schedule = schedule
        self.invoker = invoker
        runnable = schedule.enabled and schedule.period_seconds is not None
        self.status = ScheduleStatus(schedule.function.name, schedule.expression, runnable)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"schedule-{schedule.function.name}", daemon=True
        )

    def start(self) -> None:
        """Start ticking (no-op for a disabled or cron schedule)."""
        if self.status.running:
            self._thread.start()

    def stop(self) -> None:
        """Stop ticking and release the invoker."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.invoker.close()

    def _run(self) -> None:
        period = self.schedule.period_seconds or 60.0
        while not self._stop.wait(period):
            outcome = self.invoker.invoke(self.schedule.event(datetime.now(UTC)))
            self.status.invocations += 1
            if not outcome.ok:
                self.status.errors += 1
                self.status.last_error = f"{outcome.error_type}: {outcome.error_message}"
                logger.warning("%s failed: %s", self.schedule.function.name, self.status.last_error)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the status."""
        return asdict(self.status)
