"""The search indexer's Lambda handler on the sample event, with its ports replaced by fakes."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clickstream.adapters.aws.opensearch import TemplateOnFirstUse
from clickstream.adapters.kinesis_event import parse_lambda_record
from clickstream.ports import SearchIndexerPorts
from tests.support.metrics import emitted_metrics
from tests.support.search_indexer import REJECTED, FakeIndex, FakeQuarantine, index_batch

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "functions" / "search_indexer" / "app.py"
SAMPLE_EVENT = ROOT / "events" / "search_indexer_kinesis.json"


# ----------------------------------------------------------------------------------- handler
@dataclass
class LambdaContext:
    function_name: str = "clickstream-search-indexer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:clickstream-search-indexer"
    )
    aws_request_id: str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@pytest.fixture(scope="module")
def app() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClickstreamTest")
        patch.setenv("OPENSEARCH_URL", "http://127.0.0.1:9")
        patch.setenv("OPENSEARCH_AUTH", "none")
        patch.setenv("QUARANTINE_BUCKET", "lake")
        spec = importlib.util.spec_from_file_location("search_indexer_app", HANDLER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def sample_event() -> dict[str, Any]:
    return json.loads(SAMPLE_EVENT.read_text())


def test_sample_event_has_two_valid_events_and_a_malformed_one(
    sample_event: dict[str, Any],
) -> None:
    records = [p.record for r in sample_event["Records"] for p in parse_lambda_record(r)]
    assert len(records) == 3
    assert {r.shard_id for r in records} == {"shardId-000000000000"}
    assert [r.data.startswith(b'{"event_id"') for r in records] == [True, True, True]
    index = FakeIndex()
    outcome = index_batch(sample_event["Records"], index, FakeQuarantine())
    assert (outcome.indexed, outcome.quarantined) == (2, 1)


def test_handler_indexes_quarantines_and_reports_failures(
    app: ModuleType,
    sample_event: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the sample batch and an index that throttles its second event
    records = [p.record for r in sample_event["Records"] for p in parse_lambda_record(r)]
    second_id = json.loads(records[1].data)["event_id"]
    index = FakeIndex({second_id: (429, REJECTED)})
    quarantine = FakeQuarantine()
    monkeypatch.setattr(app, "ports", SearchIndexerPorts(index, quarantine))

    # WHEN the function is invoked
    response = app.lambda_handler(sample_event, LambdaContext())

    # THEN the throttled record is reported for retry, the malformed one quarantined
    assert response == {"batchItemFailures": [{"itemIdentifier": records[1].sequence_number}]}
    assert [r.sequence_number for r in quarantine.records] == [records[2].sequence_number]
    assert quarantine.records[0].reason.startswith("malformed JSON")
    # AND the metrics say so, with the batch's iterator age (the sample batch is old)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.pop("IteratorAge") > 0
    assert metrics == {"DocumentsIndexed": 1, "DocumentsQuarantined": 1, "DocumentsFailed": 1}


def test_handler_module_builds_a_templated_opensearch_index(app: ModuleType) -> None:
    assert isinstance(app.ports.index, TemplateOnFirstUse)
    assert app.settings.index_prefix == "clickstream-events"
    assert app.ports.quarantine.bucket == "lake"
