"""The curated tables: schema, key, partition time and which duplicate wins, per table."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from clickstream_glue.curate import CuratedTable
from clickstream_glue.lake import ORIGIN
from clickstream_glue.records import event_row, gap_session_row, minute_session_row

_ARRIVAL = (F.col("source"), F.col("line"))

EVENTS = CuratedTable(
    prefix="events/",
    key="event_id",
    parser=event_row,
    parsed_schema=StructType(
        [
            StructField("event_id", StringType()),
            StructField("custid", IntegerType()),
            StructField("trafficfrom", StringType()),
            StructField("url", StringType()),
            StructField("device", StringType()),
            StructField("touchproduct", IntegerType()),
            StructField("trans_timestamp", LongType()),
        ]
    ),
    timestamp_columns=("trans_timestamp",),
    partition_time="trans_timestamp",
    # A repeated event_id is the same event: the earliest copy wins, the curated one over all.
    batch_order=(F.col("trans_timestamp"), *_ARRIVAL),
    merge_order=(ORIGIN,),
    sort_by=("trans_timestamp", "event_id"),
)

MINUTE_SESSIONS = CuratedTable(
    prefix="minute_sessions/",
    key="sessionid",
    parser=minute_session_row,
    parsed_schema=StructType(
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
    ),
    timestamp_columns=("aggreg_time",),
    partition_time="aggreg_time",
    # A late event revises a minute's row; events are only ever added, so the fullest wins.
    batch_order=(F.col("events").desc(), F.col("totaltime_sec").desc(), *_ARRIVAL),
    merge_order=(F.col("events").desc(), F.col("totaltime_sec").desc(), ORIGIN),
    sort_by=("aggreg_time", "userid", "device"),
)

GAP_SESSIONS = CuratedTable(
    prefix="gap_sessions/",
    key="session_id",
    parser=gap_session_row,
    parsed_schema=StructType(
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
    ),
    timestamp_columns=("session_start", "session_end"),
    partition_time="session_start",
    batch_order=(F.col("page_count").desc(), F.col("session_end").desc(), *_ARRIVAL),
    merge_order=(F.col("page_count").desc(), F.col("session_end").desc(), ORIGIN),
    sort_by=("session_start", "custid", "device"),
)
