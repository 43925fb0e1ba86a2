"""Glue job: raw JSON-lines events (``rawdata/``) to curated Parquet (``events/``).

Arguments: ``--source_bucket`` (the raw layer's bucket) and ``--curated_bucket``; optional
``--raw_prefix`` (``rawdata/``), ``--compression`` (``zstd``), and the ledger's
``--ledger_recent_hours`` (48) and ``--ledger_full_listing_hours`` (24).

Each run takes the raw objects no earlier run committed (the processed-input ledger), validates
every line with the domain's event parser, quarantines the lines that fail with their reason, and
merges the rest into hour partitions of event time, one row per ``event_id`` across all runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from clickstream_glue.args import resolve_options
from clickstream_glue.ledger import LEDGER_DEFAULTS, LedgerPolicy
from clickstream_glue.runtime import start_job

JOB_NAME = "raw_to_curated_events"
REQUIRED = ("source_bucket", "curated_bucket")
DEFAULTS = {
    "raw_prefix": "rawdata/",
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
    from clickstream_glue.tables import EVENTS

    report = run_incremental(
        job, JOB_NAME, [(options["raw_prefix"], EVENTS)], options["compression"], policy
    )
    print(json.dumps(report))
    job.commit()
    return report


if __name__ == "__main__":
    main()
