"""End-to-end fixtures: stacks run their Glue workflows only when a test asks for it."""

from __future__ import annotations

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
