"""The lake on the local stack: S3 events start the Glue workflows, as EventBridge does on AWS."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.stack import LocalStack
from tests.e2e.test_local_stack_cli import run
from tests.factories import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack whose EVENT triggers fire on every new object (batch size 1, 5 s window)."""
    folder = tmp_path_factory.mktemp("lake-stack")
    previous = os.environ.pop("CLICKSTREAM_GLUE_TRIGGERS", None)
    try:
        run(
            folder,
            "local",
            "up",
            "--param",
            "GlueBatchSize=1",
            "--param",
            "GlueBatchWindowSeconds=5",
        )
    finally:
        if previous is not None:
            os.environ["CLICKSTREAM_GLUE_TRIGGERS"] = previous
    yield folder
    run(folder, "local", "down", "--discard-lake", check=False)


def raw_events_trigger(home: Path) -> dict[str, Any]:
    """The raw events workflow's EVENT trigger, as the stack daemon reports it."""
    status = LocalStack(home=home).services_status()
    return next(t for t in status["glue_triggers"] if "raw-events" in t["name"])


def test_new_raw_objects_are_curated_by_the_event_trigger(home: Path, tmp_path: Path) -> None:
    # GIVEN 300 generated events and a replay of 3 good events, one of them twice, and a bad line
    run(home, "generate", "--profile", "classic", "--count", "300", "--seed", "3")
    good = [
        {
            "event_id": f"00000000-0000-4000-8000-{n:012d}",
            "custid": n,
            "trafficfrom": "google",
            "url": "beer_cart",
            "device": "browser",
            "touchproduct": 9,
            "trans_timestamp": f"2026-03-07T14:0{n}:00.000001",
        }
        for n in range(1, 4)
    ]
    lines = [json.dumps(g) for g in [*good, good[0]]] + ['{"custid": 1, broken']
    replay_file = tmp_path / "events.jsonl"
    replay_file.write_text("\n".join(lines) + "\n")
    run(home, "replay", str(replay_file), "--include-invalid")
    # WHEN the stream is drained into rawdata/ (and nothing asks for a Glue run)
    run(home, "drain")
    # THEN the raw events workflow runs by itself and curates every distinct valid event
    state = LocalStack(home=home).running()
    wait_for(lambda: raw_events_trigger(home)["runs"] >= 1, timeout=300)
    wait_for(lambda: raw_events_trigger(home)["pending"] == 0, timeout=300)
    assert raw_events_trigger(home)["last_error"] is None
    curated = state.template().resource("CuratedBucket").physical_id
    ledger = state.client("s3").list_objects_v2(
        Bucket=curated, Prefix="_ledger/raw_to_curated_events/"
    )
    assert ledger["KeyCount"] >= 1
    # WHEN the stream ends and the remaining batches are curated on request
    run(home, "drain", "--close-windows")
    run(home, "drain")
    result = run(home, "curate")
    # THEN every layer reconciles exactly with its curated table, the bad line counted apart
    reconciliation = [line for line in result.stdout.splitlines() if " -> curated_" in line]
    assert len(reconciliation) == 3 and all(line.endswith("= exact") for line in reconciliation)
    raw_line = next(line for line in reconciliation if line.strip().startswith("rawdata/"))
    assert "305 lines, 1 rejected" in raw_line and "303 distinct event_id" in raw_line
    # ... and a named query runs on both engines with the same saved result
    spark_out, duck_out = tmp_path / "spark", tmp_path / "duckdb"
    run(home, "query", "top_products", "--engine", "spark", "--out", str(spark_out))
    run(home, "query", "top_products", "--engine", "duckdb", "--out", str(duck_out))
    spark_csv = (spark_out / "top_products.csv").read_text()
    assert spark_csv == (duck_out / "top_products.csv").read_text()
    assert spark_csv.splitlines()[0] == "touchproduct,accesses,customers"
    assert (spark_out / "top_products.sample.md").read_text().count("\n") == 12
