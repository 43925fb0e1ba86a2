"""Event lines and a one-call DuckDB reference, for the reference's hand-computed cases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.reference.clickstream_reference import (
    Reference,
    ShardRange,
    compute_reference,
    kinesis_shard_ranges,
)

ONE_SHARD = kinesis_shard_ranges(1)
TWO_SHARDS = kinesis_shard_ranges(2)
TEN_SECONDS = timedelta(seconds=10)


def utc(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DDTHH:MM:SS[.ffffff]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def line(
    number: int,
    moment: str,
    *,
    custid: int = 1,
    url: str = "beer_cart",
    trafficfrom: str = "google",
    device: str = "browser",
) -> str:
    """A valid event line whose event_id is the UUID with integer value ``number``."""
    return json.dumps(
        {
            "event_id": str(uuid.UUID(int=number)),
            "custid": custid,
            "trafficfrom": trafficfrom,
            "url": url,
            "device": device,
            "touchproduct": 0,
            "trans_timestamp": moment,
        }
    )


def write(tmp_path: Path, lines: Sequence[str | bytes]) -> Path:
    """The lines as a JSON-lines file."""
    path = tmp_path / "events.jsonl"
    raw = [item.encode("utf-8") if isinstance(item, str) else item for item in lines]
    path.write_bytes(b"".join(item + b"\n" for item in raw))
    return path


def reference(
    tmp_path: Path,
    lines: Sequence[str | bytes],
    lateness: timedelta = TEN_SECONDS,
    ranges: list[ShardRange] = ONE_SHARD,
    **timeouts: timedelta,
) -> Reference:
    return compute_reference(write(tmp_path, lines), ranges, lateness, **timeouts)
