"""Window result rows in DynamoDB: the results table.

**Layout**: ``pk = "<metric>#<size_seconds>"``, ``sk = "<window_start ISO-8601>#<key>"``
(fixed-width timestamps, so rows sort by time), plus the fields of
:class:`~clickstream.core.window_counting.ResultRow`.

**Concurrent writers.** Invocations of different shards, and the finalizer, rewrite the rows of
the windows they touch at the same time. Each row carries the consumer's
:func:`~clickstream.core.checkpoints.state_version` read before its state was, and is written only
if the stored row's version is not higher. So a row computed from older state never replaces a
newer one, and once every writer is done each row reflects every commit.

**Approximate rows.** ``approximate`` is a boolean; ``standard_error`` and ``error_bound`` (relative
errors, 0 on exact rows) are stored as numbers: DynamoDB numbers are decimal, so they are written
from their shortest decimal text (:func:`row_attributes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from clickstream.adapters.aws.dynamodb import from_attributes, to_attributes
from clickstream.core.window_counting import ResultRow
from clickstream.ports import WindowResults

_NEWER_OR_SAME = "attribute_not_exists(state_version) OR state_version <= :version"


def row_attributes(row: ResultRow) -> dict[str, Any]:
    """The row as DynamoDB attribute values (floats through their shortest decimal text)."""
    item = {
        name: Decimal(repr(value)) if isinstance(value, float) else value
        for name, value in row.to_item().items()
    }
    return to_attributes(item)


class DynamoWindowResults(WindowResults):
    """Result rows in a DynamoDB table keyed ``pk = <metric>#<size>, sk = <start>#<key>``."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def write(self, rows: Sequence[ResultRow]) -> int:
        """Put each row unless the stored one has a higher state version; returns rows written."""
        written = 0
        for row in rows:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=row_attributes(row),
                    ConditionExpression=_NEWER_OR_SAME,
                    ExpressionAttributeValues={":version": {"N": str(row.state_version)}},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
            written += 1
        return written

    def rows(self, metric: str, size_seconds: int) -> list[ResultRow]:
        """Every stored row of one metric and size, in window then key order."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{metric}#{size_seconds}"}},
        }
        rows: list[ResultRow] = []
        while True:
            response = self.client.query(**arguments)
            rows.extend(ResultRow.from_item(from_attributes(item)) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return rows
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
