"""``clickstream cost``: the command on fixture results files, and the facts it reads from
``template.yaml`` (``clickstream_cli.cost``). The model's arithmetic is in test_cost_model.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from clickstream_cli.cost import (
    custom_metrics,
    deployment_from_template,
    schedule_minutes,
)
from clickstream_cli.cost_model import AutoScaling, CostModelError, Table
from clickstream_cli.main import main
from clickstream_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load(ROOT / "template.yaml")
PRICES = json.loads((ROOT / "bench" / "prices.json").read_text(encoding="utf-8"))
NAMED_QUERIES = [
    query.properties["Name"] for query in TEMPLATE.resources("AWS::Athena::NamedQuery")
]

FIGURES: dict[str, dict[str, float]] = {
    "stream": {
        "window_state_write_units_per_1000_events": 50,
        "window_result_write_units_per_1000_events": 80,
        "window_read_units_per_1000_events": 30,
        "window_requests_per_1000_events": 20,
        "session_writes_per_1000_events": 1012,
        "session_write_units_per_1000_events": 2000,
        "session_read_units_per_1000_events": 100,
        "session_requests_per_1000_events": 30,
    },
    "growth": {
        "window_counter_cpu_seconds_per_batch_500": 0.05,
        "sessionizer_cpu_seconds_per_batch_500": 0.05,
        "search_indexer_cpu_seconds_per_batch_500": 0.05,
        "glue_events_us_per_row_1m": 40,
    },
    "lake": {
        "raw_json_bytes_per_event": 204,
        "curated_events_zstd_bytes_per_event": 26,
        "events_job_incremental_run_seconds": 10,
        "events_job_incremental_run_rows": 10_000,
        "events_job_incremental_run_objects_written": 2,
        "minute_session_rows_per_1000_events": 500,
        "minute_session_csv_bytes_per_row": 100,
        "minute_session_puts_per_1000_events": 2,
        "minute_session_records_per_1000_events": 2,
        "gap_sessions_per_1000_events": 200,
        "gap_session_json_bytes_per_1000_events": 50_000,
        "gap_session_puts_per_1000_events": 10,
        "gap_session_records_per_1000_events": 10,
    },
    "scan": {
        "events": 1_000_000,
        "curated_minute_sessions_parquet_bytes": 5_000_000,
        "curated_gap_sessions_parquet_bytes": 5_000_000,
        **{f"scan_{name}_bytes_per_event": 4 for name in NAMED_QUERIES},
    },
    "search": {"bulk_docs_per_s": 10_000, "index_bytes_per_document": 150},
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder with one file per bench, in the shape ``bench/results.py`` writes."""
    folder = tmp_path / "results"
    folder.mkdir()
    for bench, figures in FIGURES.items():
        document = {
            "bench": bench,
            "measured_at": "2026-11-30T12:00:00+00:00",
            "command": f"bench/bench_{bench}.py",
            "figures": figures,
        }
        (folder / f"{bench}.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


def cost(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["cost", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_gives_every_component_the_total_and_the_capacity(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the cost at 1,000 events/s is asked for as JSON
    code, out, _ = cost(capsys, "--rate", "1000", "--results", str(results), "--json")
    # THEN it has the rate, the components, their total, the capacity and the sources
    assert code == 0
    document = json.loads(out)
    assert document["rate_events_per_s"] == 1000
    names = [component["name"] for component in document["components"]]
    assert names[0] == "Kinesis Data Streams"
    assert {"Lambda sessionizer", "DynamoDB session state", "Firehose raw", "Glue events job"} <= (
        set(names)
    )
    assert {"Firehose aggregated", "Firehose sessions", "Glue sessions job"} <= set(names)
    assert {"S3 storage", "Athena", "OpenSearch", "CloudWatch", "X-Ray"} <= set(names)
    total = sum(component["usd_per_month"] for component in document["components"])
    assert document["total_usd_per_month"] == pytest.approx(total, abs=0.01 * len(names))
    # AND the sessionizer at the template's 1,024 MB takes, per event, 0.1 ms of CPU x 1769 / 1024
    # and waits on 0.03 DynamoDB calls and 0.002 + 0.01 Firehose calls (per-minute rows, gap
    # sessions) at the prices file's latencies; the stream needs a shard per second of that work
    # per second
    latency = {name: entry["value"] for name, entry in PRICES["assumptions"].items()}
    milliseconds = (
        0.1 * 1769 / 1024
        + 0.03 * latency["dynamodb_call_latency_ms"]
        + (0.002 + 0.01) * latency["firehose_call_latency_ms"]
    )
    sessionizer = next(c for c in document["components"] if c["name"] == "Lambda sessionizer")
    assert sessionizer["quantities"]["ms_per_event"] == pytest.approx(milliseconds)
    shards = document["capacity"]["kinesis_shards"]
    needed = max(1, math.ceil(1000 * milliseconds / 1000))
    assert (shards["needed"], shards["available"]) == (needed, 2)
    assert document["components"][0]["quantities"]["shards"] == max(2, needed)
    # AND the sessionizer's writes per 1,000 events are the stream bench's
    assert document["sessionizer_writes_per_1000_events"] == 1012
    # AND each figure's file says when and how it was measured
    assert document["sources"]["stream"]["measured_at"] == "2026-11-30T12:00:00+00:00"
    assert document["sources"]["prices"]["region"] == "us-east-1"


def test_the_table_shows_each_component_the_total_and_the_capacity(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cost(capsys, "--rate", "10", "--results", str(results))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("monthly cost at 10 events/s")
    assert any(line.startswith("Kinesis Data Streams") for line in lines)
    (total,) = [line for line in lines if line.startswith("total ")]
    document = json.loads(cost(capsys, "--rate", "10", "--results", str(results), "--json")[1])
    assert total.split()[-1] == f"{document['total_usd_per_month']:,.2f}"
    assert any(line.startswith("kinesis_shards") for line in lines)
    assert any(line.startswith("largest: ") for line in lines)


def test_a_template_parameter_can_be_set_as_sam_deploy_would(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the stream is given 8 shards
    arguments = ["--rate", "10", "--results", str(results), "--json"]
    _, out, _ = cost(capsys, *arguments, "--parameter", "ShardCount=8")
    # THEN 8 shards are billed
    document = json.loads(out)
    assert document["capacity"]["kinesis_shards"]["available"] == 8
    assert document["components"][0]["quantities"]["shard_hours"] == 8 * 730


def test_the_month_billed_can_be_chosen(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the first month's bill and the 24th's are asked for
    arguments = ["--rate", "10", "--results", str(results), "--json"]
    first = json.loads(cost(capsys, *arguments, "--months", "1")[1])
    later = json.loads(cost(capsys, *arguments, "--months", "24")[1])

    # THEN the lake holds half a month of data in the first, 23.5 months in the 24th
    def stored(document: dict[str, Any]) -> float:
        (storage,) = [c for c in document["components"] if c["name"] == "S3 storage"]
        return float(storage["quantities"]["gb_stored"])

    assert stored(later) == pytest.approx(stored(first) * 23.5 / 0.5)
    assert first["sources"]["prices"]["assumptions"]["months_deployed"] == 1
    text = cost(capsys, "--rate", "10", "--results", str(results), "--months", "1")[1]
    assert "in month 1 after deployment" in text.splitlines()[0]


def test_a_missing_results_file_is_named_and_nothing_is_estimated(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no results of the stream bench yet
    (results / "stream.json").unlink()
    # WHEN the cost is asked for
    code, out, err = cost(capsys, "--rate", "10", "--results", str(results))
    # THEN the command fails naming the file and the script that writes it
    assert code == 1
    assert out == ""
    assert "stream.json is missing (written by bench/bench_stream.py)" in err


def test_a_missing_figure_is_named(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = results / "search.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["figures"]["index_bytes_per_document"]
    path.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = cost(capsys, "--rate", "10", "--results", str(results))
    assert code == 1
    assert "search.json has no index_bytes_per_document" in err


# --- what the template deploys ------------------------------------------------------------------


def test_the_deployment_is_read_from_the_template() -> None:
    deployment = deployment_from_template(TEMPLATE)
    parameters = TEMPLATE.parameters
    assert deployment.stream_mode == "PROVISIONED"
    assert deployment.shard_count == int(parameters["ShardCount"])
    for consumer in deployment.consumers.values():
        assert consumer.enhanced_fan_out
        assert consumer.traced == (parameters["ConsumerTracing"] == "Active")
        assert (consumer.batch_size, consumer.batching_window_seconds) == (500, 1)
        assert consumer.memory_mb == int(parameters["ConsumerMemorySize"])
    assert deployment.shared_readers == 1  # the raw delivery stream reads the stream
    # the Direct PUT streams of the per-minute rows and of the gap sessions buffer 60 s or 5 MiB
    for delivery in (deployment.aggregated_delivery, deployment.sessions_delivery):
        assert (delivery.interval_seconds, delivery.size_mb) == (60, 5)
    assert deployment.finalizer.runs_per_month == 43_800  # rate(1 minute)
    assert deployment.generator.runs_per_month == 0  # its schedule is off by default
    assert {table.billing_mode for table in deployment.tables.values()} == {"PROVISIONED"}
    assert deployment.events_workflow.worker_type == "G.1X"
    assert deployment.events_workflow.workers == int(parameters["GlueWorkers"])
    assert deployment.events_workflow.batch_size == int(parameters["GlueBatchSize"])
    assert deployment.sessions_workflow.batch_window_seconds == float(
        parameters["GlueBatchWindowSeconds"]
    )
    assert deployment.events_workflow.execution_class == parameters["GlueExecutionClass"]
    assert (
        deployment.events_workflow.source_prefixes,
        deployment.sessions_workflow.source_prefixes,
    ) == (1, 2)
    assert deployment.sessions_workflow.ledger_recent_hours == 48
    assert deployment.sessions_workflow.ledger_full_listing_hours == 24
    assert deployment.search.instance_type == parameters["SearchInstanceType"]
    assert deployment.alarms == len(TEMPLATE.resources("AWS::CloudWatch::Alarm"))
    assert deployment.lake_events_to_eventbridge  # the raw bucket's events start the workflows
    assert sorted(deployment.named_queries) == sorted(p.stem for p in (ROOT / "sql").glob("*.sql"))


def test_the_generator_runs_on_its_schedule_once_turned_on() -> None:
    template = Template.load(
        ROOT / "template.yaml",
        parameter_overrides={
            "GeneratorScheduleEnabled": "true",
            "GeneratorSchedule": "rate(5 minutes)",
        },
    )
    assert deployment_from_template(template).generator.runs_per_month == 730 * 60 / 5


def test_the_tables_are_auto_scaled_as_the_template_parameters_set_them() -> None:
    # GIVEN the template with its defaults, and with other capacity parameters
    default = deployment_from_template(TEMPLATE)
    other = deployment_from_template(
        Template.load(
            ROOT / "template.yaml",
            parameter_overrides={
                "TableMinCapacityUnits": "10",
                "TableMaxCapacityUnits": "500",
                "TableTargetUtilization": "50",
            },
        )
    )
    # THEN each table starts at the minimum, its reads and writes scaled between the bounds at
    # the target utilization
    scaling = AutoScaling(min_units=5, max_units=4000, target_utilization_percent=70)
    assert set(default.tables) == {"window_state", "window_results", "session_state"}
    for table in default.tables.values():
        assert table == Table("PROVISIONED", 5, 5, read_scaling=scaling, write_scaling=scaling)
    scaling = AutoScaling(min_units=10, max_units=500, target_utilization_percent=50)
    for table in other.tables.values():
        assert table == Table("PROVISIONED", 10, 10, read_scaling=scaling, write_scaling=scaling)


def test_on_demand_tables_are_read_from_the_billing_mode_parameter() -> None:
    # GIVEN the template with on-demand tables
    template = Template.load(
        ROOT / "template.yaml", parameter_overrides={"TableBillingMode": "PAY_PER_REQUEST"}
    )
    # THEN every table is billed per request, with nothing to scale
    tables = deployment_from_template(template).tables.values()
    assert list(tables) == [Table("PAY_PER_REQUEST")] * 3


def dynamodb_component(document: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in document["components"] if c["name"] == f"DynamoDB {name}"]
    return found


def test_the_command_bills_the_tables_at_what_auto_scaling_keeps_or_per_request(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN 50 window-state write units and 30 read units per 1,000 events, and the prices file
    prices = {name: entry["usd"] for name, entry in PRICES["prices"].items()}
    alarms = PRICES["assumptions"]["dynamodb_auto_scaling_alarms_per_policy"]["value"]
    # WHEN the cost at 1,000 events/s is asked for, with the template's defaults and on demand
    _, out, _ = cost(capsys, "--rate", "1000", "--results", str(results), "--json")
    provisioned = json.loads(out)
    _, out, _ = cost(
        capsys,
        *("--rate", "1000", "--results", str(results), "--json"),
        *("--parameter", "TableBillingMode=PAY_PER_REQUEST"),
    )
    on_demand = json.loads(out)
    # THEN auto scaling at 70 % keeps 50 / 0.7 = 71.4, so 72 WCU, and 30 / 0.7 = 42.9, so 43 RCU,
    # billed 730 hours (at 0.00065 and 0.00013 USD: 38.24 USD), plus the alarms of its 2
    # policies (4 each at 0.10 USD: 0.80 USD)
    window_state = dynamodb_component(provisioned, "window state")
    assert window_state["quantities"]["write_capacity_units"] == 72
    assert window_state["quantities"]["read_capacity_units"] == 43
    assert window_state["quantities"]["auto_scaling_alarms"] == 2 * alarms
    assert window_state["usd_per_month"] == pytest.approx(
        730 * (72 * prices["dynamodb_wcu_hour"] + 43 * prices["dynamodb_rcu_hour"])
        + 2 * alarms * prices["cloudwatch_alarm_month"],
        abs=0.005,
    )
    capacity = provisioned["capacity"]["dynamodb_window_state_writes"]
    assert (capacity["needed"], capacity["available"], capacity["within"]) == (50, 4000, True)
    # AND on demand the same units are billed per request: 50 x 2,628,000 write request units
    # at 0.625 USD per million and 30 x 2,628,000 read request units at 0.125 (91.98 USD)
    window_state = dynamodb_component(on_demand, "window state")
    assert window_state["quantities"]["write_request_units"] == 50 * 2_628_000
    assert window_state["usd_per_month"] == pytest.approx(
        50 * 2.628 * prices["dynamodb_write_request_units_per_million"]
        + 30 * 2.628 * prices["dynamodb_read_request_units_per_million"],
        abs=0.005,
    )


def test_schedules_are_read_as_rates_only() -> None:
    assert schedule_minutes("rate(1 minute)") == 1
    assert schedule_minutes("rate(2 hours)") == 120
    assert schedule_minutes("rate(1 day)") == 1440
    with pytest.raises(CostModelError, match="only rate"):
        schedule_minutes("cron(0 12 * * ? *)")


def test_custom_metrics_are_the_functions_own_dashboard_metrics_of_what_runs() -> None:
    # GIVEN a stream consumer and a scheduled function whose schedule is off, each with a
    # metric on the dashboard, and an AWS metric there too
    body = {
        "widgets": [
            {
                "properties": {
                    "metrics": [
                        ["Shop", "Late", "service", "counter"],
                        ["Shop", "Late", "service", "counter", {"stat": "Sum"}],
                        ["Shop", "Sent", "service", "producer"],
                        ["AWS/Lambda", "Errors", "FunctionName", "x"],
                    ]
                }
            }
        ]
    }
    template = Template(
        {
            "Globals": {
                "Function": {"Environment": {"Variables": {"POWERTOOLS_METRICS_NAMESPACE": "Shop"}}}
            },
            "Resources": {
                "Counter": function("counter", {"Type": "Kinesis", "Properties": {}}),
                "Producer": function(
                    "producer",
                    {
                        "Type": "Schedule",
                        "Properties": {"Schedule": "rate(1 minute)", "Enabled": False},
                    },
                ),
                "Board": {
                    "Type": "AWS::CloudWatch::Dashboard",
                    "Properties": {"DashboardBody": json.dumps(body)},
                },
            },
        }
    )
    # THEN one custom metric is billed: the consumer's, counted once
    assert custom_metrics(template) == 1


def function(service: str, event: dict[str, object]) -> dict[str, object]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": service}},
            "Events": {"Source": event},
        },
    }
