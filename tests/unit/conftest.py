"""Unit tests run on in-memory fakes only: any attempt to open a network connection fails.

The static checks of template.yaml share ``template``, the project's template as a plain document.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.cfn import load_template_document

# The sessionizer's shared helpers assert: rewrite them, as pytest does test modules, so that
# their failures show the values compared.
pytest.register_assert_rewrite("tests.support.sessionizer")

ROOT = Path(__file__).resolve().parents[2]


class NetworkBlocked(RuntimeError):
    """Raised when a unit test tries to reach the network."""


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*_: object, **__: object) -> None:
        raise NetworkBlocked("unit tests must not open sockets; use a fake or an integration test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The project's template.yaml as a plain document (intrinsics unresolved)."""
    return load_template_document(ROOT / "template.yaml")
