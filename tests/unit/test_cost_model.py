"""The cost model's arithmetic (``clickstream_cli.cost_model``), against hand-computed figures.

The deployment, the prices and the bench figures are small fixtures with round numbers, so each
expectation can be worked out by hand: the comment above it shows how. A month is 730 hours,
2,628,000 seconds.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from clickstream_cli.cost_model import (
    CONSUMERS,
    AutoScaling,
    CostEstimate,
    CostModelError,
    DeliveryBuffer,
    Deployment,
    GlueWorkflow,
    PriceBook,
    ScheduledFunction,
    SearchDomain,
    StreamConsumer,
    Table,
    estimate,
    events_per_record,
)

MONTH = 2_628_000
GIB = 1024**3

CONSUMER = StreamConsumer(
    memory_mb=1769,
    architecture="x86_64",
    batch_size=500,
    batching_window_seconds=1.0,
    parallelization_factor=1,
    enhanced_fan_out=True,
    traced=False,
)
DEPLOYMENT = Deployment(
    stream_mode="PROVISIONED",
    shard_count=1,
    retention_hours=24,
    consumers={
        "window_counter": CONSUMER,
        "sessionizer": CONSUMER,
        "search_indexer": CONSUMER,
    },
    shared_readers=1,
    finalizer=ScheduledFunction(1024, "x86_64", 0.0, traced=False),
    generator=ScheduledFunction(1024, "x86_64", 0.0, traced=False),
    generator_events_per_run=600,
    tables={
        name: Table("PAY_PER_REQUEST")
        for name in ("window_state", "window_results", "session_state")
    },
    raw_delivery=DeliveryBuffer(interval_seconds=60, size_mb=5),
    aggregated_delivery=DeliveryBuffer(interval_seconds=60, size_mb=5),
    sessions_delivery=DeliveryBuffer(interval_seconds=60, size_mb=5),
    events_workflow=GlueWorkflow("G.1X", workers=2, batch_size=100, batch_window_seconds=300),
    sessions_workflow=GlueWorkflow("G.1X", workers=2, batch_size=100, batch_window_seconds=300),
    search=SearchDomain("t3.small.search", instance_count=1, volume_gib=10),
    alarms=0,
    dashboards=0,
    custom_metrics=0,
    named_queries=("top_products",),
)

PRICES = {
    "kinesis_shard_hour": 0.01,
    "kinesis_put_payload_units_per_million": 1.0,
    "kinesis_extended_retention_shard_hour": 0.02,
    "kinesis_efo_consumer_shard_hour": 0.01,
    "kinesis_efo_gb": 0.01,
    "kinesis_on_demand_stream_hour": 0.04,
    "kinesis_on_demand_gb_written": 0.08,
    "kinesis_on_demand_gb_read": 0.04,
    "kinesis_on_demand_efo_gb": 0.05,
    "lambda_requests_per_million": 0.2,
    "lambda_gb_second_x86_64": 0.00001,
    "dynamodb_write_request_units_per_million": 0.625,
    "dynamodb_read_request_units_per_million": 0.125,
    "dynamodb_wcu_hour": 0.00065,
    "dynamodb_rcu_hour": 0.00013,
    "firehose_gb_ingested": 0.029,
    "s3_standard_gb_month": 0.023,
    "s3_intelligent_tiering_infrequent_gb_month": 0.0125,
    "s3_intelligent_tiering_archive_instant_gb_month": 0.004,
    "s3_intelligent_tiering_monitoring_per_thousand": 0.0025,
    "s3_transition_to_intelligent_per_thousand": 0.01,
    "s3_put_per_thousand": 0.005,
    "s3_get_per_thousand": 0.0004,
    "glue_dpu_hour": 0.44,
    "glue_flex_dpu_hour": 0.29,
    "athena_tb_scanned": 5.0,
    "opensearch_gp3_gb_month": 0.1,
    "cloudwatch_alarm_month": 0.1,
    "cloudwatch_dashboard_month": 3.0,
    "cloudwatch_metric_month": 0.3,
    "xray_traces_recorded_per_million": 5.0,
    "eventbridge_opt_in_events_per_million": 1.0,
}
LIMITS = {
    "kinesis_shard_write_bytes_per_s": 1_048_576,
    "kinesis_shard_write_records_per_s": 1000,
    "kinesis_shard_shared_read_bytes_per_s": 2_097_152,
    "kinesis_efo_read_bytes_per_s": 2_097_152,
    "kinesis_put_payload_unit_bytes": 25_600,
    "kinesis_on_demand_record_rounding_bytes": 1024,
    "lambda_memory_mb_per_vcpu": 1769,
    "dynamodb_partition_write_units_per_s": 1000,
    "dynamodb_partition_read_units_per_s": 3000,
    "firehose_record_rounding_bytes": 5120,
    "firehose_direct_put_bytes_per_s": 5_242_880,
    "glue_minimum_billed_seconds": 60,
    "glue_dpu_per_worker_g1x": 1,
    "athena_minimum_bytes_per_query": 10_485_760,
    "xray_sampling_reservoir_per_second": 1,
    "xray_sampling_fixed_rate": 0.05,
    "lambda_account_concurrency": 1000,
    "lambda_batch_payload_bytes": 6_291_456,
    "s3_intelligent_tiering_minimum_object_bytes": 131_072,
}
ASSUMPTIONS = {
    "months_deployed": 1,
    "dynamodb_call_latency_ms": 0,
    "s3_request_latency_ms": 0,
    "firehose_call_latency_ms": 0,
    "athena_runs_per_day_per_named_query": 1,
    "search_retention_days": 1,
    "search_storage_overhead_factor": 1.0,
    "glue_seconds_per_bench_second": 1.0,
    "finalizer_seconds_per_run": 1.0,
}
BOOK = PriceBook(PRICES, {"t3.small.search": 0.036}, LIMITS, ASSUMPTIONS)

RESULTS: dict[str, dict[str, float]] = {
    "stream": {
        "window_state_write_units_per_1000_events": 50,
        "window_result_write_units_per_1000_events": 80,
        "window_read_units_per_1000_events": 30,
        "window_requests_per_1000_events": 20,
        "session_writes_per_1000_events": 1000,
        "session_write_units_per_1000_events": 2000,
        "session_read_units_per_1000_events": 100,
        "session_requests_per_1000_events": 30,
    },
    "growth": {
        "window_counter_cpu_seconds_per_batch_500": 0.05,
        "sessionizer_cpu_seconds_per_batch_500": 0.05,
        "search_indexer_cpu_seconds_per_batch_500": 0.05,
        "glue_events_us_per_row_1m": 0.0,
    },
    "lake": {
        "raw_json_bytes_per_event": 200,
        "curated_events_zstd_bytes_per_event": 25,
        "events_job_incremental_run_seconds": 10,
        "events_job_incremental_run_rows": 10_000,
        "events_job_incremental_run_objects_written": 2,
        "minute_session_rows_per_1000_events": 500,
        "minute_session_csv_bytes_per_row": 100,
        "minute_session_puts_per_1000_events": 2,
        "minute_session_records_per_1000_events": 2,
        "gap_sessions_per_1000_events": 200,
        "gap_session_json_bytes_per_1000_events": 50_000,
        "gap_session_puts_per_1000_events": 5,
        "gap_session_records_per_1000_events": 10,
    },
    "scan": {
        "events": 1_000_000,
        "curated_minute_sessions_parquet_bytes": 5_000_000,
        "curated_gap_sessions_parquet_bytes": 5_000_000,
        "scan_top_products_bytes_per_event": 4,
    },
    "search": {"bulk_docs_per_s": 10_000, "index_bytes_per_document": 150},
}


def run(
    rate: float,
    deployment: Deployment = DEPLOYMENT,
    results: dict[str, dict[str, float]] | None = None,
    **assumptions: float,
) -> CostEstimate:
    book = replace(BOOK, assumptions={**ASSUMPTIONS, **assumptions})
    return estimate(rate, results or RESULTS, book, deployment)


def component(result: CostEstimate, name: str) -> tuple[float, dict[str, float]]:
    (found,) = [c for c in result.components if c.name == name]
    return found.usd_per_month, found.quantities


def with_figures(bench: str, **figures: float) -> dict[str, dict[str, float]]:
    return {**RESULTS, bench: {**RESULTS[bench], **figures}}


# --- Kinesis ------------------------------------------------------------------------------------


def test_events_per_record_follow_the_generators_flushes_over_the_shards() -> None:
    # GIVEN the generator's packing: flushes every 0.25 s or 500 events, records of 25,600 bytes
    # WHEN 4 events/s of 200 bytes go to one shard: a flush holds 1 + 4 x 0.25 = 2 on average
    # THEN a flush of k >= 1 events makes one record: 2 / (1 - e^-2) events a record
    assert events_per_record(4, 1, 200) == pytest.approx(2 / (1 - math.exp(-2)))
    # AND with events too big to share a record, every event is its own record
    assert events_per_record(1000, 2, 30_000) == pytest.approx(1.0)
    # AND a record never holds more events than fit in 25,600 bytes (128 of 200 bytes)
    assert events_per_record(100_000, 1, 200) <= 128


def test_the_stream_bills_put_payload_units_per_packed_record() -> None:
    # GIVEN 2,500 events/s of 200 bytes on a stream deployed with one shard
    result = run(2500)
    # THEN packed records need no extra shard: 2,500 events/s are 0.48 MiB/s
    quantities = component(result, "Kinesis Data Streams")[1]
    shards = quantities["shards"]
    assert result.capacity["kinesis_shards"].needed == shards
    per_record = events_per_record(2500, shards, 200)
    assert quantities["events_per_record"] == pytest.approx(per_record)
    # AND each record, under 25 KB, is one PUT payload unit; fan-out reads every event's bytes
    records = 2500 * MONTH / per_record
    assert quantities["put_payload_units"] == pytest.approx(records)
    assert quantities["gb_read_through_fan_out"] == pytest.approx(2500 * MONTH * 600 / GIB)
    assert records < 2500 * MONTH / 100


def test_the_shards_a_rate_needs_are_its_bytes_when_bytes_bind() -> None:
    # GIVEN 300 events/s of 5,000 bytes: 1.43 MiB/s written, 0.3 shard's worth of records
    results = with_figures("lake", raw_json_bytes_per_event=5000)
    # WHEN the cost is estimated
    result = run(300, results=results)
    # THEN the writes need ceil(1,500,000 / 1,048,576) = 2 shards
    assert result.capacity["kinesis_shards"].needed == 2


def test_a_stream_deployed_with_more_shards_than_needed_is_billed_for_them() -> None:
    # GIVEN a stream of 4 shards and 10 events/s
    # WHEN the cost is estimated
    result = run(10, replace(DEPLOYMENT, shard_count=4))
    # THEN one shard would do, but the 4 deployed are billed
    assert result.capacity["kinesis_shards"].needed == 1
    assert component(result, "Kinesis Data Streams")[1]["shard_hours"] == 4 * 730


def test_a_consumer_that_cannot_keep_up_with_one_shard_needs_more_shards() -> None:
    # GIVEN a sessionizer at 128 MB: 100 µs of CPU per event stretched 1769/128 times, 1.38 ms
    consumers = {**DEPLOYMENT.consumers, "sessionizer": replace(CONSUMER, memory_mb=128)}
    # WHEN 1,000 events/s arrive (exactly one shard's records)
    result = run(1000, replace(DEPLOYMENT, consumers=consumers))
    # THEN one shard's consumer would be busy 1.38 s per second: the stream needs 2 shards,
    # and the per-shard load of the 2 is 0.69 s per second
    assert result.capacity["kinesis_shards"].needed == 2
    busy = result.capacity["sessionizer_busy_per_shard"]
    assert busy.needed == pytest.approx(500 * 0.0001 * 1769 / 128)
    assert busy.within


def test_an_on_demand_stream_is_billed_per_stream_hour_and_per_kb_rounded_record() -> None:
    # GIVEN an on-demand stream and 10 events/s of 200 bytes, packed 2.5 / (1 - e^-3.5) a record
    # (flushes of 3.5 events on average, on one shard)
    result = run(10, replace(DEPLOYMENT, stream_mode="ON_DEMAND"))
    per_record = 3.5 / (1 - math.exp(-3.5))
    # THEN each record (under 1 KB) is written as 1 KB; one polling reader and three fan-out
    # readers read every event's bytes
    usd, quantities = component(result, "Kinesis Data Streams (on-demand)")
    records = 10 * MONTH / per_record
    events = 10 * MONTH
    assert quantities["gb_written"] == pytest.approx(records * 1024 / GIB)
    assert quantities["gb_read_by_polling_readers"] == pytest.approx(events * 200 / GIB)
    assert quantities["gb_read_through_fan_out"] == pytest.approx(events * 600 / GIB)
    expected = (
        730 * 0.04 + records * 1024 / GIB * 0.08 + events * 200 / GIB * 0.04
    ) + events * 600 / GIB * 0.05
    assert usd == pytest.approx(expected)


# --- Lambda -------------------------------------------------------------------------------------


def test_a_function_below_1769_mb_takes_longer_in_proportion_to_its_memory() -> None:
    # GIVEN a window counter at 256 MB whose core takes 0.05 s of CPU per batch of 500
    consumers = {**DEPLOYMENT.consumers, "window_counter": replace(CONSUMER, memory_mb=256)}
    # WHEN 1,000 events/s arrive on one shard (a 1 s window of packed records, 1 invocation a
    # second of 1,000 events)
    result = run(1000, replace(DEPLOYMENT, consumers=consumers))
    # THEN an event takes 100 µs x 1769 / 256 = 691 µs, a batch 691.02 ms (billed 692 ms)
    usd, quantities = component(result, "Lambda window counter")
    assert quantities["ms_per_event"] == pytest.approx(0.1 * 1769 / 256)
    invocations = MONTH
    assert quantities["invocations"] == invocations
    assert quantities["gb_seconds"] == pytest.approx(invocations * 0.692 * 0.25)
    assert usd == pytest.approx(invocations / 1e6 * 0.2 + invocations * 0.692 * 0.25 * 0.00001)


def test_the_calls_a_consumer_waits_on_add_their_latency_to_each_event() -> None:
    # GIVEN 20 DynamoDB calls per 1,000 events for the window counter, 10 ms each
    # WHEN the cost is estimated at 1,000 events/s
    result = run(1000, dynamodb_call_latency_ms=10)
    # THEN an event takes 100 µs of CPU and 0.02 x 10 ms of waiting: 0.3 ms
    assert component(result, "Lambda window counter")[1]["ms_per_event"] == pytest.approx(0.3)
    # AND the sessionizer waits on its 30 DynamoDB calls per 1,000 events
    sessionizer = component(result, "Lambda sessionizer")[1]
    assert sessionizer["ms_per_event"] == pytest.approx(0.1 + 0.03 * 10)
    # AND the search indexer on OpenSearch's bulk rate: 1 / 10,000 docs/s = 0.1 ms
    assert component(result, "Lambda search indexer")[1]["ms_per_event"] == pytest.approx(0.2)


def test_the_sessionizer_waits_on_its_firehose_calls_of_both_streams_and_no_s3_put() -> None:
    # GIVEN 2 PutRecordBatch calls of per-minute rows and 5 of gap sessions per 1,000 events,
    # 20 ms each, and S3 requests of 50 ms
    # WHEN the cost is estimated at 1,000 events/s
    result = run(1000, firehose_call_latency_ms=20, s3_request_latency_ms=50)
    # THEN a sessionizer event takes 100 µs of CPU and (0.002 + 0.005) x 20 ms of waiting:
    # its gap sessions go through Firehose, not S3
    sessionizer = component(result, "Lambda sessionizer")[1]
    assert sessionizer["ms_per_event"] == pytest.approx(0.1 + 0.007 * 20)


def test_concurrency_is_a_batch_per_shard_of_each_consumer_and_a_run_per_schedule() -> None:
    # GIVEN 3 consumers with a ParallelizationFactor of 2 on 3 shards, and a finalizer that runs
    consumers = {name: replace(CONSUMER, parallelization_factor=2) for name in CONSUMERS}
    finalizer = ScheduledFunction(1024, "x86_64", 43_800.0, traced=False)
    deployment = replace(DEPLOYMENT, shard_count=3, consumers=consumers, finalizer=finalizer)
    # WHEN the cost is estimated
    concurrency = run(10, deployment).capacity["lambda_concurrency"]
    # THEN 3 x 3 x 2 executions and the finalizer's, against the account's 1,000
    assert (concurrency.needed, concurrency.available) == (19, 1000)


def test_a_slow_shard_is_invoked_once_per_batching_window_with_what_arrived() -> None:
    # GIVEN 10 events/s on one shard, a 1 s batching window
    result = run(10)
    # THEN each invocation carries 10 events: 10 events/s make one invocation a second
    quantities = component(result, "Lambda sessionizer")[1]
    assert quantities["events_per_invocation"] == 10
    assert quantities["invocations"] == MONTH


def test_a_busy_shard_is_invoked_with_batch_size_packed_records_within_the_payload_limit() -> None:
    # GIVEN 10,000 events/s of 200 bytes, batches of up to 500 packed records or 10 s
    consumers = {
        name: replace(CONSUMER, batching_window_seconds=10) for name in DEPLOYMENT.consumers
    }
    result = run(10_000, replace(DEPLOYMENT, consumers=consumers))
    quantities = component(result, "Lambda sessionizer")[1]
    shards = component(result, "Kinesis Data Streams")[1]["shards"]
    # THEN an invocation carries what fits in 6 MiB of base64: 6,291,456 / (200 x 4/3) events,
    # fewer than the window brings or 500 records hold
    assert min(10_000 / shards * 10, 500 * events_per_record(10_000, shards, 200)) > 6_291_456 / (
        200 * 4 / 3
    )
    assert quantities["events_per_invocation"] == pytest.approx(6_291_456 / (200 * 4 / 3))


def test_a_schedule_that_is_off_costs_nothing_and_one_that_runs_is_billed_per_run() -> None:
    # GIVEN a finalizer run every minute for 1 s at 1,024 MB, and the generator's schedule off
    finalizer = ScheduledFunction(1024, "x86_64", 43_800.0, traced=False)
    result = run(10, replace(DEPLOYMENT, finalizer=finalizer))
    # THEN the finalizer costs 43,800 requests and 43,800 GB-seconds; the generator nothing
    usd, quantities = component(result, "Lambda finalizer")
    assert quantities == {"invocations": 43_800.0, "gb_seconds": 43_800.0}
    assert usd == pytest.approx(0.0438 * 0.2 + 43_800 * 0.00001)
    assert component(result, "Lambda generator")[0] == 0


def test_traces_follow_the_default_sampling_rule_per_traced_function() -> None:
    # GIVEN the three consumers traced, each invoked twice a second (1,000 events/s, one shard,
    # a 0.5 s batching window)
    consumers = {
        name: replace(CONSUMER, traced=True, batching_window_seconds=0.5)
        for name in DEPLOYMENT.consumers
    }
    result = run(1000, replace(DEPLOYMENT, consumers=consumers))
    # THEN each records 1 trace a second and 5 % of the other invocation: 1.05 a second
    usd, quantities = component(result, "X-Ray")
    assert quantities["traces"] == pytest.approx(3 * 1.05 * MONTH)
    assert usd == pytest.approx(3 * 1.05 * MONTH / 1e6 * 5.0)


# --- DynamoDB -----------------------------------------------------------------------------------


def test_on_demand_tables_bill_the_measured_units_transactions_already_doubled() -> None:
    # GIVEN 1,000 session items per 1,000 events, written in transactions: 2,000 write units
    # WHEN the cost is estimated at 10 events/s
    result = run(10)
    # THEN the session table takes 20 write units a second, not doubled again: 52,560,000
    # units a month at 0.625 USD per million, and 1 read unit a second at 0.125 per million
    usd, quantities = component(result, "DynamoDB session state")
    assert quantities["write_units_per_s"] == 20
    assert quantities["write_request_units"] == 20 * MONTH
    assert quantities["read_request_units"] == 1 * MONTH
    assert usd == pytest.approx(52.56 * 0.625 + 2.628 * 0.125)
    assert result.sessionizer_writes_per_1000_events == 1000


def test_a_provisioned_table_bills_its_capacity_whatever_the_traffic() -> None:
    # GIVEN a session table provisioned with 10 WCU and 5 RCU
    tables = {**DEPLOYMENT.tables, "session_state": Table("PROVISIONED", 5, 10)}
    # WHEN the cost is estimated at 10 events/s (20 write units a second needed)
    result = run(10, replace(DEPLOYMENT, tables=tables))
    # THEN the bill is 730 x (10 x 0.00065 + 5 x 0.00013), and the writes exceed the capacity
    usd, quantities = component(result, "DynamoDB session state")
    assert usd == pytest.approx(730 * (10 * 0.00065 + 5 * 0.00013))
    assert quantities["write_capacity_unit_hours"] == 7300
    writes = result.capacity["dynamodb_session_state_writes"]
    assert (writes.needed, writes.available, writes.within) == (20, 10, False)


def test_a_table_needs_a_partition_per_1000_write_units_a_second() -> None:
    # GIVEN 2,000 session write units per 1,000 events, at 1,500 events/s: 3,000 WCU/s
    result = run(1500)
    # THEN the table needs at least 3 partitions
    writes = result.capacity["dynamodb_session_state_writes"]
    assert writes.needed == 3000
    assert writes.available == 3000
    assert "at least 3 partition(s)" in writes.note


def auto_scaled(maximum: float) -> Deployment:
    """The deployment with the session table provisioned, reads and writes kept at 70 % of
    their capacity between 5 units and ``maximum``."""
    scaling = AutoScaling(min_units=5, max_units=maximum, target_utilization_percent=70)
    session = Table("PROVISIONED", 5, 5, read_scaling=scaling, write_scaling=scaling)
    return replace(DEPLOYMENT, tables={**DEPLOYMENT.tables, "session_state": session})


def test_auto_scaling_keeps_the_need_at_the_target_utilization_in_whole_units() -> None:
    # GIVEN target tracking at 70 % between 5 and 4,000 units
    scaling = AutoScaling(min_units=5, max_units=4000, target_utilization_percent=70)
    # THEN 70 units/s need 100 units (no float error rounds that up to 101), 20 need
    # 28.57 rounded up to 29, 1 needs 2 but gets the minimum 5, 3,500 need 5,000 but get 4,000
    assert scaling.units(70) == 100
    assert scaling.units(20) == 29
    assert scaling.units(1) == 5
    assert scaling.units(0) == 5
    assert scaling.units(3500) == 4000


def test_an_auto_scaled_table_bills_what_target_tracking_provisions_and_its_alarms() -> None:
    # GIVEN a session table auto scaled at 70 % between 5 and 4,000 units, 4 alarms per policy
    # WHEN the cost is estimated at 10 events/s: 20 write units and 1 read unit a second
    result = run(10, auto_scaled(4000), dynamodb_auto_scaling_alarms_per_policy=4)
    # THEN it provisions 20 / 0.7 = 28.57, so 29 WCU, and 1 / 0.7 = 1.43, so the minimum 5 RCU:
    # 730 x (29 x 0.00065 + 5 x 0.00013) = 14.235 USD, plus 2 policies x 4 alarms x 0.10 USD
    usd, quantities = component(result, "DynamoDB session state")
    assert (quantities["write_capacity_units"], quantities["read_capacity_units"]) == (29, 5)
    assert quantities["write_capacity_unit_hours"] == 29 * 730
    assert quantities["read_capacity_unit_hours"] == 5 * 730
    assert quantities["auto_scaling_alarms"] == 8
    assert usd == pytest.approx(730 * (29 * 0.00065 + 5 * 0.00013) + 8 * 0.1)
    assert usd == pytest.approx(15.035)
    # AND the capacity lines compare the need with the most auto scaling may provision
    writes = result.capacity["dynamodb_session_state_writes"]
    assert (writes.needed, writes.available, writes.within) == (20, 4000, True)
    assert "29 WCU provisioned" in writes.note
    reads = result.capacity["dynamodb_session_state_reads"]
    assert (reads.needed, reads.available, reads.within) == (1, 4000, True)
    assert "5 RCU provisioned" in reads.note


def test_a_need_over_the_auto_scaling_maximum_is_billed_at_the_maximum_and_exceeds_it() -> None:
    # GIVEN a session table auto scaled at 70 % between 5 and 1,000 units
    # WHEN the cost is estimated at 1,500 events/s: 3,000 write units and 150 read units a second
    result = run(1500, auto_scaled(1000), dynamodb_auto_scaling_alarms_per_policy=4)
    # THEN writes are provisioned at the maximum 1,000 WCU (3,000 / 0.7 = 4,286 wanted), reads at
    # 150 / 0.7 = 214.3, so 215 RCU: 730 x (1,000 x 0.00065 + 215 x 0.00013) = 474.5 + 20.4035,
    # plus 8 alarms at 0.10 USD
    usd, quantities = component(result, "DynamoDB session state")
    assert (quantities["write_capacity_units"], quantities["read_capacity_units"]) == (1000, 215)
    assert usd == pytest.approx(474.5 + 20.4035 + 0.8)
    # AND the writes line is exceeded: requests beyond the maximum are throttled
    writes = result.capacity["dynamodb_session_state_writes"]
    assert (writes.needed, writes.available, writes.within) == (3000, 1000, False)
    assert "throttled" in writes.note
    assert result.capacity["dynamodb_session_state_reads"].within


# --- Firehose -----------------------------------------------------------------------------------


def test_firehose_bills_each_record_rounded_up_to_5_kb() -> None:
    # GIVEN raw events of 200 bytes and per-minute rows of 100 bytes (500 per 1,000 events)
    # WHEN the cost is estimated at 1 event/s: 1.25 / (1 - e^-1.25) events a Kinesis record
    result = run(1)
    records = MONTH / (1.25 / (1 - math.exp(-1.25)))
    # THEN each raw record (about 350 bytes) is billed as 5,120 bytes
    usd, quantities = component(result, "Firehose raw")
    assert quantities["records"] == pytest.approx(records)
    assert quantities["gb_billed_in_5_kb_records"] == pytest.approx(records * 5120 / GIB)
    assert quantities["gb_delivered"] == pytest.approx(MONTH * 200 / GIB)
    assert usd == pytest.approx(records * 5120 / GIB * 0.029)
    # AND so is each aggregated record: 250 rows packed into 25,000 bytes, billed as 25,600
    aggregated = component(result, "Firehose aggregated")[1]
    assert aggregated["records"] == pytest.approx(MONTH * 2 / 1000)
    assert aggregated["gb_billed_in_5_kb_records"] == pytest.approx(MONTH * 2 / 1000 * 25_600 / GIB)


def test_the_aggregated_stream_is_billed_per_packed_record_not_per_row() -> None:
    # GIVEN 500 rows of 100 bytes per 1,000 events, packed into 4 records per 1,000 events
    results = with_figures("lake", minute_session_records_per_1000_events=4)
    # WHEN the cost is estimated at 1,000 events/s
    usd, quantities = component(run(1000, results=results), "Firehose aggregated")
    # THEN 4 records a second, each of 125 rows (12,500 bytes) billed as 15,360 bytes
    records = 1000 * MONTH * 4 / 1000
    assert quantities["records"] == pytest.approx(records)
    assert quantities["gb_billed_in_5_kb_records"] == pytest.approx(records * 15_360 / GIB)
    assert usd == pytest.approx(records * 15_360 / GIB * 0.029)
    # AND every row is delivered, whatever the packing
    assert quantities["gb_delivered"] == pytest.approx(1000 * MONTH * 500 / 1000 * 100 / GIB)
    # AND the raw stream bills the stream's packed records
    raw = component(run(1000, results=results), "Firehose raw")[1]
    assert raw["records"] == pytest.approx(1000 * MONTH / events_per_record(1000, 1, 200))


def test_rows_packed_into_no_record_are_an_error_naming_the_figure() -> None:
    # GIVEN per-minute rows but no record carrying them WHEN estimated THEN the figure is named
    results = with_figures("lake", minute_session_records_per_1000_events=0)
    with pytest.raises(
        CostModelError, match=r"minute_session_records_per_1000_events is 0 \(written by bench/"
    ):
        run(10, results=results)


def test_a_lake_file_without_the_packed_records_figure_names_the_bench_that_writes_it() -> None:
    # GIVEN a lake.json measured before rows were packed WHEN estimated THEN its bench is named
    lake = dict(RESULTS["lake"])
    del lake["minute_session_records_per_1000_events"]
    with pytest.raises(
        CostModelError,
        match=r"lake\.json has no minute_session_records_per_1000_events \(written by "
        r"bench/bench_lake\.py\)",
    ):
        run(10, results={**RESULTS, "lake": lake})


def test_the_sessions_stream_is_billed_per_packed_record_of_gap_sessions() -> None:
    # GIVEN 50,000 bytes of gap sessions per 1,000 events, packed into 10 records
    # WHEN the cost is estimated at 1,000 events/s
    usd, quantities = component(run(1000), "Firehose sessions")
    # THEN 10 records a second, each of 5,000 bytes billed as 5,120
    records = 1000 * MONTH * 10 / 1000
    assert quantities["records"] == pytest.approx(records)
    assert quantities["gb_billed_in_5_kb_records"] == pytest.approx(records * 5120 / GIB)
    assert usd == pytest.approx(records * 5120 / GIB * 0.029)
    # AND every session's bytes are delivered, 50,000 bytes a second
    assert quantities["gb_delivered"] == pytest.approx(50_000 * MONTH / GIB)
    # AND the 60 s buffer comes first (50 KB a second is far below 5 MiB a minute): an object a
    # minute, whatever the number of commits
    assert quantities["objects_written"] == pytest.approx(MONTH / 60)
    # AND its Direct PUT quota is checked like the aggregated stream's
    direct_put = run(1000).capacity["firehose_sessions_direct_put"]
    assert direct_put.needed == pytest.approx(50_000 / 1024**2)
    assert direct_put.available == 5


def test_gap_sessions_packed_into_no_record_are_an_error_naming_the_figure() -> None:
    # GIVEN gap sessions but no record carrying them WHEN estimated THEN the figure is named
    results = with_figures("lake", gap_session_records_per_1000_events=0)
    with pytest.raises(
        CostModelError,
        match=r"has gap sessions .* gap_session_records_per_1000_events is 0 \(written by bench/",
    ):
        run(10, results=results)


def test_a_lake_file_without_the_gap_session_records_names_the_bench_that_writes_it() -> None:
    # GIVEN a lake.json measured when gap sessions were S3 objects WHEN estimated THEN the
    # missing Firehose figures and their bench are named
    lake = dict(RESULTS["lake"])
    del lake["gap_session_records_per_1000_events"], lake["gap_session_puts_per_1000_events"]
    with pytest.raises(
        CostModelError,
        match=r"lake\.json has no gap_session_puts_per_1000_events, "
        r"gap_session_records_per_1000_events \(written by bench/bench_lake\.py\)",
    ):
        run(10, results={**RESULTS, "lake": lake})


def test_a_record_over_5_kb_is_billed_as_the_next_multiple_of_5_kb() -> None:
    # GIVEN raw events of 6,000 bytes at 1 event/s, about 1.75 a record (4 fit in one)
    results = with_figures("lake", raw_json_bytes_per_event=6000)
    quantities = component(run(1, results=results), "Firehose raw")[1]
    per_record = events_per_record(1, 1, 6000)
    # THEN each record of about 6,000 x 1.75 = 10,480 bytes is billed as 15,360
    assert 10_240 < per_record * 6000 <= 15_360
    records = MONTH / per_record
    assert quantities["gb_billed_in_5_kb_records"] == pytest.approx(records * 15_360 / GIB)


def test_firehose_writes_an_object_per_buffer_interval_or_per_buffer_size() -> None:
    # GIVEN a 60 s or 5 MiB buffer
    # WHEN 10 events/s of 200 bytes arrive (2,000 bytes/s: the interval comes first)
    slow = component(run(10), "Firehose raw")[1]
    # THEN an object a minute
    assert slow["objects_written"] == pytest.approx(MONTH / 60)
    # WHEN 1,000 events/s of 5,000 bytes arrive (5,000,000 bytes/s: the size comes first)
    results = with_figures("lake", raw_json_bytes_per_event=5000)
    fast = component(run(1000, results=results), "Firehose raw")[1]
    # THEN an object every 5 MiB
    assert fast["objects_written"] == pytest.approx(MONTH * 5_000_000 / (5 * 1024**2))


# --- Glue ---------------------------------------------------------------------------------------


def test_a_short_glue_run_is_billed_the_one_minute_minimum() -> None:
    # GIVEN raw objects every minute, so each 300 s batch window starts a run, and a run that
    # takes its fixed 10 s (rows and bookkeeping cost no time here)
    result = run(10)
    # THEN 8,760 runs a month, each billed 60 s on 2 DPU: 292 DPU-hours
    usd, quantities = component(result, "Glue events job")
    assert quantities["runs"] == pytest.approx(8760)
    assert quantities["seconds_per_run"] == pytest.approx(10)
    assert quantities["billed_seconds_per_run"] == 60
    assert quantities["dpu_hours"] == pytest.approx(292)
    assert usd == pytest.approx(292 * 0.44)


def test_a_glue_run_starts_when_the_batch_size_of_objects_has_arrived() -> None:
    # GIVEN raw events of 5,000 bytes at 2,000 events/s: a 5 MiB object every 0.52 s, so 100
    # objects arrive within 52.4 s, before the 300 s window ends
    results = with_figures("lake", raw_json_bytes_per_event=5000)
    result = run(2000, results=results)
    # THEN a run every 100 objects
    objects_per_s = 2000 * 5000 / (5 * 1024**2)
    runs = component(result, "Glue events job")[1]["runs"]
    assert runs == pytest.approx(MONTH * objects_per_s / 100)
    capacity = result.capacity["glue_events_job_run_seconds"]
    assert capacity.available == pytest.approx(100 / objects_per_s)


def test_a_glue_run_longer_than_the_window_delays_the_next_one() -> None:
    # GIVEN a job taking 10 s per run plus 10 ms per row, a raw object a minute, a 300 s window
    results = {
        **with_figures("lake", events_job_incremental_run_rows=0),
        "growth": {**RESULTS["growth"], "glue_events_us_per_row_1m": 10_000},
    }
    # WHEN 50 events/s arrive
    on_time = run(50, results=results)
    # THEN a run takes 10 + 50 x 300 x 0.01 = 160 s, within the window
    quantities = component(on_time, "Glue events job")[1]
    assert quantities["seconds_per_run"] == pytest.approx(160)
    assert quantities["runs"] == pytest.approx(MONTH / 300)
    # WHEN 99 events/s arrive: 10 + 0.99 x 300 = 307 s, longer than the window
    late = run(99, results=results)
    # THEN runs follow each other, each taking what arrived during the one before:
    # I = 10 + 0.99 I, every 1,000 s
    quantities = component(late, "Glue events job")[1]
    assert quantities["seconds_per_run"] == pytest.approx(1000)
    assert quantities["runs"] == pytest.approx(MONTH / 1000)
    assert not late.capacity["glue_events_job_run_seconds"].within


def test_a_glue_job_slower_than_its_rows_is_billed_as_running_all_month() -> None:
    # GIVEN a job taking 10 ms per row, and 200 events/s: 2 s of work per second of rows
    results = {**RESULTS, "growth": {**RESULTS["growth"], "glue_events_us_per_row_1m": 10_000}}
    # WHEN the cost is estimated
    result = run(200, results=results)
    # THEN the job runs without a pause: 730 hours on 2 DPU
    quantities = component(result, "Glue events job")[1]
    assert quantities["dpu_hours"] == pytest.approx(730 * 2)
    capacity = result.capacity["glue_events_job_run_seconds"]
    assert not capacity.within
    assert "cannot keep up" in capacity.note


def test_a_glue_run_reads_the_recent_ledger_days_and_a_share_of_the_daily_full_listing() -> None:
    # GIVEN the bill of the 12th month, 100 ms per S3 request, a raw object a minute, runs every
    # 300 s, a ledger window of 48 hours and a full listing every 24 hours
    result = run(10, months_deployed=12, s3_request_latency_ms=100)
    quantities = component(result, "Glue events job")[1]
    # THEN a normal run lists 3 days of objects (one page, plus one per 1,000 objects) and reads
    # the state and 3 ledger days; a full listing lists the 11.5 months of objects kept and
    # reads every day's ledger object, once per 288 runs
    objects_per_s = 1 / 60
    recent = (1 + objects_per_s * 3 * 86_400 / 1000) + (1 + 3)
    full = (1 + objects_per_s * MONTH * 11.5 / 1000) + (1 + MONTH * 11.5 / 86_400)
    share = 300 / 86_400
    bookkeeping = recent + share * (full - recent)
    assert quantities["runs"] == pytest.approx(MONTH / 300)
    assert quantities["ledger_and_listing_requests_per_run"] == pytest.approx(bookkeeping + 2)
    assert quantities["seconds_per_run"] == pytest.approx(10 + bookkeeping * 0.1)


def test_glue_bookkeeping_hardly_grows_with_the_deployments_age() -> None:
    # GIVEN the same traffic in the 1st and the 24th month, 100 ms per S3 request
    first = component(run(10, months_deployed=1, s3_request_latency_ms=100), "Glue events job")
    later = component(run(10, months_deployed=24, s3_request_latency_ms=100), "Glue events job")
    # THEN a run takes longer only by its share of the longer full listing: 23 more months of
    # objects and ledger days, at 300 s of each 86,400
    more_requests = (1 / 60) * MONTH * 23 / 1000 + MONTH * 23 / 86_400
    grown = later[1]["seconds_per_run"] - first[1]["seconds_per_run"]
    assert grown == pytest.approx(more_requests * 0.1 * 300 / 86_400)
    assert grown < 1
    assert later[0] == pytest.approx(first[0])


def test_a_flex_glue_job_is_billed_at_the_flex_price() -> None:
    # GIVEN the events job of the Flex execution class
    flex = GlueWorkflow(
        "G.1X", workers=2, batch_size=100, batch_window_seconds=300, execution_class="FLEX"
    )
    result = run(10, deployment=replace(DEPLOYMENT, events_workflow=flex))
    # THEN its 292 DPU-hours are billed at the Flex price
    usd, quantities = component(result, "Glue events job")
    assert quantities["dpu_hours"] == pytest.approx(292)
    assert usd == pytest.approx(292 * 0.29)


def test_the_sessions_job_starts_on_the_objects_of_both_session_delivery_streams() -> None:
    # GIVEN 1,000 events/s: 5 gap-session puts a second (one per commit), but 50 KB a second on
    # each of the aggregated and the sessions streams, so each writes an object a minute
    result = run(1000)
    # THEN the 2 objects a minute take the whole 300 s window to start a run (100 objects would
    # take 50 minutes): 8,760 runs a month of 700 rows/s x 300 s, not a run per 100 commits
    quantities = component(result, "Glue sessions job")[1]
    assert quantities["runs"] == pytest.approx(MONTH / 300)
    assert quantities["rows_per_run"] == pytest.approx(700 * 300)
    assert result.capacity["glue_sessions_job_run_seconds"].available == pytest.approx(300)


# --- storage, queries, search -------------------------------------------------------------------


def test_s3_stores_the_data_of_the_months_deployed_on_average_over_the_month() -> None:
    # GIVEN the bill of the 3rd month: 2.5 months of data on average
    result = run(10, months_deployed=3)
    # THEN rawdata/ holds 10 x 2,628,000 x 2.5 events of 200 bytes
    quantities = component(result, "S3 storage")[1]
    events = 10 * MONTH * 2.5
    assert quantities["gb_rawdata"] == pytest.approx(events * 200 / GIB)
    assert quantities["gb_aggregated"] == pytest.approx(events * 0.5 * 100 / GIB)
    assert quantities["gb_curated_gap_sessions"] == pytest.approx(events * 5 / GIB)


def test_an_athena_query_is_billed_at_least_10_mb() -> None:
    # GIVEN one named query reading 4 bytes per event, run once a day
    # WHEN the lake holds 0.5 months of 1 event/s: 1,314,000 events, 5.3 MB a query
    result = run(1)
    # THEN each of the 30.4 runs is billed 10 MB
    quantities = component(result, "Athena")[1]
    assert quantities["queries"] == pytest.approx(730 / 24)
    assert quantities["tb_scanned"] == pytest.approx(730 / 24 * 10 * 1024**2 / 1024**4)


def test_opensearch_bills_its_nodes_and_the_volume_the_retention_needs() -> None:
    # GIVEN one t3.small.search node with 10 GiB, 150 bytes a document kept 1 day
    # WHEN 1,000 events/s arrive: 86,400,000 documents, 12.07 GiB
    result = run(1000)
    # THEN the volume is costed at 13 GiB, and the deployed 10 GiB is short
    usd, quantities = component(result, "OpenSearch")
    assert quantities["volume_gib_per_node"] == 13
    assert usd == pytest.approx(730 * 0.036 + 13 * 0.1)
    storage = result.capacity["opensearch_storage"]
    assert storage.needed == pytest.approx(86_400_000 * 150 / GIB)
    assert not storage.within


def test_every_object_of_the_raw_bucket_is_an_eventbridge_event() -> None:
    # GIVEN at 10 events/s an object a minute from each delivery stream: raw, aggregated and
    # sessions (each far below its 5 MiB buffer in 60 s)
    # WHEN the cost is estimated
    usd, quantities = component(run(10), "EventBridge")
    # THEN each of them is an S3 event on the default bus
    events = MONTH * (1 / 60 + 1 / 60 + 1 / 60)
    assert quantities["s3_events"] == pytest.approx(events)
    assert usd == pytest.approx(events / 1e6)
    # AND a bucket that sends no events costs nothing there
    quiet = replace(DEPLOYMENT, lake_events_to_eventbridge=False)
    assert component(run(10, quiet), "EventBridge")[0] == 0


def test_cloudwatch_bills_alarms_dashboards_and_custom_metrics() -> None:
    deployment = replace(DEPLOYMENT, alarms=14, dashboards=1, custom_metrics=16)
    usd = component(run(1, deployment), "CloudWatch")[0]
    assert usd == pytest.approx(14 * 0.1 + 3.0 + 16 * 0.3)


def test_the_total_is_the_sum_of_the_components() -> None:
    result = run(1000)
    assert result.total_usd_per_month == pytest.approx(
        sum(c.usd_per_month for c in result.components)
    )
    assert result.largest().usd_per_month == max(c.usd_per_month for c in result.components)


# --- what is missing ----------------------------------------------------------------------------


def test_a_missing_results_file_is_named_with_the_script_that_writes_it() -> None:
    results = {bench: figures for bench, figures in RESULTS.items() if bench != "stream"}
    with pytest.raises(CostModelError, match=r"stream\.json is missing \(written by bench/"):
        run(10, results=results)


def test_a_missing_figure_is_named_with_its_file() -> None:
    growth = dict(RESULTS["growth"])
    del growth["sessionizer_cpu_seconds_per_batch_500"]
    with pytest.raises(
        CostModelError, match=r"growth\.json has no sessionizer_cpu_seconds_per_batch_500"
    ):
        run(10, results={**RESULTS, "growth": growth})


def test_the_cpu_figure_read_is_the_one_at_the_deployed_batch_size() -> None:
    consumers = {**DEPLOYMENT.consumers, "window_counter": replace(CONSUMER, batch_size=100)}
    with pytest.raises(CostModelError, match="window_counter_cpu_seconds_per_batch_100"):
        run(10, replace(DEPLOYMENT, consumers=consumers))


def test_a_named_query_without_its_scan_figure_is_named() -> None:
    deployment = replace(DEPLOYMENT, named_queries=("top_products", "row_counts"))
    with pytest.raises(CostModelError, match="scan_row_counts_bytes_per_event"):
        run(10, deployment)


def test_an_instance_type_without_a_price_is_an_error() -> None:
    deployment = replace(DEPLOYMENT, search=SearchDomain("r7g.large.search", 1, 10))
    with pytest.raises(CostModelError, match=r"r7g\.large\.search"):
        run(10, deployment)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(CostModelError, match="above 0"):
        run(0)


def test_intelligent_tiering_bills_old_data_at_the_cheaper_tiers_with_a_fee_per_object() -> None:
    # GIVEN the lake in S3 Intelligent-Tiering, the bill of the 12th month (11.5 months of data),
    # at 1,000 events/s: raw objects of 200 bytes x 1,000 x 60 s, 11.4 MiB each
    deployment = replace(DEPLOYMENT, lake_intelligent_tiering=True)
    tiered = component(run(1000, deployment, months_deployed=12), "S3 storage")
    standard = component(run(1000, months_deployed=12), "S3 storage")
    # THEN the raw layer is tiered: 1 month's worth frequent, 2 infrequent, 8.5 archived
    raw = standard[1]["gb_rawdata"]
    quantities = tiered[1]
    assert quantities["gb_stored"] == pytest.approx(standard[1]["gb_stored"])
    assert quantities["gb_archive_instant"] >= raw * 8.5 / 11.5
    assert quantities["gb_infrequent"] >= raw * 2 / 11.5
    assert tiered[0] < standard[0]
    # AND every GB is in exactly one class
    assert quantities["gb_standard"] + quantities["gb_frequent"] + quantities[
        "gb_infrequent"
    ] + quantities["gb_archive_instant"] == pytest.approx(quantities["gb_stored"])


def test_a_lake_of_small_objects_is_not_tiered() -> None:
    # GIVEN 1 event/s: raw objects of 200 bytes x 60 s, 12 KB each, and so on for every layer
    deployment = replace(DEPLOYMENT, lake_intelligent_tiering=True)
    tiered = component(run(1, deployment, months_deployed=12), "S3 storage")
    standard = component(run(1, months_deployed=12), "S3 storage")
    # THEN everything stays in S3 Standard, at the same price, with no object monitored
    assert tiered[1]["gb_standard"] == pytest.approx(tiered[1]["gb_stored"])
    assert tiered[1]["objects_monitored"] == 0
    assert tiered[0] == pytest.approx(standard[0])
