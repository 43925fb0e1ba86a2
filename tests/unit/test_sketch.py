"""The HyperLogLog sketch of the core: its estimate against its bound, merging, its bytes."""

from __future__ import annotations

import pytest

from clickstream.core.sketch import (
    ERROR_BOUND,
    MAX_RANK,
    REGISTER_COUNT,
    RELATIVE_STANDARD_ERROR,
    SERIALIZED_BYTES,
    HyperLogLog,
    element_hash,
    union,
)


def relative_error(estimate: float, exact: int) -> float:
    return abs(estimate - exact) / exact


def test_the_stated_error_is_three_standard_errors_of_4096_registers() -> None:
    # THEN the relative standard error is 1.04 / sqrt(4096) and the bound three times that
    assert REGISTER_COUNT == 4096
    assert RELATIVE_STANDARD_ERROR == 1.04 / 64
    assert ERROR_BOUND == 3 * RELATIVE_STANDARD_ERROR
    assert (round(RELATIVE_STANDARD_ERROR, 6), round(ERROR_BOUND, 6)) == (0.01625, 0.04875)


@pytest.mark.parametrize(
    "cardinality",
    [100, 1_000, 10_000, 100_000, pytest.param(1_000_000, marks=pytest.mark.slow)],
)
def test_the_estimate_is_within_the_bound_from_a_hundred_to_a_million(cardinality: int) -> None:
    # GIVEN a sketch of that many distinct custids
    sketch = HyperLogLog.of(range(1, cardinality + 1))
    # THEN its estimate is within the stated bound of the exact count
    assert relative_error(sketch.estimate(), cardinality) <= ERROR_BOUND


def test_small_sets_are_counted_almost_exactly() -> None:
    # GIVEN 100 values over 4096 registers (almost no two share a register)
    sketch = HyperLogLog.of(range(5_000, 5_100))
    # THEN the estimate is within 2 of the count
    assert abs(sketch.estimate() - 100) <= 2


def test_estimates_are_unbiased_where_sketches_start() -> None:
    # GIVEN 40 disjoint sets of 10 000 values, about where the window counter folds its sets
    errors = [
        HyperLogLog.of(range(start, start + 10_000)).estimate() / 10_000 - 1
        for start in range(1, 400_001, 10_000)
    ]
    # THEN the mean error is far below the standard error, and every estimate within the bound
    assert abs(sum(errors) / len(errors)) < RELATIVE_STANDARD_ERROR / 2
    assert max(abs(error) for error in errors) <= ERROR_BOUND


def test_merge_is_union() -> None:
    # GIVEN two overlapping sets
    left, right = range(1, 30_001), range(20_001, 60_001)
    # WHEN their sketches are merged
    merged = HyperLogLog.of(left).merge(HyperLogLog.of(right))
    # THEN the merge is the sketch of the union, register for register
    assert merged == HyperLogLog.of(range(1, 60_001))
    assert relative_error(merged.estimate(), 60_000) <= ERROR_BOUND
    # AND exact values added to a sketch give the same registers as merging their sketch
    assert HyperLogLog.of(left).add_all(right) == merged


def test_merging_is_commutative_associative_and_idempotent() -> None:
    # GIVEN three sketches
    a, b, c = (HyperLogLog.of(range(n, n + 7_000)) for n in (1, 5_001, 9_001))
    # THEN the order and repetition of merges do not matter
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == union([c, b, a])
    assert a.merge(a) == a
    # AND adding values a second time changes nothing (a redelivered batch)
    assert a.add_all(range(1, 7_001)) == a


def test_an_empty_sketch_counts_zero_and_union_of_nothing_is_empty() -> None:
    # THEN an empty sketch estimates zero, and the union of no sketch is empty
    assert HyperLogLog().estimate() == 0.0
    assert union([]) == HyperLogLog()
    assert HyperLogLog.of([7]).count() == 1


def test_a_sketch_serialises_to_4098_bytes_and_back() -> None:
    # GIVEN a sketch
    sketch = HyperLogLog.of(range(1, 20_001))
    # WHEN serialised
    data = sketch.to_bytes()
    # THEN a format byte, the precision and one byte per register, read back unchanged
    assert len(data) == SERIALIZED_BYTES == 4098
    assert data[:2] == bytes((1, 12))
    assert HyperLogLog.from_bytes(data) == sketch


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes((1, 12)) + bytes(REGISTER_COUNT - 1),
        bytes((2, 12)) + bytes(REGISTER_COUNT),
        bytes((1, 14)) + bytes(REGISTER_COUNT),
        bytes((1, 12)) + bytes([MAX_RANK + 1]) + bytes(REGISTER_COUNT - 1),
    ],
)
def test_bytes_that_are_not_a_sketch_are_refused(data: bytes) -> None:
    # THEN anything but a version 1, precision 12 sketch with valid ranks is a ValueError
    with pytest.raises(ValueError):
        HyperLogLog.from_bytes(data)


def test_values_are_unsigned_64_bit_integers() -> None:
    # THEN the largest event digest hashes, and values outside 64 bits are refused
    assert 0 <= element_hash(2**64 - 1) < 2**64
    assert element_hash(42) == element_hash(42) != element_hash(43)
    for value in (-1, 2**64):
        with pytest.raises(ValueError, match="unsigned 64-bit"):
            HyperLogLog.of([value])
