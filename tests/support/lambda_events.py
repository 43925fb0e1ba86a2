"""Lambda Kinesis events, built as Lambda delivers them to the stream consumers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from clickstream.core.events import Event


def kinesis_record(
    shard_id: str, sequence_number: str, data: bytes | Event, arrival: datetime
) -> dict[str, Any]:
    """One record of a Lambda Kinesis event; an event is sent as its JSON line."""
    raw = data.to_json_line() if isinstance(data, Event) else data
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "1",
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(raw).decode("ascii"),
            "approximateArrivalTimestamp": arrival.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{shard_id}:{sequence_number}",
    }


def kinesis_event(*records: dict[str, Any]) -> dict[str, Any]:
    """A Lambda Kinesis event holding ``records``, in order."""
    return {"Records": list(records)}
