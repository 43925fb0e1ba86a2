"""Hostile input on the whole local stack: one replay mixing every kind, and nothing lost.

The replay mixes on-time events on two shards with:

- events whose time is a day ahead of their arrival (a wrong device clock);
- urls with commas, quotes and backslashes, and one with a newline;
- a hot url: 200 users in one 15-second window, past the stack's exact-set limit of 32;
- repeats of earlier events, exact or with another url, source and device;
- a poison event, which the stack daemon's consumers raise on (``CLICKSTREAM_POISON_EVENT_IDS``,
  a test-only fault of the local Lambda workers, see ``clickstream_local.faults``).

The poison record's batch is kept in the failed-batch bucket while its shard moves on; after the
fix (a daemon without the fault) ``clickstream redrive`` applies it, and applying it again
changes nothing. Windows and sessions
then equal an independent computation (DuckDB SQL over the valid, on-time lines, first
occurrences first, ``tests/reference``), the hot url's counts within the sketch's bound; the
comma and quote urls reach ``curated_sessions`` intact; and ``clickstream summary`` accounts for
every record.
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import DEVICES, Event
from clickstream.core.sketch import ERROR_BOUND
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS
from clickstream_analytics.engines import curated_duckdb
from clickstream_analytics.failed_batches import REDRIVEN_PREFIX
from clickstream_analytics.reconcile import object_bodies
from clickstream_cli.traffic import invoke_function
from clickstream_local.faults import POISON_VARIABLE
from clickstream_local.stack import LocalStack, StackState
from tests.e2e.test_local_stack_cli import run
from tests.e2e.test_stream_semantics import assert_sessions_equal, replay, shard_ranges, window_rows
from tests.factories import at, make_event
from tests.reference.clickstream_reference import Reference, compute_reference

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LATENESS = timedelta(seconds=30)
START = at("2026-03-07T14:00:00")
EXACT_SET_LIMIT = 32
HOT_URL = "flash_sale"
HOT_USERS = 200
HOSTILE = ("beer,cart", 'say "hi"', '","', "escaped \\, comma", "ação, crème brûlée")
NEWLINE_URL = "beer\ncart"
CONSUMERS = ("window-counter", "sessionizer")
SOURCES = ("google", "facebook.com", "Alexa", "email_CampanhaBeer", "bing")


def on_time_events(rng: random.Random) -> list[Event]:
    """80 events of 12 users over three minutes, a fifth of them on hostile urls, and the hot
    url's 200 users in [14:01:00, 14:01:15), in time order."""
    events = [
        make_event(
            START + timedelta(microseconds=rng.randrange(180_000_000)),
            custid=rng.randint(1, 12),
            url=rng.choice(HOSTILE) if rng.random() < 0.2 else rng.choice(("beer_cart", "home")),
            trafficfrom=rng.choice(SOURCES),
            device=rng.choice(DEVICES),
        )
        for _ in range(80)
    ]
    hot = [
        make_event(
            START + timedelta(seconds=60, microseconds=rng.randrange(15_000_000)),
            custid=1000 + n,
            url=HOT_URL,
            trafficfrom=f"campaign_{n % 10}",
        )
        for n in range(HOT_USERS)
    ]
    return sorted(events + hot, key=lambda event: event.trans_timestamp)


def newline_line(rng: random.Random) -> bytes:
    """A valid event but for a newline in its url (JSON-escaped, as a producer would send it)."""
    event = make_event(START + timedelta(seconds=rng.randrange(180)), custid=13)
    return event.to_json_line().replace(b'"url":"beer_vitrine_nav"', b'"url":"beer\\ncart"')


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    """A two-shard stack with a low exact-set limit whose daemon's consumers raise on the poison
    event; idle advance off."""
    home = tmp_path_factory.mktemp("hostile-stack")
    local = LocalStack(home=home)
    os.environ[POISON_VARIABLE] = POISON.event_id
    try:
        local.up(
            {
                "IdleTimeoutSeconds": "86400",
                "ShardCount": "2",
                "ExactSetLimit": str(EXACT_SET_LIMIT),
            }
        )
    finally:
        del os.environ[POISON_VARIABLE]  # the daemon keeps it; every later process is fixed
    yield local, home
    local.down(keep_lake=False)


RNG = random.Random(2026)
ON_TIME = on_time_events(RNG)
POISON = ON_TIME[40]
REPEATS = [
    *ON_TIME[10:13],
    *(
        replace(event, url="elsewhere", trafficfrom="bing", device="app_tablet")
        for event in ON_TIME[20:25]
    ),
]
NEWLINE = newline_line(RNG)


def later_events() -> list[Event]:
    """Three events of the poison record's user, just after it: sent once its batch is kept,
    they are on time there (a redrive judges lateness against the shard's watermark then, so
    they must not push it past the kept records' windows)."""
    return [
        make_event(
            POISON.trans_timestamp + timedelta(seconds=n + 1), custid=POISON.custid, url="home"
        )
        for n in range(3)
    ]


def skewed_events() -> list[Event]:
    """Three events a day ahead of now, the time the local stream stamps as their arrival."""
    ahead = datetime.now(UTC) + timedelta(days=1)
    return [make_event(ahead + timedelta(seconds=n), custid=n + 1) for n in range(3)]


def test_a_hostile_replay_equals_the_independent_computation_and_loses_nothing(
    stack: tuple[LocalStack, Path], tmp_path: Path
) -> None:
    local, home = stack
    state = local.running()
    # GIVEN a replay: on-time events with skewed ones, the newline url and the poison event among
    # them, then repeats, exact and with other fields
    skewed = skewed_events()
    lines = [event.to_json_line() for event in ON_TIME]
    lines[30:30] = [event.to_json_line() for event in skewed]
    lines[60:60] = [NEWLINE]
    lines += [event.to_json_line() for event in REPEATS]
    replayed = tmp_path / "hostile.jsonl"
    replayed.write_bytes(b"".join(lines))
    # WHEN it is replayed and the consumers have read it
    replay(state, replayed)
    local.drain(timeout=600)
    # THEN each of the window counter and the sessionizer kept one batch, starting at the poison
    # record, after their retries failed
    batches = json.loads(run(home, "redrive", "--json").stdout)
    assert sorted(batch["function"] for batch in batches) == [
        f"{state.stack_name}-{consumer}" for consumer in sorted(CONSUMERS)
    ]
    s3 = state.client("s3")
    failed_bucket = state.template().resource("FailedBatchBucket").physical_id
    for batch in batches:
        document = json.loads(s3.get_object(Bucket=failed_bucket, Key=batch["key"])["Body"].read())
        assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert document["requestContext"]["approximateInvokeCount"] == 11
        records = json.loads(document["payload"])["Records"]
        first = json.loads(base64.b64decode(records[0]["kinesis"]["data"]))
        assert first["event_id"] == POISON.event_id
    # AND the summary says the account waits for them
    waiting = run(home, "summary", check=False)
    assert waiting.returncode == 1
    assert "NOT ACCOUNTED YET" in waiting.stdout
    assert summary_values(waiting.stdout)["in kept batches, awaiting clickstream redrive"] > 0
    # WHEN later events arrive on the poison record's shard
    later = later_events()
    later_file = tmp_path / "later.jsonl"
    later_file.write_bytes(b"".join(event.to_json_line() for event in later))
    replay(state, later_file)
    local.drain(timeout=600)
    # THEN they are counted: the shards moved on past the kept batches
    moved_on = summary_values(run(home, "summary", check=False).stdout)
    counted = "counted in 1-minute windows"
    assert moved_on[counted] == summary_values(waiting.stdout)[counted] + len(later)

    # WHEN the fix is deployed (a daemon without the fault) and the kept batches are redriven
    state = local.restart_daemon()
    local.drain(timeout=600)
    redriven = run(home, "redrive", "--all")
    assert "2 of 2 batch(es) redriven" in redriven.stdout
    listed = s3.list_objects_v2(Bucket=failed_bucket, Prefix=REDRIVEN_PREFIX).get("Contents", [])
    assert sorted(item["Key"] for item in listed) == sorted(
        REDRIVEN_PREFIX + batch["key"] for batch in batches
    )
    # AND a second redrive, and the same batches applied once more by hand, change nothing
    redriven_rows = all_rows(state)
    assert "0 of 0 batch(es) redriven" in run(home, "redrive", "--all").stdout
    for batch in batches:
        body = s3.get_object(Bucket=failed_bucket, Key=REDRIVEN_PREFIX + batch["key"])["Body"]
        records = json.loads(json.loads(body.read())["payload"])["Records"]
        function = function_logical_id(state, batch["function"])
        response = invoke_function(state, function, {"Records": records, "redrive": {}})
        assert response == {"batchItemFailures": []}
    assert all_rows(state) == redriven_rows
    # AND the stream ends
    run(home, "drain", "--close-windows")

    # THEN windows and sessions equal the reference over the valid, on-time lines, in the order
    # the poison record's shard applied them: the later events before the kept batch
    poison_at = lines.index(POISON.to_json_line())
    applied = [*lines[:poison_at], *(e.to_json_line() for e in later), *lines[poison_at:]]
    on_time_lines = [line for line in applied if line not in {e.to_json_line() for e in skewed}]
    reference_file = tmp_path / "reference.jsonl"
    reference_file.write_bytes(b"".join(on_time_lines))
    reference = compute_reference(reference_file, shard_ranges(state), LATENESS)
    assert not any(reference.counts.late.values())
    assert_windows_within_bound(state, reference)
    assert_sessions_equal(state, reference)
    # AND the skewed events and the newline url are quarantined with their reasons
    raw_bucket = state.template().resource("RawBucket").physical_id
    for consumer in CONSUMERS:
        assert len(quarantined(s3, raw_bucket, consumer)) == len(skewed) + 1
    assert_quarantine_reasons(quarantined(s3, raw_bucket, "window-counter"), len(skewed))
    # AND the summary accounts for every record, with the new categories. (Its raw path finds
    # each record twice in rawdata/: the local Firehose, restarted with the daemon, read the
    # stream again from its start. Nothing is missing, and each valid id is one document.)
    summary = run(home, "summary", check=False).stdout
    assert_summary_line(summary, "records sent but missing in the stream", 0)
    assert_summary_line(summary, "records sent but missing in rawdata/", 0)
    assert_summary_line(summary, "raw lines beyond the records sent", len(lines) + len(later))
    valid_ids = len({event.event_id for event in [*ON_TIME, *later]})
    assert_summary_line(summary, "valid event_ids of this run (to index)", valid_ids)
    assert_summary_line(summary, "event_ids of this run searchable", valid_ids)
    assert_summary_line(summary, "ahead of their arrival by more than MaxClockSkewSeconds", 3)
    assert_summary_line(summary, "not valid events (the consumers' own parser)", 1)
    assert_summary_line(summary, "in kept batches, awaiting clickstream redrive", 0)
    assert_summary_line(summary, "repeated event_ids (counted once)", len(REPEATS))
    assert "  ACCOUNTED: records = quarantined + duplicates + counted + late" in summary

    # WHEN the lake is curated
    run(home, "curate")
    # THEN the comma and quote urls' sessions are in curated_sessions intact, the newline's not
    duck = curated_duckdb(state, tmp_path / "duckdb")
    urls = {url for (url,) in duck.execute("SELECT beginurl FROM curated_sessions").fetchall()}
    urls |= {url for (url,) in duck.execute("SELECT endurl FROM curated_sessions").fetchall()}
    planted = {event.url for event in ON_TIME if event.url in HOSTILE}
    assert planted and planted <= urls
    assert NEWLINE_URL not in urls


def assert_windows_within_bound(state: StackState, reference: Reference) -> None:
    """Every row final and none late; the hot url's rows approximate within the sketch's bound,
    every other row exactly the reference's."""
    for size in (15, 60):
        rows = window_rows(state, UNIQUE_USERS, size)
        assert rows and all(row.final and row.late_events == 0 for row in rows)
        expected = {k: v for k, v in reference.unique_users.items() if k[0] == size}
        assert {(size, r.window_start, r.key) for r in rows if r.value} == set(expected)
        for row in rows:
            exact = expected[(size, row.window_start, row.key)]
            if row.key == HOT_URL and exact > EXACT_SET_LIMIT:
                assert row.approximate and row.error_bound == ERROR_BOUND
                assert abs(row.value - exact) <= ERROR_BOUND * exact
            else:
                assert (row.value, row.approximate) == (exact, False)
    rows = window_rows(state, TOP_SOURCES, 60)
    assert all(row.final and row.late_events == 0 and not row.approximate for row in rows)
    assert {(r.window_start, r.key): (r.value, r.rank) for r in rows if r.value} == (
        reference.source_counts
    )


def quarantined(s3: Any, bucket: str, consumer: str) -> dict[tuple[str, str], str]:
    """The consumer's quarantined records' reasons, by (shard, sequence number)."""
    entries = [
        json.loads(line)
        for body in object_bodies(s3, bucket, f"quarantine/{consumer}/")
        for line in body.decode("utf-8").splitlines()
    ]
    return {(entry["shard_id"], entry["sequence_number"]): entry["reason"] for entry in entries}


def assert_quarantine_reasons(reasons: dict[tuple[str, str], str], skewed: int) -> None:
    """The skewed events and the newline url, each with its reason."""
    ahead = [reason for reason in reasons.values() if "ahead of its arrival" in reason]
    assert len(ahead) == skewed
    assert all(reason.endswith("(allowed clock skew 300 s)") for reason in ahead)
    assert [reason for reason in reasons.values() if "control character" in reason] == [
        "url: contains control character U+000A at position 4"
    ]


def summary_values(summary: str) -> dict[str, int]:
    """Each ``label  value`` line of ``clickstream summary``."""
    values: dict[str, int] = {}
    for line in summary.splitlines():
        label, _, value = line.strip().rpartition("  ")
        if label and value.replace(",", "").isdigit():
            values[label.strip()] = int(value.replace(",", ""))
    return values


def assert_summary_line(summary: str, label: str, value: int) -> None:
    assert summary_values(summary)[label] == value


def all_rows(state: StackState) -> dict[tuple[str, int, str], tuple[int, int, bool]]:
    """Every window row's (value, late events, final)."""
    return {
        (metric, size, f"{row.window_start}/{row.key}"): (row.value, row.late_events, row.final)
        for metric, size in ((UNIQUE_USERS, 15), (UNIQUE_USERS, 60), (TOP_SOURCES, 60))
        for row in window_rows(state, metric, size)
    }


def function_logical_id(state: StackState, name: str) -> str:
    (function,) = [
        f for f in state.template().resources("AWS::Serverless::Function") if f.physical_id == name
    ]
    return function.logical_id
