"""Partial batch failures in the core: the longest prefix the rules process, the response."""

from __future__ import annotations

import pytest

from clickstream.core.batch_failures import (
    describe,
    partial_batch_response,
    processable_prefix,
)


class Rules:
    """Rules over the first ``count`` of 100 records that raise on the record at ``poison``."""

    def __init__(self, poison: int | None) -> None:
        self.poison = poison
        self.evaluated: list[int] = []

    def __call__(self, count: int) -> int:
        self.evaluated.append(count)
        if self.poison is not None and count > self.poison:
            raise ValueError(f"record {self.poison} cannot be processed")
        return count * 10


def test_a_healthy_batch_is_evaluated_once() -> None:
    # GIVEN rules that process every record
    rules = Rules(poison=None)
    # WHEN the processable prefix of 100 records is asked
    prefix = processable_prefix(100, rules)
    # THEN it is the whole batch, with the rules' result, after one evaluation
    assert (prefix.length, prefix.result, prefix.error) == (100, 1000, None)
    assert rules.evaluated == [100]


@pytest.mark.parametrize("poison", [0, 1, 37, 98, 99])
def test_the_prefix_ends_right_before_the_poison_record(poison: int) -> None:
    # GIVEN rules that raise on one record of 100
    rules = Rules(poison)
    # WHEN the processable prefix is asked
    prefix = processable_prefix(100, rules)
    # THEN it holds exactly the records before the poison one, with their result and the error
    assert (prefix.length, prefix.result) == (poison, poison * 10)
    assert prefix.error == f"ValueError: record {poison} cannot be processed"
    # AND a binary search found it: the whole batch, no records, then at most 7 halvings
    assert len(rules.evaluated) <= 9


def test_rules_that_fail_on_no_records_are_no_records_fault() -> None:
    # GIVEN rules that raise whatever they are given
    def broken(count: int) -> int:
        raise RuntimeError("the rules are broken")

    # WHEN the processable prefix is asked THEN their error propagates
    with pytest.raises(RuntimeError, match="the rules are broken"):
        processable_prefix(3, broken)


def test_an_error_is_described_on_one_line_with_its_type() -> None:
    assert describe(OSError("S3\n  unreachable")) == "OSError: S3 unreachable"
    assert describe(KeyError()) == "KeyError"


def test_the_partial_batch_response_names_each_record_to_resume_at() -> None:
    assert partial_batch_response(["7", "12"]) == {
        "batchItemFailures": [{"itemIdentifier": "7"}, {"itemIdentifier": "12"}]
    }
    assert partial_batch_response([]) == {"batchItemFailures": []}
