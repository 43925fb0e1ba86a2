"""Glue job: sessions from the stream layer to curated Parquet.

- ``aggregated/`` (seed-compatible per-minute rows, RFC 4180 CSV without a header, read exactly
  as the sessionizer writes it) becomes ``minute_sessions/`` with the task's column names, one row
  per ``sessionid`` (the revision with the most events), partitioned by the hour of
  ``aggreg_time``;
- ``sessions/`` (30-minute gap sessions, JSON lines) becomes ``gap_sessions/``, one row per
  ``session_id`` (the one with the most pages), partitioned by the hour of ``session_start``.

Arguments: ``--source_bucket`` and ``--curated_bucket``; optional ``--aggregated_prefix``
(``aggregated/``), ``--sessions_prefix`` (``sessions/``), ``--compression`` (``zstd``), and the
ledger's ``--ledger_recent_hours`` (48) and ``--ledger_full_listing_hours`` (24).
Incremental and idempotent like the events job.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from clickstream_glue.args import resolve_options
from clickstream_glue.ledger import LEDGER_DEFAULTS, LedgerPolicy
from clickstream_glue.runtime import start_job

JOB_NAME = "aggregated_to_curated_sessions"
REQUIRED = ("source_bucket", "curated_bucket")
DEFAULTS = {
    "aggregated_prefix": "aggregated/",
    "sessions_prefix": "sessions/",
    "compression": "zstd",
    **LEDGER_DEFAULTS,
    "JOB_NAME": JOB_NAME,
    "JOB_RUN_ID": "",
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Resolve the arguments, run once, print the counts as JSON, commit the Glue job."""
    options = resolve_options(sys.argv if argv is None else argv, REQUIRED, DEFAULTS)
    policy = LedgerPolicy.from_options(options)
    job = start_job(JOB_NAME, options)
    # The tables' column expressions need the SparkContext start_job creates on Glue.
    from clickstream_glue.incremental import run_incremental
    from clickstream_glue.tables import GAP_SESSIONS, MINUTE_SESSIONS

    sources = [
        (options["aggregated_prefix"], MINUTE_SESSIONS),
        (options["sessions_prefix"], GAP_SESSIONS),
    ]
    report = run_incremental(job, JOB_NAME, sources, options["compression"], policy)
    print(json.dumps(report))
    job.commit()
    return report


if __name__ == "__main__":
    main()
