"""The stack the read side talks to: physical ids, AWS clients, the ``sql/`` folder, search."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class AnalyticsError(RuntimeError):
    """A read could not be done; the message is one line for the user."""


class Stack(Protocol):
    """A deployed application the read side reads: local (emulated) or on AWS.

    The local stack's :class:`clickstream_local.stack.StackState` and
    :class:`clickstream_analytics.deployed.DeployedStack` implement it.
    """

    stack_name: str

    def physical_id(self, logical_id: str) -> str:
        """The physical id (name) of the template resource ``logical_id``."""
        ...

    def has_resource(self, logical_id: str) -> bool:
        """Whether the stack has the resource ``logical_id``."""
        ...

    def parameter(self, name: str) -> str:
        """The value the stack was deployed with for the template parameter ``name``."""
        ...

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` with the stack's endpoint, region and credentials."""
        ...

    def sql_folder(self) -> Path:
        """The folder of the ``sql/`` queries (the Athena named queries)."""
        ...

    def search_client(self) -> Any | None:
        """An OpenSearch client for the stack's search domain, or None without one."""
        ...
