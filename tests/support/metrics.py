"""What a handler emitted as CloudWatch metrics, read from its standard output."""

from __future__ import annotations

import json


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric values from the Embedded Metric Format lines written to stdout."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "ClickstreamTest"
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values
