"""The local CloudWatch: EMF capture, datapoints and the template's alarms, on fakes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import ClientError

from clickstream_local.cfn import Template
from clickstream_local.emf import Datapoint, MetricsTap, emf_datapoints
from clickstream_local.lambda_worker import Invocation
from clickstream_local.signals import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmSpec,
    LocalCloudWatch,
    MetricStore,
    evaluate,
    glue_signals,
    iterator_age_ms,
    status_lines,
    template_alarms,
)

ROOT = Path(__file__).resolve().parents[2]
WINDOW_COUNTER = "clickstream-window-counter"
QUEUE_TEMPLATE = {
    "Resources": {
        "Failures": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "s-failures"}},
        "QueueAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": "s-failures",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [
                    {"Name": "QueueName", "Value": {"Fn::GetAtt": ["Failures", "QueueName"]}}
                ],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
            },
        },
    }
}
"""A template whose one alarm watches a queue's depth."""


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeSqs:
    """``get_queue_url`` and ``get_queue_attributes`` over queue depths by name."""

    def __init__(self, depths: dict[str, int]) -> None:
        self.depths = depths

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        if QueueName not in self.depths:
            raise ClientError({"Error": {"Code": "QueueDoesNotExist"}}, "GetQueueUrl")
        return {"QueueUrl": f"http://local/123456789012/{QueueName}"}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        assert AttributeNames == ["ApproximateNumberOfMessages"]
        depth = self.depths[QueueUrl.rsplit("/", 1)[1]]
        return {"Attributes": {"ApproximateNumberOfMessages": str(depth)}}


class FakeInvoker:
    """Returns the invocations it is given, in order."""

    def __init__(self, *outcomes: Invocation) -> None:
        self.outcomes = list(outcomes)
        self.closed = False

    def invoke(self, event: Any) -> Invocation:
        return self.outcomes.pop(0)

    def close(self) -> None:
        self.closed = True


def powertools_document(service: str, clock: Clock, **values: float) -> dict[str, Any]:
    """What Powertools' ``log_metrics`` prints for ``values`` (namespace Clickstream)."""
    metrics = EphemeralMetrics(namespace="Clickstream", service=service)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    document = metrics.serialize_metric_set()
    document["_aws"]["Timestamp"] = int(clock.now * 1000)
    return document


def poller(function: str, arrival: float | None = None, **counters: int) -> dict[str, Any]:
    """A poller snapshot as ``/status`` reports it."""
    return {"function": function, "oldest_pending_arrival": arrival, **counters}


def signal(status: dict[str, Any], alarm: str) -> dict[str, Any]:
    (found,) = [s for s in status["signals"] if s["alarm"] == alarm]
    return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def depths() -> dict[str, int]:
    return {"clickstream-consumer-failures": 0}


@pytest.fixture
def cloudwatch(clock: Clock, depths: dict[str, int]) -> LocalCloudWatch:
    """The project template's alarms on a fake SQS and a fake clock."""
    template = Template.load(ROOT / "template.yaml")
    return LocalCloudWatch(template, lambda: FakeSqs(depths), clock=clock)


# ---------------------------------------------------------------------------- EMF


def test_a_powertools_document_becomes_one_datapoint_per_value(clock: Clock) -> None:
    # GIVEN what Powertools prints for two metrics, one added twice
    metrics = EphemeralMetrics(namespace="Clickstream", service="sessionizer")
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=2)
    metrics.add_metric(name="LateEvents", unit=MetricUnit.Count, value=3)
    metrics.add_metric(name="GapSessions", unit=MetricUnit.Count, value=1)
    document = metrics.serialize_metric_set()
    # WHEN it is read
    points = emf_datapoints(document)
    # THEN each value is a datapoint with the service dimension Powertools adds
    dimensions = (("service", "sessionizer"),)
    stamp = document["_aws"]["Timestamp"] / 1000
    assert sorted(points, key=lambda p: (p.name, p.value)) == [
        Datapoint("Clickstream", "GapSessions", dimensions, 1.0, stamp),
        Datapoint("Clickstream", "LateEvents", dimensions, 2.0, stamp),
        Datapoint("Clickstream", "LateEvents", dimensions, 3.0, stamp),
    ]


def test_a_document_without_the_aws_directive_has_no_datapoints() -> None:
    assert emf_datapoints({"level": "INFO", "message": "batch counted"}) == []


def test_the_tap_passes_every_line_on_and_keeps_the_emf_documents(clock: Clock) -> None:
    # GIVEN a tap in front of a log
    log = io.StringIO()
    tap = MetricsTap(log)
    emf = json.dumps(powertools_document("window-counter", clock, LateEvents=4))
    # WHEN a log line and an EMF line are printed, the EMF line in two writes as print does
    print('{"level":"INFO","message":"batch counted"}', file=tap)  # type: ignore[arg-type]
    tap.write(emf)
    tap.write("\n")
    # THEN both reach the log, and only the EMF document is kept, once
    assert log.getvalue().splitlines() == ['{"level":"INFO","message":"batch counted"}', emf]
    assert tap.take() == (json.loads(emf),)
    assert tap.take() == ()


# ---------------------------------------------------------------------------- datapoints


def test_store_statistics_cover_the_period_asked_for() -> None:
    # GIVEN three datapoints of one metric, 100 s apart
    store = MetricStore(retention_seconds=3600)
    dimensions = (("service", "window-counter"),)
    for stamp, value in ((1000.0, 5.0), (1100.0, 1.0), (1200.0, 3.0)):
        store.put(Datapoint("Clickstream", "LateEvents", dimensions, value, stamp), "f")

    # WHEN statistics are asked for the last 150 s (after 1050)
    def stat(name: str) -> float | None:
        return store.statistic("Clickstream", "LateEvents", dimensions, name, since=1050.0)

    # THEN they cover the two latest datapoints only
    assert (stat("Sum"), stat("Maximum"), stat("Minimum")) == (4.0, 3.0, 1.0)
    assert (stat("SampleCount"), stat("Average")) == (2.0, 2.0)
    # AND another dimension has no data
    assert store.statistic("Clickstream", "LateEvents", (), "Sum", since=0) is None
    # AND the function's totals count every datapoint since the start
    assert store.totals() == {"f": {"LateEvents": {"sum": 9.0, "maximum": 5.0, "samples": 3}}}


def test_store_forgets_datapoints_older_than_its_retention() -> None:
    store = MetricStore(retention_seconds=60)
    store.put(Datapoint("N", "M", (), 1.0, 0.0), "f")
    store.put(Datapoint("N", "M", (), 2.0, 100.0), "f")
    assert store.statistic("N", "M", (), "SampleCount", since=-1) == 1.0


# ---------------------------------------------------------------------------- evaluation


def alarm(**overrides: Any) -> AlarmSpec:
    settings: dict[str, Any] = {
        "logical_id": "LateAlarm",
        "name": "demo-late",
        "namespace": "Clickstream",
        "metric_name": "LateEvents",
        "dimensions": (("service", "window-counter"),),
        "statistic": "Sum",
        "period_seconds": 300,
        "evaluation_periods": 1,
        "threshold": 30.0,
        "comparison": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
        **overrides,
    }
    return AlarmSpec(**settings)


@pytest.mark.parametrize(
    ("comparison", "value", "state"),
    [
        ("GreaterThanThreshold", 31.0, ALARM),
        ("GreaterThanThreshold", 30.0, OK),
        ("GreaterThanOrEqualToThreshold", 30.0, ALARM),
        ("LessThanThreshold", 29.0, ALARM),
        ("LessThanOrEqualToThreshold", 31.0, OK),
    ],
)
def test_a_value_is_compared_with_the_threshold(comparison: str, value: float, state: str) -> None:
    assert evaluate(alarm(comparison=comparison), value, "f").state == state


@pytest.mark.parametrize(
    ("treat_missing_data", "state"),
    [("notBreaching", OK), ("breaching", ALARM), ("missing", INSUFFICIENT_DATA)],
)
def test_without_data_the_alarm_treats_missing_data_as_declared(
    treat_missing_data: str, state: str
) -> None:
    assert evaluate(alarm(treat_missing_data=treat_missing_data), None, "f").state == state


def test_iterator_age_is_the_oldest_pending_record_over_the_functions_shards() -> None:
    # GIVEN two shards of one function, one with records pending since 90 s and 30 s ago,
    # and a shard of another function
    pollers = [poller("a", 910.0), poller("a", None), poller("b", 970.0)]
    # WHEN the iterator ages are asked at 1000 s
    # THEN a function's age is its oldest pending record's, 0 when none, None without pollers
    assert iterator_age_ms(pollers, "a", 1000.0) == 90_000
    assert iterator_age_ms([poller("a", None)], "a", 1000.0) == 0
    assert iterator_age_ms(pollers, "c", 1000.0) is None


# ---------------------------------------------------------------------------- the template's alarms


def test_thresholds_are_the_templates_including_parameter_overrides() -> None:
    # GIVEN the project template with and without threshold overrides
    default = {a.logical_id: a for a in template_alarms(Template.load(ROOT / "template.yaml"))}
    overrides = {"IteratorAgeAlarmMilliseconds": "2000", "LateEventsAlarmThreshold": "5"}
    tuned = Template.load(ROOT / "template.yaml", parameter_overrides=overrides)
    changed = {a.logical_id: a for a in template_alarms(tuned)}
    # THEN the local alarms carry the template's thresholds
    assert default["WindowCounterIteratorAgeAlarm"].threshold == 60_000
    assert changed["WindowCounterIteratorAgeAlarm"].threshold == 2_000
    assert default["SessionizerLateEventsAlarm"].threshold == 30
    assert changed["SessionizerLateEventsAlarm"].threshold == 5
    assert default["FailedBatchesAlarm"].threshold == 0


def test_a_consumer_falling_behind_alarms_and_clears_when_it_catches_up(
    cloudwatch: LocalCloudWatch, clock: Clock
) -> None:
    # GIVEN the window counter with a record pending for 61 s on one shard
    behind = [poller(WINDOW_COUNTER, clock.now - 61), poller(WINDOW_COUNTER)]
    # WHEN the status is asked THEN its iterator-age signal is in ALARM, with the age
    state = signal(cloudwatch.status(behind, []), "WindowCounterIteratorAgeAlarm")
    assert (state["state"], state["value"], state["threshold"]) == (ALARM, 61_000, 60_000)
    assert state["subject"] == WINDOW_COUNTER and state["window"] == "now"
    # AND once nothing is pending it is OK again
    caught_up = [poller(WINDOW_COUNTER), poller(WINDOW_COUNTER)]
    state = signal(cloudwatch.status(caught_up, []), "WindowCounterIteratorAgeAlarm")
    assert (state["state"], state["value"]) == (OK, 0)


def test_failed_invocations_alarm_for_the_alarms_period(
    cloudwatch: LocalCloudWatch, clock: Clock
) -> None:
    # GIVEN the sessionizer's invoker, recorded, which fails once then succeeds
    invoker = cloudwatch.recording(
        FakeInvoker(Invocation(False, error_type="Boom"), Invocation(True)),
        "clickstream-sessionizer",
    )
    # WHEN it is invoked twice
    invoker.invoke({})
    clock.now += 10
    invoker.invoke({})
    # THEN the errors signal is in ALARM with the errors of the last 300 s
    state = signal(cloudwatch.status([], []), "SessionizerErrorsAlarm")
    assert (state["state"], state["value"], state["window"]) == (ALARM, 1, "last 300 s")
    # AND OK once the failure is older than the alarm's period
    clock.now += 300
    assert signal(cloudwatch.status([], []), "SessionizerErrorsAlarm")["state"] == OK
    invoker.close()
    assert invoker.inner.closed  # type: ignore[attr-defined]


def test_published_late_and_quarantined_events_are_summed_per_service(
    cloudwatch: LocalCloudWatch, clock: Clock
) -> None:
    # GIVEN two window-counter invocations publishing late and quarantined events
    for late in (20, 11):
        document = powertools_document(
            "window-counter", clock, LateEvents=late, QuarantinedEvents=1
        )
        cloudwatch.record(WINDOW_COUNTER, Invocation(True, metrics=(document,)))
    # WHEN the status is asked
    status = cloudwatch.status([], [])
    # THEN the window counter's late events (31 > 30) and quarantine (2 > 0) are in ALARM
    late = signal(status, "WindowCounterLateEventsAlarm")
    assert (late["state"], late["value"], late["subject"]) == (ALARM, 31, WINDOW_COUNTER)
    assert signal(status, "WindowCounterQuarantineAlarm")["value"] == 2
    # AND the sessionizer, which published nothing, is OK (missing data is not breaching)
    assert signal(status, "SessionizerLateEventsAlarm")["state"] == OK
    # AND the totals since the start are kept per function
    assert status["metrics"][WINDOW_COUNTER]["LateEvents"]["sum"] == 31
    assert status["metrics"][WINDOW_COUNTER]["Errors"]["sum"] == 0


def test_a_queue_depth_is_read_now(clock: Clock, tmp_path: Path) -> None:
    # GIVEN a template with an alarm on a queue's depth, and two messages in the queue
    template_path = tmp_path / "template.json"
    template_path.write_text(json.dumps(QUEUE_TEMPLATE))
    depths = {"s-failures": 2}
    cloudwatch = LocalCloudWatch(
        Template.load(template_path, stack_name="s"), lambda: FakeSqs(depths), clock=clock
    )
    # WHEN the status is asked THEN the queue signal is in ALARM
    state = signal(cloudwatch.status([], []), "QueueAlarm")
    assert (state["state"], state["value"], state["window"]) == (ALARM, 2, "now")
    # AND once the queue is emptied it is OK
    depths["s-failures"] = 0
    assert signal(cloudwatch.status([], []), "QueueAlarm")["state"] == OK
    # AND a queue that cannot be read has no data (not breaching)
    del depths["s-failures"]
    state = signal(cloudwatch.status([], []), "QueueAlarm")
    assert (state["state"], state["value"]) == (OK, None)


def test_a_batch_kept_in_the_failed_batch_bucket_alarms_for_the_alarms_period(
    cloudwatch: LocalCloudWatch, clock: Clock
) -> None:
    # GIVEN the runner kept a batch (an object under aws/lambda/), and wrote another object
    bucket = "clickstream-failed-batches-123456789012-us-east-1"
    cloudwatch.object_stored(bucket, "aws/lambda/uuid/shardId-000000000000/2026/03/07/x")
    cloudwatch.object_stored(bucket, "redriven/aws/lambda/uuid/shardId-000000000000/x")
    # WHEN the status is asked THEN the kept batch's put request is in ALARM
    state = signal(cloudwatch.status([], []), "FailedBatchesAlarm")
    assert (state["state"], state["value"], state["subject"]) == (ALARM, 1, bucket)
    # AND OK once it is older than the alarm's period
    clock.now += 301
    assert signal(cloudwatch.status([], []), "FailedBatchesAlarm")["state"] == OK


def test_a_glue_workflow_alarms_while_its_latest_run_failed(cloudwatch: LocalCloudWatch) -> None:
    # GIVEN the raw events trigger after a failed run, and a trigger of jobs the rule ignores
    (rule,) = cloudwatch.glue_rules
    raw = {
        "name": "clickstream-raw-events-batch",
        "jobs": ["clickstream-raw-to-curated-events"],
        "failed_runs": 1,
        "last_run_failed": True,
    }
    other = {
        "name": "other",
        "jobs": ["not-a-stack-job"],
        "failed_runs": 3,
        "last_run_failed": True,
    }
    # WHEN the Glue signals are evaluated
    (state,) = glue_signals([rule], [raw, other])
    # THEN the rule's states are the condition and the workflow is in ALARM
    assert (state.subject, state.state, state.value) == ("clickstream-raw-events-batch", ALARM, 1)
    assert state.condition == "FAILED|TIMEOUT|ERROR"
    # AND OK after a successful run
    (state,) = glue_signals([rule], [{**raw, "last_run_failed": False}])
    assert state.state == OK


def test_status_lines_show_each_consumer_and_each_alarm(
    cloudwatch: LocalCloudWatch, clock: Clock
) -> None:
    # GIVEN a window counter 61 s behind with 3 records pending and one sent to on-failure
    pollers = [
        poller(
            WINDOW_COUNTER,
            clock.now - 61,
            pending=3,
            millis_behind_latest=1500,
            function_errors=2,
            records_to_destination=1,
        )
    ]
    # WHEN the status is printed
    lines = status_lines(cloudwatch.status(pollers, []))
    # THEN the consumer line has its progress and the alarm lines their state, value and threshold
    assert lines[0] == "consumers:"
    assert lines[1] == (
        f"  {WINDOW_COUNTER}: iterator age 61,000 ms, 3 pending, 1,500 ms behind latest;"
        " errors 2, to on-failure 1, late 0, quarantined 0"
    )
    (age,) = [line for line in lines if "window-counter-iterator-age" in line]
    assert age.split() == [
        "ALARM",
        "clickstream-window-counter-iterator-age",
        "61,000",
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
        ">",
        "60,000",
        "(now)",
    ]
    assert status_lines({"pollers": []}) == []
