"""OpenSearch stopped mid-run and restarted: the indexer catches up and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.core.search_documents import INDEX_PATTERN
from clickstream.generator import generate, send_events
from clickstream_analytics.reconcile import search_document_count, search_document_ids
from clickstream_local.moto_server import stop_process
from clickstream_local.opensearch import start_opensearch
from clickstream_local.stack import LocalStack, StackState

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[LocalStack, StackState]]:
    """A whole local stack (moto, OpenSearch, runner) with its own state folder."""
    local = LocalStack(home=tmp_path / "stack")
    state, _ = local.up()
    yield local, state
    local.down(keep_lake=False)


def send(state: StackState, seed: int, count: int) -> list[str]:
    """Send ``count`` classic events; returns their ids."""
    stream_name = state.template().resource("ClickstreamStream").physical_id
    events = list(generate("classic", seed=seed, start=datetime.now(UTC), rate=50, count=count))
    report = send_events(events, KinesisRecordStream(state.client("kinesis"), stream_name))
    assert report.accepted == count
    return [event.event_id for event in events]


def test_the_indexer_catches_up_after_an_opensearch_outage(
    stack: tuple[LocalStack, StackState],
) -> None:
    local, state = stack
    assert state.opensearch_url and state.opensearch_pid
    # GIVEN 150 events indexed while OpenSearch runs
    first = send(state, seed=1, count=150)
    local.drain(timeout=120)
    assert search_document_ids(state.search_client(), INDEX_PATTERN, first) == set(first)
    # WHEN OpenSearch stops, 150 more events arrive, and it comes back on the same port and data
    stop_process(state.opensearch_pid, timeout=30)
    second = send(state, seed=2, count=150)
    node = start_opensearch(
        local.home / "opensearch",
        local.logs / "opensearch.log",
        port=urlsplit(state.opensearch_url).port,
    )
    state.opensearch_pid = node.pid
    local.state_file.write_text(
        json.dumps({**json.loads(local.state_file.read_text()), "opensearch_pid": node.pid})
    )
    # THEN after a drain every event is searchable exactly once and nothing went to the queue
    local.drain(timeout=240)
    everything = first + second
    assert search_document_ids(state.search_client(), INDEX_PATTERN, everything) == set(everything)
    assert search_document_count(state.search_client(), INDEX_PATTERN) == 300
    indexer = [p for p in local.services_status()["pollers"] if "search-indexer" in p["function"]]
    assert sum(p["records_to_destination"] for p in indexer) == 0
    assert sum(p["records_done"] for p in indexer) == 300
    # AND the outage was real: the indexer saw failed invocations or reported failures meanwhile
    failures = sum(p["function_errors"] + p["partial_failures"] for p in indexer)
    assert failures > 0
