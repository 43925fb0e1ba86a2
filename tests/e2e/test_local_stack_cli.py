"""The whole local stack driven through the `clickstream` command, as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickstream.core.search_documents import INDEX_PATTERN
from clickstream_analytics.reconcile import (
    lake_event_ids,
    search_document_count,
    stream_event_ids,
)
from clickstream_local.provision import PROVISIONED_TYPES, Provisioner
from clickstream_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = str(Path(sys.executable).with_name("clickstream"))


def run(home: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI with its state under ``home``."""
    result = subprocess.run(
        [CLI, *arguments],
        env={**os.environ, "CLICKSTREAM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        pytest.fail(f"clickstream {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running local stack with its own state folder; stopped at the end."""
    folder = tmp_path_factory.mktemp("stack")
    run(folder, "local", "up")
    yield folder
    run(folder, "local", "down", check=False)


def search_documents(home: Path) -> int:
    """Documents in the running stack's event indices, after a refresh."""
    client = LocalStack(home=home).running().search_client()
    client.indices.refresh(index=INDEX_PATTERN, ignore_unavailable=True, allow_no_indices=True)
    return search_document_count(client, INDEX_PATTERN)


def raw_layer(home: Path) -> tuple[int, int]:
    state = LocalStack(home=home).running()
    bucket = state.template().resource("RawBucket").physical_id
    lake = lake_event_ids(state.client("s3"), bucket, "rawdata/")
    return lake.objects, lake.lines


def test_every_supported_template_resource_exists_after_local_up(home: Path) -> None:
    # GIVEN the stack started by `clickstream local up`
    state = LocalStack(home=home).running()
    template = state.template()
    provisioner = Provisioner(template, state.endpoint_url)
    # THEN every resource of a type the local stack provisions exists on the endpoint
    supported = [r for r in template.resources() if r.type in PROVISIONED_TYPES]
    missing = [r.logical_id for r in supported if not provisioner.exists(r)]
    assert supported and missing == []


def test_generate_replay_drain_reconcile_and_persist(home: Path, tmp_path: Path) -> None:
    # GIVEN 400 generated events and a replay file with 5 good and 5 bad lines
    generated = json.loads(
        run(home, "generate", "--profile", "classic", "--count", "400", "--seed", "11").stdout
    )
    assert generated["accepted"] == 400
    good = [
        {
            "event_id": f"00000000-0000-4000-8000-{n:012d}",
            "custid": n,
            "trafficfrom": "google",
            "url": "beer_cart",
            "device": "browser",
            "touchproduct": 7,
            "trans_timestamp": f"2026-03-07T14:0{n}:00.000001",
        }
        for n in range(1, 6)
    ]
    bad_lines = [
        b'{"event_id": "x", broken',
        json.dumps({"custid": 1}).encode(),
        json.dumps({**good[0], "custid": "seven"}).encode(),
        json.dumps({**good[0], "trafficfrom": "x" * 5000}).encode(),
        b'{"url": "\xff\xfe"}',
    ]
    lines = [json.dumps(good[0]).encode(), *bad_lines, *(json.dumps(g).encode() for g in good[1:])]
    replay_file = tmp_path / "events.jsonl"
    replay_file.write_bytes(b"\n".join(lines) + b"\n")
    # WHEN the file is replayed
    replayed = run(home, "replay", str(replay_file))
    # THEN each bad line is reported with its number and reason, and every good line is sent
    summary = json.loads(replayed.stdout)
    assert summary == {
        "lines": 10,
        "valid": 5,
        "rejected": 5,
        "sent": 5,
        "accepted": 5,
        "unaccepted": 0,
    }
    reasons = [line for line in replayed.stderr.splitlines() if "rejected" in line]
    assert [line.split(":")[1] for line in reasons] == ["2", "3", "4", "5", "6"]
    assert "malformed JSON" in reasons[0]
    assert "missing required field(s)" in reasons[1]
    assert "custid: expected integer, got string" in reasons[2]
    assert "over the 4096-byte limit" in reasons[3]
    assert "not valid UTF-8" in reasons[4]
    # WHEN the stack is drained
    run(home, "drain")
    # THEN stream records = raw lines = 405 and each event_id is in rawdata/ once
    result = run(home, "summary")
    assert "RECONCILED" in result.stdout
    assert "ACCOUNTED: records = quarantined + duplicates + counted + late: 405 = 0 + 0 + " in (
        result.stdout
    )
    state = LocalStack(home=home).running()
    stream = state.template().resource("ClickstreamStream").physical_id
    in_stream = stream_event_ids(state.client("kinesis"), stream)
    assert sum(in_stream.values()) == 405
    objects, lines_in_raw = raw_layer(home)
    assert lines_in_raw == 405 and objects >= 1
    documents = search_documents(home)
    assert documents == 405
    # WHEN the stack is stopped and started again
    run(home, "local", "down")
    down_status = run(home, "local", "status", check=False)
    assert down_status.returncode == 1
    assert down_status.stderr.strip().startswith(
        "clickstream: error: the local stack is not running"
    )
    run(home, "local", "up")
    # THEN the raw layer is still there, object for object, and so is every search document
    assert raw_layer(home) == (objects, lines_in_raw)
    assert search_documents(home) == documents


def test_help_documents_every_command() -> None:
    # WHEN asking for help
    text = subprocess.run([CLI, "--help"], capture_output=True, text=True, check=True).stdout
    # THEN every command is listed
    commands = ("local", "generate", "replay", "invoke", "drain", "summary", "demo")
    for command in (*commands, "curate", "catalog", "query", "report"):
        assert command in text


def test_the_scheduled_generator_function_runs_unchanged_on_the_local_stack(home: Path) -> None:
    # GIVEN the running stack and the sample scheduled event
    state = LocalStack(home=home).running()
    stream = state.template().resource("ClickstreamStream").physical_id
    before = sum(stream_event_ids(state.client("kinesis"), stream).values())
    sample = Path(__file__).resolve().parents[2] / "events" / "generator_schedule.json"
    # WHEN the template's GeneratorFunction is invoked with it, in a worker process
    result = run(
        home,
        "invoke",
        "GeneratorFunction",
        "-e",
        str(sample),
        "--env",
        "GENERATOR_COUNT=50",
        "--env",
        "GENERATOR_SEED=5",
    )
    # THEN the handler reports 50 accepted events, and they are in the stream
    report = json.loads(result.stdout)
    assert report["accepted"] == 50 and report["unaccepted"] == []
    assert sum(stream_event_ids(state.client("kinesis"), stream).values()) == before + 50


@pytest.fixture(scope="module")
def demo_runs(home: Path) -> tuple[subprocess.CompletedProcess[str], ...]:
    """The demo (what `make run` calls) run twice without a seed; its two outputs.

    It leaves the stack's stream ended and its lake curated: every window and session final.
    """
    return tuple(run(home, "demo", "--profile", "realistic", "--count", "150") for _ in range(2))


def test_the_demo_reconciles_every_time_it_runs(
    home: Path, demo_runs: tuple[subprocess.CompletedProcess[str], ...]
) -> None:
    # GIVEN a lake that already holds earlier runs
    # WHEN the demo runs twice without a seed
    first, second = demo_runs
    # THEN each run gets its own event_ids and reconciles on its own, stream and lake
    for result in (first, second):
        assert "RECONCILED: sent = stream records = raw lines" in result.stdout
        assert "raw lines beyond the records sent               0" in result.stdout
        reconciliation = [line for line in result.stdout.splitlines() if " -> curated_" in line]
        assert len(reconciliation) == 3
        assert all(line.endswith("= exact") for line in reconciliation), reconciliation
    # ... the second run started a fresh stream (the first one ended) on the same lake,
    # curated only its own raw objects, and its events made sessions again (none came late)
    assert "stream was ended; restarting it (the lake is kept)" in second.stdout
    curated = [line for line in second.stdout.splitlines() if "raw_to_curated_events" in line]
    assert curated and "150 rows added" in curated[0]
    minute = next(line for line in second.stdout.splitlines() if " minute_sessions " in line)
    assert int(minute.split("lines:")[1].split("rows added")[0].replace(",", "")) > 0
    # ... and task 1's top 10 is saved as CSV and Markdown
    sample = (home / "results" / "top_products.sample.md").read_text().splitlines()
    assert sample[0] == "| touchproduct | accesses | customers |" and len(sample) == 12
    # ... and the analytics report is written, with one PNG per chart beside it
    assert str(home / "report" / "report.html") in second.stdout
    assert len(list((home / "report").glob("*.png"))) == 5


def run_deployed(
    empty: Path, endpoint_url: str, stack_name: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """Run a read command against the stack as a deployed one: by its CloudFormation name, with
    no local state (an empty state folder and home) and only an endpoint and credentials."""
    environment = {
        **os.environ,
        "CLICKSTREAM_HOME": str(empty / "state"),
        "HOME": str(empty / "home"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        environment.pop(name, None)
    command = [CLI, "--stack", stack_name, "--region", "us-east-1", "--endpoint-url", endpoint_url]
    result = subprocess.run(
        [*command, *arguments], env=environment, capture_output=True, text=True, timeout=600
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"clickstream {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def report_numbers(folder: Path) -> str:
    """The report page without its images and build time: the numbers, tables and sentences."""
    page = (folder / "report.html").read_text()
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "PNG", page)
    return re.sub(r'<dd id="built-at">[^<]*</dd>', "", page)


def test_the_read_commands_read_the_stack_as_a_deployed_one(
    home: Path, demo_runs: tuple[subprocess.CompletedProcess[str], ...], tmp_path: Path
) -> None:
    # GIVEN a curated lake, and window results and sessions all final, on the local stack (the
    # demo ended its stream and curated the lake)
    state = LocalStack(home=home).running()
    empty = tmp_path / "no-local-state"
    (empty / "home").mkdir(parents=True)

    def both(*arguments: str) -> tuple[str, str]:
        local = run(home, *arguments, check=False)
        deployed = run_deployed(empty, state.endpoint_url, state.stack_name, *arguments)
        assert (deployed.returncode, deployed.stderr) == (local.returncode, local.stderr)
        return local.stdout, deployed.stdout

    # WHEN the report is built from the local stack, and from the stack found by its
    # CloudFormation name through the endpoint, with no local state at all
    local_report, deployed_report = tmp_path / "local-report", tmp_path / "deployed-report"
    local = run(home, "report", "--out", str(local_report))
    deployed = run_deployed(
        empty, state.endpoint_url, state.stack_name, "report", "--out", str(deployed_report)
    )
    # THEN both reports have the same numbers, tables, findings and charts
    assert deployed.returncode == 0, deployed.stderr
    assert "no events yet" not in local.stdout
    assert local.stdout.replace(str(local_report), "") == deployed.stdout.replace(
        str(deployed_report), ""
    )
    assert report_numbers(local_report) == report_numbers(deployed_report)
    assert sorted(p.name for p in local_report.glob("*.png")) == sorted(
        p.name for p in deployed_report.glob("*.png")
    )
    # ... and the deployed read kept its cache under the empty state folder, without a stack.json
    assert not (empty / "state" / "stack.json").exists()
    assert any((empty / "state" / "stacks" / "us-east-1" / state.stack_name / "duckdb").rglob("*"))
    # AND windows, sessions and the summary read the same rows
    for arguments in (
        ("windows", "--json"),
        ("windows", "--metric", "top-sources", "--json"),
        ("windows", "--size", "15s"),
        ("sessions", "--json"),
        ("sessions", "--kind", "gap", "--json"),
    ):
        local_out, deployed_out = both(*arguments)
        assert local_out == deployed_out, arguments
        assert local_out.strip() not in ("", "[]", "0 rows"), arguments
    local_out, deployed_out = both("summary")
    assert "RECONCILED" in local_out and "documents in OpenSearch" in local_out
    assert local_out == deployed_out
    # AND ad-hoc SQL over the raw JSON, task 1.1's CSV and a curated table gives on DuckDB over
    # the deployed stack's S3 what Spark SQL gives over the local Hive metastore
    statement = (
        "SELECT r.device, r.events, a.sessions, c.events AS curated"
        " FROM (SELECT device, COUNT(*) AS events FROM rawdata GROUP BY device) r"
        " JOIN (SELECT device, COUNT(DISTINCT sessionid) AS sessions FROM aggregated"
        " GROUP BY device) a ON a.device = r.device"
        " JOIN (SELECT device, COUNT(*) AS events FROM curated_events GROUP BY device) c"
        " ON c.device = r.device ORDER BY r.device"
    )
    spark = run(home, "query", "--sql", statement, "--engine", "spark", "--format", "csv")
    deployed = run_deployed(
        empty, state.endpoint_url, state.stack_name, "query", "--sql", statement, "--format", "csv"
    )
    assert deployed.returncode == 0, deployed.stderr
    assert spark.stdout == deployed.stdout
    assert spark.stdout.splitlines()[0] == "device,events,sessions,curated"
    assert len(spark.stdout.splitlines()) == 4
