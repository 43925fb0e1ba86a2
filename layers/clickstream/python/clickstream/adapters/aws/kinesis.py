"""Kinesis Data Streams: the producer's record stream (PutRecords) and the stream's shards.

The producer talks to :class:`~clickstream.ports.RecordStream` only, so it is tested with an
in-memory fake and runs unchanged against Kinesis (or the local moto server, through
``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.client import BaseClient

from clickstream.core.shard_map import HashRange, ShardMap
from clickstream.ports import PutOutcome, RecordStream, StreamRecord, StreamShards


class KinesisRecordStream(RecordStream):
    """A Kinesis data stream, written through the PutRecords API."""

    def __init__(self, client: BaseClient, stream_name: str) -> None:
        self._client = client
        self._stream_name = stream_name

    @property
    def stream_name(self) -> str:
        """The name of the Kinesis stream written to."""
        return self._stream_name

    def put_records(self, records: Sequence[StreamRecord]) -> list[PutOutcome]:
        """One PutRecords call; each response entry becomes a :class:`PutOutcome`."""
        if not records:
            return []
        response = self._client.put_records(
            StreamName=self._stream_name, Records=[_entry(record) for record in records]
        )
        entries = response["Records"]
        if len(entries) != len(records):
            raise RuntimeError(
                f"PutRecords answered {len(entries)} entries for {len(records)} records"
            )
        return [_outcome(entry) for entry in entries]

    def shard_map(self) -> ShardMap:
        """The open shards' hash key ranges, through ListShards (closed parents left out)."""
        ranges: list[HashRange] = []
        arguments: dict[str, Any] = {"StreamName": self._stream_name}
        while True:
            page = self._client.list_shards(**arguments)
            for shard in page["Shards"]:
                if "EndingSequenceNumber" in shard["SequenceNumberRange"]:
                    continue
                keys = shard["HashKeyRange"]
                ranges.append(
                    HashRange(
                        int(keys["StartingHashKey"]), int(keys["EndingHashKey"]), shard["ShardId"]
                    )
                )
            if not page.get("NextToken"):
                return ShardMap(ranges)
            arguments = {"NextToken": page["NextToken"]}


def _entry(record: StreamRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"Data": record.data, "PartitionKey": record.partition_key}
    if record.explicit_hash_key is not None:
        entry["ExplicitHashKey"] = record.explicit_hash_key
    return entry


def _outcome(entry: dict[str, str]) -> PutOutcome:
    error_code = entry.get("ErrorCode")
    if not error_code:
        return PutOutcome(error_code=None)
    return PutOutcome(error_code=error_code, error_message=entry.get("ErrorMessage", ""))


class KinesisShards(StreamShards):
    """The shards of a Kinesis data stream, through ListShards."""

    def __init__(self, client: Any, stream_name: str) -> None:
        self._client = client
        self.stream_name = stream_name

    def shard_ids(self) -> list[str]:
        """Every shard of the stream, as ListShards returns them."""
        shards = self._client.list_shards(StreamName=self.stream_name)["Shards"]
        return [shard["ShardId"] for shard in shards]
