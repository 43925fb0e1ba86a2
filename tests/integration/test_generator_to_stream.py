"""The generator's PutRecords retry against the real moto stream, with injected failures."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.core.retry import RetryPolicy
from clickstream.generator import generate, send_events
from clickstream.ports import PutOutcome, RecordStream, StreamRecord
from clickstream_analytics.reconcile import stream_event_ids
from clickstream_local.aws import local_client
from clickstream_local.provision import Provisioner

from .conftest import project_template

pytestmark = pytest.mark.integration


class FlakyStream(RecordStream):
    """Forwards to a real stream, but throttles a random share of records on the first calls.

    A throttled record is not forwarded, exactly as Kinesis leaves a failed entry unwritten.
    """

    def __init__(self, inner: RecordStream, failing_calls: int, share: float, seed: int) -> None:
        self.inner = inner
        self.failing_calls = failing_calls
        self.share = share
        self.rng = random.Random(seed)
        self.calls = 0
        self.throttled = 0

    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        self.calls += 1
        if self.calls > self.failing_calls:
            return self.inner.put_records(records)
        fail = [self.rng.random() < self.share for _ in records]
        forwarded = self.inner.put_records([r for r, f in zip(records, fail, strict=True) if not f])
        outcomes, accepted = [], iter(forwarded)
        for failed in fail:
            if failed:
                self.throttled += 1
                outcomes.append(
                    PutOutcome("ProvisionedThroughputExceededException", "Rate exceeded for shard")
                )
            else:
                outcomes.append(next(accepted))
        return outcomes


def test_partially_failed_put_records_are_retried_until_every_event_is_in_the_stream(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN a provisioned stream and a producer whose first six calls lose 30 % of records
    Provisioner(project_template(stack_name), moto_endpoint).provision()
    kinesis = local_client("kinesis", moto_endpoint)
    stream_name = f"{stack_name}-clickstream"
    flaky = FlakyStream(
        KinesisRecordStream(kinesis, stream_name), failing_calls=6, share=0.3, seed=1
    )
    events = list(
        generate("classic", seed=3, start=datetime(2026, 3, 7, tzinfo=UTC), rate=50, count=1200)
    )
    # WHEN the events are sent
    report = send_events(events, flaky, policy=RetryPolicy(max_attempts=8, base_delay=0.01))
    # THEN records were throttled and retried, and every event is in the stream exactly once
    assert flaky.throttled > 0 and report.retried_records >= flaky.throttled
    assert report.accepted == 1200 and report.unaccepted == []
    in_stream = stream_event_ids(kinesis, stream_name)
    assert in_stream == Counter(event.event_id for event in events)


def test_records_still_refused_after_the_budget_are_reported(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN a stream that throttles every record on every call
    Provisioner(project_template(stack_name), moto_endpoint).provision()
    kinesis = local_client("kinesis", moto_endpoint)
    stream_name = f"{stack_name}-clickstream"
    always = FlakyStream(
        KinesisRecordStream(kinesis, stream_name), failing_calls=10**6, share=1.0, seed=1
    )
    events = list(
        generate("classic", seed=4, start=datetime(2026, 3, 7, tzinfo=UTC), rate=50, count=20)
    )
    # WHEN they are sent with a three-attempt budget
    report = send_events(events, always, policy=RetryPolicy(max_attempts=3, base_delay=0.001))
    # THEN nothing is accepted and each event is reported with its error code
    assert report.accepted == 0
    assert sorted(e for e, _, _ in report.unaccepted) == sorted(e.event_id for e in events)
    assert {code for _, code, _ in report.unaccepted} == {"ProvisionedThroughputExceededException"}
    assert sum(stream_event_ids(kinesis, stream_name).values()) == 0
