"""End-to-end fixtures: stacks run their Glue workflows only when a test asks for it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def glue_workflows_on_request() -> Iterator[None]:
    """``CLICKSTREAM_GLUE_TRIGGERS=manual`` for every stack the run starts.

    Stream tests then never share the cores with a Spark job started by a batch of lake objects;
    tests of the lake run the workflows explicitly (``clickstream curate``).
    """
    previous = os.environ.get("CLICKSTREAM_GLUE_TRIGGERS")
    os.environ["CLICKSTREAM_GLUE_TRIGGERS"] = "manual"
    yield
    if previous is None:
        os.environ.pop("CLICKSTREAM_GLUE_TRIGGERS", None)
    else:
        os.environ["CLICKSTREAM_GLUE_TRIGGERS"] = previous


@pytest.fixture(scope="session", autouse=True)
def no_access_denied_on_any_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every stack the end-to-end tests ran enforced IAM and refused nothing.

    Each ``local down`` saves the endpoint's decisions (``logs/iam-audit.json``); a refusal means
    a path the tests exercise would fail on AWS with the template's roles as written.
    """
    yield
    refused = [
        f"{audit.parent.parent.name}: {decision['role'].rsplit('/', 1)[-1]} "
        f"{decision['action']} on {decision['resource']} ({decision['decision']})"
        for audit in tmp_path_factory.getbasetemp().rglob("iam-audit.json")
        for decision in json.loads(audit.read_text())["decisions"]
        if decision["decision"] != "allow"
    ]
    assert refused == [], "\n".join(refused)
