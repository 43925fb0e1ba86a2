"""Fixtures of every tier: a test session never reaches the local stack a person runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``CLICKSTREAM_HOME`` is a folder of this session for the whole run.

    Tests give every stack they start a folder of their own; a command or ``LocalStack()`` that
    falls back to the default folder then lands here, never in the repository's ``.local/``,
    where the stack of ``make run`` may be running (and would be read, changed or stopped).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLICKSTREAM_HOME", str(tmp_path_factory.mktemp("clickstream-home")))
        yield
