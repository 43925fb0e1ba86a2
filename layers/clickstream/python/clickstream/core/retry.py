"""Retrying: the one retry-on-conflict rule of the stream consumers, and a backoff policy.

:class:`ConflictRetry` runs an attempt (load the checkpoint, compute, commit) again when its
commit meets a :class:`~clickstream.core.checkpoints.CheckpointConflict`, within a budget of
attempts shared by every commit of one batch; the conflict that exhausts it propagates, so the
batch fails and is redelivered. :class:`RetryPolicy` is the full-jitter exponential backoff of
calls to a remote service (the producer's PutRecords, the search indexer's requests).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from clickstream.core.checkpoints import CheckpointConflict

_T = TypeVar("_T")


class ConflictRetry:
    """Runs attempts again on CheckpointConflict, at most ``attempts`` conflicts in all."""

    def __init__(self, attempts: int) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.attempts = attempts
        self.conflicts = 0

    def run(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()``; on a conflict, again from the start, until the budget is spent.

        The budget counts the conflicts of every call to :meth:`run` on this object, so a batch
        committed in several chunks shares one budget.
        """
        while True:
            try:
                return attempt()
            except CheckpointConflict:
                self.conflicts += 1
                if self.conflicts >= self.attempts:
                    raise


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` calls per request; full-jitter exponential backoff."""

    max_attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")

    def ceiling(self, retry: int) -> float:
        """Largest delay before retry number ``retry`` (1 for the first retry)."""
        return min(self.max_delay, self.base_delay * 2 ** min(retry - 1, 60))

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter: a uniform delay in ``[0, ceiling(retry))``."""
        return self.ceiling(retry) * rng.random()
