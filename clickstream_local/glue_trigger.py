"""The template's EVENT-triggered Glue workflows, run locally.

On AWS: S3 Object Created → EventBridge rule → Glue workflow, whose EVENT trigger waits for
``BatchSize`` events or ``BatchWindow`` seconds after the first one, then starts its jobs. Here a
thread per trigger lists the rule's bucket and key prefixes every few seconds; each key not seen
before is one Object Created event. The batching condition is the trigger's own, from
``template.yaml``, and a batch runs the trigger's jobs (``clickstream_local.glue_local``) in a
fresh Python process with one SparkSession. Runs of all triggers are serialised (one JVM at a
time on a laptop); the jobs' processed-input ledger decides what each run reads, so events that
arrive during a run are simply part of the next batch.

EventBridge hands an event to a workflow with the rule target's ``RoleArn``: a trigger whose rule
role does not allow ``glue:NotifyEvent`` on its workflow never runs (on AWS the rule's
invocations fail), and its status says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickstream_local.cfn import Template
from clickstream_local.glue_local import LocalGlueJob, run_in_subprocess, template_jobs
from clickstream_local.iam import Decision, Permission, template_roles

logger = logging.getLogger(__name__)

RUN_LOCK = threading.Lock()
"""One local Glue run at a time."""


@dataclass(frozen=True)
class EventTriggerConfig:
    """An EVENT trigger with the S3 events that feed it and the jobs it starts."""

    name: str
    bucket: str
    prefixes: tuple[str, ...]
    batch_size: int
    batch_window_seconds: float
    jobs: tuple[LocalGlueJob, ...]
    refused: str | None = None
    """Why EventBridge may not notify the workflow (its rule role's policies), if so."""

    @classmethod
    def all_of(cls, template: Template, root: Path) -> list[EventTriggerConfig]:
        """Every EVENT trigger of the template whose workflow an S3 rule targets."""
        jobs_by_name = {job.name: job for job in template_jobs(template, root).values()}
        roles = template_roles(template)
        configs: list[EventTriggerConfig] = []
        for trigger in template.resources("AWS::Glue::Trigger"):
            properties = trigger.properties
            if properties.get("Type") != "EVENT":
                continue
            workflow = properties["WorkflowName"]
            condition = properties.get("EventBatchingCondition", {})
            for rule in template.resources("AWS::Events::Rule"):
                targets = [
                    t
                    for t in rule.properties.get("Targets", [])
                    if t["Arn"].endswith(f":workflow/{workflow}")
                ]
                if not targets:
                    continue
                refused = _notify_refusal(roles, targets[0])
                detail = rule.properties["EventPattern"]["detail"]
                for bucket in detail["bucket"]["name"]:
                    configs.append(
                        cls(
                            name=properties["Name"],
                            bucket=bucket,
                            prefixes=tuple(p["prefix"] for p in detail["object"]["key"]),
                            batch_size=int(condition.get("BatchSize", 1)),
                            batch_window_seconds=float(condition.get("BatchWindow", 900)),
                            jobs=tuple(jobs_by_name[a["JobName"]] for a in properties["Actions"]),
                            refused=refused,
                        )
                    )
        return configs


def _notify_refusal(roles: dict[str, Any], target: dict[str, Any]) -> str | None:
    """Why the rule target's role may not start its workflow, or None when it may."""
    role_arn = target.get("RoleArn")
    role = roles.get(role_arn) if role_arn else None
    if role is None:
        return f"the rule target {target['Arn']} has no role the template declares"
    if role.decide(Permission("glue:NotifyEvent", target["Arn"])) is not Decision.ALLOW:
        return f"{role_arn} is not authorized to perform: glue:NotifyEvent on {target['Arn']}"
    return None


@dataclass
class TriggerState:
    """Events seen, the pending batch and what the runs did."""

    seen: set[str] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)
    first_pending_at: float | None = None
    runs: int = 0
    last_reports: list[Any] = field(default_factory=list)
    last_error: str | None = None
    retry_at: float | None = None
    """After a failed run, the batch waits one batch window before it is tried again."""
    failed_runs: int = 0
    last_run_failed: bool = False
    """The latest run of the jobs failed (a Glue Job State Change to FAILED on AWS)."""


class GlueEventTrigger:
    """Polls S3 for new objects and runs the trigger's jobs when a batch is complete."""

    def __init__(
        self,
        config: EventTriggerConfig,
        s3: Any,
        run_jobs: Callable[[tuple[LocalGlueJob, ...]], list[Any]],
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._s3 = s3
        self._run_jobs = run_jobs
        self._poll_seconds = poll_seconds
        self._clock = clock
        self.state = TriggerState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """Turn new keys into pending events; returns how many were new."""
        keys: list[str] = []
        for prefix in self.config.prefixes:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        with self._lock:
            new = [key for key in keys if key not in self.state.seen]
            self.state.seen.update(new)
            if new and not self.state.pending:
                self.state.first_pending_at = self._clock()
            self.state.pending.extend(new)
            return len(new)

    def due(self) -> bool:
        """True when the batch is full or its window has passed since its first event."""
        with self._lock:
            if not self.state.pending or self.state.first_pending_at is None:
                return False
            if self.state.retry_at is not None and self._clock() < self.state.retry_at:
                return False
            waited = self._clock() - self.state.first_pending_at
            full = len(self.state.pending) >= self.config.batch_size
            return full or waited >= self.config.batch_window_seconds

    def run_batch(self) -> list[Any]:
        """Run the jobs for the pending events now (nothing to do without any); their reports."""
        with RUN_LOCK:
            with self._lock:
                batch, self.state.pending = self.state.pending, []
                self.state.first_pending_at = None
            if not batch:
                return []
            if self.config.refused:
                with self._lock:
                    self.state.last_error = f"AccessDenied: {self.config.refused}"
                    self.state.pending = batch + self.state.pending
                raise PermissionError(self.config.refused)
            logger.info("%s: %d new objects, running its jobs", self.config.name, len(batch))
            try:
                reports = self._run_jobs(self.config.jobs)
            except Exception as error:
                with self._lock:
                    self.state.last_error = str(error)
                    self.state.failed_runs += 1
                    self.state.last_run_failed = True
                    self.state.pending = batch + self.state.pending
                    self.state.first_pending_at = self._clock()
                    self.state.retry_at = self._clock() + self.config.batch_window_seconds
                raise
            with self._lock:
                self.state.runs += 1
                self.state.last_run_failed = False
                self.state.last_reports = reports
                self.state.last_error = None
                self.state.retry_at = None
            return reports

    def start(self) -> None:
        """Poll and run in a background thread."""
        self._thread = threading.Thread(target=self._loop, name=self.config.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current poll or run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=600)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
                if self.due():
                    self.run_batch()
            except Exception:
                logger.exception("%s: run failed; the batch stays pending", self.config.name)

    def snapshot(self) -> dict[str, Any]:
        """Counters for ``/status``."""
        with self._lock:
            return {
                "name": self.config.name,
                "prefixes": list(self.config.prefixes),
                "batch_size": self.config.batch_size,
                "batch_window_seconds": self.config.batch_window_seconds,
                "events_seen": len(self.state.seen),
                "pending": len(self.state.pending),
                "runs": self.state.runs,
                "last_reports": self.state.last_reports,
                "last_error": self.state.last_error,
                "jobs": [job.name for job in self.config.jobs],
                "failed_runs": self.state.failed_runs,
                "last_run_failed": self.state.last_run_failed,
            }


def subprocess_runner(
    endpoint_url: str, metastore_dir: Path, log: Path
) -> Callable[[tuple[LocalGlueJob, ...]], list[Any]]:
    """Run jobs the way the local stack does: a fresh process, one SparkSession."""

    def run(jobs: tuple[LocalGlueJob, ...]) -> list[Any]:
        return run_in_subprocess(list(jobs), endpoint_url, metastore_dir, log)

    return run
