"""Iterator age of a Lambda Kinesis batch, as every stream consumer reports it."""

from __future__ import annotations

from datetime import UTC, datetime

from clickstream.adapters.kinesis_event import iterator_age_ms


def record(arrival: float) -> dict[str, object]:
    return {"kinesis": {"approximateArrivalTimestamp": arrival, "data": "", "sequenceNumber": "1"}}


def test_the_age_is_measured_from_the_oldest_record_of_the_batch() -> None:
    # GIVEN records that arrived 2.5 s and 0.5 s before now
    now = datetime(2026, 3, 7, 14, 0, 10, tzinfo=UTC)
    event = {"Records": [record(now.timestamp() - 0.5), record(now.timestamp() - 2.5)]}
    # THEN the batch is 2,500 ms behind
    assert iterator_age_ms(event, now) == 2500


def test_an_empty_batch_or_a_clock_behind_the_arrival_gives_zero() -> None:
    now = datetime(2026, 3, 7, 14, 0, 10, tzinfo=UTC)
    assert iterator_age_ms({"Records": []}, now) == 0
    assert iterator_age_ms({"Records": [record(now.timestamp() + 1)]}, now) == 0
