"""Static checks of the template's operations: alarms, the Glue failure rule and the dashboard.

The metrics the handlers publish are read from their code (the names passed to
``metrics.add_metric``) and from the template (namespace and service of each function), and
turned into EMF by Powertools itself, so each alarm is checked against what is really emitted.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from clickstream_local.cfn import Resource, Template
from clickstream_local.emf import Dimensions, dimensions_of, emf_datapoints

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "arn:aws:sns:us-east-1:123456789012:clickstream-alarms"
Metric = tuple[str, str, Dimensions]


@pytest.fixture(scope="module")
def project() -> Template:
    """The project's template.yaml with its defaults (no alarm topic)."""
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def with_topic() -> Template:
    """The project's template.yaml with an alarm topic."""
    return Template.load(ROOT / "template.yaml", parameter_overrides={"AlarmTopicArn": TOPIC})


def functions(template: Template) -> list[Resource]:
    return template.resources("AWS::Serverless::Function")


def alarms(template: Template) -> list[Resource]:
    return template.resources("AWS::CloudWatch::Alarm")


def metric_of(alarm: Resource) -> Metric:
    """An alarm's namespace, metric name and dimensions."""
    properties = alarm.properties
    dimensions = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
    return properties["Namespace"], properties["MetricName"], dimensions_of(dimensions)


def alarms_on(template: Template, namespace: str, name: str) -> dict[Dimensions, Resource]:
    """The alarms on one metric, by dimensions."""
    found = {}
    for alarm in alarms(template):
        alarm_namespace, alarm_name, dimensions = metric_of(alarm)
        if (alarm_namespace, alarm_name) == (namespace, name):
            found[dimensions] = alarm
    return found


def added_metric_names(handler: Path) -> set[str]:
    """The names a handler passes to ``metrics.add_metric(name=...)``."""
    names = set()
    for node in ast.walk(ast.parse(handler.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_metric":
            for keyword in node.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    names.add(keyword.value.value)
    return names


def published_metrics(function: Resource) -> set[Metric]:
    """What the function publishes: its handler's metrics as Powertools writes them in EMF."""
    handler = ROOT / function.properties["CodeUri"] / "app.py"
    names = added_metric_names(handler)
    if not names:
        return set()
    variables = function.properties["Environment"]["Variables"]
    metrics = EphemeralMetrics(
        namespace=variables["POWERTOOLS_METRICS_NAMESPACE"],
        service=variables["POWERTOOLS_SERVICE_NAME"],
    )
    for name in names:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    points = emf_datapoints(metrics.serialize_metric_set())
    return {(p.namespace, p.name, p.dimensions) for p in points}


def every_published_metric(template: Template) -> dict[Metric, str]:
    """Each published metric with the function publishing it."""
    return {
        metric: function.physical_id
        for function in functions(template)
        for metric in published_metrics(function)
    }


def stream_consumers(template: Template) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Each function with a Kinesis event source, with that source's properties."""
    for function in functions(template):
        for event in function.properties.get("Events", {}).values():
            if event["Type"] == "Kinesis":
                yield function, event["Properties"]


# ---------------------------------------------------------------------------- coverage


def test_every_stream_consumer_has_an_iterator_age_alarm(project: Template) -> None:
    # GIVEN the functions reading the stream, and the alarms on Lambda's IteratorAge
    consumers = [function for function, _ in stream_consumers(project)]
    assert len(consumers) == 3
    by_function = alarms_on(project, "AWS/Lambda", "IteratorAge")
    for function in consumers:
        # THEN each consumer has one, on its maximum, for the template's threshold
        alarm = by_function[(("FunctionName", function.physical_id),)].properties
        assert alarm["Statistic"] == "Maximum"
        assert alarm["Threshold"] == project.parameters["IteratorAgeAlarmMilliseconds"]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
            60,
            5,
            5,
        )


def test_every_function_has_an_errors_alarm(project: Template) -> None:
    by_function = alarms_on(project, "AWS/Lambda", "Errors")
    for function in functions(project):
        alarm = by_function[(("FunctionName", function.physical_id),)].properties
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


def test_the_failed_batch_bucket_of_every_consumer_alarms_on_each_kept_batch(
    project: Template,
) -> None:
    # GIVEN the consumers' on-failure destinations
    destinations = {
        source["DestinationConfig"]["OnFailure"]["Destination"]
        for _, source in stream_consumers(project)
    }
    by_filter = alarms_on(project, "AWS/S3", "PutRequests")
    # THEN each is a bucket whose request metrics count puts under Lambda's prefix, with an
    # alarm on any put there: each is a batch kept
    assert destinations
    for arn in destinations:
        bucket = project.find_by_arn(arn)
        assert bucket is not None and bucket.type == "AWS::S3::Bucket"
        (kept,) = [
            config
            for config in bucket.properties["MetricsConfigurations"]
            if config["Prefix"] == "aws/lambda/"
        ]
        dimensions = dimensions_of({"BucketName": bucket.physical_id, "FilterId": kept["Id"]})
        alarm = by_filter[dimensions].properties
        assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 0, 300)


@pytest.mark.parametrize("name", ["LateEvents", "QuarantinedEvents", "DocumentsQuarantined"])
def test_every_consumer_publishing_late_or_quarantined_events_has_an_alarm(
    project: Template, name: str
) -> None:
    # GIVEN the functions whose handler publishes the metric
    published = [m for m in every_published_metric(project) if m[1] == name]
    assert published, f"no handler publishes {name}"
    # THEN each such metric, with the dimensions Powertools gives it, has an alarm
    alarmed = {metric_of(alarm) for alarm in alarms(project)}
    assert set(published) <= alarmed


def test_every_alarm_watches_a_metric_that_is_published(project: Template) -> None:
    # GIVEN what the handlers publish (Powertools' EMF) and the AWS metrics of the resources
    published = every_published_metric(project)
    function_names = {function.physical_id for function in functions(project)}
    buckets = {bucket.physical_id for bucket in project.resources("AWS::S3::Bucket")}
    namespace = project.resource("WindowCounterFunction").properties["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    for alarm in alarms(project):
        metric = metric_of(alarm)
        alarm_namespace, _, dimensions = metric
        # THEN an alarm on the handlers' namespace names a metric exactly as published
        if alarm_namespace == namespace:
            assert metric in published, alarm.logical_id
        # AND an alarm on an AWS metric names a function or bucket of the stack
        elif alarm_namespace == "AWS/Lambda":
            assert dict(dimensions)["FunctionName"] in function_names, alarm.logical_id
        else:
            assert alarm_namespace == "AWS/S3", alarm.logical_id
            assert dict(dimensions)["BucketName"] in buckets, alarm.logical_id


# ---------------------------------------------------------------------------- notifications


def test_without_a_topic_alarms_have_no_actions_and_there_is_no_glue_rule(
    project: Template,
) -> None:
    for alarm in alarms(project):
        assert "AlarmActions" not in alarm.properties and "OKActions" not in alarm.properties
        assert alarm.properties["TreatMissingData"] == "notBreaching"
    assert "GlueJobFailureRule" not in {r.logical_id for r in project.resources()}


def test_with_a_topic_alarms_notify_it_on_alarm_and_on_ok(with_topic: Template) -> None:
    for alarm in alarms(with_topic):
        assert alarm.properties["AlarmActions"] == [TOPIC], alarm.logical_id
        assert alarm.properties["OKActions"] == [TOPIC], alarm.logical_id


def test_with_a_topic_failed_runs_of_every_glue_job_notify_it(with_topic: Template) -> None:
    # GIVEN the stack's Glue jobs and the rule on their state changes
    jobs = {job.physical_id for job in with_topic.resources("AWS::Glue::Job")}
    rule = with_topic.resource("GlueJobFailureRule").properties
    # THEN the rule matches a failed, timed-out or errored run of any of them
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.glue"]
    assert pattern["detail-type"] == ["Glue Job State Change"]
    assert set(pattern["detail"]["jobName"]) == jobs
    assert pattern["detail"]["state"] == ["FAILED", "TIMEOUT", "ERROR"]
    # AND sends the event to the topic
    assert [target["Arn"] for target in rule["Targets"]] == [TOPIC]


# ---------------------------------------------------------------------------- dashboard


def dashboard_metrics(body: dict[str, Any]) -> set[Metric]:
    """Every metric a dashboard's widgets graph: ``[namespace, name, dim, value, ..., {opts}]``."""
    found = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            fields = [item for item in row if not isinstance(item, dict)]
            namespace, name, *pairs = fields
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            found.add((namespace, name, dimensions_of(dimensions)))
    return found


def test_the_dashboard_is_json_and_graphs_every_alarm_metric(project: Template) -> None:
    # GIVEN the dashboard with its body resolved (Fn::Sub)
    dashboard = project.resource("OperationsDashboard")
    assert dashboard.physical_id == "clickstream-operations"
    # WHEN the body is parsed
    body = json.loads(dashboard.properties["DashboardBody"])
    # THEN every alarm's metric is graphed, and every other published metric too
    graphed = dashboard_metrics(body)
    assert {metric_of(alarm) for alarm in alarms(project)} <= graphed
    published = set(every_published_metric(project))
    ungraphed = published - graphed
    assert {name for _, name, _ in ungraphed} <= {"EventsSent", "EventsUnaccepted"}
    # AND its alarm widget lists every alarm
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert set(status["properties"]["alarms"]) == {
        project.arn(alarm.logical_id) for alarm in alarms(project)
    }
    assert project.arn("WindowCounterIteratorAgeAlarm") == (
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:clickstream-window-counter-iterator-age"
    )


def test_the_dashboard_marks_the_parameterised_thresholds() -> None:
    # GIVEN the template with its thresholds changed
    overrides = {"IteratorAgeAlarmMilliseconds": "90000", "LateEventsAlarmThreshold": "7"}
    template = Template.load(ROOT / "template.yaml", parameter_overrides=overrides)
    body = json.loads(template.resource("OperationsDashboard").properties["DashboardBody"])
    # THEN the graphs' alarm lines follow them
    lines = {
        annotation["value"]
        for widget in body["widgets"]
        for annotation in widget["properties"].get("annotations", {}).get("horizontal", [])
    }
    assert lines == {90000, 7}
