"""The local stack's CloudWatch: the functions' metrics, checked against the template's alarms.

Every single-metric ``AWS::CloudWatch::Alarm`` of ``template.yaml`` becomes a signal of the
daemon's ``/status`` (and ``clickstream local status``), with the alarm's own metric, statistic
and threshold. The daemon measures:

- ``AWS/Lambda IteratorAge``: now minus the arrival of the oldest record a poller has read and not
  finished, the maximum over the function's shards (0 when nothing is pending);
- ``AWS/SQS ApproximateNumberOfMessagesVisible``: the queue's depth now;
- ``AWS/S3 PutRequests`` of a bucket's request-metrics filter (``MetricsConfigurations``): one
  per object the event-source runner writes under the filter's prefix (an on-failure record);
- any other metric from datapoints: the handlers' EMF metrics, which the Lambda worker returns
  with each invocation, and Lambda's ``Errors`` (0 or 1 per invocation), with the alarm's
  statistic over its last period.

A signal is ALARM as soon as its value breaches the threshold (there are no evaluation periods);
without data, the alarm's ``TreatMissingData`` decides. The template's EventBridge rule on Glue job
runs that end FAILED, TIMEOUT or ERROR becomes a signal per local Glue trigger running those jobs:
ALARM while its latest run failed.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from clickstream_local.cfn import Resource, Template
from clickstream_local.emf import Datapoint, Dimensions, dimensions_of, emf_datapoints
from clickstream_local.esm import Invoker
from clickstream_local.lambda_worker import Invocation

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, ">"),
    "GreaterThanOrEqualToThreshold": (operator.ge, ">="),
    "LessThanThreshold": (operator.lt, "<"),
    "LessThanOrEqualToThreshold": (operator.le, "<="),
}
"""The static comparison operators of CloudWatch alarms, with their symbols."""

GLUE_STATE_CHANGE = "Glue Job State Change"

GAUGES = frozenset(
    {("AWS/Lambda", "IteratorAge"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
)
"""Metrics the daemon measures now rather than from datapoints over the alarm's period."""


@dataclass(frozen=True)
class AlarmSpec:
    """A single-metric CloudWatch alarm of the template, with its properties resolved."""

    logical_id: str
    name: str
    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period_seconds: int
    evaluation_periods: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"

    @classmethod
    def from_resource(cls, resource: Resource) -> AlarmSpec | None:
        """The alarm; None for a metric-math or anomaly alarm, which is not evaluated locally."""
        properties = resource.properties
        if "MetricName" not in properties or properties["ComparisonOperator"] not in COMPARISONS:
            return None
        return cls(
            logical_id=resource.logical_id,
            name=resource.physical_id,
            namespace=properties["Namespace"],
            metric_name=properties["MetricName"],
            dimensions=dimensions_of(
                {item["Name"]: item["Value"] for item in properties.get("Dimensions", [])}
            ),
            statistic=properties.get("Statistic", "Average"),
            period_seconds=int(properties["Period"]),
            evaluation_periods=int(properties["EvaluationPeriods"]),
            threshold=float(properties["Threshold"]),
            comparison=properties["ComparisonOperator"],
            treat_missing_data=properties.get("TreatMissingData", "missing"),
        )

    def dimension(self, name: str) -> str | None:
        """The value of dimension ``name``, if the alarm has it."""
        return dict(self.dimensions).get(name)

    def breaches(self, value: float) -> bool:
        """Whether ``value`` is on the alarm side of the threshold."""
        compare, _ = COMPARISONS[self.comparison]
        return compare(value, self.threshold)

    def condition(self) -> str:
        """``Maximum > 60000``: the statistic, the comparison and the threshold."""
        _, symbol = COMPARISONS[self.comparison]
        return f"{self.statistic} {symbol} {self.threshold:,g}"


def template_alarms(template: Template) -> list[AlarmSpec]:
    """Every alarm of the template that can be evaluated locally."""
    alarms = [AlarmSpec.from_resource(r) for r in template.resources("AWS::CloudWatch::Alarm")]
    return [alarm for alarm in alarms if alarm is not None]


@dataclass(frozen=True)
class GlueFailureRule:
    """An EventBridge rule on Glue job runs ending in one of ``states``."""

    logical_id: str
    jobs: tuple[str, ...]
    states: tuple[str, ...]


def glue_failure_rules(template: Template) -> list[GlueFailureRule]:
    """The template's rules on Glue Job State Change events, also those only made with a topic."""
    rules = []
    for logical_id, spec in template.document["Resources"].items():
        if spec.get("Type") != "AWS::Events::Rule":
            continue
        pattern = template.resolve(spec.get("Properties", {}).get("EventPattern", {}))
        if "aws.glue" in pattern.get("source", []) and GLUE_STATE_CHANGE in pattern.get(
            "detail-type", []
        ):
            detail = pattern.get("detail", {})
            rules.append(
                GlueFailureRule(
                    logical_id, tuple(detail.get("jobName", [])), tuple(detail.get("state", []))
                )
            )
    return rules


@dataclass(frozen=True)
class RequestMetricsFilter:
    """One ``MetricsConfigurations`` entry of a bucket: S3 counts requests under ``prefix``."""

    bucket: str
    filter_id: str
    prefix: str


def request_metrics_filters(template: Template) -> list[RequestMetricsFilter]:
    """Every bucket's request-metrics filters (by prefix; tag filters are not evaluated)."""
    return [
        RequestMetricsFilter(bucket.physical_id, str(config["Id"]), str(config.get("Prefix", "")))
        for bucket in template.resources("AWS::S3::Bucket")
        for config in bucket.properties.get("MetricsConfigurations", [])
        if "TagFilters" not in config and "AccessPointArn" not in config
    ]


def function_services(template: Template) -> dict[str, str]:
    """Function name by Powertools service name (``POWERTOOLS_SERVICE_NAME``)."""
    services = {}
    for function in template.resources("AWS::Serverless::Function"):
        variables = function.properties.get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in variables:
            services[str(variables["POWERTOOLS_SERVICE_NAME"])] = function.physical_id
    return services


# ---------------------------------------------------------------------------- datapoints
@dataclass
class MetricTotal:
    """A metric's datapoints since the start, summed up."""

    sum: float = 0.0
    maximum: float | None = None
    samples: int = 0


class MetricStore:
    """Datapoints of the last ``retention_seconds`` by metric, and totals by function."""

    def __init__(self, retention_seconds: float = 3600.0) -> None:
        self.retention_seconds = retention_seconds
        self._points: dict[tuple[str, str, Dimensions], deque[Datapoint]] = defaultdict(deque)
        self._totals: dict[str, dict[str, MetricTotal]] = defaultdict(dict)
        self._lock = threading.Lock()

    def put(self, point: Datapoint, function: str) -> None:
        """Keep one datapoint that ``function`` published."""
        with self._lock:
            points = self._points[(point.namespace, point.name, point.dimensions)]
            points.append(point)
            while points and points[0].timestamp < point.timestamp - self.retention_seconds:
                points.popleft()
            total = self._totals[function].setdefault(point.name, MetricTotal())
            total.sum += point.value
            total.maximum = (
                point.value if total.maximum is None else max(total.maximum, point.value)
            )
            total.samples += 1

    def statistic(
        self, namespace: str, name: str, dimensions: Dimensions, statistic: str, since: float
    ) -> float | None:
        """The statistic of the metric's datapoints after ``since``; None when there are none."""
        with self._lock:
            key = (namespace, name, dimensions)
            values = [p.value for p in self._points.get(key, ()) if p.timestamp > since]
        if not values:
            return None
        if statistic == "Sum":
            return sum(values)
        if statistic == "Maximum":
            return max(values)
        if statistic == "Minimum":
            return min(values)
        if statistic == "SampleCount":
            return float(len(values))
        return sum(values) / len(values)

    def totals(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per function, per metric name: sum, maximum and samples since the start."""
        with self._lock:
            return {
                function: {name: asdict(total) for name, total in sorted(metrics.items())}
                for function, metrics in sorted(self._totals.items())
            }


# ---------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Signal:
    """One alarm evaluated on the local stack now."""

    alarm: str
    """The template's logical id (or the Glue rule's)."""
    alarm_name: str
    subject: str
    """The function, queue or Glue trigger the signal is about."""
    metric: str
    dimensions: dict[str, str]
    statistic: str
    period_seconds: int
    value: float | None
    window: str
    """What the value covers: ``now``, ``last 300 s`` or ``latest run``."""
    condition: str
    threshold: float | None
    state: str


def iterator_age_ms(
    pollers: Sequence[Mapping[str, Any]], function: str, now: float
) -> float | None:
    """Now minus the oldest pending arrival over ``function``'s pollers; None without pollers."""
    ages = [
        max(0.0, now - arrival) * 1000 if (arrival := p.get("oldest_pending_arrival")) else 0.0
        for p in pollers
        if p["function"] == function
    ]
    return max(ages) if ages else None


def measure(
    alarm: AlarmSpec,
    pollers: Sequence[Mapping[str, Any]],
    store: MetricStore,
    queue_depth: Callable[[str], float | None],
    now: float,
) -> float | None:
    """The alarm's metric on the local stack now (None: no data)."""
    if (alarm.namespace, alarm.metric_name) == ("AWS/Lambda", "IteratorAge"):
        return iterator_age_ms(pollers, alarm.dimension("FunctionName") or "", now)
    if (alarm.namespace, alarm.metric_name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
        return queue_depth(alarm.dimension("QueueName") or "")
    return store.statistic(
        alarm.namespace,
        alarm.metric_name,
        alarm.dimensions,
        alarm.statistic,
        since=now - alarm.period_seconds,
    )


def evaluate(alarm: AlarmSpec, value: float | None, subject: str) -> Signal:
    """The alarm's state for ``value``: its threshold, or ``TreatMissingData`` without a value."""
    if value is None:
        state = {"breaching": ALARM, "notBreaching": OK}.get(
            alarm.treat_missing_data, INSUFFICIENT_DATA
        )
    else:
        state = ALARM if alarm.breaches(value) else OK
    return Signal(
        alarm=alarm.logical_id,
        alarm_name=alarm.name,
        subject=subject,
        metric=f"{alarm.namespace} {alarm.metric_name}",
        dimensions=dict(alarm.dimensions),
        statistic=alarm.statistic,
        period_seconds=alarm.period_seconds,
        value=value,
        window="now"
        if (alarm.namespace, alarm.metric_name) in GAUGES
        else f"last {alarm.period_seconds} s",
        condition=alarm.condition(),
        threshold=alarm.threshold,
        state=state,
    )


def subject_of(alarm: AlarmSpec, services: Mapping[str, str]) -> str:
    """The function (by name or by Powertools service), queue or other thing the alarm watches."""
    dimensions = dict(alarm.dimensions)
    if "FunctionName" in dimensions:
        return dimensions["FunctionName"]
    if "service" in dimensions:
        return services.get(dimensions["service"], dimensions["service"])
    return next(iter(dimensions.values()), alarm.name)


def glue_signals(
    rules: Sequence[GlueFailureRule], triggers: Sequence[Mapping[str, Any]]
) -> list[Signal]:
    """Per rule and Glue trigger running its jobs: ALARM while the trigger's latest run failed."""
    signals = []
    for rule in rules:
        for trigger in triggers:
            if not set(trigger.get("jobs", [])) & set(rule.jobs):
                continue
            signals.append(
                Signal(
                    alarm=rule.logical_id,
                    alarm_name=trigger["name"],
                    subject=trigger["name"],
                    metric=GLUE_STATE_CHANGE,
                    dimensions={},
                    statistic="failed runs",
                    period_seconds=0,
                    value=float(trigger.get("failed_runs", 0)),
                    window="latest run",
                    condition="|".join(rule.states),
                    threshold=None,
                    state=ALARM if trigger.get("last_run_failed") else OK,
                )
            )
    return signals


def consumer_rows(pollers: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    """Per stream-consuming function: iterator age, records pending, errors, records given up."""
    rows: dict[str, dict[str, Any]] = {}
    for poller in pollers:
        function = poller["function"]
        if function not in rows:
            rows[function] = {
                "function": function,
                "shards": 0,
                "iterator_age_ms": iterator_age_ms(pollers, function, now),
                "pending": 0,
                "millis_behind_latest": 0,
                "records_done": 0,
                "function_errors": 0,
                "records_to_destination": 0,
            }
        row = rows[function]
        row["shards"] += 1
        row["millis_behind_latest"] = max(
            row["millis_behind_latest"], poller.get("millis_behind_latest", 0)
        )
        for key in ("pending", "records_done", "function_errors", "records_to_destination"):
            row[key] += poller.get(key, 0)
    return list(rows.values())


# ---------------------------------------------------------------------------- the daemon's part
class RecordingInvoker:
    """Invokes through ``inner`` and publishes what Lambda and CloudWatch Logs would."""

    def __init__(self, inner: Invoker, cloudwatch: LocalCloudWatch, function_name: str) -> None:
        self.inner = inner
        self.cloudwatch = cloudwatch
        self.function_name = function_name

    def invoke(self, event: Any) -> Invocation:
        """Invoke, then record the invocation's metrics."""
        outcome = self.inner.invoke(event)
        self.cloudwatch.record(self.function_name, outcome)
        return outcome

    def close(self) -> None:
        """Release the inner invoker."""
        self.inner.close()


class LocalCloudWatch:
    """The daemon's metrics (EMF and Lambda's ``Errors``) and the template's alarms on them."""

    def __init__(
        self,
        template: Template,
        sqs: Callable[[], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alarms = template_alarms(template)
        self.glue_rules = glue_failure_rules(template)
        self.request_filters = request_metrics_filters(template)
        self.services = function_services(template)
        self.store = MetricStore(max((a.period_seconds for a in self.alarms), default=0) + 3600.0)
        self._sqs_factory = sqs
        self._sqs: Any = None
        self._clock = clock

    def recording(self, invoker: Invoker, function_name: str) -> RecordingInvoker:
        """``invoker`` with its invocations' metrics recorded here."""
        return RecordingInvoker(invoker, self, function_name)

    def record(self, function_name: str, outcome: Invocation) -> None:
        """Keep an invocation's EMF datapoints, and its ``AWS/Lambda Errors`` (0 or 1)."""
        for document in outcome.metrics:
            for point in emf_datapoints(document):
                self.store.put(point, function_name)
        errors = Datapoint(
            "AWS/Lambda",
            "Errors",
            (("FunctionName", function_name),),
            0.0 if outcome.ok else 1.0,
            self._clock(),
        )
        self.store.put(errors, function_name)

    def object_stored(self, bucket: str, key: str) -> None:
        """Count one ``AWS/S3 PutRequests`` in every request-metrics filter the object is in."""
        for metrics_filter in self.request_filters:
            if metrics_filter.bucket == bucket and key.startswith(metrics_filter.prefix):
                dimensions = dimensions_of(
                    {"BucketName": bucket, "FilterId": metrics_filter.filter_id}
                )
                point = Datapoint("AWS/S3", "PutRequests", dimensions, 1.0, self._clock())
                self.store.put(point, bucket)

    def queue_depth(self, queue_name: str) -> float | None:
        """SQS ``ApproximateNumberOfMessages`` of the queue; None if it cannot be read."""
        try:
            if self._sqs is None:
                self._sqs = self._sqs_factory()
            url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (BotoCoreError, ClientError):
            return None
        return float(attributes["ApproximateNumberOfMessages"])

    def status(
        self, pollers: Sequence[Mapping[str, Any]], glue_triggers: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``signals`` (every alarm now), ``consumers`` and the functions' metric ``totals``."""
        now = self._clock()
        signals = [
            evaluate(
                alarm,
                measure(alarm, pollers, self.store, self.queue_depth, now),
                subject_of(alarm, self.services),
            )
            for alarm in self.alarms
        ] + glue_signals(self.glue_rules, glue_triggers)
        return {
            "signals": [asdict(signal) for signal in signals],
            "consumers": consumer_rows(pollers, now),
            "metrics": self.store.totals(),
        }


# ---------------------------------------------------------------------------- the CLI's part
def status_lines(status: Mapping[str, Any]) -> list[str]:
    """``local status`` lines: each stream consumer's progress, then every alarm's signal."""
    consumers, signals = status.get("consumers", []), status.get("signals", [])
    if not consumers and not signals:
        return []
    totals = status.get("metrics", {})
    lines = ["consumers:"]
    for row in consumers:
        published = totals.get(row["function"], {})
        late = _total(published, "LateEvents")
        quarantined = _total(published, "QuarantinedEvents") + _total(
            published, "DocumentsQuarantined"
        )
        lines.append(
            f"  {row['function']}: iterator age {_number(row['iterator_age_ms'])} ms,"
            f" {row['pending']:,} pending, {row['millis_behind_latest']:,} ms behind latest;"
            f" errors {row['function_errors']:,}, to on-failure {row['records_to_destination']:,},"
            f" late {late:,.0f}, quarantined {quarantined:,.0f}"
        )
    lines.append("alarms (the template's thresholds, evaluated now):")
    width = max((len(s["alarm_name"]) for s in signals), default=0)
    for signal in signals:
        lines.append(
            f"  {signal['state']:<5} {signal['alarm_name']:<{width}} {_number(signal['value']):>9}"
            f"  {signal['metric']} {signal['condition']} ({signal['window']})"
        )
    return lines


def _total(published: Mapping[str, Any], name: str) -> float:
    return float(published.get(name, {}).get("sum", 0.0))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
