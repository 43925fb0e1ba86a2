"""``clickstream cost --rate EVENTS_PER_S``: the monthly AWS cost of the template at a rate.

Reads the benchmarks' results (``bench/results/*.json``), the price book (``bench/prices.json``)
and what ``template.yaml`` deploys (:func:`deployment_from_template`), then prints the pure
model's estimate (:mod:`clickstream_cli.cost_model`) as a table, or as JSON with ``--json``.
The model and every formula: docs/cost.md.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clickstream_cli.common import key_value
from clickstream_cli.cost_model import (
    AutoScaling,
    CostEstimate,
    CostModelError,
    DeliveryBuffer,
    Deployment,
    GlueWorkflow,
    PriceBook,
    ScheduledFunction,
    SearchDomain,
    StreamConsumer,
    Table,
    estimate,
)
from clickstream_local.cfn import Resource, Template
from clickstream_local.stack import project_root

CONSUMER_FUNCTIONS = {
    "window_counter": "WindowCounterFunction",
    "sessionizer": "SessionizerFunction",
    "search_indexer": "SearchIndexerFunction",
}
TABLE_RESOURCES = {
    "window_state": "WindowStateTable",
    "window_results": "WindowResultsTable",
    "session_state": "SessionStateTable",
}
MINUTES_PER_MONTH = 730 * 60
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_MINUTES_PER_UNIT = {"minute": 1, "hour": 60, "day": 1440}


# --- results and prices -------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchResults:
    """Every results file of a folder: the figures by bench, and where each came from."""

    figures: dict[str, dict[str, float]]
    sources: dict[str, dict[str, str]]


def read_bench_results(directory: Path) -> BenchResults:
    """The ``<bench>.json`` files of ``directory`` (the shape ``bench/results.py`` writes)."""
    figures: dict[str, dict[str, float]] = {}
    sources: dict[str, dict[str, str]] = {}
    if not directory.is_dir():
        raise CostModelError(f"no bench results folder {directory} (make bench writes it)")
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or not isinstance(document.get("figures"), dict):
            raise CostModelError(f"{path} is not a bench results file (no figures)")
        bench = str(document.get("bench", path.stem))
        figures[bench] = {key: float(value) for key, value in document["figures"].items()}
        sources[bench] = {
            "file": str(path),
            "measured_at": str(document.get("measured_at", "")),
            "command": str(document.get("command", "")),
        }
    return BenchResults(figures, sources)


def read_price_book(path: Path) -> tuple[PriceBook, dict[str, str]]:
    """``bench/prices.json`` as a :class:`PriceBook`, and the date and region it was read for."""
    if not path.is_file():
        raise CostModelError(f"no prices file {path}")
    document = json.loads(path.read_text(encoding="utf-8"))
    try:
        book = PriceBook(
            prices={name: float(entry["usd"]) for name, entry in document["prices"].items()},
            instance_hour={
                name: float(usd)
                for name, usd in document["opensearch_instance_hour"][
                    "usd_by_instance_type"
                ].items()
            },
            limits={name: float(entry["value"]) for name, entry in document["limits"].items()},
            assumptions={
                name: float(entry["value"]) for name, entry in document["assumptions"].items()
            },
        )
    except (KeyError, TypeError) as error:
        raise CostModelError(
            f"{path}: not a prices file ({error!r} missing or malformed)"
        ) from None
    about = {
        "file": str(path),
        "region": str(document.get("region", "")),
        "read_on": str(document.get("read_on", "")),
    }
    return book, about


def with_months(book: PriceBook, months: float | None) -> PriceBook:
    """The book with ``months_deployed`` set to ``months`` when given."""
    if months is None:
        return book
    return replace(book, assumptions={**book.assumptions, "months_deployed": months})


# --- the template -------------------------------------------------------------------------------


def deployment_from_template(template: Template) -> Deployment:
    """What the template deploys, with its parameters' values (defaults or overrides)."""
    stream = template.resource("ClickstreamStream").properties
    consumers = {
        name: stream_consumer(template.resource(logical_id))
        for name, logical_id in CONSUMER_FUNCTIONS.items()
    }
    generator = template.resource("GeneratorFunction")
    return Deployment(
        stream_mode=str(stream.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")),
        shard_count=int(stream.get("ShardCount", 0)),
        retention_hours=float(stream.get("RetentionPeriodHours", 24)),
        consumers=consumers,
        shared_readers=sum(
            delivery.properties.get("DeliveryStreamType") == "KinesisStreamAsSource"
            for delivery in template.resources("AWS::KinesisFirehose::DeliveryStream")
        ),
        finalizer=scheduled_function(template.resource("FinalizerFunction")),
        generator=scheduled_function(generator),
        generator_events_per_run=int(
            generator.properties["Environment"]["Variables"]["GENERATOR_COUNT"]
        ),
        tables={
            name: table(template, template.resource(id_)) for name, id_ in TABLE_RESOURCES.items()
        },
        raw_delivery=delivery_buffer(template.resource("RawDeliveryStream")),
        aggregated_delivery=delivery_buffer(template.resource("AggregatedDeliveryStream")),
        sessions_delivery=delivery_buffer(template.resource("SessionsDeliveryStream")),
        events_workflow=glue_workflow(template, template.resource("RawEventsTrigger")),
        sessions_workflow=glue_workflow(template, template.resource("SessionsTrigger")),
        search=search_domain(template.resource("SearchDomain")),
        alarms=len(template.resources("AWS::CloudWatch::Alarm")),
        dashboards=len(template.resources("AWS::CloudWatch::Dashboard")),
        custom_metrics=custom_metrics(template),
        named_queries=tuple(
            str(query.properties["Name"]) for query in template.resources("AWS::Athena::NamedQuery")
        ),
        lake_events_to_eventbridge=bool(
            template.resource("RawBucket")
            .properties.get("NotificationConfiguration", {})
            .get("EventBridgeConfiguration", {})
            .get("EventBridgeEnabled", False)
        ),
        lake_intelligent_tiering=all(
            tiers_at_once(template.resource(bucket)) for bucket in ("RawBucket", "CuratedBucket")
        ),
    )


def tiers_at_once(bucket: Resource) -> bool:
    """Whether a bucket's lifecycle moves every object to S3 Intelligent-Tiering on day 0."""
    rules = bucket.properties.get("LifecycleConfiguration", {}).get("Rules", [])
    return any(
        rule.get("Status") == "Enabled"
        and not rule.get("Prefix")
        and not rule.get("Filter")
        and any(
            transition.get("StorageClass") == "INTELLIGENT_TIERING"
            and int(transition.get("TransitionInDays", -1)) == 0
            for transition in rule.get("Transitions", [])
        )
        for rule in rules
    )


def stream_consumer(function: Resource) -> StreamConsumer:
    """A function and its Kinesis event source mapping."""
    sources = [
        event["Properties"]
        for event in function.properties.get("Events", {}).values()
        if event["Type"] == "Kinesis"
    ]
    if len(sources) != 1:
        raise CostModelError(f"{function.logical_id} has {len(sources)} Kinesis event sources")
    (source,) = sources
    return StreamConsumer(
        memory_mb=int(function.properties.get("MemorySize", 128)),
        architecture=architecture(function),
        batch_size=int(source.get("BatchSize", 100)),
        batching_window_seconds=float(source.get("MaximumBatchingWindowInSeconds", 0)),
        parallelization_factor=int(source.get("ParallelizationFactor", 1)),
        enhanced_fan_out="/consumer/" in str(source["Stream"]),
        traced=function.properties.get("Tracing") == "Active",
    )


def architecture(function: Resource) -> str:
    (name,) = function.properties.get("Architectures", ["x86_64"])
    return str(name)


def scheduled_function(function: Resource) -> ScheduledFunction:
    """A function and how often its enabled schedules run it."""
    runs = 0.0
    for event in function.properties.get("Events", {}).values():
        if event["Type"] != "Schedule":
            continue
        properties = event["Properties"]
        if properties.get("Enabled", True) in (False, "false", "False"):
            continue
        runs += MINUTES_PER_MONTH / schedule_minutes(str(properties["Schedule"]))
    return ScheduledFunction(
        memory_mb=int(function.properties.get("MemorySize", 128)),
        architecture=architecture(function),
        runs_per_month=runs,
        traced=function.properties.get("Tracing") == "Active",
    )


def schedule_minutes(expression: str) -> float:
    """Minutes between runs of a ``rate(...)`` schedule expression."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise CostModelError(f"schedule {expression!r} is not modelled (only rate(...))")
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    return count * _MINUTES_PER_UNIT[unit]


def table(template: Template, resource: Resource) -> Table:
    """A table's billing mode; when provisioned, its capacity with its indexes', and the auto
    scaling of its reads and writes (a scalable target with a target tracking policy)."""
    properties = resource.properties
    mode = str(properties.get("BillingMode", "PROVISIONED"))
    if mode != "PROVISIONED":
        return Table(mode)
    indexes = properties.get("GlobalSecondaryIndexes", [])
    throughputs = [properties.get("ProvisionedThroughput", {})] + [
        index.get("ProvisionedThroughput", {}) for index in indexes
    ]
    scaling = table_scaling(template, resource.physical_id)
    if scaling and indexes:
        raise CostModelError(
            f"{resource.logical_id}: auto scaling of a table with global secondary indexes is not"
            " modelled (the stream bench does not split a table's units by index)"
        )
    return Table(
        mode,
        read_capacity_units=sum(float(t.get("ReadCapacityUnits", 0)) for t in throughputs),
        write_capacity_units=sum(float(t.get("WriteCapacityUnits", 0)) for t in throughputs),
        read_scaling=scaling.get("ReadCapacityUnits"),
        write_scaling=scaling.get("WriteCapacityUnits"),
    )


def table_scaling(template: Template, table_name: str) -> dict[str, AutoScaling]:
    """The target tracking of a table's ``ReadCapacityUnits`` and ``WriteCapacityUnits``: each
    scalable target of the table with its bounds and its lowest target value (Application Auto
    Scaling follows the policy that asks for the most capacity). A target without a target
    tracking policy does not scale."""
    targets = template.resources("AWS::ApplicationAutoScaling::ScalableTarget")
    key_of = {
        target.physical_id: (
            target.properties["ResourceId"],
            target.properties["ScalableDimension"],
        )
        for target in targets
    }
    target_values: dict[tuple[str, str], list[float]] = {}
    for policy in template.resources("AWS::ApplicationAutoScaling::ScalingPolicy"):
        properties = policy.properties
        if properties.get("PolicyType") != "TargetTrackingScaling":
            continue
        key = key_of.get(str(properties.get("ScalingTargetId"))) or (
            str(properties.get("ResourceId")),
            str(properties.get("ScalableDimension")),
        )
        tracking = properties["TargetTrackingScalingPolicyConfiguration"]
        target_values.setdefault(key, []).append(float(tracking["TargetValue"]))
    scaling: dict[str, AutoScaling] = {}
    for target in targets:
        resource_id, dimension = key_of[target.physical_id]
        values = target_values.get((resource_id, dimension))
        if resource_id != f"table/{table_name}" or not values:
            continue
        scaling[dimension.rsplit(":", 1)[1]] = AutoScaling(
            min_units=float(target.properties["MinCapacity"]),
            max_units=float(target.properties["MaxCapacity"]),
            target_utilization_percent=min(values),
        )
    return scaling


def delivery_buffer(resource: Resource) -> DeliveryBuffer:
    hints = resource.properties["ExtendedS3DestinationConfiguration"].get("BufferingHints", {})
    return DeliveryBuffer(
        interval_seconds=float(hints.get("IntervalInSeconds", 300)),
        size_mb=float(hints.get("SizeInMBs", 5)),
    )


LEDGER_ARGUMENTS = ("ledger_recent_hours", "ledger_full_listing_hours")
"""The Glue jobs' ledger arguments, which the template sets (``clickstream_glue.ledger``)."""


def glue_workflow(template: Template, trigger: Resource) -> GlueWorkflow:
    """An EVENT trigger's batching and the workers of the one job it starts."""
    properties = trigger.properties
    if properties.get("Type") != "EVENT":
        raise CostModelError(f"{trigger.logical_id} is not an EVENT trigger")
    (action,) = properties["Actions"]
    jobs = {job.physical_id: job for job in template.resources("AWS::Glue::Job")}
    job = jobs[str(action["JobName"])].properties
    batching = properties.get("EventBatchingCondition", {})
    arguments = {str(k): v for k, v in job.get("DefaultArguments", {}).items()}
    ledger = {name: arguments.get(f"--{name}") for name in LEDGER_ARGUMENTS}
    missing = [f"--{name}" for name, value in ledger.items() if value is None]
    if missing:
        raise CostModelError(f"{action['JobName']}: DefaultArguments lack {', '.join(missing)}")
    return GlueWorkflow(
        worker_type=str(job["WorkerType"]),
        workers=int(job["NumberOfWorkers"]),
        batch_size=int(batching.get("BatchSize", 1)),
        batch_window_seconds=float(batching.get("BatchWindow", 900)),
        execution_class=str(job.get("ExecutionClass", "STANDARD")),
        source_prefixes=sum(1 for name in arguments if name.endswith("_prefix")),
        ledger_recent_hours=float(ledger["ledger_recent_hours"]),
        ledger_full_listing_hours=float(ledger["ledger_full_listing_hours"]),
    )


def search_domain(resource: Resource) -> SearchDomain:
    cluster = resource.properties["ClusterConfig"]
    return SearchDomain(
        instance_type=str(cluster["InstanceType"]),
        instance_count=int(cluster.get("InstanceCount", 1)),
        volume_gib=float(resource.properties["EBSOptions"]["VolumeSize"]),
    )


def custom_metrics(template: Template) -> int:
    """The handlers' own metrics (the functions' metrics namespace) the dashboards show,
    without those of a function whose schedule is off: it publishes nothing."""
    globals_ = template.document.get("Globals", {}).get("Function", {})
    namespace = (
        globals_.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_METRICS_NAMESPACE")
    )
    silent = {
        function.properties["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME")
        for function in template.resources("AWS::Serverless::Function")
        if not any(
            event["Type"] == "Kinesis" for event in function.properties.get("Events", {}).values()
        )
        and scheduled_function(function).runs_per_month == 0
    }
    metrics: set[tuple[str, ...]] = set()
    for dashboard in template.resources("AWS::CloudWatch::Dashboard"):
        body = json.loads(dashboard.properties["DashboardBody"])
        for widget in body.get("widgets", []):
            for entry in widget.get("properties", {}).get("metrics", []):
                names = tuple(str(item) for item in entry if not isinstance(item, dict))
                if names and names[0] == namespace and not silent & set(names[3::2]):
                    metrics.add(names)
    return len(metrics)


# --- output -------------------------------------------------------------------------------------


def estimate_json(
    estimate_: CostEstimate, sources: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The estimate as ``--json`` prints it."""
    return {
        "rate_events_per_s": estimate_.rate_events_per_s,
        "total_usd_per_month": round(estimate_.total_usd_per_month, 2),
        "components": [
            {
                "name": component.name,
                "usd_per_month": round(component.usd_per_month, 2),
                "quantities": dict(component.quantities),
            }
            for component in estimate_.components
        ],
        "capacity": {
            name: {
                "needed": line.needed,
                "available": line.available,
                "unit": line.unit,
                "within": line.within,
                "note": line.note,
            }
            for name, line in estimate_.capacity.items()
        },
        "sessionizer_writes_per_1000_events": estimate_.sessionizer_writes_per_1000_events,
        "sources": dict(sources),
    }


def number(value: float) -> str:
    """A quantity for the table: thousands separators, at most 3 significant decimals."""
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def estimate_text(estimate_: CostEstimate, prices: Mapping[str, Any]) -> str:
    """The estimate as a table by component, the total, then the capacity lines."""
    total = estimate_.total_usd_per_month
    months = prices["assumptions"]["months_deployed"]
    lines = [
        f"monthly cost at {estimate_.rate_events_per_s:,g} events/s in month {months:g} after"
        f" deployment (730 hours; {prices['region']} list prices read on {prices['read_on']})",
        "",
        f"{'component':<30}{'USD/month':>12}  quantities per month",
    ]
    for component in estimate_.components:
        quantities = ", ".join(
            f"{key.replace('_', ' ')} {number(value)}"
            for key, value in component.quantities.items()
        )
        lines.append(f"{component.name:<30}{component.usd_per_month:>12,.2f}  {quantities}")
    lines.append(f"{'total':<30}{total:>12,.2f}")
    largest = estimate_.largest()
    lines.append(
        f"largest: {largest.name} ({largest.usd_per_month / total:.0%} of the total)"
        if total
        else "largest: none"
    )
    lines += ["", f"{'capacity':<36}{'needed':>14}{'available':>14}  unit"]
    for name, line in estimate_.capacity.items():
        flag = "" if line.within else "  EXCEEDED"
        lines.append(
            f"{name:<36}{number(line.needed):>14}{number(line.available):>14}  {line.unit}{flag}"
        )
        if line.note:
            lines.append(f"{'':<38}{line.note}")
    lines.append(
        f"sessionizer DynamoDB writes per 1,000 events: "
        f"{estimate_.sessionizer_writes_per_1000_events:,.1f}"
    )
    return "\n".join(lines)


# --- the command --------------------------------------------------------------------------------


def cmd_cost(arguments: argparse.Namespace) -> int:
    """``clickstream cost --rate EVENTS_PER_S [--json] [--results DIR] [--prices FILE]``."""
    results = read_bench_results(arguments.results)
    book, about = read_price_book(arguments.prices)
    book = with_months(book, arguments.months)
    prices = {**about, "assumptions": dict(book.assumptions)}
    template = Template.load(
        project_root() / "template.yaml", parameter_overrides=dict(arguments.parameter)
    )
    deployment = deployment_from_template(template)
    result = estimate(arguments.rate, results.figures, book, deployment)
    sources = {**results.sources, "prices": prices, "template": {"file": "template.yaml"}}
    if arguments.json:
        print(json.dumps(estimate_json(result, sources), indent=2))
    else:
        print(estimate_text(result, prices))
    return 0


def add_commands(commands: Any) -> None:
    """Register ``cost``."""
    root = project_root()
    parser = commands.add_parser(
        "cost",
        help="the monthly AWS cost of template.yaml at an event rate, by component",
        description="The monthly (730 h) AWS cost in USD of what template.yaml deploys, at"
        " EVENTS_PER_S events per second, by component, and the capacity the rate needs. Every"
        " per-event quantity comes from a benchmark's results file; prices, limits and"
        " assumptions from the prices file (docs/cost.md).",
    )
    parser.add_argument(
        "--rate", type=float, required=True, metavar="EVENTS_PER_S", help="events per second"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--results",
        type=Path,
        default=root / "bench" / "results",
        metavar="DIR",
        help="folder of the benchmarks' results files (default bench/results)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=root / "bench" / "prices.json",
        metavar="FILE",
        help="prices, limits and assumptions (default bench/prices.json)",
    )
    parser.add_argument(
        "--months",
        type=float,
        metavar="N",
        help="the bill of the Nth month after deployment, as the lake and the Glue ledger have"
        " grown by then (default: the prices file's months_deployed)",
    )
    parser.add_argument(
        "--parameter",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter's value instead of its default (repeatable)",
    )
    parser.set_defaults(handler=cmd_cost)
