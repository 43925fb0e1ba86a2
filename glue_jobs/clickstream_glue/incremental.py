"""An incremental, idempotent job run: new source objects only, merged, then recorded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from clickstream_glue.curate import CuratedTable, curate
from clickstream_glue.ledger import LedgerPolicy, ProcessedInputLedger
from clickstream_glue.runtime import JobContext
from clickstream_glue.store import StoredObject


def run_incremental(
    job: JobContext,
    job_name: str,
    sources: Sequence[tuple[str, CuratedTable]],
    compression: str,
    policy: LedgerPolicy | None = None,
) -> dict[str, Any]:
    """Curate every unprocessed object under each source prefix into its table.

    The ledger is written only after every table is merged, so a failed run is retried whole
    on the same objects. Returns the counts per table (named by its folder) and the ledger's
    requests.
    """
    started = time.monotonic()
    ledger = ProcessedInputLedger(job.curated, job_name, policy)
    report: dict[str, Any] = {"job": job_name, "run_id": job.run_id, "tables": {}}
    consumed: list[tuple[str, list[StoredObject]]] = []
    for prefix, table in sources:
        inputs = ledger.pending(job.source, prefix)
        consumed.append((prefix, inputs))
        counts: dict[str, Any] = {
            "inputs": len(inputs),
            "input_bytes": sum(obj.size for obj in inputs),
        }
        readable = [obj.key for obj in inputs if obj.size > 0]
        if readable:
            quarantine = f"quarantine/{job_name}/{table.prefix}"
            counts |= curate(
                job.spark, job.source, job.curated, table, readable, quarantine, compression
            )
        report["tables"][table.prefix.rstrip("/")] = counts
    totals = {
        f"{name}.{key}": value
        for name, counts in report["tables"].items()
        for key, value in counts.items()
    }
    report["ledger_entry"] = ledger.commit(job.run_id, consumed, totals)
    report["full_listing"] = ledger.full_listing
    report["ledger_requests"] = ledger.requests
    report["seconds"] = round(time.monotonic() - started, 2)
    return report
