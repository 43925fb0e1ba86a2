"""The stream layer's readers: ``windows``, ``sessions`` and ``summary``, local or deployed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clickstream.core.events import format_timestamp, parse_timestamp
from clickstream.core.sessions import MINUTE_SESSION_COLUMNS
from clickstream_analytics.readers import (
    WINDOW_METRICS,
    WINDOW_SIZES,
    gap_sessions,
    minute_sessions,
    stack_summary,
    window_rows,
)
from clickstream_cli.common import read_target


def cmd_windows(arguments: argparse.Namespace) -> int:
    """``clickstream windows``: the window counter's results (task 4)."""
    stack = read_target(arguments).stack
    rows = window_rows(
        stack,
        WINDOW_METRICS[arguments.metric],
        WINDOW_SIZES[arguments.size],
        start=None if arguments.start is None else parse_timestamp(arguments.start),
        end=None if arguments.end is None else parse_timestamp(arguments.end),
        final_only=arguments.final_only,
    )
    if arguments.json:
        print(json.dumps([row.to_item() for row in rows], default=str, indent=1))
        return 0
    print(f"{'window start (UTC)':<28} {'key':<24} {'value':>7} {'rank':>5} {'late':>5}  final")
    for row in rows:
        rank = "" if row.rank is None else str(row.rank)
        value = f"~{row.value}" if row.approximate else str(row.value)
        print(
            f"{format_timestamp(row.window_start):<28} {row.key:<24} {value:>7} "
            f"{rank:>5} {row.late_events:>5}  {'yes' if row.final else 'no'}"
        )
    print(f"{len(rows)} rows")
    approximate = [row for row in rows if row.approximate]
    if approximate:
        bound = max(row.error_bound for row in approximate)
        print(
            f"~ {len(approximate)} approximate row(s): sketch estimates, within ±{bound:.3%} of "
            "the exact count 997 times in 1,000 (three standard errors); their late counts may "
            "include late copies of events counted on time (docs/architecture.md, Windows)"
        )
    return 0


def cmd_sessions(arguments: argparse.Namespace) -> int:
    """``clickstream sessions``: per-minute (task 1.1) or gap sessions in the lake."""
    stack = read_target(arguments).stack
    if arguments.kind == "minute":
        rows = minute_sessions(stack)
        if arguments.json:
            print(json.dumps([dict(zip(MINUTE_SESSION_COLUMNS, row, strict=True)) for row in rows]))
            return 0
        print(",".join(MINUTE_SESSION_COLUMNS))
        for row in rows:
            print(",".join(str(value) for value in row))
        print(f"{len(rows)} sessions", file=sys.stderr)
        return 0
    sessions = gap_sessions(stack)
    if arguments.json:
        print(json.dumps(sessions))
        return 0
    for session in sessions:
        print(
            f"{session['session_id']:<34} {session['device']:<11} {session['start']} "
            f"{session['page_count']:>4} pages {session['duration_seconds']:>9.1f} s "
            f"{session['trafficfrom']:<20} checkout="
            f"{'yes' if session['reached_checkout'] else 'no'}"
        )
    print(f"{len(sessions)} sessions", file=sys.stderr)
    return 0


def cmd_summary(arguments: argparse.Namespace) -> int:
    """``clickstream summary``: the stream against the raw layer and the window counter."""
    summary = stack_summary(read_target(arguments).stack)
    print("\n".join(summary.lines()))
    return 0 if summary.ok else 1


def add_commands(commands: Any) -> None:
    """Register ``sessions``, ``windows`` and ``summary``."""
    sessions = commands.add_parser("sessions", help="sessions written to the lake (deduplicated)")
    sessions.add_argument(
        "--kind",
        choices=("minute", "gap"),
        default="minute",
        help="seed-compatible per-minute sessions (aggregated/) or 30-min gap sessions (sessions/)",
    )
    sessions.add_argument("--json", action="store_true", help="print JSON")
    sessions.set_defaults(handler=cmd_sessions)

    windows = commands.add_parser("windows", help="near-real-time window results (DynamoDB)")
    windows.add_argument("--size", choices=tuple(WINDOW_SIZES), default="1m", help="window size")
    windows.add_argument("--metric", choices=tuple(WINDOW_METRICS), default="unique-users")
    windows.add_argument("--from", dest="start", help="first window start (ISO-8601 UTC)")
    windows.add_argument("--to", dest="end", help="windows starting before this (ISO-8601 UTC)")
    windows.add_argument("--final-only", action="store_true", help="only closed windows")
    windows.add_argument("--json", action="store_true", help="print JSON rows")
    windows.set_defaults(handler=cmd_windows)

    summary = commands.add_parser("summary", help="reconcile the stream with the raw layer")
    summary.set_defaults(handler=cmd_summary)
