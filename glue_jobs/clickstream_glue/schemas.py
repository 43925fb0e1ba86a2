"""The columns the parsers of :mod:`clickstream_glue.records` give, as Spark schemas.

One schema per curated table, in the parsers' column order. Timestamps are ``long`` epoch
microseconds here; the curated Parquet holds them as ``timestamp``
(:attr:`clickstream_glue.curate.CuratedTable.schema`). ``int`` is Parquet INT32, the lake's
bound for ``custid`` and ``touchproduct`` (:mod:`clickstream.core.schema`); the catalog's tables
in ``template.yaml`` declare the same columns, and ``tests/unit/test_schema.py`` holds the three
equal. Only ``pyspark.sql.types`` is needed, so this module loads without a JVM.
"""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

EVENT_SCHEMA = StructType(
    [
        StructField("event_id", StringType()),
        StructField("custid", IntegerType()),
        StructField("trafficfrom", StringType()),
        StructField("url", StringType()),
        StructField("device", StringType()),
        StructField("touchproduct", IntegerType()),
        StructField("trans_timestamp", LongType()),
    ]
)

MINUTE_SESSION_SCHEMA = StructType(
    [
        StructField("sessionid", StringType()),
        StructField("userid", IntegerType()),
        StructField("device", StringType()),
        StructField("aggreg_time", LongType()),
        StructField("events", IntegerType()),
        StructField("beginurl", StringType()),
        StructField("endurl", StringType()),
        StructField("begin_min_ss", StringType()),
        StructField("end_min_ss", StringType()),
        StructField("totaltime_sec", IntegerType()),
    ]
)

GAP_SESSION_SCHEMA = StructType(
    [
        StructField("session_id", StringType()),
        StructField("custid", IntegerType()),
        StructField("device", StringType()),
        StructField("session_start", LongType()),
        StructField("session_end", LongType()),
        StructField("trafficfrom", StringType()),
        StructField("entry_url", StringType()),
        StructField("exit_url", StringType()),
        StructField("page_count", IntegerType()),
        StructField("duration_seconds", DoubleType()),
        StructField("reached_checkout", BooleanType()),
    ]
)
