"""The processed-input ledger: which source objects a job has already turned into curated rows.

Each successful run appends one JSON object, ``<prefix><run id>.json``, listing the keys (and
sizes) it consumed. A run reads the union of all entries, so it only ever takes objects no run
has committed. Entries are written last, after the curated data: a run that fails before that
leaves no entry, and the next run takes the same objects again (the merge is idempotent).
This replaces Glue job bookmarks, which track only DynamicFrame sources, and works the same on
AWS and locally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from clickstream_glue.store import ObjectStore, StoredObject

LEDGER_PREFIX = "_ledger/"


def ledger_prefix(job_name: str) -> str:
    """Where one job's entries live in the curated bucket."""
    return f"{LEDGER_PREFIX}{job_name}/"


def unprocessed(listed: Iterable[StoredObject], processed: set[str]) -> list[StoredObject]:
    """The listed objects not yet processed, sorted by key; empty (zero-byte) objects included."""
    return sorted(obj for obj in listed if obj.key not in processed)


class ProcessedInputLedger:
    """Append-only ledger of processed source keys for one job, in the curated bucket."""

    def __init__(self, store: ObjectStore, job_name: str) -> None:
        self.store = store
        self.prefix = ledger_prefix(job_name)

    def processed(self) -> set[str]:
        """Every key some committed run consumed."""
        keys: set[str] = set()
        for entry in self.store.list(self.prefix):
            keys.update(item["key"] for item in json.loads(self.store.get(entry.key))["inputs"])
        return keys

    def commit(self, run_id: str, inputs: Sequence[StoredObject], counts: dict[str, int]) -> str:
        """Record the run's inputs and counts; returns the entry's key."""
        key = f"{self.prefix}{run_id}.json"
        entry = {
            "run_id": run_id,
            "committed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inputs": [{"key": obj.key, "size": obj.size} for obj in inputs],
            "counts": counts,
        }
        self.store.put(key, json.dumps(entry, indent=1).encode("utf-8"))
        return key
