"""The long-running local services: the event-source runner and Firehose emulation.

They run together in one daemon process (``python -m clickstream_local.daemon``), configured
entirely from ``template.yaml``. Each acts with the credentials of the template role AWS would
use: a function's pollers, invocations and on-failure records with its execution role, a
delivery stream with its ``RoleARN``s, a Glue job with its ``Role``. They answer a small JSON
control API on loopback:
``GET /status``, ``POST /flush``, ``POST /glue/run`` (run every EVENT-triggered Glue workflow on
its pending objects now) and ``POST /shutdown``.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clickstream_analytics.shard_reader import list_shard_ids
from clickstream_local.aws import client_environment, local_client, role_credentials
from clickstream_local.cfn import Template
from clickstream_local.dashboard import DashboardApp
from clickstream_local.esm import FailureDestination, ShardPoller, kinesis_mappings
from clickstream_local.firehose import DeliveryStreamConfig, FirehoseEmulator
from clickstream_local.glue_trigger import EventTriggerConfig, GlueEventTrigger, subprocess_runner
from clickstream_local.lambda_worker import FaultInjectingInvoker, LocalFunction, WorkerInvoker
from clickstream_local.schedules import ScheduledInvocation, ScheduleRunner
from clickstream_local.signals import LocalCloudWatch

logger = logging.getLogger(__name__)


class StackServices:
    """Every poller and delivery stream the template implies, started and stopped together."""

    def __init__(
        self,
        template: Template,
        root: Path,
        endpoint_url: str,
        local_environment: Mapping[str, str] | None = None,
        fault_rate: float = 0.0,
        glue_home: Path | None = None,
        glue_auto: bool = True,
    ) -> None:
        self.template = template
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.cloudwatch = LocalCloudWatch(template, lambda: local_client("sqs", endpoint_url))
        functions = [
            LocalFunction.from_template(template, resource, root).with_local_environment(
                local_environment or {}
            )
            for resource in template.resources("AWS::Serverless::Function")
        ]
        self.pollers: list[ShardPoller] = []
        for mapping in kinesis_mappings(template, functions):
            role = mapping.function.role_arn
            destination = (
                FailureDestination(
                    mapping.on_failure_arn,
                    lambda s, r=role: self._client(s, r),
                    on_stored=self.cloudwatch.object_stored,
                )
                if mapping.on_failure_arn
                else None
            )
            for shard_id in list_shard_ids(self._client("kinesis", role), mapping.stream_name):
                self.pollers.append(
                    ShardPoller(
                        mapping,
                        shard_id,
                        self._role_client("kinesis", role),
                        self.cloudwatch.recording(
                            self._invoker(mapping.function, endpoint_url, fault_rate, shard_id),
                            mapping.function.name,
                        ),
                        destination,
                        region=template.region,
                    )
                )
        self.schedules = [
            ScheduleRunner(
                schedule,
                self.cloudwatch.recording(
                    self._invoker(function, endpoint_url, 0.0, "schedule"), function.name
                ),
            )
            for function in functions
            for schedule in ScheduledInvocation.all_of(function)
        ]
        self.deliveries: list[FirehoseEmulator] = []
        for resource in template.resources("AWS::KinesisFirehose::DeliveryStream"):
            config = DeliveryStreamConfig.from_resource(resource)
            if config is not None:
                self.deliveries.append(
                    FirehoseEmulator(
                        config,
                        self._role_client("kinesis", config.source_role_arn),
                        self._role_client("s3", config.destination_role_arn),
                    )
                )
        self.glue_triggers: list[GlueEventTrigger] = []
        if glue_home is not None:
            run_jobs = subprocess_runner(
                endpoint_url, glue_home / "metastore", glue_home / "logs" / "glue.log"
            )
            self.glue_triggers = [
                GlueEventTrigger(config, local_client("s3", endpoint_url), run_jobs)
                for config in EventTriggerConfig.all_of(template, root)
            ]
        self.glue_auto = glue_auto

    @staticmethod
    def _invoker(
        function: LocalFunction, endpoint_url: str, fault_rate: float, shard_id: str
    ) -> WorkerInvoker | FaultInjectingInvoker:
        credentials = role_credentials(endpoint_url, function.role_arn)
        invoker = WorkerInvoker(function, client_environment(endpoint_url, credentials))
        if fault_rate <= 0:
            return invoker
        return FaultInjectingInvoker(
            invoker, fault_rate, seed=zlib.crc32(f"{function.name}/{shard_id}".encode())
        )

    def _role_client(self, service: str, role_arn: str) -> Any:
        """A new client with ``role_arn``'s credentials (one per thread that uses it)."""
        return local_client(
            service, self.endpoint_url, role_credentials(self.endpoint_url, role_arn)
        )

    def _client(self, service: str, role_arn: str) -> Any:
        """A shared client with ``role_arn``'s credentials."""
        with self._lock:
            key = (service, role_arn)
            if key not in self._clients:
                self._clients[key] = self._role_client(service, role_arn)
            return self._clients[key]

    def start(self) -> None:
        """Start every poller and delivery stream."""
        for delivery in self.deliveries:
            delivery.start()
        for poller in self.pollers:
            poller.start()
        for schedule in self.schedules:
            schedule.start()
        if self.glue_auto:
            for trigger in self.glue_triggers:
                trigger.start()

    def stop(self) -> None:
        """Stop pollers after their current batch, then flush and stop delivery streams."""
        for trigger in self.glue_triggers:
            trigger.stop()
        for schedule in self.schedules:
            schedule.stop()
        for poller in self.pollers:
            poller.stop()
        for delivery in self.deliveries:
            delivery.stop()

    def flush(self) -> list[str]:
        """Write every Firehose buffer to S3 now; returns the keys written."""
        keys = [delivery.flush(reason="forced") for delivery in self.deliveries]
        return [key for key in keys if key]

    def run_glue(self) -> list[dict[str, Any]]:
        """Run every Glue trigger's jobs on its pending objects now, as if its window had passed."""
        results: list[dict[str, Any]] = []
        for trigger in self.glue_triggers:
            trigger.poll()
            results.append({"trigger": trigger.config.name, "reports": trigger.run_batch()})
        return results

    def status(self) -> dict[str, Any]:
        """Counters of every poller, delivery stream and Glue trigger; the alarms' signals."""
        glue_triggers = [trigger.snapshot() for trigger in self.glue_triggers]
        pollers = [poller.snapshot() for poller in self.pollers]
        return {
            "glue_triggers": glue_triggers,
            "pollers": pollers,
            "deliveries": [delivery.snapshot() for delivery in self.deliveries],
            "schedules": [schedule.snapshot() for schedule in self.schedules],
            **self.cloudwatch.status(pollers, glue_triggers),
        }


def control_server(
    services: StackServices, port: int, dashboard: DashboardApp | None = None
) -> ThreadingHTTPServer:
    """The control API on 127.0.0.1:``port``; ``/shutdown`` stops the services and the server.

    With ``dashboard``, the live dashboard is served under ``/dashboard``.
    """

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: Any, code: int = 200) -> None:
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if dashboard is not None and parts.path.startswith("/dashboard"):
                status, content_type, body = dashboard(parts.path, parts.query)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/status":
                self._reply(services.status())
            else:
                self._reply({"error": f"no route {self.path}"}, 404)

        def do_POST(self) -> None:
            if self.path == "/flush":
                self._reply({"written": services.flush()})
            elif self.path == "/glue/run":
                try:
                    self._reply({"runs": services.run_glue()})
                except Exception as error:
                    self._reply({"error": str(error)}, 500)
            elif self.path == "/shutdown":
                services.stop()
                self._reply({"stopped": True})
                threading.Thread(target=server.shutdown, daemon=True).start()
            else:
                self._reply({"error": f"no route {self.path}"}, 404)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server
