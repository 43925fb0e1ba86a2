"""CloudWatch Embedded Metric Format (EMF): taken from a function's output and read as datapoints.

Powertools' ``log_metrics`` prints each invocation's metrics as one JSON line on standard output
(``{"_aws": {"Timestamp": ..., "CloudWatchMetrics": [{"Namespace": ..., "Dimensions": [[...]],
"Metrics": [{"Name": ...}]}]}, "service": ..., "<Name>": [values]}``), which CloudWatch Logs
turns into metrics. The Lambda worker keeps those lines (:class:`MetricsTap`) and the local stack
reads them into datapoints (:func:`emf_datapoints`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

Dimensions = tuple[tuple[str, str], ...]
"""A metric's dimensions as sorted (name, value) pairs."""


def dimensions_of(values: Mapping[str, Any]) -> Dimensions:
    """``{"service": "x"}`` as sorted pairs, the form metrics are compared by."""
    return tuple(sorted((str(name), str(value)) for name, value in values.items()))


@dataclass(frozen=True)
class Datapoint:
    """One value of one metric, as CloudWatch stores it."""

    namespace: str
    name: str
    dimensions: Dimensions
    value: float
    timestamp: float
    """Seconds since the epoch."""


def emf_datapoints(document: Mapping[str, Any]) -> list[Datapoint]:
    """The datapoints of one EMF document: each metric once per dimension set, per value."""
    directives = document.get("_aws", {})
    if not isinstance(directives, Mapping):
        return []
    timestamp = float(directives.get("Timestamp", 0)) / 1000
    points: list[Datapoint] = []
    for directive in directives.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = dimensions_of({name: document.get(name, "") for name in dimension_set})
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"], [])
                for value in values if isinstance(values, list) else [values]:
                    points.append(
                        Datapoint(
                            directive["Namespace"],
                            metric["Name"],
                            dimensions,
                            float(value),
                            timestamp,
                        )
                    )
    return points


class MetricsTap:
    """A worker's standard output: every line goes on to ``log``; EMF documents are also kept.

    Powertools prints an invocation's metrics as one Embedded Metric Format line, which
    CloudWatch Logs turns into metrics; here the worker returns them with the invocation.
    """

    def __init__(self, log: TextIO) -> None:
        self._log = log
        self._line = ""
        self._documents: list[dict[str, Any]] = []

    def write(self, text: str) -> int:
        """Write ``text`` to the log, keeping each complete EMF line."""
        self._log.write(text)
        self._line += text
        *lines, self._line = self._line.split("\n")
        for line in lines:
            if line.startswith("{") and '"_aws"' in line:
                with contextlib.suppress(ValueError):
                    document = json.loads(line)
                    if isinstance(document, dict) and isinstance(document.get("_aws"), dict):
                        self._documents.append(document)
        return len(text)

    def take(self) -> tuple[dict[str, Any], ...]:
        """The EMF documents written since the last call."""
        documents, self._documents = tuple(self._documents), []
        return documents

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)
