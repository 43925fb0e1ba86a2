"""The processed-input ledger: which source objects a job has already turned into curated rows.

It replaces Glue job bookmarks, which track only DynamicFrame sources, and works the same on AWS
and locally. Its objects live under ``_ledger/<job>/`` in the curated bucket:

- ``days/<source prefix><YYYY/MM/DD>.json``: the keys of one source day that committed runs
  consumed, with their sizes and runs (``undated.json`` for keys outside ``YYYY/MM/DD/`` folders);
- ``runs/<run id>.json``: each committed run's inputs and counts, for people (no run reads them);
- ``state.json``: the newest source day recorded per prefix, and when a run last listed everything.

Sources are written under day folders (Firehose's arrival hour, for ``rawdata/``,
``aggregated/`` and ``sessions/`` alike), and nearly all of them under recent days. So a run
normally lists only the days from ``recent_hours`` before the newest recorded day (today at the
latest) with ``ListObjectsV2`` ``StartAfter``, and reads only those days' ledger objects: its
bookkeeping no longer grows with the deployment's age. Once ``full_listing_hours``
have passed since the last full listing, a run lists every source object and reads every day's
ledger object, which takes the rare object written into an older day.

Ledger objects are written last, after the curated data: a run that fails before that leaves the
ledger as it was, and the next run takes the same objects again (the merge is idempotent).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream_glue.store import ObjectStore, StoredObject

LEDGER_PREFIX = "_ledger/"
UNDATED = "undated"
"""The ledger day of keys that are not under a ``YYYY/MM/DD/`` folder of their prefix."""

DAY_FOLDER = re.compile(r"(\d{4})/(\d{2})/(\d{2})/")


def ledger_prefix(job_name: str) -> str:
    """Where one job's ledger objects live in the curated bucket."""
    return f"{LEDGER_PREFIX}{job_name}/"


def source_day(key: str, prefix: str) -> str:
    """``YYYY/MM/DD`` of a key under ``<prefix>YYYY/MM/DD/``, else :data:`UNDATED`."""
    match = DAY_FOLDER.match(key, len(prefix))
    return "/".join(match.groups()) if match else UNDATED


def unprocessed(listed: Iterable[StoredObject], processed: set[str]) -> list[StoredObject]:
    """The listed objects not yet processed, sorted by key; empty (zero-byte) objects included."""
    return sorted(obj for obj in listed if obj.key not in processed)


@dataclass(frozen=True)
class LedgerPolicy:
    """How far back a normal run lists, and how often a run lists everything."""

    recent_hours: float = 48.0
    """A normal run lists the days from this long before the newest recorded day."""
    full_listing_hours: float = 24.0
    """A run lists every source object when the last full listing is older than this (0: always)."""

    def __post_init__(self) -> None:
        if not (self.recent_hours >= 0 and self.full_listing_hours >= 0):
            raise ValueError(f"ledger hours must be numbers of at least 0: {self}")

    @classmethod
    def from_options(cls, options: dict[str, str]) -> LedgerPolicy:
        """From the job arguments ``--ledger_recent_hours`` and ``--ledger_full_listing_hours``."""
        names = ("ledger_recent_hours", "ledger_full_listing_hours")
        try:
            recent, full = (float(options[name]) for name in names)
        except ValueError as error:
            raise ValueError(f"--{names[0]} and --{names[1]} take hours: {error}") from None
        return cls(recent_hours=recent, full_listing_hours=full)


LEDGER_DEFAULTS = {"ledger_recent_hours": "48", "ledger_full_listing_hours": "24"}
"""The ledger's optional job arguments and their defaults."""


class ProcessedInputLedger:
    """The processed source keys of one job, per source day, in the curated bucket.

    Use: :meth:`pending` for each source prefix, curate what it returns, then :meth:`commit`
    once with everything consumed. One run at a time (the jobs' ``MaxConcurrentRuns`` is 1).
    """

    def __init__(
        self,
        store: ObjectStore,
        job_name: str,
        policy: LedgerPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.prefix = ledger_prefix(job_name)
        self.policy = policy or LedgerPolicy()
        self.started_at = clock()
        self.requests = {"list_pages": 0, "ledger_gets": 0, "ledger_puts": 0}
        """This run's requests: source listing pages, ledger reads and writes."""
        self.days: dict[tuple[str, str], dict[str, Any]] = {}
        """Ledger days read or written by this run: (source prefix, day) -> key -> entry."""
        self.state = self._read_json(self._state_key()) or {}
        self.full_listing = self._full_listing_due()

    def pending(self, source: ObjectStore, prefix: str) -> list[StoredObject]:
        """The objects under ``prefix`` no committed run consumed, sorted by key."""
        start_after = None if self.full_listing else f"{prefix}{self._first_recent_day(prefix)}"
        listed = source.list(prefix, start_after=start_after)
        self.requests["list_pages"] += max(1, -(-len(listed) // 1000))
        processed: set[str] = set()
        for day in sorted({source_day(obj.key, prefix) for obj in listed}):
            processed.update(self._day(prefix, day))
        return unprocessed(listed, processed)

    def commit(
        self,
        run_id: str,
        consumed: Sequence[tuple[str, Sequence[StoredObject]]],
        counts: dict[str, int],
    ) -> str | None:
        """Record the run's inputs per source prefix; returns its run entry's key, if any."""
        touched: set[tuple[str, str]] = set()
        newest = dict(self.state.get("newest_day", {}))
        for prefix, inputs in consumed:
            for obj in inputs:
                day = source_day(obj.key, prefix)
                self._day(prefix, day)[obj.key] = {"size": obj.size, "run": run_id}
                touched.add((prefix, day))
                if day != UNDATED and day > newest.get(prefix, ""):
                    newest[prefix] = day
        for prefix, day in sorted(touched):
            entries = dict(sorted(self.days[(prefix, day)].items()))
            body = {"source_prefix": prefix, "day": day, "objects": entries}
            self._write_json(self._day_key(prefix, day), body)
        run_entry = None
        if touched:
            run_entry = f"{self.prefix}runs/{run_id}.json"
            inputs = [
                {"key": obj.key, "size": obj.size} for _, objects in consumed for obj in objects
            ]
            self._write_json(
                run_entry,
                {
                    "run_id": run_id,
                    "committed_at": self.started_at.isoformat(timespec="seconds"),
                    "full_listing": self.full_listing,
                    "inputs": inputs,
                    "counts": counts,
                },
            )
        state = {**self.state, "newest_day": newest}
        if self.full_listing:
            state["listed_all_at"] = self.started_at.isoformat(timespec="seconds")
        if state != self.state:
            self._write_json(self._state_key(), state)
            self.state = state
        return run_entry

    # ---- internals

    def _full_listing_due(self) -> bool:
        listed_all_at = self.state.get("listed_all_at")
        if not listed_all_at:
            return True
        age = self.started_at - datetime.fromisoformat(listed_all_at)
        return age >= timedelta(hours=self.policy.full_listing_hours)

    def _first_recent_day(self, prefix: str) -> str:
        """The oldest day a normal run lists: ``recent_hours`` before the newest recorded day,
        or before today when that is later (a future-dated key cannot move the window)."""
        today = self.started_at.astimezone(UTC).date()
        newest = self.state.get("newest_day", {}).get(prefix)
        anchor = min(datetime.strptime(newest, "%Y/%m/%d").date(), today) if newest else today
        days_back = math.ceil(self.policy.recent_hours / 24)
        return (anchor - timedelta(days=days_back)).strftime("%Y/%m/%d")

    def _day(self, prefix: str, day: str) -> dict[str, Any]:
        if (prefix, day) not in self.days:
            stored = self._read_json(self._day_key(prefix, day))
            self.days[(prefix, day)] = dict(stored["objects"]) if stored else {}
        return self.days[(prefix, day)]

    def _day_key(self, prefix: str, day: str) -> str:
        return f"{self.prefix}days/{prefix}{day}.json"

    def _state_key(self) -> str:
        return f"{self.prefix}state.json"

    def _read_json(self, key: str) -> Any:
        self.requests["ledger_gets"] += 1
        body = self.store.get_if_exists(key)
        return None if body is None else json.loads(body)

    def _write_json(self, key: str, body: Any) -> None:
        self.requests["ledger_puts"] += 1
        self.store.put(key, json.dumps(body, separators=(",", ":")).encode("utf-8"))
