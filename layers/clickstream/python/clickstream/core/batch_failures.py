"""Partial batch failures: the record a shard batch's retry starts from, and why. Pure.

The rules of (docs/architecture.md, Stream semantics: Exactly once, Partial batch failures).

A stream consumer commits a shard batch in order, so what it could not commit is always a tail
of the batch. Its Lambda response names the first record of that tail
(``ReportBatchItemFailures``): Lambda keeps the records before it as done and retries from it.

**Poison records.** The consumers' rules are pure, so a record that makes them raise is found
without I/O: :func:`processable_prefix` evaluates prefixes of the batch and finds the longest
one the rules process. The consumer commits that prefix and reports the next record, which
fails the same way on every retry until the code is fixed; Lambda then keeps the rest of the
batch in the on-failure destination, for a redrive.

**I/O failures** (throttling, a checkpoint conflict that keeps repeating) are not a record's
fault: the consumer reports the first record it has not committed, and the retry starts there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from clickstream.core.records import record_sequence_number

_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordFailure:
    """The first record of a shard batch that was not committed, and why."""

    shard_id: str
    sequence_number: str
    reason: str
    """The error, as ``ExceptionType: message``."""
    poison: bool
    """True when the rules raise on this record itself; False when I/O stopped the commit."""


@dataclass(frozen=True)
class Prefix(Generic[_T]):
    """The longest prefix of a batch the rules process, and their result on it."""

    length: int
    result: _T
    error: str | None = None
    """Why the record right after the prefix made the rules raise; None when none did."""


def processable_prefix(count: int, evaluate: Callable[[int], _T]) -> Prefix[_T]:
    """The longest ``n <= count`` for which ``evaluate(n)`` (the rules on the first ``n``
    records) returns, found with at most about ``log2(count) + 2`` evaluations.

    The whole batch is tried first, so a healthy batch costs one evaluation. ``evaluate(0)``
    must return: an error on no records is no record's fault, and it propagates.
    """
    try:
        return Prefix(count, evaluate(count))
    except Exception as error:  # the rules raised: find the record that makes them
        failing, reason = count, describe(error)
    good, result = 0, evaluate(0)
    while failing - good > 1:
        middle = (good + failing) // 2
        try:
            result, good = evaluate(middle), middle
        except Exception as error:
            failing, reason = middle, describe(error)
    return Prefix(good, result, reason)


def describe(error: BaseException) -> str:
    """``ExceptionType: message``, on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def partial_batch_response(positions: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The Lambda partial batch response (``ReportBatchItemFailures``) naming these records.

    Lambda retries a shard from the lowest sequence number named, so a consumer names the first
    record of each shard it did not finish; an empty list means the whole batch is done. An
    event of a packed record is named by its Kinesis record (:func:`record_sequence_number`):
    the retry starts at that record's first event, and the events before the failed one are
    then skipped as already applied.
    """
    named = dict.fromkeys(record_sequence_number(position) for position in positions)
    return {"batchItemFailures": [{"itemIdentifier": sequence_number} for sequence_number in named]}
