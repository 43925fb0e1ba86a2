"""The processed-input ledger: which source objects a job has already curated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from clickstream_glue.ledger import (
    LEDGER_DEFAULTS,
    LedgerPolicy,
    ProcessedInputLedger,
    ledger_prefix,
    source_day,
)
from clickstream_glue.store import ObjectStore, StoredObject

JOB = "raw_to_curated_events"
RAW = "rawdata/"
NOW = datetime(2026, 3, 7, 14, 30, tzinfo=UTC)


class MemoryStore(ObjectStore):
    """An in-memory bucket: key -> body, counting requests."""

    def __init__(self, bucket: str = "curated") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.gets: list[str] = []
        self.listings: list[tuple[str, str | None]] = []

    def list(self, prefix: str, start_after: str | None = None) -> list[StoredObject]:
        """Every object under ``prefix`` after ``start_after``, sorted by key."""
        self.listings.append((prefix, start_after))
        return sorted(
            StoredObject(key, len(body))
            for key, body in self.objects.items()
            if key.startswith(prefix) and (start_after is None or key > start_after)
        )

    def get(self, key: str) -> bytes:
        """The body of one object."""
        self.gets.append(key)
        return self.objects[key]

    def get_if_exists(self, key: str) -> bytes | None:
        """The body, or None."""
        return self.get(key) if key in self.objects else None

    def put(self, key: str, body: bytes) -> None:
        """Write one object."""
        self.objects[key] = body

    def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects; missing ones are fine."""
        for key in keys:
            self.objects.pop(key, None)


def source_with(*keys: str, size: int = 100) -> MemoryStore:
    """A source bucket holding objects of one size."""
    store = MemoryStore("raw")
    for key in keys:
        store.put(key, b"x" * size)
    return store


def ledger_at(curated: MemoryStore, when: datetime = NOW, **policy: float) -> ProcessedInputLedger:
    """A run's ledger started at ``when``."""
    return ProcessedInputLedger(curated, JOB, LedgerPolicy(**policy), clock=lambda: when)


def run(
    curated: MemoryStore, source: MemoryStore, when: datetime = NOW, **policy: float
) -> list[str]:
    """One run that takes and commits every pending raw object; the keys it took."""
    ledger = ledger_at(curated, when, **policy)
    pending = ledger.pending(source, RAW)
    ledger.commit(f"run-{when:%H%M%S}", [(RAW, pending)], {"rows": len(pending)})
    return [obj.key for obj in pending]


def test_source_day_is_the_day_folder_after_the_prefix() -> None:
    # GIVEN keys with and without YYYY/MM/DD/ folders
    # WHEN their days are read THEN dated keys give their day and the rest are undated
    assert source_day("rawdata/2026/03/07/14/a", RAW) == "2026/03/07"
    assert source_day("rawdata/manual.json", RAW) == "undated"
    assert source_day("rawdata/2026/3/7/a", RAW) == "undated"
    assert source_day("rawdata/x/2026/03/07/a", RAW) == "undated"


def test_first_run_lists_everything_and_takes_every_object_sorted() -> None:
    # GIVEN an empty ledger and dated, old and undated objects, zero-byte ones among them
    source = source_with("rawdata/2026/03/07/14/b", "rawdata/2025/01/01/00/old", "rawdata/x")
    source.put("rawdata/2026/03/07/14/empty", b"")
    curated = MemoryStore()
    ledger = ledger_at(curated)
    # WHEN it looks for pending objects
    pending = ledger.pending(source, RAW)
    # THEN it listed everything and returns every object, by key
    assert ledger.full_listing
    assert source.listings == [(RAW, None)]
    assert [obj.key for obj in pending] == [
        "rawdata/2025/01/01/00/old",
        "rawdata/2026/03/07/14/b",
        "rawdata/2026/03/07/14/empty",
        "rawdata/x",
    ]


def test_committed_objects_are_not_taken_again_and_new_ones_are() -> None:
    # GIVEN a committed run over two objects
    source = source_with("rawdata/2026/03/07/14/a", "rawdata/2026/03/07/14/b")
    curated = MemoryStore()
    assert run(curated, source) == ["rawdata/2026/03/07/14/a", "rawdata/2026/03/07/14/b"]
    # WHEN new objects arrive, out of key order, and the next run looks
    source.put("rawdata/2026/03/07/15/z", b"z")
    source.put("rawdata/2026/03/07/14/c", b"c")
    # THEN it takes only the new ones, by key; and a third run takes nothing
    later = NOW + timedelta(minutes=5)
    assert run(curated, source, later) == ["rawdata/2026/03/07/14/c", "rawdata/2026/03/07/15/z"]
    assert run(curated, source, later + timedelta(minutes=5)) == []


def test_a_run_that_never_committed_leaves_its_inputs_pending() -> None:
    # GIVEN a committed run, then a run that took an object and failed before committing
    source = source_with("rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source)
    source.put("rawdata/2026/03/07/14/b", b"b")
    failed = ledger_at(curated, NOW + timedelta(minutes=1))
    assert [obj.key for obj in failed.pending(source, RAW)] == ["rawdata/2026/03/07/14/b"]
    # WHEN the next run looks THEN it takes the failed run's object again
    assert run(curated, source, NOW + timedelta(minutes=2)) == ["rawdata/2026/03/07/14/b"]


def test_ledger_objects_per_day_run_and_state() -> None:
    # GIVEN a run over objects of two days, of different sizes
    source = MemoryStore("raw")
    source.put("rawdata/2026/03/06/23/a", b"a" * 2048)
    source.put("rawdata/2026/03/07/00/b", b"b" * 17)
    curated = MemoryStore()
    # WHEN it commits
    ledger = ledger_at(curated)
    pending = ledger.pending(source, RAW)
    entry = ledger.commit("jr_0123", [(RAW, pending)], {"rows": 40, "quarantined": 2})
    # THEN there is one object per source day, one for the run and the state
    prefix = ledger_prefix(JOB)
    assert entry == f"{prefix}runs/jr_0123.json"
    assert sorted(curated.objects) == [
        f"{prefix}days/rawdata/2026/03/06.json",
        f"{prefix}days/rawdata/2026/03/07.json",
        f"{prefix}runs/jr_0123.json",
        f"{prefix}state.json",
    ]
    day = json.loads(curated.objects[f"{prefix}days/rawdata/2026/03/07.json"])
    assert day == {
        "source_prefix": RAW,
        "day": "2026/03/07",
        "objects": {"rawdata/2026/03/07/00/b": {"size": 17, "run": "jr_0123"}},
    }
    record = json.loads(curated.objects[entry])
    assert record["inputs"] == [
        {"key": "rawdata/2026/03/06/23/a", "size": 2048},
        {"key": "rawdata/2026/03/07/00/b", "size": 17},
    ]
    assert record["counts"] == {"rows": 40, "quarantined": 2}
    assert record["committed_at"] == "2026-03-07T14:30:00+00:00"
    state = json.loads(curated.objects[f"{prefix}state.json"])
    assert state == {
        "newest_day": {RAW: "2026/03/07"},
        "listed_all_at": "2026-03-07T14:30:00+00:00",
    }


def test_a_normal_run_lists_and_reads_only_the_recent_days() -> None:
    # GIVEN a ledger of 40 days of objects, fully listed an hour ago
    days = [NOW - timedelta(days=n) for n in range(40)]
    source = source_with(*(f"rawdata/{day:%Y/%m/%d/%H}/a" for day in days))
    curated = MemoryStore()
    run(curated, source, NOW - timedelta(hours=1))
    # WHEN a new object arrives and the next run looks, with the default policy
    source.put("rawdata/2026/03/07/14/new", b"n")
    source.listings.clear()
    curated.gets.clear()
    ledger = ledger_at(curated)
    pending = ledger.pending(source, RAW)
    # THEN it lists from the day 48 hours before the newest day, and reads only the state and
    # those three days' ledger objects
    assert not ledger.full_listing
    assert [obj.key for obj in pending] == ["rawdata/2026/03/07/14/new"]
    assert source.listings == [(RAW, "rawdata/2026/03/05")]
    prefix = ledger_prefix(JOB)
    assert curated.gets == [
        f"{prefix}state.json",
        f"{prefix}days/rawdata/2026/03/05.json",
        f"{prefix}days/rawdata/2026/03/06.json",
        f"{prefix}days/rawdata/2026/03/07.json",
    ]


def test_an_object_written_into_an_old_day_waits_for_the_next_full_listing() -> None:
    # GIVEN a ledger fully listed at NOW
    source = source_with("rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source)
    # WHEN an object lands in a day ten days back
    source.put("rawdata/2026/02/25/09/late", b"l")
    # THEN runs within 24 hours of the full listing do not list it
    assert run(curated, source, NOW + timedelta(hours=23, minutes=59)) == []
    # ... and the first run after that lists everything and takes it
    assert run(curated, source, NOW + timedelta(hours=24)) == ["rawdata/2026/02/25/09/late"]
    # ... and records that listing: the next run is a normal one again
    assert not ledger_at(curated, NOW + timedelta(hours=25)).full_listing


def test_full_listing_hours_zero_lists_everything_on_every_run() -> None:
    # GIVEN a ledger fully listed a minute ago
    source = source_with("rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source, NOW - timedelta(minutes=1), full_listing_hours=0)
    source.put("rawdata/2020/01/01/00/old", b"o")
    # WHEN the next run looks with full_listing_hours 0 THEN it lists everything
    assert run(curated, source, full_listing_hours=0) == ["rawdata/2020/01/01/00/old"]


def test_the_window_follows_the_newest_recorded_day_not_the_clock() -> None:
    # GIVEN objects of March 2026 curated by a run in December (a replay of old data)
    source = source_with("rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    december = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    run(curated, source, december)
    # WHEN another object of that day arrives and a normal run looks
    source.put("rawdata/2026/03/07/15/b", b"b")
    ledger = ledger_at(curated, december + timedelta(minutes=5))
    # THEN it lists from two days before the newest recorded day and takes it
    assert [obj.key for obj in ledger.pending(source, RAW)] == ["rawdata/2026/03/07/15/b"]
    assert source.listings[-1] == (RAW, "rawdata/2026/03/05")


def test_a_future_dated_key_does_not_move_the_window_past_today() -> None:
    # GIVEN a run that curated an object dated 2099 besides today's
    source = source_with("rawdata/2099/01/01/00/future", "rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source)
    # WHEN a new object of today arrives and a normal run looks
    source.put("rawdata/2026/03/07/15/b", b"b")
    ledger = ledger_at(curated, NOW + timedelta(minutes=5))
    # THEN the window still starts two days before today, and the new object is taken
    assert [obj.key for obj in ledger.pending(source, RAW)] == ["rawdata/2026/03/07/15/b"]
    assert source.listings[-1] == (RAW, "rawdata/2026/03/05")


def test_undated_keys_are_always_listed_and_taken_once() -> None:
    # GIVEN an undated object curated by a first run
    source = source_with("rawdata/manual-upload.json", "rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source)
    # WHEN another undated object arrives and a normal run looks
    source.put("rawdata/more.json", b"m")
    # THEN it takes only the new one (keys after the digits sort after the window's start)
    assert run(curated, source, NOW + timedelta(minutes=5)) == ["rawdata/more.json"]


def test_a_run_that_takes_nothing_writes_no_run_entry() -> None:
    # GIVEN a committed run, then a normal run with nothing new
    source = source_with("rawdata/2026/03/07/14/a")
    curated = MemoryStore()
    run(curated, source)
    before = dict(curated.objects)
    ledger = ledger_at(curated, NOW + timedelta(minutes=5))
    # WHEN it commits nothing THEN it writes nothing
    assert ledger.commit("run-2", [(RAW, ledger.pending(source, RAW))], {}) is None
    assert curated.objects == before


def test_ledgers_of_different_jobs_do_not_share_keys() -> None:
    # GIVEN two jobs, one a prefix of the other's name, committing in one bucket
    source = source_with("aggregated/2026/03/07/14/a", "sessions/2026/03/07/14/b")
    curated = MemoryStore()
    for job, prefix in (("sessions", "aggregated/"), ("sessions_v2", "sessions/")):
        ledger = ProcessedInputLedger(curated, job, clock=lambda: NOW)
        ledger.commit("run-1", [(prefix, ledger.pending(source, prefix))], {})
    # WHEN each looks at the other's prefix THEN nothing of its own is recorded there
    for job, prefix in (("sessions", "sessions/"), ("sessions_v2", "aggregated/")):
        ledger = ProcessedInputLedger(curated, job, clock=lambda: NOW)
        assert len(ledger.pending(source, prefix)) == 1


def test_policy_from_job_arguments() -> None:
    # GIVEN the defaults, a custom pair and a bad value
    # WHEN policies are made from them THEN the values are hours, and bad ones are refused
    assert LedgerPolicy.from_options(LEDGER_DEFAULTS) == LedgerPolicy(48.0, 24.0)
    custom = {"ledger_recent_hours": "72", "ledger_full_listing_hours": "0"}
    assert LedgerPolicy.from_options(custom) == LedgerPolicy(72.0, 0.0)
    with pytest.raises(ValueError, match="take hours"):
        LedgerPolicy.from_options({**custom, "ledger_recent_hours": "two days"})
    with pytest.raises(ValueError, match="at least 0"):
        LedgerPolicy.from_options({**custom, "ledger_full_listing_hours": "-1"})
