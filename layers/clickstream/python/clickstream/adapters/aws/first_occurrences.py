"""The registry of first occurrences in a consumer's DynamoDB state table.

The rules are :mod:`clickstream.core.first_occurrences`. Items (string keys ``pk``, ``sk``)::

    pk              "REGISTRY#<consumer>#<shard_id>#<bucket_start_us>"
    sk              the committing checkpoint's version, 12 digits
    digests  B      the commit's first occurrences in the bucket: 8-byte big-endian digests
    expires_at      TTL: the bucket's end in epoch seconds + the retention

One item per (commit, bucket), a ``Put`` in the transaction that carries the checkpoint, so an
item exists exactly when its commit does, and none is ever rewritten. A batch reads the buckets
it touches with one strongly consistent ``Query`` each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from clickstream.core.first_occurrences import BUCKET_SECONDS, Registry
from clickstream.core.windows import to_micros

DEFAULT_RETENTION_DAYS = 7
"""How long registry items are kept after their bucket ends."""
DIGEST_BYTES = 8
_SECONDS_PER_DAY = 86_400
_MICROS_PER_SECOND = 1_000_000


def registry_pk(consumer: str, shard_id: str, bucket: datetime) -> str:
    """Partition key of a shard's registry items of one bucket."""
    return f"REGISTRY#{consumer}#{shard_id}#{to_micros(bucket)}"


def registry_puts(
    table: str,
    consumer: str,
    shard_id: str,
    version: int,
    registrations: Registry,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> list[dict[str, Any]]:
    """The TransactWriteItems ``Put`` of each bucket's first occurrences, one item per bucket."""
    puts: list[dict[str, Any]] = []
    for bucket in sorted(registrations):
        digests = b"".join(
            digest.to_bytes(DIGEST_BYTES, "big") for digest in sorted(registrations[bucket])
        )
        bucket_end = to_micros(bucket) // _MICROS_PER_SECOND + BUCKET_SECONDS
        item = {
            "pk": {"S": registry_pk(consumer, shard_id, bucket)},
            "sk": {"S": f"{version:012d}"},
            "digests": {"B": digests},
            "expires_at": {"N": str(bucket_end + retention_days * _SECONDS_PER_DAY)},
        }
        puts.append({"Put": {"TableName": table, "Item": item}})
    return puts


def registry_digests(item: Mapping[str, Any]) -> frozenset[int]:
    """The digests of one registry item."""
    data = bytes(item["digests"]["B"])
    return frozenset(
        int.from_bytes(data[i : i + DIGEST_BYTES], "big") for i in range(0, len(data), DIGEST_BYTES)
    )


def read_registered(
    client: Any, table: str, consumer: str, shard_id: str, buckets: Iterable[datetime]
) -> dict[datetime, frozenset[int]]:
    """The shard's registered digests of each bucket that has any, strongly consistent."""
    found: dict[datetime, frozenset[int]] = {}
    for bucket in sorted(set(buckets)):
        digests: set[int] = set()
        for item in query_partition(client, table, registry_pk(consumer, shard_id, bucket)):
            digests |= registry_digests(item)
        if digests:
            found[bucket] = frozenset(digests)
    return found


def query_partition(client: Any, table: str, pk: str) -> Iterator[dict[str, Any]]:
    """Every item of one partition key, strongly consistent, page by page."""
    arguments: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        response = client.query(**arguments)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
