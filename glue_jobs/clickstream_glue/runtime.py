"""Where a job runs: AWS Glue (GlueContext, Job.init/commit) or plain PySpark locally.

The job code is the same in both places; only this adapter looks at whether ``awsglue`` is there.
Locally the caller builds the SparkSession first (s3:// on the local endpoint, Hive metastore),
and the job picks up that active session.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
from pyspark.sql import SparkSession

from clickstream_glue.store import S3Store


@dataclass
class JobContext:
    """A started job run: its Spark session, run id, stores and how to commit it."""

    spark: SparkSession
    run_id: str
    source: S3Store
    curated: S3Store
    commit: Callable[[], None]


def start_job(job_name: str, options: dict[str, str]) -> JobContext:
    """Start a run on Glue when ``awsglue`` is importable, else on the active local session."""
    s3 = boto3.client("s3")  # honours AWS_ENDPOINT_URL, which points it at a local endpoint
    source = S3Store(s3, options["source_bucket"])
    curated = S3Store(s3, options["curated_bucket"])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
    except ImportError:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        run_id = f"{stamp}-local-{uuid.uuid4().hex[:8]}"
        return JobContext(configured(spark), run_id, source, curated, commit=lambda: None)
    from pyspark.context import SparkContext

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(options.get("JOB_NAME", job_name), options)
    run_id = f"{stamp}-{options.get('JOB_RUN_ID') or uuid.uuid4().hex[:8]}"
    spark = configured(glue_context.spark_session)
    return JobContext(spark, run_id, source, curated, commit=job.commit)


def configured(spark: SparkSession) -> SparkSession:
    """The session with the jobs' write settings, the same on Glue and locally."""
    # INT64 microseconds, not Spark's legacy INT96: exact, smaller, and what Athena, DuckDB and
    # Parquet itself call a timestamp today.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    return spark
