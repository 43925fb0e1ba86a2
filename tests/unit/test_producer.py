"""The producer: chunking, retries with backoff, pacing, reporting (in-memory stream only)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from clickstream.core.events import Event
from clickstream.core.retry import RetryPolicy
from clickstream.core.shard_map import HASH_KEY_LIMIT, HashRange, ShardMap, hash_key
from clickstream.generator import (
    SendReport,
    chunk_records,
    generate,
    pack_events,
    put_with_retry,
    send_events,
    send_records,
)
from clickstream.ports import PutOutcome, RecordStream, StreamRecord
from clickstream_cli.cost_model import events_per_record

START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
THROTTLED = "ProvisionedThroughputExceededException"


class FakeStream(RecordStream):
    """In-memory stream that fails chosen records a number of times, or raises on chosen calls."""

    def __init__(
        self,
        failures: dict[str, int] | None = None,
        errors: Sequence[Exception | None] = (),
        clock: FakeClock | None = None,
    ) -> None:
        self.failures = dict(failures or {})  # event_id -> times to fail (-1: always)
        self.errors = list(errors)  # raised on successive calls; None lets a call through
        self.clock = clock
        self.calls: list[list[StreamRecord]] = []
        self.accepted: list[StreamRecord] = []
        self.accepted_at: list[float] = []

    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        self.calls.append(list(records))
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error
        outcomes = []
        for record in records:
            left = self.failures.get(record.event_id or "", 0)
            if left:
                self.failures[record.event_id or ""] = left - 1 if left > 0 else left
                outcomes.append(PutOutcome(THROTTLED, "Rate exceeded for shard"))
            else:
                self.accepted.append(record)
                self.accepted_at.append(self.clock.now if self.clock else 0.0)
                outcomes.append(PutOutcome(None))
        return outcomes


class FakeClock:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FixedRandom(random.Random):
    """random() always returns the same value, to pin the jitter."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def records(count: int, size: int = 10) -> list[StreamRecord]:
    return [StreamRecord(b"x" * size, str(i % 7), f"id-{i}") for i in range(count)]


def throttling(code: str = "ThrottlingException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "PutRecords")


def no_sleep(seconds: float) -> None:
    pass


FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


# ------------------------------------------------------------------------------ chunking


def test_chunks_hold_at_most_500_records_in_order() -> None:
    # GIVEN 1201 small records WHEN chunked
    chunks = list(chunk_records(records(1201)))

    # THEN 500 + 500 + 201, nothing lost or reordered
    assert [len(chunk) for chunk in chunks] == [500, 500, 201]
    assert [r for chunk in chunks for r in chunk] == records(1201)


def test_chunks_hold_at_most_5_mib_counting_data_and_key() -> None:
    # GIVEN records of 1,000,000 data bytes + 1 key byte: five fit in 5 MiB, six do not
    big = [StreamRecord(b"x" * 1_000_000, "k", f"id-{i}") for i in range(12)]

    # WHEN chunked THEN 5 + 5 + 2
    assert [len(chunk) for chunk in chunk_records(big)] == [5, 5, 2]


def test_a_chunk_may_reach_exactly_5_mib() -> None:
    # GIVEN five records of exactly 1 MiB with their key
    exact = [StreamRecord(b"x" * (1024 * 1024 - 2), "k1") for _ in range(5)]
    assert [len(chunk) for chunk in chunk_records(exact)] == [5]
    # AND one byte more per record splits them
    over = [StreamRecord(b"x" * (1024 * 1024 - 3), "k12") for _ in range(5)]
    assert [len(chunk) for chunk in chunk_records(over)] == [5]
    assert [len(chunk) for chunk in chunk_records([*exact, StreamRecord(b"y", "k")])] == [5, 1]


def test_a_record_over_1_mib_is_refused() -> None:
    oversized = StreamRecord(b"x" * (1024 * 1024), "key", "evt-1")
    with pytest.raises(ValueError, match="evt-1 is 1048579 bytes"):
        list(chunk_records([oversized]))


# ------------------------------------------------------------------------------ retries


def test_partial_failure_resends_only_the_failed_entries() -> None:
    # GIVEN a stream that rejects two of ten records once
    stream = FakeStream(failures={"id-2": 1, "id-5": 1})
    batch = records(10)

    # WHEN put with retry
    result = put_with_retry(stream, batch, FAST, no_sleep, random.Random(1))

    # THEN the second call carries only the two failed records, and every record lands once
    assert [len(call) for call in stream.calls] == [10, 2]
    assert [r.event_id for r in stream.calls[1]] == ["id-2", "id-5"]
    assert Counter(r.event_id for r in stream.accepted) == Counter(r.event_id for r in batch)
    assert result.accepted == 10
    assert result.unaccepted == []
    assert result.put_calls == 2
    assert result.retried == 2


def test_exhausted_budget_reports_the_remaining_records_with_their_error() -> None:
    # GIVEN a record that always fails, and a budget of three calls
    stream = FakeStream(failures={"id-3": -1})
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.1)

    # WHEN put with retry
    result = put_with_retry(stream, records(5), policy, slept.append, random.Random(1))

    # THEN it stops after three calls and reports that record with its error code
    assert result.put_calls == 3
    assert len(slept) == 2
    assert result.accepted == 4
    assert result.unaccepted == [("id-3", THROTTLED, "Rate exceeded for shard")]


@pytest.mark.parametrize(
    "error",
    [
        throttling("ProvisionedThroughputExceededException"),
        throttling("ThrottlingException"),
        throttling("InternalFailure"),
        throttling("ServiceUnavailable"),
        throttling("KMSThrottlingException"),
        EndpointConnectionError(endpoint_url="http://kinesis"),
        ConnectionResetError("reset by peer"),
    ],
)
def test_whole_call_throttling_and_transient_errors_are_retried(error: Exception) -> None:
    # GIVEN a stream whose first two calls fail as a whole
    stream = FakeStream(errors=[error, error])

    # WHEN put with retry
    result = put_with_retry(stream, records(3), FAST, no_sleep, random.Random(1))

    # THEN the third call delivers everything
    assert result.put_calls == 3
    assert result.accepted == 3
    assert result.retried == 6
    assert len(stream.accepted) == 3


def test_whole_call_failures_until_the_budget_ends_are_reported() -> None:
    stream = FakeStream(errors=[throttling()] * 4)
    result = put_with_retry(stream, records(2), FAST, no_sleep, random.Random(1))
    assert result.accepted == 0
    assert result.unaccepted == [
        ("id-0", "ThrottlingException", "slow down"),
        ("id-1", "ThrottlingException", "slow down"),
    ]


def test_errors_that_retrying_cannot_fix_are_raised() -> None:
    # GIVEN a missing stream
    stream = FakeStream(errors=[throttling("ResourceNotFoundException")])

    # WHEN / THEN the error surfaces at once
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        put_with_retry(stream, records(2), FAST, no_sleep, random.Random(1))
    assert len(stream.calls) == 1


def test_backoff_ceiling_doubles_up_to_the_maximum() -> None:
    # GIVEN jitter pinned near its top WHEN a record keeps failing
    policy = RetryPolicy(max_attempts=7, base_delay=0.1, max_delay=1.0)
    stream = FakeStream(failures={"id-0": -1})
    slept: list[float] = []
    put_with_retry(stream, records(1), policy, slept.append, FixedRandom(0.999))

    # THEN the delays grow 0.1, 0.2, 0.4, 0.8 and are capped at 1.0
    assert slept == pytest.approx([0.0999, 0.1998, 0.3996, 0.7992, 0.999, 0.999])


def test_backoff_delays_are_jittered_within_their_ceiling() -> None:
    # GIVEN a seeded rng WHEN many retries are drawn
    policy = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=2.0)
    rng = random.Random(7)
    delays = [[policy.delay(retry, rng) for retry in range(1, 8)] for _ in range(200)]

    # THEN each delay is in [0, min(2, 0.05 * 2**(retry-1))) and they vary (full jitter)
    for row in delays:
        for retry, delay in enumerate(row, 1):
            assert 0 <= delay < min(2.0, 0.05 * 2 ** (retry - 1))
    firsts = [row[0] for row in delays]
    assert min(firsts) < 0.01 and max(firsts) > 0.04
    # AND later retries wait longer on average
    means = [sum(row[i] for row in delays) / len(delays) for i in range(7)]
    assert means[0] < means[2] < means[4] < means[6]


def test_retry_policy_rejects_an_empty_budget() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


# ------------------------------------------------------------------------------ sending


def events(count: int, rate: float = 1000) -> list[Event]:
    return list(generate("classic", seed=1, start=START, rate=rate, count=count))


def at(event: Event, moment: datetime) -> Event:
    return dataclasses.replace(event, trans_timestamp=moment)


def test_send_events_serialises_json_lines_keyed_by_custid() -> None:
    # GIVEN 1234 events WHEN sent unpaced
    stream = FakeStream()
    progress: list[int] = []
    report = send_events(events(1234), stream, on_progress=lambda r: progress.append(r.sent))

    # THEN they go out in chunks of 500 as JSON lines keyed by custid
    assert [len(call) for call in stream.calls] == [500, 500, 234]
    first = stream.accepted[0]
    assert first.data.endswith(b"\n") and first.data.count(b"\n") == 1
    document = json.loads(first.data)
    assert first.partition_key == str(document["custid"])
    assert first.event_id == document["event_id"]
    assert progress == [500, 1000, 1234]
    assert report == SendReport(sent=1234, accepted=1234, put_calls=3)


def test_send_records_reports_partial_failures_and_retries() -> None:
    # GIVEN pre-built records, one failing once and one failing always
    stream = FakeStream(failures={"id-1": 1, "id-4": -1})

    # WHEN sent
    report = send_records(records(6), stream, policy=FAST, sleep=no_sleep)

    # THEN the report accounts for every record
    assert report.sent == 6
    assert report.accepted == 5
    assert report.put_calls == 4
    assert report.retried_records == 1 + 3
    assert report.unaccepted == [("id-4", THROTTLED, "Rate exceeded for shard")]
    assert report.as_dict() == {
        "sent": 6,
        "accepted": 5,
        "unaccepted_count": 1,
        "put_calls": 4,
        "retried_records": 4,
        "unaccepted": [
            {"event_id": "id-4", "error_code": THROTTLED, "message": "Rate exceeded for shard"}
        ],
    }


def test_sending_nothing_makes_no_call() -> None:
    stream = FakeStream()
    assert send_events([], stream) == SendReport()
    assert send_events([], stream, pace=True, clock=FakeClock()) == SendReport()
    assert stream.calls == []


def test_paced_events_are_sent_on_time_and_batched_by_flush_interval() -> None:
    # GIVEN events at offsets 0, 0.1, 0.2, 0.5, 2, 2.05 and 10 s
    offsets = [0, 0.1, 0.2, 0.5, 2.0, 2.05, 10.0]
    moments = [START + timedelta(seconds=offset) for offset in offsets]
    timed = [at(event, moment) for event, moment in zip(events(7), moments, strict=True)]
    clock = FakeClock()
    began = clock.now
    stream = FakeStream(clock=clock)

    # WHEN sent paced with a 0.25 s flush interval
    report = send_events(timed, stream, pace=True, clock=clock, sleep=clock.sleep)

    # THEN no event is sent before its time, nor later than its time plus the flush interval
    assert report.accepted == len(offsets)
    for offset, sent_at in zip(offsets, stream.accepted_at, strict=True):
        assert began + offset <= sent_at <= began + offset + 0.25 + 1e-9
    # AND close events share a call
    assert [len(call) for call in stream.calls] == [3, 1, 2, 1]
    # AND the last buffer is flushed as soon as the events run out
    assert clock.now == pytest.approx(began + 10.0)


def test_paced_burst_is_split_by_500_records() -> None:
    # GIVEN 1200 events with the same timestamp
    burst = [at(event, START) for event in events(1200)]
    clock = FakeClock()
    stream = FakeStream(clock=clock)

    # WHEN sent paced
    send_events(burst, stream, pace=True, clock=clock, sleep=clock.sleep)

    # THEN 500-record calls go out at once and the rest after the flush interval at most
    assert [len(call) for call in stream.calls] == [500, 500, 200]
    assert clock.now - 1000.0 <= 0.25


# ---------------------------------------------------------------------------- packing


def four_shards() -> ShardMap:
    """Four shards splitting the hash keys evenly."""
    quarter = HASH_KEY_LIMIT // 4
    return ShardMap(
        [HashRange(n * quarter, (n + 1) * quarter - 1, f"shardId-{n:012d}") for n in range(4)]
    )


class ShardedStream(FakeStream):
    """The fake stream, knowing its four shards."""

    def shard_map(self) -> ShardMap:
        return four_shards()


def test_a_shard_map_finds_the_range_of_a_partition_keys_md5() -> None:
    # GIVEN four even shards
    shards = four_shards()
    # WHEN partition keys are looked up THEN each lands where its MD5 falls
    for key in ("1", "42", "4711", "ö"):
        found = shards.range_for(key)
        assert found.start <= hash_key(key) <= found.end
    # AND the MD5 is Kinesis': the 128-bit big-endian value of the UTF-8 key's digest
    assert hash_key("1") == 0xC4CA4238A0B923820DCC509A6F75849B
    # AND ranges that leave a gap or stop short are refused
    with pytest.raises(ValueError, match="do not cover"):
        ShardMap([HashRange(0, 9, "a"), HashRange(11, HASH_KEY_LIMIT - 1, "b")])
    with pytest.raises(ValueError, match="not"):
        ShardMap([HashRange(0, 9, "a")])


def test_packed_records_hold_one_shards_events_in_order_within_the_size() -> None:
    # GIVEN 2,000 events of many customers and four shards
    events = list(generate("realistic", seed=3, start=START, rate=100, count=2000))
    shards = four_shards()
    # WHEN they are packed into records of at most 5,000 bytes
    records = pack_events(events, shards, max_record_bytes=5000)
    # THEN every event is in exactly one record, as its JSON line
    lines = [line for record in records for line in record.data.splitlines(keepends=True)]
    assert sorted(lines) == sorted(event.to_json_line() for event in events)
    assert sum(len(record.event_ids) for record in records) == len(events)
    # AND each record holds events of one shard, is sent there, and stays within the size
    by_id = {event.event_id: event for event in events}
    for record in records:
        held = [by_id[event_id] for event_id in record.packed_event_ids]
        (shard,) = {shards.range_for(event.partition_key) for event in held}
        assert record.explicit_hash_key == str(shard.start)
        assert record.partition_key == held[0].partition_key
        assert record.data == b"".join(event.to_json_line() for event in held)
        assert len(record.data) <= 5000
    # AND each shard's events keep their order across its records
    for shard in shards.ranges:
        sent = [
            event_id
            for record in records
            if record.explicit_hash_key == str(shard.start)
            for event_id in record.packed_event_ids
        ]
        assert sent == [e.event_id for e in events if shards.range_for(e.partition_key) == shard]
    # AND they need far fewer records than events
    assert len(records) < len(events) / 10


def test_sending_to_a_stream_that_knows_its_shards_packs_and_counts_events() -> None:
    # GIVEN a stream of four shards that refuses, once, the record holding one event
    events = list(generate("classic", seed=5, start=START, rate=10, count=300))
    stream = ShardedStream(failures={})
    records = pack_events(events, four_shards())
    stream.failures = {records[0].event_id or "": 1}
    # WHEN the events are sent
    report = send_events(events, stream, sleep=lambda _: None)
    # THEN four records carried all 300 events, the refused one again on a retry
    assert (report.sent, report.accepted, report.unaccepted) == (300, 300, [])
    assert len(stream.accepted) == 4 and report.retried_records == 1
    # AND a record refused for good reports each of its events
    stream = ShardedStream(failures={records[0].event_id or "": -1})
    report = send_events(events, stream, sleep=lambda _: None)
    assert [event_id for event_id, _, _ in report.unaccepted] == list(records[0].event_ids)
    assert report.accepted == 300 - len(records[0].event_ids)


def test_paced_sending_packs_the_events_of_each_flush() -> None:
    # GIVEN 10 s of events at 100 events/s, paced, and a stream of four shards
    events = list(generate("classic", seed=9, start=START, rate=100, duration=10))
    clock = FakeClock()
    stream = ShardedStream(clock=clock)
    # WHEN they are sent with flushes every 0.25 s
    report = send_events(events, stream, pace=True, clock=clock, sleep=clock.sleep)
    # THEN every event went out, about 25 per flush over at most four records
    assert report.accepted == len(events)
    flushes = len(stream.calls)
    assert all(len(call) <= 4 for call in stream.calls)
    assert len(stream.accepted) <= 4 * flushes < len(events)


@pytest.mark.parametrize(
    ("rate", "shard_count", "seconds"),
    [(10, 2, 60), (100, 4, 20), (1000, 2, 5), (1000, 4, 5), (4000, 16, 3)],
)
def test_the_cost_models_events_per_record_is_what_paced_sending_packs(
    rate: int, shard_count: int, seconds: int
) -> None:
    # GIVEN realistic events at a rate, paced, to a stream of even shards
    events = list(generate("realistic", seed=1, start=START, rate=rate, duration=seconds))
    width = HASH_KEY_LIMIT // shard_count
    ranges = [HashRange(n * width, (n + 1) * width - 1, f"s{n}") for n in range(shard_count)]
    ranges[-1] = HashRange(ranges[-1].start, HASH_KEY_LIMIT - 1, ranges[-1].shard_id)
    clock = FakeClock()

    class Stream(FakeStream):
        def shard_map(self) -> ShardMap:
            return ShardMap(ranges)

    stream = Stream(clock=clock)
    # WHEN they are sent
    send_events(events, stream, pace=True, clock=clock, sleep=clock.sleep)
    # THEN the events per record the cost model bills are those sent, within 5 %
    sent = len(events) / len(stream.accepted)
    event_bytes = sum(len(e.to_json_line()) for e in events) / len(events)
    assert events_per_record(rate, shard_count, event_bytes) == pytest.approx(sent, rel=0.05)
