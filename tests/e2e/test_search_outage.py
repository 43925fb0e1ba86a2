"""OpenSearch restarted, then unreachable mid-run: the indexer catches up and loses nothing.

The outage is made by the test, not timed: the search domain is pointed at a port where nothing
listens until the indexer has failed on the new events, then back at the node. Its length is
then a few retries, within the event source mapping's retry budget, however loaded the machine.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.core.search_documents import INDEX_PATTERN
from clickstream.generator import generate, send_events
from clickstream_analytics.reconcile import search_document_count, search_document_ids
from clickstream_analytics.shard_reader import ShardReader, list_shard_ids
from clickstream_local.aws import register_search_domain
from clickstream_local.moto_server import stop_process
from clickstream_local.opensearch import start_opensearch
from clickstream_local.stack import LocalStack, StackState
from tests.factories import wait_for

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


def kinesis_record_count(state: StackState) -> int:
    """Kinesis records in the stream, each holding one or several events."""
    kinesis = state.client("kinesis")
    stream = state.template().resource("ClickstreamStream").physical_id
    count = 0
    for shard_id in list_shard_ids(kinesis, stream):
        reader = ShardReader(kinesis, stream, shard_id, starting_position="TRIM_HORIZON")
        while True:
            batch, behind = reader.read(10_000)
            count += len(batch)
            if not batch and behind == 0:
                break
    return count


def indexer_pollers(local: LocalStack) -> list[dict[str, Any]]:
    """The search indexer's pollers, as the stack daemon reports them."""
    return [p for p in local.services_status()["pollers"] if "search-indexer" in p["function"]]


def indexer_failures(local: LocalStack) -> int:
    """Failed invocations and reported failures of the search indexer so far."""
    return sum(p["function_errors"] + p["partial_failures"] for p in indexer_pollers(local))


def point_domain_at(state: StackState, url: str) -> None:
    """Have the local endpoint forward the stack's search domain to ``url``."""
    (domain,) = state.template().resources("AWS::OpenSearchService::Domain")
    register_search_domain(
        state.endpoint_url, domain.physical_id, url, domain.properties.get("AccessPolicies", {})
    )


def test_the_indexer_catches_up_after_an_opensearch_outage(
    stack: tuple[LocalStack, StackState],
) -> None:
    local, state = stack
    assert state.opensearch_url and state.opensearch_pid and state.opensearch_folder
    # GIVEN 150 events indexed while OpenSearch runs
    first = send(state, seed=1, count=150)
    local.drain(timeout=120)
    assert search_document_ids(state.search_client(), INDEX_PATTERN, first) == set(first)
    # WHEN OpenSearch stops and comes back on the same port and data
    stop_process(state.opensearch_pid, timeout=30)
    node = start_opensearch(
        local.logs / "opensearch.log",
        folder=Path(state.opensearch_folder),
        port=int(state.opensearch_url.rsplit(":", 1)[1]),
    )
    state.opensearch_pid = node.pid
    local.state_file.write_text(
        json.dumps({**json.loads(local.state_file.read_text()), "opensearch_pid": node.pid})
    )
    # THEN the events indexed before are still there
    assert search_document_ids(state.search_client(), INDEX_PATTERN, first) == set(first)
    # WHEN the node is unreachable while 150 more events arrive, until the indexer has failed on
    # them (a bound socket that never listens refuses every connection), then reachable again
    failures_before = indexer_failures(local)
    with socket.socket() as unreachable:
        unreachable.bind(("127.0.0.1", 0))
        point_domain_at(state, f"http://127.0.0.1:{unreachable.getsockname()[1]}")
        second = send(state, seed=2, count=150)
        wait_for(lambda: indexer_failures(local) > failures_before, timeout=120)
        point_domain_at(state, node.url)
    # THEN after a drain every event is searchable exactly once and nothing went to the queue
    local.drain(timeout=240)
    everything = first + second
    assert search_document_ids(state.search_client(), INDEX_PATTERN, everything) == set(everything)
    assert search_document_count(state.search_client(), INDEX_PATTERN) == 300
    # (the events went packed, several to a Kinesis record: the runner counts records)
    indexer = indexer_pollers(local)
    assert sum(p["records_to_destination"] for p in indexer) == 0
    assert sum(p["records_done"] for p in indexer) == kinesis_record_count(state) < 300
