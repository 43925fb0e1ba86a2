"""Sequential reading of one Kinesis shard with GetRecords: the summary's stream reads, and the
local stack's event-source runner and Firehose emulation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


@dataclass
class ShardReader:
    """Reads one shard in order, remembering where it is so an expired iterator is renewed."""

    kinesis: Any
    stream_name: str
    shard_id: str
    starting_position: str = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    _iterator: str | None = field(default=None, init=False)
    _last_sequence: str | None = field(default=None, init=False)

    def read(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` records after the last one read, and MillisBehindLatest."""
        if self._iterator is None:
            self._iterator = self._new_iterator()
        try:
            response = self.kinesis.get_records(ShardIterator=self._iterator, Limit=limit)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExpiredIteratorException":
                raise
            self._iterator = self._new_iterator()
            response = self.kinesis.get_records(ShardIterator=self._iterator, Limit=limit)
        records = response["Records"]
        self._iterator = response.get("NextShardIterator")
        if records:
            self._last_sequence = records[-1]["SequenceNumber"]
        return records, int(response.get("MillisBehindLatest", 0))

    @property
    def shard_closed(self) -> bool:
        """True once a closed shard has been read to its end."""
        return self._iterator is None and self._last_sequence is not None

    def _new_iterator(self) -> str:
        arguments: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if self._last_sequence is not None:
            arguments.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=self._last_sequence,
            )
        elif self.starting_position == "AT_TIMESTAMP":
            arguments.update(
                ShardIteratorType="AT_TIMESTAMP",
                Timestamp=self.starting_timestamp or time.time(),
            )
        else:
            arguments["ShardIteratorType"] = self.starting_position
        return self.kinesis.get_shard_iterator(**arguments)["ShardIterator"]


def list_shard_ids(kinesis: Any, stream_name: str) -> list[str]:
    """Every shard id of a stream, following pagination."""
    shard_ids: list[str] = []
    arguments: dict[str, Any] = {"StreamName": stream_name}
    while True:
        response = kinesis.list_shards(**arguments)
        shard_ids.extend(shard["ShardId"] for shard in response["Shards"])
        token = response.get("NextToken")
        if not token:
            return shard_ids
        arguments = {"NextToken": token}


def stream_name_from_arn(arn: str) -> str:
    """The name in a stream ARN or in an enhanced fan-out consumer ARN (``.../consumer/C:1``)."""
    _, _, resource = arn.partition(":stream/")
    if not resource:
        raise ValueError(f"{arn!r} is not a Kinesis stream or stream-consumer ARN")
    return resource.split("/consumer/", 1)[0]
