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
from clickstream_cli.cost_model import CostModelError
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
        "gap_session_objects_per_1000_events": 10,
        "gap_session_json_bytes_per_1000_events": 50_000,
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
    assert {"S3 storage", "Athena", "OpenSearch", "CloudWatch", "X-Ray"} <= set(names)
    total = sum(component["usd_per_month"] for component in document["components"])
    assert document["total_usd_per_month"] == pytest.approx(total, abs=0.01 * len(names))
    # AND the sessionizer at the template's 256 MB takes, per event, 0.1 ms of CPU x 1769 / 256
    # and waits on 0.03 DynamoDB calls, 0.01 S3 PUT and 0.002 Firehose call at the prices
    # file's latencies; the stream needs a shard per second of that work per second
    latency = {name: entry["value"] for name, entry in PRICES["assumptions"].items()}
    milliseconds = (
        0.1 * 1769 / 256
        + 0.03 * latency["dynamodb_call_latency_ms"]
        + 0.01 * latency["s3_request_latency_ms"]
        + 0.002 * latency["firehose_call_latency_ms"]
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
        assert consumer.traced
        assert (consumer.batch_size, consumer.batching_window_seconds) == (500, 1)
        assert consumer.memory_mb == TEMPLATE.document["Globals"]["Function"]["MemorySize"]
    assert deployment.shared_readers == 1  # the raw delivery stream reads the stream
    assert deployment.finalizer.runs_per_month == 43_800  # rate(1 minute)
    assert deployment.generator.runs_per_month == 0  # its schedule is off by default
    assert {table.billing_mode for table in deployment.tables.values()} == {"PAY_PER_REQUEST"}
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
