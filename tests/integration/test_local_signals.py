"""The daemon's ``/status`` signals: a real runner, worker and moto server, alarms from a template.

A probe consumer is held mid-invocation (it falls behind), releases and publishes Powertools
metrics, then fails on a record that goes to the on-failure queue; each alarm of the template
turns ALARM and, where the cause goes away, OK again.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.aws import local_client
from clickstream_local.cfn import Template
from clickstream_local.provision import Provisioner
from clickstream_local.services import StackServices, control_server
from tests.factories import wait_for

from .conftest import FIXTURES

pytestmark = pytest.mark.integration


class SignalsStack:
    """The signals template provisioned on moto, its services and control API running."""

    def __init__(self, endpoint: str, stack_name: str, probe_dir: Path) -> None:
        self.template = Template.load(
            FIXTURES / "signals_template.yaml",
            stack_name=stack_name,
            parameter_overrides={"ProbeDir": str(probe_dir)},
        )
        Provisioner(self.template, endpoint).provision()
        self.probe_dir = probe_dir
        probe_dir.mkdir(parents=True)
        self.kinesis = local_client("kinesis", endpoint)
        self.sqs = local_client("sqs", endpoint)
        self.services = StackServices(self.template, FIXTURES, endpoint)
        self.server = control_server(self.services, 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.services.start()

    def put(self, document: dict[str, Any]) -> None:
        self.kinesis.put_record(
            StreamName=self.template.resource("Stream").physical_id,
            Data=json.dumps(document).encode(),
            PartitionKey="same",
        )

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url, timeout=30) as response:
            return json.loads(response.read())

    def signal(self, alarm: str) -> dict[str, Any]:
        (found,) = [s for s in self.status()["signals"] if s["alarm"] == alarm]
        return found

    def consumer(self) -> dict[str, Any]:
        (found,) = self.status()["consumers"]
        return found

    def stop(self) -> None:
        self.services.stop()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(moto_endpoint: str, stack_name: str, tmp_path: Path) -> Iterator[SignalsStack]:
    running = SignalsStack(moto_endpoint, stack_name, tmp_path / "probe")
    yield running
    running.stop()


def test_status_signals_follow_a_consumer_falling_behind_failing_and_recovering(
    stack: SignalsStack,
) -> None:
    # GIVEN a running stack whose consumer is idle: every signal is OK
    wait_for(lambda: stack.status()["pollers"][0]["caught_up_at"] > 0)
    assert {s["state"] for s in stack.status()["signals"]} == {"OK"}
    # WHEN a record keeps the consumer busy (it is held until released)
    stack.put({"id": 1, "hold": "release", "metrics": {"LateEvents": 2}})
    # THEN its iterator age passes the 1 s threshold and the signal is in ALARM
    wait_for(lambda: stack.signal("ProbeIteratorAgeAlarm")["state"] == "ALARM")
    behind = stack.consumer()
    assert behind["pending"] == 1 and behind["iterator_age_ms"] > 1000
    # WHEN the consumer is released and catches up
    (stack.probe_dir / "release").touch()
    # THEN the iterator age is OK again, and the late events it published are in ALARM (2 > 1)
    wait_for(lambda: stack.signal("ProbeIteratorAgeAlarm")["state"] == "OK")
    late = stack.signal("ProbeLateEventsAlarm")
    assert (late["state"], late["value"], late["threshold"]) == ("ALARM", 2, 1)
    assert stack.status()["metrics"][stack.consumer()["function"]]["LateEvents"]["sum"] == 2
    # WHEN a record makes the function fail (no retries: it goes to the on-failure queue)
    stack.put({"id": 2, "poison": True})
    # THEN the errors and the failure queue are in ALARM
    wait_for(lambda: stack.signal("FailureQueueAlarm")["state"] == "ALARM")
    queue = stack.signal("FailureQueueAlarm")
    assert queue["value"] == 1 and queue["subject"] == f"{stack.template.stack_name}-on-failure"
    errors = stack.signal("ProbeErrorsAlarm")
    assert (errors["state"], errors["value"]) == ("ALARM", 1)
    assert stack.consumer()["records_to_destination"] == 1
    # WHEN the failed batch is taken off the queue
    url = stack.sqs.get_queue_url(QueueName=queue["subject"])["QueueUrl"]
    (message,) = stack.sqs.receive_message(QueueUrl=url)["Messages"]
    stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # THEN the queue signal is OK again (the errors stay in ALARM for their 300 s period)
    wait_for(lambda: stack.signal("FailureQueueAlarm")["state"] == "OK")
    assert stack.signal("ProbeErrorsAlarm")["state"] == "ALARM"
