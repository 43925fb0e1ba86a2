"""The commit's transactions refused by DynamoDB (``clickstream.adapters.aws.dynamodb.commit``).

A provisioned table beyond its capacity, or an on-demand one while it scales, cancels a
``TransactWriteItems`` with the reasons ``ProvisionedThroughputExceeded`` or ``ThrottlingError``:
nothing is written, and boto3 does not retry it. The commit sends such a transaction again after
a backoff, and reports one still refused as a failed commit, never as a checkpoint conflict. The
client here is a stub that answers each call from a script; the local endpoint never throttles.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clickstream.adapters.aws.dynamodb import checkpoint_put, commit, refused_for_capacity
from clickstream.core.checkpoints import CheckpointConflict, ShardCheckpoint
from clickstream.core.retry import RetryPolicy

TABLE = "state"
CHECKPOINT = checkpoint_put(TABLE, ShardCheckpoint("window_counter", "shardId-0", "12"), 3)
UPDATE = {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "W#a"}, "sk": {"S": "b"}}}}
RETRY = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1.0)


def cancelled(*codes: str) -> ClientError:
    """A TransactionCanceledException with one reason per action, as DynamoDB lists them."""
    reasons = [{"Code": code} for code in codes]
    message = f"Transaction cancelled, please refer cancellation reasons [{', '.join(codes)}]"
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": message},
            "CancellationReasons": reasons,
        },
        "TransactWriteItems",
    )


class ScriptedClient:
    """Answers each ``transact_write_items`` with the next error of its script, then success."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(TransactItems)
        if self.errors:
            raise self.errors.pop(0)
        return {}


def send(client: ScriptedClient, sleeps: list[float]) -> None:
    commit(client, [UPDATE], CHECKPOINT, retry=RETRY, sleep=sleeps.append, rng=random.Random(7))


def test_a_transaction_refused_for_capacity_is_sent_again_after_a_backoff() -> None:
    # GIVEN a table whose capacity refuses the commit twice (a provisioned table at its limit,
    # then an on-demand one while it scales)
    client = ScriptedClient(
        cancelled("ProvisionedThroughputExceeded", "None"), cancelled("None", "ThrottlingError")
    )
    sleeps: list[float] = []
    # WHEN the batch commits
    send(client, sleeps)
    # THEN the same transaction was sent three times, the last one accepted
    assert len(client.calls) == 3
    assert client.calls[0] == client.calls[1] == client.calls[2] == [UPDATE, CHECKPOINT]
    # AND it waited before each resend, within the full-jitter ceilings 0.1 s and 0.2 s
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] < 0.1
    assert 0 <= sleeps[1] < 0.2


def test_a_transaction_refused_for_capacity_every_time_is_a_failed_commit_not_a_conflict() -> None:
    # GIVEN a table that refuses every send for capacity
    client = ScriptedClient(*[cancelled("None", "ProvisionedThroughputExceeded")] * 10)
    sleeps: list[float] = []
    # WHEN the batch commits
    with pytest.raises(ClientError) as refused:
        send(client, sleeps)
    # THEN it gave up after the policy's 4 sends with DynamoDB's error: the consumer reports the
    # batch's first record not committed and Lambda retries it, instead of recomputing the batch
    # as after a conflict
    assert not isinstance(refused.value, CheckpointConflict)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert len(client.calls) == 4
    assert len(sleeps) == 3


def test_a_failed_checkpoint_condition_is_a_conflict_and_is_not_sent_again() -> None:
    # GIVEN another writer that moved the checkpoint since it was read
    client = ScriptedClient(cancelled("None", "ConditionalCheckFailed"))
    sleeps: list[float] = []
    # WHEN the batch commits
    # THEN it is a conflict at once: the batch is recomputed from the fresh checkpoint
    with pytest.raises(CheckpointConflict):
        send(client, sleeps)
    assert (len(client.calls), sleeps) == (1, [])


def test_a_throttled_transaction_whose_checkpoint_condition_failed_is_a_conflict() -> None:
    # GIVEN a transaction cancelled both for capacity on an update and for the checkpoint's
    # condition
    client = ScriptedClient(cancelled("ThrottlingError", "ConditionalCheckFailed"))
    sleeps: list[float] = []
    # WHEN the batch commits
    # THEN the failed condition decides: resending could never succeed
    with pytest.raises(CheckpointConflict):
        send(client, sleeps)
    assert (len(client.calls), sleeps) == (1, [])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (cancelled("None", "ProvisionedThroughputExceeded"), True),
        (cancelled("ThrottlingError", "ThrottlingError"), True),
        (cancelled("ThrottlingError", "TransactionConflict"), False),
        (cancelled("ConditionalCheckFailed", "None"), False),
        (cancelled("None", "None"), False),
        (
            ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "no reasons"}},
                "TransactWriteItems",
            ),
            False,
        ),
        (
            ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            ),
            False,
        ),
    ],
)
def test_only_a_cancellation_for_capacity_alone_is_refused_for_capacity(
    error: ClientError, expected: bool
) -> None:
    # GIVEN a refused transaction (a ProvisionedThroughputExceededException itself is a throttled
    # request boto3 retries on its own)
    # WHEN it is classified
    # THEN only capacity reasons, and no other, make it one to send again
    assert refused_for_capacity(error) is expected
