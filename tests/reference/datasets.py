"""Deterministic JSON-lines datasets that exercise every rule of the stream semantics.

:func:`mixed_dataset` writes, in one file: several customers on every shard, events out of order
within the allowed lateness, exact duplicate lines (some far later than the original), events
clearly past the watermark, events late for the 15 s window only, events before the watermark in
a window it has not passed yet, events on window edges and on the watermark itself, inactivity
gaps of exactly the timeout and of the timeout plus 1 µs, a customer active for more than 24
hours, and malformed lines of several kinds (bad JSON, a missing field, a wrong type, bytes that
are not UTF-8, a line over the size limit).

The lateness should stay under 10 minutes, so the long-lived customer's gaps stay under 30.

The generator tracks each shard's watermark while it writes, so the summary it returns says
exactly how many events are late for each window size.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.reference.clickstream_reference import (
    ShardRange,
    format_micros,
    kinesis_shard_ranges,
    micros,
    shard_for,
)

URLS: tuple[str, ...] = (
    "beer_vitrine_nav",
    "beer_product_detail",
    "beer_cart",
    "beer_checkout",
)
SOURCES: tuple[str, ...] = ("Alexa", "google", "facebook.com", "email_CampanhaBeer")
"""Few sources, so that equal counts (ties in the ranking) are common."""
DEVICES: tuple[str, ...] = ("app_mobile", "app_tablet", "browser")
MALFORMED_KINDS: tuple[str, ...] = (
    "bad_json",
    "missing_field",
    "wrong_type",
    "non_utf8",
    "oversized",
)
INACTIVITY_TIMEOUT = timedelta(minutes=30)

_START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_TARGET_SPAN = 26 * 60 * _MINUTE
_MAX_JUMP = 14 * _MINUTE
"""Longest jump of the clock; with the marathon's 15 min rhythm its gaps stay under 30 min."""
_ADVANCING_SHARE = 0.88
"""Share of lines after which the clock moves on (normal, duplicate, malformed, out of order)."""
_MARATHON_EVERY = 15 * _MINUTE
_CUSTIDS_PER_SHARD = 3
_GAP_PLANTS = 3
"""How many gaps of exactly the timeout, and of the timeout plus 1 µs, to plant."""

_KIND_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("normal", 0.63),
    ("out_of_order", 0.07),
    ("late", 0.03),
    ("late_15s_only", 0.03),
    ("before_watermark", 0.03),
    ("window_edge", 0.04),
    ("watermark_edge", 0.02),
    ("duplicate", 0.10),
    ("malformed", 0.05),
)


@dataclass(frozen=True)
class PlantedSummary:
    """What :func:`mixed_dataset` wrote."""

    path: Path
    lines: int
    distinct_events: int
    duplicate_lines: int
    far_duplicates: int
    """Duplicates written more than half the file after their original."""
    out_of_order: int
    late: int
    """Events late for both window sizes."""
    late_15s_only: int
    before_watermark: int
    """Events before the watermark but in a window it has not passed: counted, yet gap-late."""
    window_edges: int
    watermark_edges: int
    """Events whose 15 s window ends exactly on the watermark (late by equality)."""
    gap_exactly_timeout: int
    gap_timeout_plus_1us: int
    malformed: dict[str, int]
    late_by_size: dict[int, int]
    """Distinct events late for each window size, as tracked while writing."""
    gap_late: int
    """Distinct events before their shard's watermark, as tracked while writing."""
    custids_by_shard: dict[str, tuple[int, ...]]
    marathon_custid: int
    """A browser user active every few minutes for the whole span (over 24 h by default)."""
    span: timedelta
    """From the first to the last event time written."""


class _Writer:
    """Writes lines and keeps the per-shard state that the semantics depend on."""

    def __init__(self, rng: random.Random, ranges: list[ShardRange], lateness_us: int) -> None:
        self.rng = rng
        self.ranges = ranges
        self.lateness_us = lateness_us
        self.lines: list[bytes] = []
        self.valid: list[tuple[int, bytes]] = []
        self.shard_max: dict[str, int] = {}
        self.last_by_key: dict[tuple[int, str], int] = {}
        self.protected: set[tuple[int, str]] = set()
        self.late_by_size = {15: 0, 60: 0}
        self.gap_late = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def watermark(self, shard: str) -> int | None:
        top = self.shard_max.get(shard)
        return None if top is None else top - self.lateness_us

    def event(
        self,
        custid: int,
        ts: int,
        *,
        device: str | None = None,
        url: str | None = None,
        text_time: str | None = None,
    ) -> bytes:
        """Write a new distinct event and update the shard state like the consumers do."""
        device = device or self.rng.choice(DEVICES)
        document = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "custid": custid,
            "trafficfrom": self.rng.choice(SOURCES),
            "url": url or self.rng.choice(URLS),
            "device": device,
            "touchproduct": self.rng.randint(0, 250),
            "trans_timestamp": text_time or format_micros(ts),
        }
        line = json.dumps(document, separators=(",", ":")).encode("utf-8")
        shard = shard_for(custid, self.ranges)
        watermark = self.watermark(shard)
        for size in (15, 60):
            size_us = size * _SECOND
            if watermark is not None and ts - ts % size_us + size_us <= watermark:
                self.late_by_size[size] += 1
        if watermark is None or ts >= watermark:
            key = (custid, device)
            self.last_by_key[key] = max(ts, self.last_by_key.get(key, ts))
        else:
            self.gap_late += 1
        self.shard_max[shard] = max(ts, self.shard_max.get(shard, ts))
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        self.valid.append((len(self.lines), line))
        self.lines.append(line)
        return line

    def raw(self, line: bytes) -> None:
        self.lines.append(line)


def mixed_dataset(
    path: Path | str,
    seed: int,
    *,
    shards: int | Sequence[ShardRange] = 4,
    events: int = 2000,
    lateness: timedelta = timedelta(seconds=10),
) -> PlantedSummary:
    """Write a deterministic mixed JSON-lines file of about ``events`` lines to ``path``."""
    rng = random.Random(seed)
    ranges = kinesis_shard_ranges(shards) if isinstance(shards, int) else list(shards)
    lateness_us = lateness // timedelta(microseconds=1)
    custids_by_shard = _custids_by_shard(ranges)
    pool = [custid for custids in custids_by_shard.values() for custid in custids]
    marathon = max(pool) + 1
    writer = _Writer(rng, ranges, lateness_us)
    planted = dict.fromkeys(
        (
            "duplicate_lines",
            "far_duplicates",
            "out_of_order",
            "late",
            "late_15s_only",
            "before_watermark",
            "window_edges",
            "watermark_edges",
            "gap_exactly_timeout",
            "gap_timeout_plus_1us",
        ),
        0,
    )
    malformed = dict.fromkeys(MALFORMED_KINDS, 0)
    mean_step = _TARGET_SPAN / max(events, 1)
    jump_max = int(
        min(_MAX_JUMP, max(0.0, 2 * (mean_step / _ADVANCING_SHARE - 1.275 * _SECOND) / 0.15))
    )
    now = micros(_START) + rng.randrange(_SECOND)
    marathon_last: int | None = None
    kinds, weights = zip(*_KIND_WEIGHTS, strict=True)
    timeout_us = INACTIVITY_TIMEOUT // timedelta(microseconds=1)

    for index in range(events):
        if marathon_last is None or now - marathon_last >= _MARATHON_EVERY:
            writer.event(marathon, now, device="browser")
            marathon_last = now
        if _plant_gap(writer, planted, now, timeout_us, pool, index, events):
            now = writer.last_ts or now
            continue
        kind = rng.choices(kinds, weights)[0] if writer.valid else "normal"
        if kind == "normal":
            writer.event(rng.choice(pool), now)
        elif kind == "out_of_order":
            shard, custid = _custid_on_seen_shard(writer, custids_by_shard)
            top = writer.shard_max[shard]
            device = rng.choice(DEVICES)
            if (custid, device) in writer.protected:
                device = "browser" if device != "browser" else "app_mobile"
            if (custid, device) in writer.protected:
                writer.event(custid, now)
            else:
                writer.event(custid, top - rng.randrange(lateness_us + 1), device=device)
                planted["out_of_order"] += 1
        elif kind == "late":
            shard, custid = _custid_on_seen_shard(writer, custids_by_shard)
            watermark = writer.shard_max[shard] - lateness_us
            writer.event(custid, watermark - rng.randrange(61 * _SECOND, 10 * _MINUTE))
            planted["late"] += 1
        elif kind == "late_15s_only":
            shard, custid = _custid_on_seen_shard(writer, custids_by_shard)
            watermark = writer.shard_max[shard] - lateness_us
            minute = watermark - watermark % _MINUTE
            quarter = watermark - watermark % (15 * _SECOND)
            if quarter > minute:
                writer.event(custid, rng.randrange(minute, quarter))
                planted["late_15s_only"] += 1
            else:
                writer.event(custid, now)
        elif kind == "before_watermark":
            shard, custid = _custid_on_seen_shard(writer, custids_by_shard)
            watermark = writer.shard_max[shard] - lateness_us
            quarter = watermark - watermark % (15 * _SECOND)
            if quarter < watermark:
                writer.event(custid, rng.randrange(quarter, watermark))
                planted["before_watermark"] += 1
            else:
                writer.event(custid, now)
        elif kind == "window_edge":
            size = rng.choice((15, 60)) * _SECOND
            boundary = now - now % size + size
            if rng.random() < 0.5:
                now = boundary
                text = format_micros(now)
                text = rng.choice((text, text[:19], text[:19] + "Z"))
                writer.event(rng.choice(pool), now, text_time=text)
            else:
                now = boundary - 1
                writer.event(rng.choice(pool), now)
            planted["window_edges"] += 1
        elif kind == "watermark_edge":
            now = _watermark_edge(writer, custids_by_shard, now)
            planted["watermark_edges"] += 1
        elif kind == "duplicate":
            planted["duplicate_lines"] += 1
            if index > 0.6 * events and rng.random() < 0.5:
                source = writer.valid[rng.randrange(max(1, len(writer.valid) // 4))]
            else:
                source = writer.valid[-rng.randint(1, min(20, len(writer.valid)))]
            if len(writer.lines) - source[0] > len(writer.lines) // 2:
                planted["far_duplicates"] += 1
            writer.raw(source[1])
        else:
            malformed_kind = MALFORMED_KINDS[sum(malformed.values()) % len(MALFORMED_KINDS)]
            malformed[malformed_kind] += 1
            writer.raw(_malformed(rng, malformed_kind, rng.choice(pool), now))
        if kind in ("normal", "duplicate", "malformed", "out_of_order"):
            now += _step(rng, jump_max)

    Path(path).write_bytes(b"".join(line + b"\n" for line in writer.lines))
    first, last = writer.first_ts or 0, writer.last_ts or 0
    return PlantedSummary(
        path=Path(path),
        lines=len(writer.lines),
        distinct_events=len(writer.valid),
        malformed=malformed,
        late_by_size=dict(writer.late_by_size),
        gap_late=writer.gap_late,
        custids_by_shard=custids_by_shard,
        marathon_custid=marathon,
        span=timedelta(microseconds=last - first),
        **planted,
    )


def _custids_by_shard(ranges: list[ShardRange]) -> dict[str, tuple[int, ...]]:
    """The smallest custids such that every shard receives a few of them."""
    found: dict[str, list[int]] = {shard_id: [] for shard_id, _, _ in ranges}
    custid = 0
    while any(len(custids) < _CUSTIDS_PER_SHARD for custids in found.values()):
        custid += 1
        shard = shard_for(custid, ranges)
        if len(found[shard]) < _CUSTIDS_PER_SHARD:
            found[shard].append(custid)
    return {shard: tuple(custids) for shard, custids in found.items()}


def _custid_on_seen_shard(
    writer: _Writer, custids_by_shard: dict[str, tuple[int, ...]]
) -> tuple[str, int]:
    """A shard that already has events, and one of its pool custids."""
    shards = sorted(shard for shard in writer.shard_max if shard in custids_by_shard)
    shard = writer.rng.choice(shards)
    return shard, writer.rng.choice(custids_by_shard[shard])


def _step(rng: random.Random, jump_max: int) -> int:
    """Time to the next event: usually a few seconds, sometimes a jump of minutes."""
    if rng.random() < 0.85 or jump_max <= 0:
        return rng.randrange(3 * _SECOND)
    return rng.randrange(jump_max)


def _plant_gap(
    writer: _Writer,
    planted: dict[str, int],
    now: int,
    timeout_us: int,
    pool: list[int],
    index: int,
    events: int,
) -> bool:
    """Write an event exactly ``timeout`` (or ``timeout`` + 1 µs) after a key's last event."""
    if index % max(1, events // (4 * _GAP_PLANTS)) != 0:
        return False
    exact = planted["gap_exactly_timeout"] < _GAP_PLANTS
    if not exact and planted["gap_timeout_plus_1us"] >= _GAP_PLANTS:
        return False
    extra = 0 if exact else 1
    candidates = sorted(
        key
        for key, last in writer.last_by_key.items()
        if key[0] in pool
        and key not in writer.protected
        and now <= last + timeout_us + extra <= now + 5 * _MINUTE
    )
    if not candidates:
        return False
    custid, device = writer.rng.choice(candidates)
    ts = writer.last_by_key[(custid, device)] + timeout_us + extra
    writer.event(custid, ts, device=device)
    writer.protected.add((custid, device))
    planted["gap_exactly_timeout" if exact else "gap_timeout_plus_1us"] += 1
    return True


def _watermark_edge(writer: _Writer, custids_by_shard: dict[str, tuple[int, ...]], now: int) -> int:
    """Move a shard's watermark onto a 15 s boundary B, then write B - 1 µs (late) and B."""
    quarter = 15 * _SECOND
    boundary = now - now % quarter + quarter
    shard = writer.rng.choice(sorted(custids_by_shard))
    custids = custids_by_shard[shard]
    now = boundary + writer.lateness_us
    writer.event(writer.rng.choice(custids), now)
    writer.event(writer.rng.choice(custids), boundary - 1)
    writer.event(writer.rng.choice(custids), boundary)
    return now


def _malformed(rng: random.Random, kind: str, custid: int, now: int) -> bytes:
    """One line that ``parse_event`` rejects, of the given kind."""
    document: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "custid": custid,
        "trafficfrom": rng.choice(SOURCES),
        "url": rng.choice(URLS),
        "device": rng.choice(DEVICES),
        "touchproduct": 0,
        "trans_timestamp": format_micros(now),
    }
    if kind == "missing_field":
        del document[rng.choice(list(document))]
    elif kind == "wrong_type":
        name = rng.choice(("custid", "touchproduct", "url"))
        document[name] = str(document[name]) if name != "url" else 42
    elif kind == "oversized":
        document["url"] = "beer_" + "x" * 4200
    line = json.dumps(document, separators=(",", ":")).encode("utf-8")
    if kind == "bad_json":
        return line[: rng.randrange(1, len(line) - 1)]
    if kind == "non_utf8":
        return line.replace(b'"beer_', b'"beer_\xff', 1)
    return line
