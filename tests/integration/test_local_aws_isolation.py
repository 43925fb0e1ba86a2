"""Concurrent requests to the local AWS endpoint keep DynamoDB's and Kinesis's guarantees.

Moto keeps each service's state in plain Python objects. A DynamoDB transaction whose condition
fails rolls back by restoring a copy of the whole table taken when it started, which also undoes
any other request that wrote to the table meanwhile; Kinesis numbers a record by reading the last
number and adding one. The local server therefore runs such requests one at a time, as the real
services behave: each request is atomic.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clickstream_local.aws import local_client

pytestmark = pytest.mark.integration

WRITES_PER_THREAD = 150
FILLER_ITEMS = 1000
"""Items already in the table: the bigger the table, the longer moto's copy of it takes."""


def create_table(client: Any, name: str) -> None:
    """A table keyed like the consumers' state tables."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def fill(client: Any, table: str) -> None:
    """Write :data:`FILLER_ITEMS` unrelated items."""
    for start in range(0, FILLER_ITEMS, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": f"filler-{n}"}, "sk": {"S": "x" * 100}}}}
                    for n in range(start, start + 25)
                ]
            }
        )


def committed_writes(client: Any, table: str) -> None:
    """Transactions that succeed: each adds one number to a set."""
    for number in range(WRITES_PER_THREAD):
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "committed"}, "sk": {"S": "set"}},
                        "UpdateExpression": "ADD members :one",
                        "ExpressionAttributeValues": {":one": {"NS": [str(number)]}},
                    }
                }
            ]
        )


def cancelled_writes(client: Any, table: str) -> int:
    """Transactions that are cancelled by their condition; returns how many were cancelled."""
    cancelled = 0
    for number in range(WRITES_PER_THREAD):
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"pk": {"S": "cancelled"}, "sk": {"S": "set"}},
                            "UpdateExpression": "ADD members :one",
                            "ExpressionAttributeValues": {":one": {"NS": [str(number)]}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": {"pk": {"S": "absent"}, "sk": {"S": "item"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TransactionCanceledException"
            cancelled += 1
    return cancelled


def test_a_cancelled_transaction_does_not_undo_concurrent_writes_to_the_table(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN a table with some items, and two clients writing to other items at the same time
    table = f"{stack_name}-isolation"
    client = local_client("dynamodb", moto_endpoint)
    create_table(client, table)
    client.put_item(TableName=table, Item={"pk": {"S": "committed"}, "sk": {"S": "set"}})
    fill(client, table)
    # WHEN one commits every transaction while the other has every transaction cancelled
    with ThreadPoolExecutor(max_workers=2) as pool:
        committing = pool.submit(committed_writes, local_client("dynamodb", moto_endpoint), table)
        cancelling = pool.submit(cancelled_writes, local_client("dynamodb", moto_endpoint), table)
        committing.result()
        cancelled = cancelling.result()
    # THEN every committed write is kept and no cancelled one is
    item = client.get_item(
        TableName=table, Key={"pk": {"S": "committed"}, "sk": {"S": "set"}}, ConsistentRead=True
    )["Item"]
    assert sorted(int(n) for n in item["members"]["NS"]) == list(range(WRITES_PER_THREAD))
    assert cancelled == WRITES_PER_THREAD
    assert "Item" not in client.get_item(
        TableName=table, Key={"pk": {"S": "cancelled"}, "sk": {"S": "set"}}
    )


def test_concurrent_producers_get_distinct_sequence_numbers(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN a one-shard stream and four producers writing to it at the same time
    stream = f"{stack_name}-isolation"
    kinesis = local_client("kinesis", moto_endpoint)
    kinesis.create_stream(StreamName=stream, ShardCount=1)

    def produce(producer: int) -> list[str]:
        client = local_client("kinesis", moto_endpoint)
        return [
            client.put_record(
                StreamName=stream, Data=f"{producer}-{number}".encode(), PartitionKey="key"
            )["SequenceNumber"]
            for number in range(WRITES_PER_THREAD // 3)
        ]

    # WHEN they all put records
    with ThreadPoolExecutor(max_workers=4) as pool:
        batches = list(pool.map(produce, range(4)))
    sequence_numbers = [number for batch in batches for number in batch]
    # THEN every record got its own sequence number and every record is in the shard
    assert len(set(sequence_numbers)) == len(sequence_numbers) == 4 * (WRITES_PER_THREAD // 3)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    stored = kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]
    assert len(stored) == len(sequence_numbers)
