"""The curated tables: schema, key, partition time and which duplicate wins, per table."""

from __future__ import annotations

from pyspark.sql import functions as F

from clickstream_glue.curate import CuratedTable
from clickstream_glue.lake import ORIGIN
from clickstream_glue.records import event_row, gap_session_row, minute_session_row
from clickstream_glue.schemas import EVENT_SCHEMA, GAP_SESSION_SCHEMA, MINUTE_SESSION_SCHEMA

_ARRIVAL = (F.col("source"), F.col("line"))

EVENTS = CuratedTable(
    prefix="events/",
    key="event_id",
    parser=event_row,
    parsed_schema=EVENT_SCHEMA,
    timestamp_columns=("trans_timestamp",),
    partition_time="trans_timestamp",
    # A repeated event_id is the same event: the earliest copy wins, the curated one over all.
    batch_order=(F.col("trans_timestamp"), *_ARRIVAL),
    merge_order=(ORIGIN,),
    # Each session's events lie together (one custid, device and source): custid, device and
    # trafficfrom compress to runs and queries read fewer bytes (benchmarks.md, Bytes scanned).
    sort_by=("custid", "device", "trans_timestamp", "event_id"),
)

MINUTE_SESSIONS = CuratedTable(
    prefix="minute_sessions/",
    key="sessionid",
    parser=minute_session_row,
    parsed_schema=MINUTE_SESSION_SCHEMA,
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
    parsed_schema=GAP_SESSION_SCHEMA,
    timestamp_columns=("session_start", "session_end"),
    partition_time="session_start",
    batch_order=(F.col("page_count").desc(), F.col("session_end").desc(), *_ARRIVAL),
    merge_order=(F.col("page_count").desc(), F.col("session_end").desc(), ORIGIN),
    sort_by=("session_start", "custid", "device"),
)
