"""The processed-input ledger on the local S3 API: the recent window's listing and reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from clickstream_glue.ledger import LedgerPolicy, ProcessedInputLedger
from clickstream_glue.store import S3Store
from clickstream_local.aws import local_client

JOB = "raw_to_curated_events"
RAW = "rawdata/"
NOW = datetime(2026, 3, 7, 14, 30, tzinfo=UTC)


def buckets(endpoint: str) -> tuple[S3Store, S3Store]:
    """A fresh source and curated bucket."""
    s3 = local_client("s3", endpoint)
    stores = []
    for role in ("raw", "curated"):
        name = f"ledger-{role}-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=name)
        stores.append(S3Store(s3, name))
    return stores[0], stores[1]


def commit_pending(source: S3Store, curated: S3Store, when: datetime) -> list[str]:
    """One run at ``when`` taking every pending raw object; the keys it took."""
    ledger = ProcessedInputLedger(curated, JOB, LedgerPolicy(), clock=lambda: when)
    pending = ledger.pending(source, RAW)
    ledger.commit(f"run-{when:%d%H%M}", [(RAW, pending)], {"rows": len(pending)})
    return [obj.key for obj in pending]


def test_runs_list_the_recent_days_and_a_full_listing_takes_a_late_old_object(
    moto_endpoint: str,
) -> None:
    # GIVEN 2,100 raw objects over 30 days (three listing pages), all taken by a first run
    source, curated = buckets(moto_endpoint)
    keys = [f"rawdata/{NOW - timedelta(hours=n / 3):%Y/%m/%d/%H}/o{n:04d}" for n in range(2100)]
    for key in keys:
        source.put(key, b"{}\n")
    assert commit_pending(source, curated, NOW) == sorted(keys)
    # WHEN a new object arrives today and one lands in a day three weeks back
    source.put("rawdata/2026/03/07/14/new", b"{}\n")
    source.put("rawdata/2026/02/14/09/late", b"{}\n")
    # THEN the next run lists from two days back only: one page, the state and 3 ledger days
    ledger = ProcessedInputLedger(curated, JOB, clock=lambda: NOW + timedelta(minutes=5))
    assert [obj.key for obj in ledger.pending(source, RAW)] == ["rawdata/2026/03/07/14/new"]
    assert ledger.requests == {"list_pages": 1, "ledger_gets": 4, "ledger_puts": 0}
    ledger.commit("run-2", [(RAW, ledger.pending(source, RAW))], {})
    # ... and the first run 24 hours after the full listing takes the late object
    assert commit_pending(source, curated, NOW + timedelta(hours=24)) == [
        "rawdata/2026/02/14/09/late"
    ]
    assert commit_pending(source, curated, NOW + timedelta(hours=24, minutes=5)) == []
