"""Each sample event in ``events/`` run with ``clickstream invoke -e``, as ``sam local invoke``.

Each function runs once in a worker process with its template role on a fresh local stack; the
test checks what each run wrote, not only that it returned.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream_analytics.reconcile import stream_records
from clickstream_local.stack import LocalStack, StackState

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
CLI = str(Path(sys.executable).with_name("clickstream"))


def clickstream(home: Path, *arguments: str) -> str:
    """Run the CLI with its state under ``home``; its standard output."""
    result = subprocess.run(
        [CLI, *arguments],
        env={**os.environ, "CLICKSTREAM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    if result.returncode != 0:
        pytest.fail(f"clickstream {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def invoke(home: Path, function: str, event: str) -> Any:
    """``clickstream invoke FUNCTION -e events/EVENT``: the handler's JSON response."""
    output = clickstream(home, "invoke", function, "-e", f"events/{event}")
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("sample-events")
    clickstream(folder, "local", "up")
    yield folder
    clickstream(folder, "local", "down")


def sample_lines(name: str) -> list[bytes]:
    """The decoded record data of a sample Kinesis event."""
    event = json.loads((EVENTS / name).read_text())
    return [base64.b64decode(record["kinesis"]["data"]) for record in event["Records"]]


def valid_events(name: str) -> list[dict[str, Any]]:
    events = []
    for line in sample_lines(name):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def quarantined(state: StackState, prefix: str) -> list[dict[str, Any]]:
    s3 = state.client("s3")
    bucket = state.template().resource("RawBucket").physical_id
    entries = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        entries.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return entries


def stream_event_count(state: StackState) -> int:
    """Events on the stream: one per line of each record (the generator packs them)."""
    stream = state.template().resource("ClickstreamStream").physical_id
    return len(stream_records(state.client("kinesis"), stream))


def test_every_sample_event_is_invoked_by_a_test() -> None:
    invoked = {
        "window_counter_kinesis.json",
        "sessionizer_kinesis.json",
        "finalizer_schedule.json",
        "finalizer_close_all.json",
        "search_indexer_kinesis.json",
        "generator_schedule.json",
    }
    assert {path.name for path in EVENTS.glob("*.json")} == invoked


def test_the_window_counter_counts_the_sample_and_quarantines_its_bad_record(home: Path) -> None:
    # GIVEN a fresh stack WHEN the window counter runs on its sample event
    state = LocalStack(home=home).running()
    response = invoke(home, "WindowCounterFunction", "window_counter_kinesis.json")
    # THEN the batch succeeded, the malformed record is quarantined with its reason
    assert response == {"batchItemFailures": []}
    entries = quarantined(state, "quarantine/window-counter/")
    assert [entry["data"].encode() for entry in entries] == [
        line
        for line in sample_lines("window_counter_kinesis.json")
        if line.startswith(b'{"event_id":"not')
    ]
    assert entries[0]["reason"].startswith("malformed JSON")
    # AND each url's unique users of the sample's minute are in the results table
    table = state.template().resource("WindowResultsTable").physical_id
    items = state.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    minute = {
        item["key"]["S"]: int(item["value"]["N"])
        for item in items
        if item["pk"]["S"] == "unique-users#60" and item["sk"]["S"].startswith("2026-03-07T14:05")
    }
    expected: dict[str, set[int]] = {}
    for event in valid_events("window_counter_kinesis.json"):
        if event["trans_timestamp"].startswith("2026-03-07T14:05"):
            expected.setdefault(event["url"], set()).add(event["custid"])
    assert minute == {url: len(custids) for url, custids in expected.items()}


def test_the_sessionizer_keeps_the_sample_open_and_the_finalizer_closes_it(home: Path) -> None:
    # GIVEN the sessionizer ran on its sample event
    state = LocalStack(home=home).running()
    assert invoke(home, "SessionizerFunction", "sessionizer_kinesis.json") == {
        "batchItemFailures": []
    }
    assert len(quarantined(state, "quarantine/sessionizer/")) == 1
    # WHEN the scheduled finalizer runs THEN the stream has not ended
    scheduled = invoke(home, "FinalizerFunction", "finalizer_schedule.json")
    assert scheduled["close_all"] is False
    # WHEN the finalizer ends the stream THEN every sample customer's gap session closes
    closed = invoke(home, "FinalizerFunction", "finalizer_close_all.json")
    assert closed["close_all"] is True
    customers = {(e["custid"], e["device"]) for e in valid_events("sessionizer_kinesis.json")}
    assert closed["gap_sessions_closed"] == len(customers)
    minutes = {
        (e["custid"], e["device"], e["trans_timestamp"][:16])
        for e in valid_events("sessionizer_kinesis.json")
    }
    assert closed["minute_sessions_closed"] == len(minutes)
    assert closed["rows_rewritten"] > 0


def test_the_search_indexer_indexes_the_sample(home: Path) -> None:
    # GIVEN a fresh stack WHEN the search indexer runs on its sample event
    state = LocalStack(home=home).running()
    response = invoke(home, "SearchIndexerFunction", "search_indexer_kinesis.json")
    # THEN nothing failed and both valid events are searchable by their ids
    assert response == {"batchItemFailures": []}
    ids = [event["event_id"] for event in valid_events("search_indexer_kinesis.json")]
    refresh = urllib.request.Request(
        f"{state.opensearch_url}/clickstream-*/_refresh", method="POST"
    )
    urllib.request.urlopen(refresh, timeout=30).close()
    query = json.dumps({"query": {"terms": {"event_id": ids}}, "size": 10}).encode()
    request = urllib.request.Request(
        f"{state.opensearch_url}/clickstream-*/_search",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        hits = json.loads(answer.read())["hits"]["hits"]
    assert sorted(hit["_source"]["event_id"] for hit in hits) == sorted(ids)


def test_the_generator_puts_its_scheduled_minute_on_the_stream(home: Path) -> None:
    # GIVEN the stream's records so far WHEN the generator runs on its schedule event
    state = LocalStack(home=home).running()
    before = stream_event_count(state)
    report = invoke(home, "GeneratorFunction", "generator_schedule.json")
    # THEN every event it sent was accepted and is on the stream
    assert report["sent"] > 0 and report["accepted"] == report["sent"]
    assert stream_event_count(state) == before + report["accepted"]
