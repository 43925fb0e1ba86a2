"""Where benchmarks leave their figures (bench/results/<name>.json), read by the cost model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIRECTORY = Path(__file__).resolve().parent / "results"


def write_results(
    name: str, figures: dict[str, float], command: str, directory: Path = RESULTS_DIRECTORY
) -> Path:
    """Write one bench's figures (flat, numeric) with when and how they were measured."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {
        "bench": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "figures": {key: float(value) for key, value in figures.items()},
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_results(directory: Path = RESULTS_DIRECTORY) -> dict[str, dict[str, float]]:
    """Every bench's figures in ``directory``, by bench name."""
    found: dict[str, dict[str, float]] = {}
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        found[str(document["bench"])] = {k: float(v) for k, v in document["figures"].items()}
    return found
