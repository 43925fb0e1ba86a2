"""The processed-input ledger: which source objects a job has already curated."""

from __future__ import annotations

import json
from collections.abc import Sequence

from clickstream_glue.ledger import ProcessedInputLedger, ledger_prefix, unprocessed
from clickstream_glue.store import ObjectStore, StoredObject

JOB = "raw_to_curated_events"


class MemoryStore(ObjectStore):
    """An in-memory bucket: key -> body."""

    def __init__(self, bucket: str = "curated") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix``, sorted by key."""
        return sorted(
            StoredObject(key, len(body))
            for key, body in self.objects.items()
            if key.startswith(prefix)
        )

    def get(self, key: str) -> bytes:
        """The body of one object."""
        return self.objects[key]

    def put(self, key: str, body: bytes) -> None:
        """Write one object."""
        self.objects[key] = body

    def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects; missing ones are fine."""
        for key in keys:
            self.objects.pop(key, None)


def objects(*keys: str, size: int = 100) -> list[StoredObject]:
    """Stored objects of one size."""
    return [StoredObject(key, size) for key in keys]


def test_fresh_ledger_has_processed_nothing() -> None:
    # GIVEN an empty curated bucket
    ledger = ProcessedInputLedger(MemoryStore(), JOB)
    # WHEN the processed keys are read
    processed = ledger.processed()
    # THEN there are none, and every listed object is unprocessed
    assert processed == set()
    listed = objects("rawdata/b", "rawdata/a")
    assert unprocessed(listed, processed) == objects("rawdata/a", "rawdata/b")


def test_committed_keys_are_processed_and_only_new_keys_remain_sorted() -> None:
    # GIVEN a run that committed two inputs
    ledger = ProcessedInputLedger(MemoryStore(), JOB)
    ledger.commit("run-1", objects("rawdata/2026/03/07/a", "rawdata/2026/03/07/b"), {"rows": 9})
    # WHEN the next listing holds those two and three new objects, out of order
    listed = objects(
        "rawdata/2026/03/08/z",
        "rawdata/2026/03/07/b",
        "rawdata/2026/03/08/c",
        "rawdata/2026/03/07/a",
        "rawdata/2026/03/07/c",
    )
    remaining = unprocessed(listed, ledger.processed())
    # THEN the committed keys are processed and only the new ones are returned, by key
    assert ledger.processed() == {"rawdata/2026/03/07/a", "rawdata/2026/03/07/b"}
    assert [obj.key for obj in remaining] == [
        "rawdata/2026/03/07/c",
        "rawdata/2026/03/08/c",
        "rawdata/2026/03/08/z",
    ]


def test_two_commits_accumulate() -> None:
    # GIVEN two runs, each committing its own inputs
    store = MemoryStore()
    ProcessedInputLedger(store, JOB).commit("run-1", objects("rawdata/a"), {"rows": 1})
    ProcessedInputLedger(store, JOB).commit("run-2", objects("rawdata/b", "rawdata/c"), {})
    # WHEN a new ledger on the same bucket reads the processed keys
    processed = ProcessedInputLedger(store, JOB).processed()
    # THEN it is the union of both runs, each stored in its own entry
    assert processed == {"rawdata/a", "rawdata/b", "rawdata/c"}
    assert [obj.key for obj in store.list(ledger_prefix(JOB))] == [
        f"_ledger/{JOB}/run-1.json",
        f"_ledger/{JOB}/run-2.json",
    ]


def test_entry_json_holds_inputs_with_sizes_and_counts() -> None:
    # GIVEN a run over two inputs of different sizes
    store = MemoryStore()
    ledger = ProcessedInputLedger(store, JOB)
    inputs = [StoredObject("rawdata/a.json", 2048), StoredObject("rawdata/b.json", 17)]
    # WHEN it commits its counts
    key = ledger.commit("jr_0123", inputs, {"rows": 40, "quarantined": 2})
    # THEN the entry lives under the job's prefix and its JSON records exactly that
    assert key == f"_ledger/{JOB}/jr_0123.json"
    entry = json.loads(store.get(key))
    assert entry["run_id"] == "jr_0123"
    assert entry["inputs"] == [
        {"key": "rawdata/a.json", "size": 2048},
        {"key": "rawdata/b.json", "size": 17},
    ]
    assert entry["counts"] == {"rows": 40, "quarantined": 2}
    assert entry["committed_at"].endswith("+00:00")


def test_zero_byte_objects_are_unprocessed_and_then_recorded() -> None:
    # GIVEN a listing with an empty object among non-empty ones
    ledger = ProcessedInputLedger(MemoryStore(), JOB)
    listed = [StoredObject("rawdata/b", 0), StoredObject("rawdata/a", 512)]
    # WHEN the unprocessed objects are taken and committed
    remaining = unprocessed(listed, ledger.processed())
    ledger.commit("run-1", remaining, {"rows": 3})
    # THEN the empty object was returned, is now processed, and is not returned again
    assert remaining == [StoredObject("rawdata/a", 512), StoredObject("rawdata/b", 0)]
    assert ledger.processed() == {"rawdata/a", "rawdata/b"}
    assert unprocessed(listed, ledger.processed()) == []


def test_ledgers_of_different_jobs_do_not_share_keys() -> None:
    # GIVEN two jobs, one a prefix of the other's name, committing in one bucket
    store = MemoryStore()
    ProcessedInputLedger(store, "sessions").commit("run-1", objects("aggregated/a"), {})
    ProcessedInputLedger(store, "sessions_v2").commit("run-1", objects("sessions/b"), {})
    # WHEN each reads its processed keys
    # THEN each sees only its own
    assert ProcessedInputLedger(store, "sessions").processed() == {"aggregated/a"}
    assert ProcessedInputLedger(store, "sessions_v2").processed() == {"sessions/b"}


def test_a_run_that_never_committed_leaves_its_inputs_unprocessed() -> None:
    # GIVEN a committed run, then a run that failed before writing its entry
    ledger = ProcessedInputLedger(MemoryStore(), JOB)
    ledger.commit("run-1", objects("rawdata/a"), {"rows": 1})
    # WHEN the next run lists the bucket again
    remaining = unprocessed(objects("rawdata/a", "rawdata/b"), ledger.processed())
    # THEN it takes the failed run's object again
    assert remaining == objects("rawdata/b")
