"""Reference results of the stream semantics computed in DuckDB SQL over a JSON-lines file.

The rules are those of (docs/architecture.md, Stream semantics). This module is deliberately
independent of ``clickstream.core.windows`` and ``clickstream.core.sessions`` (the code it
checks). It shares only the validation rules, through ``parse_event``.

Semantics, in short:

- Each line of the file is one record, in order. A line that fails ``parse_event`` is
  quarantined with its reason.
- A valid event goes to the Kinesis shard whose hash-key range holds the MD5 of ``str(custid)``
  read as a 128-bit big-endian integer. Within a shard, events are processed in file order.
- A repeated ``event_id`` is a duplicate: the first valid occurrence in the file decides
  everything and the repeats count nowhere, not even in the watermark.
- Before each distinct event, the watermark ``W`` of its shard is the maximum event time of the
  earlier distinct events of that shard, less the allowed lateness (none before the first).
- For a window size, an event is late when ``W`` exists and its window ends at or before ``W``.
- For gap sessions, an event is late when ``W`` exists and its event time is before ``W``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from clickstream.core.events import InvalidEvent, parse_event

UNIQUE_USERS = "unique-users"
TOP_SOURCES = "top-sources"
WINDOW_SIZES: tuple[int, ...] = (15, 60)
SOURCE_WINDOW_SIZE = 60
CHECKOUT_URL = "beer_checkout"
HASH_KEY_SPACE = 2**128

ShardRange = tuple[str, int, int]
"""(shard_id, starting hash key, ending hash key), both ends inclusive."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class ReferenceCounts:
    """Where every line of the file went."""

    lines: int
    quarantined: tuple[tuple[int, str], ...]
    """(1-based line number, reason) of each line that failed validation."""
    duplicates: int
    """Valid lines whose event_id appeared on an earlier valid line."""
    distinct: int
    """Valid lines that are the first occurrence of their event_id."""
    counted: dict[int, int]
    """Per window size: distinct events counted in their window."""
    late: dict[int, int]
    """Per window size: distinct events late for their window."""
    gap_late: int
    """Distinct events left out of gap sessions because they were before the watermark."""

    @property
    def quarantine_reasons(self) -> Counter[str]:
        """Number of quarantined lines per reason."""
        return Counter(reason for _, reason in self.quarantined)


@dataclass(frozen=True)
class Reference:
    """Plain reference results; window starts are UTC datetimes."""

    unique_users: dict[tuple[int, datetime, str], int]
    """(size, window_start, url) -> distinct custids among counted events."""
    source_counts: dict[tuple[datetime, str], tuple[int, int]]
    """(window_start, trafficfrom) -> (events, rank) for the 60 s windows."""
    late: dict[tuple[str, int, datetime, str], int]
    """(metric, size, window_start, key) -> late events; key is the url or the trafficfrom."""
    minute_sessions: list[tuple[str, int, str, str, int, str, str, str, str, int]]
    """Seed-compatible rows, sorted."""
    gap_sessions: list[dict[str, Any]]
    """Gap sessions sorted by (start, custid, device); timestamps formatted like events."""
    counts: ReferenceCounts
    shard_of_custid: dict[int, str] = field(default_factory=dict)


def kinesis_shard_ranges(shard_count: int) -> list[ShardRange]:
    """The hash-key ranges CreateStream gives ``shard_count`` shards: an even split of 0..2^128-1.

    Each shard gets ``2**128 // shard_count`` keys; the last one also takes the remainder.
    """
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    step = HASH_KEY_SPACE // shard_count
    ranges: list[ShardRange] = []
    for index in range(shard_count):
        start = index * step
        end = HASH_KEY_SPACE - 1 if index == shard_count - 1 else (index + 1) * step - 1
        ranges.append((f"shardId-{index:012d}", start, end))
    return ranges


def hash_key(partition_key: str) -> int:
    """The Kinesis hash key of a partition key: its MD5 as a 128-bit big-endian integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def shard_for(custid: int, ranges: list[ShardRange]) -> str:
    """The shard that receives the events of ``custid`` (partition key ``str(custid)``)."""
    key = hash_key(str(custid))
    for shard_id, start, end in ranges:
        if start <= key <= end:
            return shard_id
    raise ValueError(f"no shard covers the hash key of custid {custid}")


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """The UTC datetime ``value`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def format_micros(value: int) -> str:
    """An event-style timestamp, e.g. ``2026-03-07T14:04:56.683790``."""
    return from_micros(value).replace(tzinfo=None).isoformat(timespec="microseconds")


def read_lines(path: Path | str) -> list[bytes]:
    """The file's lines without their ``\\n``; a final newline does not start another line."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def compute_reference(
    path: Path | str,
    shard_ranges: list[ShardRange],
    allowed_lateness: timedelta,
    inactivity_timeout: timedelta = timedelta(minutes=30),
    max_duration: timedelta = timedelta(hours=24),
) -> Reference:
    """Compute every reference result for the JSON-lines file at ``path``."""
    lines = read_lines(path)
    quarantined: list[tuple[int, str]] = []
    columns: dict[str, list[Any]] = {
        name: [] for name in ("line_no", "event_id", "custid", "trafficfrom", "url", "device")
    }
    columns["ts"] = []
    columns["shard"] = []
    shard_of_custid: dict[int, str] = {}
    for line_no, line in enumerate(lines, start=1):
        try:
            event = parse_event(line)
        except InvalidEvent as error:
            quarantined.append((line_no, error.reason))
            continue
        if event.custid not in shard_of_custid:
            shard_of_custid[event.custid] = shard_for(event.custid, shard_ranges)
        columns["line_no"].append(line_no)
        columns["event_id"].append(event.event_id)
        columns["custid"].append(event.custid)
        columns["trafficfrom"].append(event.trafficfrom)
        columns["url"].append(event.url)
        columns["device"].append(event.device)
        columns["ts"].append(micros(event.trans_timestamp))
        columns["shard"].append(shard_of_custid[event.custid])

    with duckdb.connect(":memory:") as connection:
        _load(connection, columns, allowed_lateness)
        valid = len(columns["line_no"])
        distinct = _scalar(connection, "SELECT count(*) FROM distinct_events")
        per_size = connection.execute(
            "SELECT size, count(*) FILTER (NOT late), count(*) FILTER (late)"
            " FROM memberships GROUP BY size"
        ).fetchall()
        counted = dict.fromkeys(WINDOW_SIZES, 0) | {size: n for size, n, _ in per_size}
        late_totals = dict.fromkeys(WINDOW_SIZES, 0) | {size: n for size, _, n in per_size}
        gap_late = _scalar(connection, "SELECT count(*) FROM distinct_events WHERE gap_late")
        counts = ReferenceCounts(
            lines=len(lines),
            quarantined=tuple(quarantined),
            duplicates=valid - distinct,
            distinct=distinct,
            counted=counted,
            late=late_totals,
            gap_late=gap_late,
        )
        return Reference(
            unique_users=_unique_users(connection),
            source_counts=_source_counts(connection),
            late=_late(connection),
            minute_sessions=_minute_sessions(connection),
            gap_sessions=_gap_sessions(connection, inactivity_timeout, max_duration),
            counts=counts,
            shard_of_custid=shard_of_custid,
        )


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _load(
    connection: duckdb.DuckDBPyConnection,
    columns: dict[str, list[Any]],
    allowed_lateness: timedelta,
) -> None:
    """Create ``valid``, ``distinct_events`` (with the watermark) and ``memberships``."""
    connection.execute(
        """
        CREATE TEMP TABLE valid AS
        SELECT
            unnest($line_no::BIGINT[]) AS line_no,
            unnest($event_id::VARCHAR[]) AS event_id,
            unnest($custid::BIGINT[]) AS custid,
            unnest($trafficfrom::VARCHAR[]) AS trafficfrom,
            unnest($url::VARCHAR[]) AS url,
            unnest($device::VARCHAR[]) AS device,
            unnest($ts::BIGINT[]) AS ts,
            unnest($shard::VARCHAR[]) AS shard
        """,
        columns,
    )
    # First occurrence of each event_id; the watermark seen just before it, per shard.
    connection.execute(
        """
        CREATE TEMP TABLE distinct_events AS
        WITH firsts AS (
            SELECT * FROM valid
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY line_no) = 1
        ),
        watermarked AS (
            SELECT *,
                max(ts) OVER (
                    PARTITION BY shard ORDER BY line_no
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ) - $lateness AS watermark
            FROM firsts
        )
        SELECT *, coalesce(ts < watermark, false) AS gap_late FROM watermarked
        """,
        {"lateness": allowed_lateness // timedelta(microseconds=1)},
    )
    # One row per (distinct event, window size): its epoch-aligned window and lateness.
    connection.execute(
        """
        CREATE TEMP TABLE memberships AS
        WITH sized AS (
            SELECT e.*, s.size, s.size * 1000000 AS size_us
            FROM distinct_events AS e CROSS JOIN (VALUES (15), (60)) AS s(size)
        ),
        windowed AS (
            SELECT *, ts - (((ts % size_us) + size_us) % size_us) AS window_start FROM sized
        )
        SELECT *, coalesce(window_start + size_us <= watermark, false) AS late FROM windowed
        """
    )


def _unique_users(connection: duckdb.DuckDBPyConnection) -> dict[tuple[int, datetime, str], int]:
    rows = connection.execute(
        """
        SELECT size, window_start, url, count(DISTINCT custid)
        FROM memberships WHERE NOT late
        GROUP BY size, window_start, url
        """
    ).fetchall()
    return {(size, from_micros(start), url): n for size, start, url, n in rows}


def _source_counts(
    connection: duckdb.DuckDBPyConnection,
) -> dict[tuple[datetime, str], tuple[int, int]]:
    rows = connection.execute(
        """
        WITH counts AS (
            SELECT window_start, trafficfrom, count(*) AS n
            FROM memberships WHERE NOT late AND size = $size
            GROUP BY window_start, trafficfrom
        )
        SELECT window_start, trafficfrom, n,
            row_number() OVER (PARTITION BY window_start ORDER BY n DESC, trafficfrom ASC)
        FROM counts
        """,
        {"size": SOURCE_WINDOW_SIZE},
    ).fetchall()
    return {(from_micros(start), source): (n, rank) for start, source, n, rank in rows}


def _late(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, int, datetime, str], int]:
    rows = connection.execute(
        """
        SELECT $users, size, window_start, url, count(DISTINCT event_id)
        FROM memberships WHERE late
        GROUP BY size, window_start, url
        UNION ALL
        SELECT $sources, size, window_start, trafficfrom, count(DISTINCT event_id)
        FROM memberships WHERE late AND size = $size
        GROUP BY size, window_start, trafficfrom
        """,
        {"users": UNIQUE_USERS, "sources": TOP_SOURCES, "size": SOURCE_WINDOW_SIZE},
    ).fetchall()
    return {(metric, size, from_micros(start), key): n for metric, size, start, key, n in rows}


def _device_code_sql(column: str) -> str:
    """SQL for the three-letter device code used in session ids."""
    return (
        f"CASE {column} WHEN 'app_mobile' THEN 'mob' WHEN 'app_tablet' THEN 'tab'"
        " WHEN 'browser' THEN 'bro' END"
    )


def _minute_sessions(
    connection: duckdb.DuckDBPyConnection,
) -> list[tuple[str, int, str, str, int, str, str, str, str, int]]:
    rows = connection.execute(
        f"""
        WITH grouped AS (
            SELECT custid, device, window_start AS minute,
                count(*) AS events,
                first(url ORDER BY ts, event_id) AS beginurl,
                last(url ORDER BY ts, event_id) AS endurl,
                min(ts) AS first_ts,
                max(ts) AS last_ts
            FROM memberships WHERE size = 60 AND NOT late
            GROUP BY custid, device, window_start
        )
        SELECT
            custid::VARCHAR || '_' || {_device_code_sql("device")}
                || '_' || (minute // 1000000)::VARCHAR,
            custid,
            device,
            strftime(make_timestamp(minute), '%Y-%m-%d %H:%M:00'),
            events,
            beginurl,
            endurl,
            strftime(make_timestamp(first_ts), '%M:%S'),
            strftime(make_timestamp(last_ts), '%M:%S'),
            (last_ts - first_ts) // 1000000
        FROM grouped
        """
    ).fetchall()
    return sorted(rows)


def _gap_sessions(
    connection: duckdb.DuckDBPyConnection,
    inactivity_timeout: timedelta,
    max_duration: timedelta,
) -> list[dict[str, Any]]:
    # LAG gives the inactivity break; the 24 h cap depends on the current session's start, which
    # the recursive walk carries from one event of a (custid, device) to the next.
    rows = connection.execute(
        f"""
        WITH RECURSIVE ordered AS (
            SELECT custid, device, ts, event_id, url, trafficfrom,
                row_number() OVER (PARTITION BY custid, device ORDER BY ts, event_id) AS rn,
                lag(ts) OVER (PARTITION BY custid, device ORDER BY ts, event_id) AS previous_ts
            FROM distinct_events WHERE NOT gap_late
        ),
        walk(custid, device, rn, session_start) AS (
            SELECT custid, device, rn, ts FROM ordered WHERE rn = 1
            UNION ALL
            SELECT o.custid, o.device, o.rn,
                CASE
                    WHEN o.ts - o.previous_ts > $timeout THEN o.ts
                    WHEN o.ts >= w.session_start + $max_duration THEN o.ts
                    ELSE w.session_start
                END
            FROM walk AS w JOIN ordered AS o
                ON o.custid = w.custid AND o.device = w.device AND o.rn = w.rn + 1
        )
        SELECT
            o.custid::VARCHAR || '_' || {_device_code_sql("o.device")}
                || '_' || w.session_start::VARCHAR AS session_id,
            o.custid,
            o.device,
            w.session_start AS start_us,
            max(o.ts) AS end_us,
            first(o.trafficfrom ORDER BY o.ts, o.event_id) AS trafficfrom,
            first(o.url ORDER BY o.ts, o.event_id) AS entry_url,
            last(o.url ORDER BY o.ts, o.event_id) AS exit_url,
            count(*) AS page_count,
            bool_or(o.url = $checkout) AS reached_checkout
        FROM ordered AS o JOIN walk AS w USING (custid, device, rn)
        GROUP BY o.custid, o.device, w.session_start
        ORDER BY start_us, o.custid, o.device
        """,
        {
            "timeout": inactivity_timeout // timedelta(microseconds=1),
            "max_duration": max_duration // timedelta(microseconds=1),
            "checkout": CHECKOUT_URL,
        },
    ).fetchall()
    sessions: list[dict[str, Any]] = []
    for row in rows:
        session_id, custid, device, start, end, source, entry, exit_, pages, checkout = row
        sessions.append(
            {
                "session_id": session_id,
                "custid": custid,
                "device": device,
                "start": format_micros(start),
                "end": format_micros(end),
                "trafficfrom": source,
                "entry_url": entry,
                "exit_url": exit_,
                "page_count": pages,
                "duration_seconds": (end - start) / _MICROS_PER_SECOND,
                "reached_checkout": bool(checkout),
            }
        )
    return sessions
