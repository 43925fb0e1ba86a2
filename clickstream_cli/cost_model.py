"""The monthly AWS cost of the deployed template at an event rate: a pure model, no I/O.

Inputs: the rate; the benchmarks' figures (``bench/results/<bench>.json``, by bench name); the
price book (``bench/prices.json``: prices, documented limits and labelled assumptions); and the
deployment facts read from ``template.yaml`` (:class:`Deployment`). Every per-event quantity is a
benchmark figure; nothing here is a price or a measurement. :func:`estimate` returns each
component with its quantities and USD per month, and the capacity the rate needs. The formulas,
one by one, are in docs/cost.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from clickstream.generator.producer import (
    FLUSH_INTERVAL_SECONDS,
    MAX_RECORDS_PER_CALL,
    PACKED_RECORD_BYTES,
)

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4

CONSUMERS = ("window_counter", "sessionizer", "search_indexer")
"""The stream's Lambda consumers, named as ``bench_growth`` names them."""
TABLES = ("window_state", "window_results", "session_state")
"""The DynamoDB tables: the window counter's state and results, the sessionizer's state."""

BENCH_SCRIPTS: dict[str, str] = {
    "stream": "bench/bench_stream.py",
    "growth": "bench/bench_growth.py",
    "scan": "bench/bench_scan.py",
    "lake": "bench/bench_lake.py",
    "search": "bench/bench_search.py",
    "ingest": "bench/bench_ingest.py",
}
"""The script that writes each results file."""

STREAM_FIGURES = (
    "window_state_write_units_per_1000_events",
    "window_result_write_units_per_1000_events",
    "window_read_units_per_1000_events",
    "window_requests_per_1000_events",
    "session_writes_per_1000_events",
    "session_write_units_per_1000_events",
    "session_read_units_per_1000_events",
    "session_requests_per_1000_events",
)
LAKE_FIGURES = (
    "raw_json_bytes_per_event",
    "curated_events_zstd_bytes_per_event",
    "events_job_incremental_run_seconds",
    "events_job_incremental_run_rows",
    "events_job_incremental_run_objects_written",
    "minute_session_rows_per_1000_events",
    "minute_session_csv_bytes_per_row",
    "minute_session_puts_per_1000_events",
    "minute_session_records_per_1000_events",
    "gap_sessions_per_1000_events",
    "gap_session_json_bytes_per_1000_events",
    "gap_session_puts_per_1000_events",
    "gap_session_records_per_1000_events",
)
GLUE_ROW_FIGURE = "glue_events_us_per_row_1m"
SEARCH_FIGURES = ("bulk_docs_per_s", "index_bytes_per_document")
SCAN_FIGURES = (
    "events",
    "curated_minute_sessions_parquet_bytes",
    "curated_gap_sessions_parquet_bytes",
)


class CostModelError(ValueError):
    """A results file, a figure, a price or a deployment fact the model needs is missing."""


def ceil(value: float) -> int:
    """``value`` rounded up, ignoring the float error of a product that is a whole number."""
    return math.ceil(round(value, 9))


def events_per_record(rate: float, shards: int, event_bytes: float) -> float:
    """Events in a Kinesis record of the generator's packing (``clickstream.generator.producer``).

    Paced sending puts each flush's events, packed per shard into records of at most
    ``PACKED_RECORD_BYTES``: a flush holds the event that opens it and those of the next
    ``FLUSH_INTERVAL_SECONDS``, at most 500, ``n = min(1 + rate·interval, 500)``. Hashed over
    ``s`` shards, a shard gets ``k`` of them with the Poisson probability of mean ``n/s``, and
    makes ``⌈k / f⌉`` records of them, ``f = max(1, ⌊PACKED_RECORD_BYTES / event_bytes⌋)``
    events fitting in one: a record holds ``n`` over ``s`` times the expected records per shard.
    """
    flush = min(1 + rate * FLUSH_INTERVAL_SECONDS, MAX_RECORDS_PER_CALL)
    fitting = max(1, math.floor(PACKED_RECORD_BYTES / event_bytes))
    mean = flush / shards
    records_per_shard = 0.0
    probability = math.exp(-mean)
    for k in range(1, math.ceil(mean + 10 * math.sqrt(mean) + 10)):
        probability *= mean / k
        records_per_shard += probability * math.ceil(k / fitting)
    return flush / (shards * records_per_shard)


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceBook:
    """``bench/prices.json``: prices in USD, documented limits and labelled assumptions."""

    prices: Mapping[str, float]
    instance_hour: Mapping[str, float]
    """OpenSearch instance types' USD per hour."""
    limits: Mapping[str, float]
    assumptions: Mapping[str, float]

    def price(self, name: str) -> float:
        """One price; a clear error when the book has none."""
        return _lookup(self.prices, name, "price")

    def limit(self, name: str) -> float:
        """One documented limit."""
        return _lookup(self.limits, name, "limit")

    def assumption(self, name: str) -> float:
        """One labelled assumption."""
        return _lookup(self.assumptions, name, "assumption")


def _lookup(table: Mapping[str, float], name: str, kind: str) -> float:
    if name not in table:
        raise CostModelError(f"the prices file has no {kind} {name!r}")
    return float(table[name])


@dataclass(frozen=True)
class StreamConsumer:
    """A Lambda function behind a Kinesis event source mapping."""

    memory_mb: int
    architecture: str
    batch_size: int
    batching_window_seconds: float
    parallelization_factor: int
    enhanced_fan_out: bool
    traced: bool


@dataclass(frozen=True)
class ScheduledFunction:
    """A Lambda function run by a schedule (0 runs when the schedule is off)."""

    memory_mb: int
    architecture: str
    runs_per_month: float
    traced: bool


@dataclass(frozen=True)
class AutoScaling:
    """Target tracking of one provisioned capacity (Application Auto Scaling)."""

    min_units: float
    max_units: float
    target_utilization_percent: float

    def units(self, needed_per_s: float) -> float:
        """The capacity target tracking keeps for a steady need: the need over the target
        utilization, in whole units, at least the minimum and at most the maximum."""
        wanted = ceil(needed_per_s * 100 / self.target_utilization_percent)
        return float(min(self.max_units, max(self.min_units, wanted)))


@dataclass(frozen=True)
class Table:
    """A DynamoDB table's billing mode; when provisioned, its capacity (its indexes' included)
    and, for reads and for writes, the auto scaling that sets it instead, if any."""

    billing_mode: str
    read_capacity_units: float = 0.0
    write_capacity_units: float = 0.0
    read_scaling: AutoScaling | None = None
    write_scaling: AutoScaling | None = None


@dataclass(frozen=True)
class DeliveryBuffer:
    """A Firehose delivery stream's buffering hints."""

    interval_seconds: float
    size_mb: float


@dataclass(frozen=True)
class GlueWorkflow:
    """A Glue job behind an EVENT trigger that batches new objects."""

    worker_type: str
    workers: int
    batch_size: int
    batch_window_seconds: float
    execution_class: str = "STANDARD"
    """``STANDARD`` or ``FLEX`` (spare capacity, a lower DPU-hour price)."""
    source_prefixes: int = 1
    """Source prefixes the job lists (each with its own ledger days)."""
    ledger_recent_hours: float = 48.0
    """A normal run lists the source days from this long before the newest recorded day."""
    ledger_full_listing_hours: float = 24.0
    """A run lists every source object once the last full listing is this old."""


@dataclass(frozen=True)
class SearchDomain:
    """The OpenSearch Service domain's data nodes."""

    instance_type: str
    instance_count: int
    volume_gib: float


@dataclass(frozen=True)
class Deployment:
    """What ``template.yaml`` deploys, as far as the bill is concerned."""

    stream_mode: str
    """``PROVISIONED`` or ``ON_DEMAND``."""
    shard_count: int
    retention_hours: float
    consumers: Mapping[str, StreamConsumer]
    """The three stream consumers, by :data:`CONSUMERS` name."""
    shared_readers: int
    """Polling (GetRecords) readers of the stream: the raw delivery stream."""
    finalizer: ScheduledFunction
    generator: ScheduledFunction
    generator_events_per_run: int
    tables: Mapping[str, Table]
    """The three tables, by :data:`TABLES` name."""
    raw_delivery: DeliveryBuffer
    aggregated_delivery: DeliveryBuffer
    sessions_delivery: DeliveryBuffer
    events_workflow: GlueWorkflow
    sessions_workflow: GlueWorkflow
    search: SearchDomain
    alarms: int
    dashboards: int
    custom_metrics: int
    named_queries: tuple[str, ...]
    lake_intelligent_tiering: bool = False
    """Both lake buckets move every object to S3 Intelligent-Tiering on day 0."""
    lake_events_to_eventbridge: bool = True
    """The raw bucket sends its object-level events to EventBridge (they start the Glue
    workflows)."""


# --- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One line of the bill: its quantities per month and its USD per month."""

    name: str
    usd_per_month: float
    quantities: dict[str, float]


@dataclass(frozen=True)
class Capacity:
    """What the rate needs of one limit, against what there is."""

    needed: float
    available: float
    unit: str
    note: str = ""

    @property
    def within(self) -> bool:
        """True when the need fits what there is."""
        return self.needed <= self.available


@dataclass(frozen=True)
class CostEstimate:
    """The bill at one rate, by component, and the capacity the rate needs."""

    rate_events_per_s: float
    components: list[Component]
    capacity: dict[str, Capacity]
    sessionizer_writes_per_1000_events: float

    @property
    def total_usd_per_month(self) -> float:
        """The sum of the components."""
        return sum(component.usd_per_month for component in self.components)

    def largest(self) -> Component:
        """The component that costs the most."""
        return max(self.components, key=lambda component: component.usd_per_month)


# --- figures ------------------------------------------------------------------------------------


def required_figures(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """The figures the model reads, by bench: the growth bench's CPU per batch is the one at
    each consumer's deployed batch size, and the scan bench's bytes are those of every named
    query the template deploys."""
    cpu_per_batch = tuple(
        f"{name}_cpu_seconds_per_batch_{deployment.consumers[name].batch_size}"
        for name in CONSUMERS
    )
    needed = {
        "stream": STREAM_FIGURES,
        "growth": (*cpu_per_batch, GLUE_ROW_FIGURE),
        "lake": LAKE_FIGURES,
        "scan": (*SCAN_FIGURES, *(f"scan_{q}_bytes_per_event" for q in deployment.named_queries)),
        "search": SEARCH_FIGURES,
    }
    if deployment.generator.runs_per_month > 0:
        needed["ingest"] = ("generator_events_per_s",)
    return needed


def check_figures(results: Mapping[str, Mapping[str, float]], deployment: Deployment) -> None:
    """Every results file and figure the model reads is there, else one error naming them all."""
    problems = []
    for bench, keys in required_figures(deployment).items():
        script = BENCH_SCRIPTS[bench]
        if bench not in results:
            problems.append(f"{bench}.json is missing (written by {script})")
            continue
        missing = [key for key in keys if key not in results[bench]]
        if missing:
            problems.append(f"{bench}.json has no {', '.join(missing)} (written by {script})")
    if problems:
        raise CostModelError("bench results incomplete: " + "; ".join(problems))


# --- the model ----------------------------------------------------------------------------------


def estimate(
    rate: float,
    results: Mapping[str, Mapping[str, float]],
    book: PriceBook,
    deployment: Deployment,
) -> CostEstimate:
    """The monthly cost of ``deployment`` at ``rate`` events/s, by component."""
    if not rate > 0:
        raise CostModelError(f"the rate must be above 0 events/s, got {rate}")
    check_figures(results, deployment)
    return _Model(rate, results, book, deployment).run()


def provisioned_capacity(
    scaling: AutoScaling | None, fixed_units: float, needed_per_s: float, unit: str
) -> tuple[float, float, str]:
    """One provisioned capacity (a table's reads or writes): the units billed, the most there
    can be, and the capacity line's note.

    With auto scaling, the units target tracking keeps for the need, up to its maximum; without,
    the fixed capacity, whatever the traffic."""
    if scaling is None:
        return fixed_units, fixed_units, "provisioned capacity, fixed"
    units = scaling.units(needed_per_s)
    note = (
        f"auto scaling: {units:,.0f} {unit} provisioned, the need at"
        f" {scaling.target_utilization_percent:g} % target utilization, within"
        f" {scaling.min_units:,.0f} to {scaling.max_units:,.0f}"
    )
    if needed_per_s > scaling.max_units:
        note += f"; over the maximum, requests beyond {scaling.max_units:,.0f} {unit} are throttled"
    return units, scaling.max_units, note


@dataclass
class _GlueRuns:
    """How often a Glue workflow runs and how long each run takes."""

    trigger_interval_seconds: float
    interval_seconds: float
    runs_per_month: float
    rows_per_run: float
    run_seconds: float
    bookkeeping_gets_per_run: float
    bookkeeping_lists_per_run: float
    bookkeeping_puts_per_run: float
    """A normal run writes one ledger day per source prefix and its run entry."""
    keeps_up: bool


@dataclass
class _Model:
    rate: float
    results: Mapping[str, Mapping[str, float]]
    book: PriceBook
    deployment: Deployment
    components: list[Component] = field(default_factory=list)
    capacity: dict[str, Capacity] = field(default_factory=dict)
    traced_invocations_per_s: list[float] = field(default_factory=list)
    """Invocations per second of each function with active tracing."""
    events_per_record: float = 1.0
    """Events per Kinesis record (and raw Firehose record): set with the shards."""

    # ---- shared quantities

    def figure(self, bench: str, key: str) -> float:
        return float(self.results[bench][key])

    def per_event(self, bench: str, key: str) -> float:
        """A ``*_per_1000_events`` figure per event."""
        return self.figure(bench, key) / 1000

    @property
    def events_per_month(self) -> float:
        return self.rate * SECONDS_PER_MONTH

    @property
    def months_of_data(self) -> float:
        """Months of data kept, on average over the month the bill is for."""
        months = self.book.assumption("months_deployed")
        if months < 1:
            raise CostModelError(f"months_deployed must be at least 1, got {months}")
        return months - 0.5

    @property
    def event_bytes(self) -> float:
        return self.figure("lake", "raw_json_bytes_per_event")

    def run(self) -> CostEstimate:
        seconds_per_event = {name: self.lambda_seconds_per_event(name) for name in CONSUMERS}
        shards = self.kinesis(seconds_per_event)
        for name in CONSUMERS:
            self.stream_consumer(name, shards, seconds_per_event[name])
        self.capacity["lambda_concurrency"] = Capacity(
            sum(shards * c.parallelization_factor for c in self.deployment.consumers.values())
            + sum(
                1
                for function in (self.deployment.finalizer, self.deployment.generator)
                if function.runs_per_month > 0
            ),
            self.book.limit("lambda_account_concurrency"),
            "concurrent executions",
            "each stream consumer runs one batch per shard and ParallelizationFactor at a time,"
            " each scheduled function one run; against the account's default quota",
        )
        self.scheduled_function(
            "Lambda finalizer", self.deployment.finalizer, self.finalizer_seconds()
        )
        self.scheduled_function(
            "Lambda generator", self.deployment.generator, self.generator_seconds()
        )
        self.dynamodb()
        raw_objects_per_s, aggregated_objects_per_s, gap_objects_per_s = self.firehose()
        events_runs = self.glue(
            "Glue events job",
            self.deployment.events_workflow,
            raw_objects_per_s,
            self.rate,
        )
        session_rows_per_event = self.per_event(
            "lake", "minute_session_rows_per_1000_events"
        ) + self.per_event("lake", "gap_sessions_per_1000_events")
        sessions_runs = self.glue(
            "Glue sessions job",
            self.deployment.sessions_workflow,
            aggregated_objects_per_s + gap_objects_per_s,
            self.rate * session_rows_per_event,
        )
        self.s3(
            raw_objects_per_s,
            aggregated_objects_per_s,
            gap_objects_per_s,
            events_runs,
            sessions_runs,
        )
        self.eventbridge(raw_objects_per_s + aggregated_objects_per_s + gap_objects_per_s)
        self.athena()
        self.opensearch()
        self.cloudwatch()
        self.xray()
        return CostEstimate(
            rate_events_per_s=self.rate,
            components=self.components,
            capacity=self.capacity,
            sessionizer_writes_per_1000_events=self.figure(
                "stream", "session_writes_per_1000_events"
            ),
        )

    def add(self, name: str, usd: float, quantities: dict[str, float]) -> None:
        self.components.append(Component(name, usd, quantities))

    # ---- Kinesis

    def kinesis(self, seconds_per_event: Mapping[str, float]) -> int:
        """Shards the rate needs; the stream's cost at the shards it is billed for."""
        book, deployment = self.book, self.deployment
        write_bytes_per_s = self.rate * self.event_bytes
        efo_consumers = sum(c.enhanced_fan_out for c in deployment.consumers.values())
        needs = {
            "write bytes": write_bytes_per_s / book.limit("kinesis_shard_write_bytes_per_s"),
            "fan-out reads": (write_bytes_per_s / book.limit("kinesis_efo_read_bytes_per_s"))
            if efo_consumers
            else 0.0,
            "polling reads": write_bytes_per_s
            * deployment.shared_readers
            / book.limit("kinesis_shard_shared_read_bytes_per_s"),
        }
        for name, consumer in deployment.consumers.items():
            # A consumer works through one shard's records at a time per ParallelizationFactor.
            needs[f"{name} busy time"] = (
                self.rate * seconds_per_event[name] / consumer.parallelization_factor
            )
        # The producer packs each flush's events per shard: more shards, smaller records.
        shards_otherwise = max(deployment.shard_count, *(ceil(v) for v in needs.values()))
        self.events_per_record = events_per_record(self.rate, shards_otherwise, self.event_bytes)
        records_per_s = self.rate / self.events_per_record
        needs["write records"] = records_per_s / book.limit("kinesis_shard_write_records_per_s")
        needed = max(1, max(ceil(value) for value in needs.values()))
        self.capacity["kinesis_shards"] = Capacity(
            needed,
            deployment.shard_count,
            "shards",
            "ShardCount must be at least the need; the largest of: "
            + ", ".join(f"{name} {value:.2f}" for name, value in needs.items()),
        )
        records = self.events_per_month / self.events_per_record
        record_bytes = self.event_bytes * self.events_per_record
        efo_gb = self.events_per_month * self.event_bytes * efo_consumers / GIB
        if deployment.stream_mode == "ON_DEMAND":
            rounding = book.limit("kinesis_on_demand_record_rounding_bytes")
            written_gb = records * ceil(record_bytes / rounding) * rounding / GIB
            read_gb = self.events_per_month * self.event_bytes * deployment.shared_readers / GIB
            quantities = {
                "stream_hours": HOURS_PER_MONTH,
                "gb_written": written_gb,
                "gb_read_by_polling_readers": read_gb,
                "gb_read_through_fan_out": efo_gb,
            }
            usd = (
                HOURS_PER_MONTH * book.price("kinesis_on_demand_stream_hour")
                + written_gb * book.price("kinesis_on_demand_gb_written")
                + read_gb * book.price("kinesis_on_demand_gb_read")
                + efo_gb * book.price("kinesis_on_demand_efo_gb")
            )
            self.add("Kinesis Data Streams (on-demand)", usd, quantities)
            return needed
        shards = max(deployment.shard_count, needed)
        unit_bytes = book.limit("kinesis_put_payload_unit_bytes")
        payload_units = records * ceil(record_bytes / unit_bytes)
        shard_hours = shards * HOURS_PER_MONTH
        consumer_shard_hours = efo_consumers * shard_hours
        usd = (
            shard_hours * book.price("kinesis_shard_hour")
            + payload_units / 1e6 * book.price("kinesis_put_payload_units_per_million")
            + consumer_shard_hours * book.price("kinesis_efo_consumer_shard_hour")
            + efo_gb * book.price("kinesis_efo_gb")
        )
        quantities = {
            "shards": shards,
            "shard_hours": shard_hours,
            "events_per_record": self.events_per_record,
            "put_payload_units": payload_units,
            "fan_out_consumer_shard_hours": consumer_shard_hours,
            "gb_read_through_fan_out": efo_gb,
        }
        if deployment.retention_hours > 24:
            if deployment.retention_hours > 168:
                raise CostModelError(
                    "retention beyond 7 days (long-term retention) is not modelled"
                )
            quantities["extended_retention_shard_hours"] = shard_hours
            usd += shard_hours * book.price("kinesis_extended_retention_shard_hour")
        self.add("Kinesis Data Streams", usd, quantities)
        return shards

    # ---- Lambda

    def lambda_seconds_per_event(self, name: str) -> float:
        """Seconds of duration per event: CPU stretched to the function's share of a vCPU, plus
        the time spent waiting on the calls it makes."""
        consumer = self.deployment.consumers[name]
        cpu_per_batch = self.figure("growth", f"{name}_cpu_seconds_per_batch_{consumer.batch_size}")
        stretch = max(1.0, self.book.limit("lambda_memory_mb_per_vcpu") / consumer.memory_mb)
        cpu = cpu_per_batch / consumer.batch_size * stretch
        return cpu + self.wait_seconds_per_event(name)

    def wait_seconds_per_event(self, name: str) -> float:
        dynamodb = self.book.assumption("dynamodb_call_latency_ms") / 1000
        if name == "window_counter":
            return self.per_event("stream", "window_requests_per_1000_events") * dynamodb
        if name == "sessionizer":
            firehose = self.book.assumption("firehose_call_latency_ms") / 1000
            return (
                self.per_event("stream", "session_requests_per_1000_events") * dynamodb
                + self.per_event("lake", "minute_session_puts_per_1000_events") * firehose
                + self.per_event("lake", "gap_session_puts_per_1000_events") * firehose
            )
        return 1 / self.figure("search", "bulk_docs_per_s")

    def gb_second_price(self, architecture: str) -> float:
        return self.book.price(f"lambda_gb_second_{architecture.replace('-', '_')}")

    def stream_consumer(self, name: str, shards: int, seconds_per_event: float) -> None:
        """Invocations of ``BatchSize`` records, of what one batching window brings (at least a
        record), or of what fits in Lambda's 6 MB payload (base64): whichever is fewest events."""
        consumer = self.deployment.consumers[name]
        per_shard = self.rate / shards
        per_record = self.events_per_record
        payload = self.book.limit("lambda_batch_payload_bytes")
        events_per_invocation = min(
            consumer.batch_size * per_record,
            max(per_record, per_shard * consumer.batching_window_seconds),
            payload / (self.event_bytes * 4 / 3),
        )
        invocations = self.events_per_month / events_per_invocation
        billed_seconds = ceil(events_per_invocation * seconds_per_event * 1000) / 1000
        gb_seconds = invocations * billed_seconds * consumer.memory_mb / 1024
        usd = invocations / 1e6 * self.book.price(
            "lambda_requests_per_million"
        ) + gb_seconds * self.gb_second_price(consumer.architecture)
        label = name.replace("_", " ")
        if consumer.traced:
            self.traced_invocations_per_s.append(invocations / SECONDS_PER_MONTH)
        self.add(
            f"Lambda {label}",
            usd,
            {
                "invocations": invocations,
                "events_per_invocation": events_per_invocation,
                "ms_per_event": seconds_per_event * 1000,
                "gb_seconds": gb_seconds,
                "concurrency": shards * consumer.parallelization_factor,
            },
        )
        self.capacity[f"{name}_busy_per_shard"] = Capacity(
            per_shard * seconds_per_event,
            consumer.parallelization_factor,
            "seconds of work per second, per shard",
            f"{label}: one batch per shard at a time (ParallelizationFactor"
            f" {consumer.parallelization_factor}); above 1 it falls behind",
        )

    def finalizer_seconds(self) -> float:
        return self.book.assumption("finalizer_seconds_per_run")

    def generator_seconds(self) -> float:
        if self.deployment.generator.runs_per_month == 0:
            return 0.0
        return self.deployment.generator_events_per_run / self.figure(
            "ingest", "generator_events_per_s"
        )

    def scheduled_function(self, name: str, function: ScheduledFunction, seconds: float) -> None:
        billed = ceil(seconds * 1000) / 1000
        gb_seconds = function.runs_per_month * billed * function.memory_mb / 1024
        usd = function.runs_per_month / 1e6 * self.book.price(
            "lambda_requests_per_million"
        ) + gb_seconds * self.gb_second_price(function.architecture)
        if function.traced:
            self.traced_invocations_per_s.append(function.runs_per_month / SECONDS_PER_MONTH)
        self.add(name, usd, {"invocations": function.runs_per_month, "gb_seconds": gb_seconds})

    # ---- DynamoDB

    def dynamodb(self) -> None:
        units = {
            "window_state": (
                self.per_event("stream", "window_state_write_units_per_1000_events"),
                self.per_event("stream", "window_read_units_per_1000_events"),
            ),
            "window_results": (
                self.per_event("stream", "window_result_write_units_per_1000_events"),
                0.0,
            ),
            "session_state": (
                self.per_event("stream", "session_write_units_per_1000_events"),
                self.per_event("stream", "session_read_units_per_1000_events"),
            ),
        }
        for name, (writes_per_event, reads_per_event) in units.items():
            self.table(name, self.rate * writes_per_event, self.rate * reads_per_event)

    def table(self, name: str, write_units_per_s: float, read_units_per_s: float) -> None:
        table = self.deployment.tables[name]
        if table.billing_mode == "PROVISIONED":
            self.provisioned_table(name, table, write_units_per_s, read_units_per_s)
        else:
            self.on_demand_table(name, write_units_per_s, read_units_per_s)

    def provisioned_table(
        self, name: str, table: Table, write_units_per_s: float, read_units_per_s: float
    ) -> None:
        """Capacity units billed by the hour: what auto scaling keeps, or the fixed capacity; and
        the alarms Application Auto Scaling creates for each target tracking policy."""
        book = self.book
        write_units, write_available, write_note = provisioned_capacity(
            table.write_scaling, table.write_capacity_units, write_units_per_s, "WCU"
        )
        read_units, read_available, read_note = provisioned_capacity(
            table.read_scaling, table.read_capacity_units, read_units_per_s, "RCU"
        )
        usd = HOURS_PER_MONTH * (
            write_units * book.price("dynamodb_wcu_hour")
            + read_units * book.price("dynamodb_rcu_hour")
        )
        quantities = {
            "write_capacity_units": write_units,
            "read_capacity_units": read_units,
            "write_capacity_unit_hours": write_units * HOURS_PER_MONTH,
            "read_capacity_unit_hours": read_units * HOURS_PER_MONTH,
            "write_units_per_s": write_units_per_s,
            "read_units_per_s": read_units_per_s,
        }
        policies = (table.write_scaling is not None) + (table.read_scaling is not None)
        if policies:
            alarms = policies * book.assumption("dynamodb_auto_scaling_alarms_per_policy")
            usd += alarms * book.price("cloudwatch_alarm_month")
            quantities["auto_scaling_alarms"] = alarms
        self.add(f"DynamoDB {name.replace('_', ' ')}", usd, quantities)
        self.capacity[f"dynamodb_{name}_writes"] = Capacity(
            write_units_per_s, write_available, "write units/s", write_note
        )
        self.capacity[f"dynamodb_{name}_reads"] = Capacity(
            read_units_per_s, read_available, "read units/s", read_note
        )

    def on_demand_table(self, name: str, write_units_per_s: float, read_units_per_s: float) -> None:
        """Request units billed per million; capacity as partitions of DynamoDB's limits."""
        book = self.book
        write_limit = book.limit("dynamodb_partition_write_units_per_s")
        read_limit = book.limit("dynamodb_partition_read_units_per_s")
        partitions = max(
            ceil(write_units_per_s / write_limit), ceil(read_units_per_s / read_limit), 1
        )
        write_units = write_units_per_s * SECONDS_PER_MONTH
        read_units = read_units_per_s * SECONDS_PER_MONTH
        usd = write_units / 1e6 * book.price(
            "dynamodb_write_request_units_per_million"
        ) + read_units / 1e6 * book.price("dynamodb_read_request_units_per_million")
        quantities = {
            "write_request_units": write_units,
            "read_request_units": read_units,
            "write_units_per_s": write_units_per_s,
            "read_units_per_s": read_units_per_s,
        }
        note = (
            f"on demand: at least {partitions} partition(s) of {write_limit:.0f} WCU/s and"
            f" {read_limit:.0f} RCU/s; one key stays within one partition's limit"
        )
        self.add(f"DynamoDB {name.replace('_', ' ')}", usd, quantities)
        self.capacity[f"dynamodb_{name}_writes"] = Capacity(
            write_units_per_s, write_limit * partitions, "write units/s", note
        )
        self.capacity[f"dynamodb_{name}_reads"] = Capacity(
            read_units_per_s, read_limit * partitions, "read units/s", note
        )

    # ---- Firehose

    def firehose(self) -> tuple[float, float, float]:
        """The three delivery streams' cost; the objects each writes per second.

        The raw stream carries the stream's records, :func:`events_per_record` events each. The
        aggregated and the sessions streams carry the sessionizer's lines (per-minute rows as CSV,
        gap sessions as JSON) packed into few records: each record holds the measured bytes per
        record, and is billed as such."""
        raw_objects = self.delivery(
            "Firehose raw",
            self.deployment.raw_delivery,
            self.rate / self.events_per_record,
            self.event_bytes * self.events_per_record,
        )
        rows_per_s = self.rate * self.per_event("lake", "minute_session_rows_per_1000_events")
        aggregated_objects = self.packed_delivery(
            "aggregated",
            self.deployment.aggregated_delivery,
            rows_per_s * self.figure("lake", "minute_session_csv_bytes_per_row"),
            "minute_session_records_per_1000_events",
            "per-minute rows",
        )
        sessions_objects = self.packed_delivery(
            "sessions",
            self.deployment.sessions_delivery,
            self.rate * self.per_event("lake", "gap_session_json_bytes_per_1000_events"),
            "gap_session_records_per_1000_events",
            "gap sessions",
        )
        return raw_objects, aggregated_objects, sessions_objects

    def packed_delivery(
        self,
        stream: str,
        buffer: DeliveryBuffer,
        bytes_per_s: float,
        records_figure: str,
        lines: str,
    ) -> float:
        """A Direct PUT stream of ``lines`` packed into the measured records (``records_figure``
        per 1,000 events), each billed at the average bytes per record; its objects per second.
        Its Direct PUT quota goes to the capacity."""
        records_per_s = self.rate * self.per_event("lake", records_figure)
        if records_per_s <= 0 < bytes_per_s:
            raise CostModelError(
                f"lake.json has {lines} but no Firehose record carrying them:"
                f" {records_figure} is 0 (written by {BENCH_SCRIPTS['lake']})"
            )
        record_bytes = bytes_per_s / records_per_s if records_per_s > 0 else 0.0
        objects = self.delivery(f"Firehose {stream}", buffer, records_per_s, record_bytes)
        self.capacity[f"firehose_{stream}_direct_put"] = Capacity(
            bytes_per_s / MIB,
            self.book.limit("firehose_direct_put_bytes_per_s") / MIB,
            "MiB/s",
            f"the sessionizer's PutRecordBatch of {lines} against the delivery stream's"
            " Direct PUT quota",
        )
        return objects

    def delivery(
        self, name: str, buffer: DeliveryBuffer, records_per_s: float, record_bytes: float
    ) -> float:
        if buffer.interval_seconds <= 0:
            raise CostModelError(f"{name}: a buffering interval of 0 s is not modelled")
        rounding = self.book.limit("firehose_record_rounding_bytes")
        billed_bytes = ceil(record_bytes / rounding) * rounding
        records = records_per_s * SECONDS_PER_MONTH
        billed_gb = records * billed_bytes / GIB
        bytes_per_s = records_per_s * record_bytes
        objects_per_s = (
            max(1 / buffer.interval_seconds, bytes_per_s / (buffer.size_mb * MIB))
            if records_per_s > 0
            else 0.0
        )
        self.add(
            name,
            billed_gb * self.book.price("firehose_gb_ingested"),
            {
                "records": records,
                "gb_billed_in_5_kb_records": billed_gb,
                "gb_delivered": records * record_bytes / GIB,
                "objects_written": objects_per_s * SECONDS_PER_MONTH,
            },
        )
        return objects_per_s

    # ---- Glue

    def glue(
        self, name: str, workflow: GlueWorkflow, objects_per_s: float, rows_per_s: float
    ) -> _GlueRuns:
        runs = self.glue_runs(workflow, objects_per_s, rows_per_s)
        minimum = self.book.limit("glue_minimum_billed_seconds")
        billed = max(minimum, runs.run_seconds) if runs.runs_per_month else 0.0
        worker_dpu = self.book.limit(
            f"glue_dpu_per_worker_{workflow.worker_type.lower()}".replace(".", "")
        )
        dpu_hours = runs.runs_per_month * billed / 3600 * workflow.workers * worker_dpu
        price = "glue_flex_dpu_hour" if workflow.execution_class == "FLEX" else "glue_dpu_hour"
        self.add(
            name,
            dpu_hours * self.book.price(price),
            {
                "runs": runs.runs_per_month,
                "rows_per_run": runs.rows_per_run,
                "seconds_per_run": runs.run_seconds,
                "billed_seconds_per_run": billed,
                "ledger_and_listing_requests_per_run": runs.bookkeeping_gets_per_run
                + runs.bookkeeping_lists_per_run
                + runs.bookkeeping_puts_per_run,
                "dpu_hours": dpu_hours,
            },
        )
        key = name.lower().replace(" ", "_").removeprefix("glue_")
        self.capacity[f"glue_{key}_run_seconds"] = Capacity(
            runs.run_seconds,
            runs.trigger_interval_seconds,
            "seconds per run",
            "a run against the EVENT trigger's interval (one run at a time): "
            + (
                "within it"
                if runs.run_seconds <= runs.trigger_interval_seconds
                else f"runs back to back every {runs.interval_seconds:,.0f} s"
                if runs.keeps_up
                else "the job cannot keep up with the rows arriving"
            ),
        )
        return runs

    def glue_runs(
        self, workflow: GlueWorkflow, objects_per_s: float, rows_per_s: float
    ) -> _GlueRuns:
        """Runs start when ``BatchSize`` objects have arrived or ``BatchWindow`` seconds after
        the first; one at a time, so a run longer than that delays the next, which then takes
        every row arrived meanwhile. Besides its rows, a normal run lists the source days of the
        ledger's recent window and reads the state and those days' ledger objects; once every
        ``full_listing_hours`` a run lists every source object kept and reads every day's ledger
        object, one request after the other (``clickstream_glue.ledger``).

        A run over an interval ``I`` takes ``f(I) = c + (a + d)*I``: ``c`` the fixed time and
        the recent window's requests, ``a*I`` its rows, ``d*I`` its share of the full listings.
        When ``f(T) > T`` for the trigger's interval ``T``, runs follow each other at the ``I``
        where ``f(I) = I``: ``I = c / (1 - a - d)``.
        """
        if objects_per_s <= 0:
            return _GlueRuns(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, True)
        window = workflow.batch_window_seconds
        if objects_per_s * window >= 1:
            trigger = min(window, workflow.batch_size / objects_per_s)
        else:
            trigger = 1 / objects_per_s
        scale = self.book.assumption("glue_seconds_per_bench_second")
        seconds_per_row = self.figure("growth", GLUE_ROW_FIGURE) / 1e6 * scale
        fixed = max(
            0.0,
            self.figure("lake", "events_job_incremental_run_seconds") * scale
            - self.figure("lake", "events_job_incremental_run_rows") * seconds_per_row,
        )
        latency = self.book.assumption("s3_request_latency_ms") / 1000
        prefixes = workflow.source_prefixes
        recent_days = math.ceil(workflow.ledger_recent_hours / 24) + 1
        recent_lists = prefixes + objects_per_s * recent_days * SECONDS_PER_DAY / 1000
        recent_gets = 1 + prefixes * recent_days
        kept_seconds = SECONDS_PER_MONTH * self.months_of_data
        full_lists = prefixes + objects_per_s * kept_seconds / 1000
        full_gets = 1 + prefixes * kept_seconds / SECONDS_PER_DAY
        full_every = max(workflow.ledger_full_listing_hours * 3600, 1.0)
        a = rows_per_s * seconds_per_row
        d = latency * (full_lists + full_gets - recent_lists - recent_gets) / full_every
        c = fixed + latency * (recent_lists + recent_gets)

        def run_seconds(interval: float) -> float:
            # At intervals of full_every and more, every run lists everything.
            return c + a * interval + d * min(interval, full_every)

        keeps_up = a + d < 1
        interval = trigger
        if not keeps_up:
            # Each run takes longer than the rows it reads took to arrive: the job runs without
            # a pause and falls further behind; it is billed as running all month.
            interval = run_seconds(trigger)
        elif run_seconds(trigger) > trigger:
            interval = c / (1 - a - d)
            if interval > full_every:
                interval = (c + d * full_every) / (1 - a)
        share = min(1.0, interval / full_every)
        gets = recent_gets + share * (full_gets - recent_gets)
        lists = recent_lists + share * (full_lists - recent_lists)
        return _GlueRuns(
            trigger_interval_seconds=trigger,
            interval_seconds=interval,
            runs_per_month=SECONDS_PER_MONTH / interval,
            rows_per_run=rows_per_s * interval,
            run_seconds=run_seconds(interval) if keeps_up else interval,
            bookkeeping_gets_per_run=gets,
            bookkeeping_lists_per_run=lists,
            bookkeeping_puts_per_run=prefixes + 1,
            keeps_up=keeps_up,
        )

    # ---- S3

    def s3(
        self,
        raw_objects_per_s: float,
        aggregated_objects_per_s: float,
        gap_objects_per_s: float,
        events_runs: _GlueRuns,
        sessions_runs: _GlueRuns,
    ) -> None:
        book = self.book
        events = self.events_per_month * self.months_of_data
        scanned_events = self.figure("scan", "events")
        minute_rows = self.per_event("lake", "minute_session_rows_per_1000_events")
        layers = {
            "rawdata": self.event_bytes,
            "aggregated": minute_rows * self.figure("lake", "minute_session_csv_bytes_per_row"),
            "sessions": self.per_event("lake", "gap_session_json_bytes_per_1000_events"),
            "curated_events": self.figure("lake", "curated_events_zstd_bytes_per_event"),
            "curated_minute_sessions": self.figure("scan", "curated_minute_sessions_parquet_bytes")
            / scanned_events,
            "curated_gap_sessions": self.figure("scan", "curated_gap_sessions_parquet_bytes")
            / scanned_events,
        }
        stored = {f"gb_{layer}": events * size / GIB for layer, size in layers.items()}
        total_gb = sum(stored.values())
        objects_written = self.figure("lake", "events_job_incremental_run_objects_written")
        source_objects = (raw_objects_per_s + aggregated_objects_per_s + gap_objects_per_s) * (
            SECONDS_PER_MONTH
        )
        if self.deployment.lake_intelligent_tiering:
            per_second = {
                "rawdata": raw_objects_per_s,
                "aggregated": aggregated_objects_per_s,
                "sessions": gap_objects_per_s,
            }
            objects = {layer: value * SECONDS_PER_MONTH for layer, value in per_second.items()}
            objects["curated_events"] = objects_written * events_runs.runs_per_month
            for layer in ("curated_minute_sessions", "curated_gap_sessions"):
                objects[layer] = objects_written * sessions_runs.runs_per_month
            self.tiered_storage(stored, objects)
        else:
            self.add(
                "S3 storage",
                total_gb * book.price("s3_standard_gb_month"),
                {"gb_stored": total_gb, **stored},
            )
        puts = source_objects + sum(
            runs.runs_per_month * (objects_written + runs.bookkeeping_puts_per_run)
            for runs in (events_runs, sessions_runs)
        )
        gets = source_objects + sum(
            runs.runs_per_month * runs.bookkeeping_gets_per_run
            for runs in (events_runs, sessions_runs)
        )
        lists = sum(
            runs.runs_per_month * runs.bookkeeping_lists_per_run
            for runs in (events_runs, sessions_runs)
        )
        usd = (puts + lists) / 1000 * book.price("s3_put_per_thousand") + gets / 1000 * book.price(
            "s3_get_per_thousand"
        )
        self.add(
            "S3 requests", usd, {"put_requests": puts, "list_requests": lists, "get_requests": gets}
        )

    def tiered_storage(
        self, stored: Mapping[str, float], objects_per_month: Mapping[str, float]
    ) -> None:
        """S3 Intelligent-Tiering: an object unread for 30 days moves to the infrequent tier, for
        90 days to the archive instant tier. Lifecycle rules move only objects of 128 KB and more,
        so a layer whose objects are smaller on average stays in S3 Standard. A tiered layer's data
        spans ``D`` months of ages spread evenly (``months_of_data``): 1 month frequent, up to 2
        infrequent, the rest archived, for a monitoring fee per object kept and a transition
        request per object moved in. Reads of old objects (a query over old partitions, a full
        reload) would move them back to frequent for 30 days; that is not modelled."""
        book = self.book
        months = self.months_of_data
        shares = {
            "frequent": min(months, 1.0),
            "infrequent": min(max(months - 1.0, 0.0), 2.0),
            "archive_instant": max(months - 3.0, 0.0),
        }
        minimum = book.limit("s3_intelligent_tiering_minimum_object_bytes")
        gb = dict.fromkeys(shares, 0.0)
        standard_gb = tiered_objects = 0.0
        for key, layer_gb in stored.items():
            objects = objects_per_month[key.removeprefix("gb_")]
            if objects <= 0 or layer_gb / months * GIB / objects < minimum:
                standard_gb += layer_gb
                continue
            tiered_objects += objects
            for tier, share in shares.items():
                gb[tier] += layer_gb * share / months
        usd = (
            (gb["frequent"] + standard_gb) * book.price("s3_standard_gb_month")
            + gb["infrequent"] * book.price("s3_intelligent_tiering_infrequent_gb_month")
            + gb["archive_instant"] * book.price("s3_intelligent_tiering_archive_instant_gb_month")
            + tiered_objects
            * months
            / 1000
            * book.price("s3_intelligent_tiering_monitoring_per_thousand")
            + tiered_objects / 1000 * book.price("s3_transition_to_intelligent_per_thousand")
        )
        self.add(
            "S3 storage",
            usd,
            {
                "gb_stored": sum(stored.values()),
                "gb_standard": standard_gb,
                **{f"gb_{tier}": value for tier, value in gb.items()},
                "objects_monitored": tiered_objects * months,
                **stored,
            },
        )

    # ---- EventBridge

    def eventbridge(self, objects_per_s: float) -> None:
        """Every object created in the raw bucket is an S3 event on the default bus."""
        events = (
            objects_per_s * SECONDS_PER_MONTH if self.deployment.lake_events_to_eventbridge else 0
        )
        self.add(
            "EventBridge",
            events / 1e6 * self.book.price("eventbridge_opt_in_events_per_million"),
            {"s3_events": events},
        )

    # ---- Athena

    def athena(self) -> None:
        book = self.book
        runs_per_day = book.assumption("athena_runs_per_day_per_named_query")
        events = self.events_per_month * self.months_of_data
        minimum = book.limit("athena_minimum_bytes_per_query")
        billed_per_run = sum(
            max(
                minimum,
                ceil(self.figure("scan", f"scan_{q}_bytes_per_event") * events / MIB) * MIB,
            )
            for q in self.deployment.named_queries
        )
        runs = runs_per_day * DAYS_PER_MONTH
        tb = runs * billed_per_run / TIB
        self.add(
            "Athena",
            tb * book.price("athena_tb_scanned"),
            {"queries": runs * len(self.deployment.named_queries), "tb_scanned": tb},
        )

    # ---- OpenSearch

    def opensearch(self) -> None:
        book, domain = self.book, self.deployment.search
        if domain.instance_type not in book.instance_hour:
            raise CostModelError(
                f"the prices file has no hourly price of OpenSearch instance type"
                f" {domain.instance_type!r}"
            )
        days = book.assumption("search_retention_days")
        documents = self.rate * 86400 * days
        needed_gib = (
            documents
            * self.figure("search", "index_bytes_per_document")
            * book.assumption("search_storage_overhead_factor")
            / GIB
        )
        volume = max(domain.volume_gib, ceil(needed_gib / domain.instance_count))
        instance_hours = domain.instance_count * HOURS_PER_MONTH
        storage_gb_months = domain.instance_count * volume
        usd = instance_hours * book.instance_hour[
            domain.instance_type
        ] + storage_gb_months * book.price("opensearch_gp3_gb_month")
        self.add(
            "OpenSearch",
            usd,
            {
                "instance_hours": instance_hours,
                "volume_gib_per_node": volume,
                "storage_gb_months": storage_gb_months,
                "documents_kept": documents,
            },
        )
        self.capacity["opensearch_storage"] = Capacity(
            needed_gib,
            domain.volume_gib * domain.instance_count,
            "GiB",
            f"{days:g} days of daily indices; costed at {volume:g} GiB per node"
            " (SearchVolumeGiB must be at least that)",
        )
        self.capacity["opensearch_indexing"] = Capacity(
            self.rate,
            self.figure("search", "bulk_docs_per_s"),
            "documents/s",
            "against the bulk rate of one local node on the bench machine, not of"
            f" {domain.instance_type}",
        )

    # ---- CloudWatch and X-Ray

    def cloudwatch(self) -> None:
        book, deployment = self.book, self.deployment
        usd = (
            deployment.alarms * book.price("cloudwatch_alarm_month")
            + deployment.dashboards * book.price("cloudwatch_dashboard_month")
            + deployment.custom_metrics * book.price("cloudwatch_metric_month")
        )
        self.add(
            "CloudWatch",
            usd,
            {
                "alarms": deployment.alarms,
                "dashboards": deployment.dashboards,
                "custom_metrics": deployment.custom_metrics,
            },
        )

    def xray(self) -> None:
        """Traces under the default sampling rule: the first invocation each second, and a fixed
        share of the others, per traced function."""
        reservoir = self.book.limit("xray_sampling_reservoir_per_second")
        share = self.book.limit("xray_sampling_fixed_rate")
        traces = SECONDS_PER_MONTH * sum(
            min(per_s, reservoir) + share * max(0.0, per_s - reservoir)
            for per_s in self.traced_invocations_per_s
        )
        self.add(
            "X-Ray",
            traces / 1e6 * self.book.price("xray_traces_recorded_per_million"),
            {"traces": traces},
        )
