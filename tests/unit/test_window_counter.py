"""The window counter core without I/O: batch processing, updates, merging, rows, the driver."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from clickstream.adapters.aws.window_state import (
    MAX_NUMBERS_PER_ITEM,
    window_update,
    window_updates,
)
from clickstream.consumers.window_counter import ShardCommit, run_batch
from clickstream.core.batch_failures import RecordFailure
from clickstream.core.checkpoints import ShardCheckpoint
from clickstream.core.events import Event
from clickstream.core.records import ParsedRecord, RejectedRecord, ShardRecord, parse_record
from clickstream.core.window_counting import (
    ShardBatchResult,
    WindowDelta,
    WindowPartial,
    WindowValue,
    event_digest,
    merge_partials,
    process_shard_batch,
    window_rows,
)
from clickstream.core.windows import TOP_SOURCES, UNIQUE_USERS, WindowKey
from clickstream.ports import QuarantineSink, WindowCounterPorts, WindowStateStore
from tests.factories import at, make_event
from tests.support.fakes import (
    FixedShards,
    MemoryCheckpoints,
    MemoryQuarantine,
    MemoryWindowResults,
)

NOW = at("2026-03-07T14:10:00")
MINUTE = at("2026-03-07T14:04:00")
FRESH = ShardCheckpoint("windows", "shardId-0")


def records(*events: Event | bytes, first: int = 1) -> list[ParsedRecord]:
    """Parsed shard records with consecutive sequence numbers from ``first``."""
    return [
        parse_record(
            ShardRecord(
                "shardId-0",
                str(first + n),
                item if isinstance(item, bytes) else item.to_json_line(),
                NOW,
            )
        )
        for n, item in enumerate(events)
    ]


def process(batch: list[ParsedRecord], checkpoint: ShardCheckpoint = FRESH) -> ShardBatchResult:
    return process_shard_batch(batch, checkpoint, allowed_lateness=timedelta(seconds=5), now=NOW)


def key(metric: str, size: int, start: str, name: str) -> WindowKey:
    return WindowKey(metric, size, at(start), name)


def test_deltas_hold_custids_per_url_and_event_digests_per_source() -> None:
    # GIVEN two users on one page and one user on another, from two sources
    a = make_event(at("2026-03-07T14:04:01"), custid=1, url="beer_cart", trafficfrom="google")
    b = make_event(at("2026-03-07T14:04:02"), custid=2, url="beer_cart", trafficfrom="google")
    c = make_event(at("2026-03-07T14:04:20"), custid=1, url="beer_checkout", trafficfrom="Alexa")
    # WHEN the batch is processed
    result = process(records(a, b, c))
    # THEN unique-users deltas are custid sets per (window, url) for 15 s and 60 s
    deltas = result.deltas
    assert deltas[key(UNIQUE_USERS, 15, "2026-03-07T14:04:00", "beer_cart")].members == {1, 2}
    assert deltas[key(UNIQUE_USERS, 15, "2026-03-07T14:04:15", "beer_checkout")].members == {1}
    assert deltas[key(UNIQUE_USERS, 60, "2026-03-07T14:04:00", "beer_cart")].members == {1, 2}
    assert deltas[key(UNIQUE_USERS, 60, "2026-03-07T14:04:00", "beer_cart")].events == {
        event_digest(a.event_id),
        event_digest(b.event_id),
    }
    # AND top-sources deltas are event digest sets per (minute, source)
    google = deltas[key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "google")]
    assert google.members == google.events == {event_digest(a.event_id), event_digest(b.event_id)}
    assert deltas[key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "Alexa")].members == {
        event_digest(c.event_id)
    }
    assert len(deltas) == 6
    assert all(not delta.late for delta in deltas.values())


def test_the_next_checkpoint_records_the_batch() -> None:
    # GIVEN a checkpoint that has seen events up to 14:04:00
    before = FRESH.advanced(
        sequence_number="3",
        max_event_time=MINUTE,
        last_event_at=at("2026-03-07T14:05:00"),
        watermark=MINUTE - timedelta(seconds=5),
    )
    batch = records(
        make_event(at("2026-03-07T14:04:30")), make_event(at("2026-03-07T14:04:10")), first=4
    )
    # WHEN a batch follows
    result = process(batch, before)
    # THEN the checkpoint moves to the last sequence number, the max event time and now
    assert result.checkpoint_before == before
    assert result.checkpoint == before.advanced(
        sequence_number="5",
        max_event_time=at("2026-03-07T14:04:30"),
        last_event_at=NOW,
        watermark=at("2026-03-07T14:04:25"),
    )
    assert result.checkpoint.version == 2


def test_records_already_applied_are_skipped() -> None:
    # GIVEN a checkpoint at sequence number 2 and a redelivered batch 1..3
    first, second, third = (make_event(at(f"2026-03-07T14:04:0{n}")) for n in range(3))
    checkpoint = process(records(first, second)).checkpoint
    # WHEN the batch is processed
    result = process(records(first, second, third), checkpoint)
    # THEN only the third record counts
    assert (result.received, result.already_applied, result.valid) == (3, 2, 1)
    assert {delta.members for k, delta in result.deltas.items() if k.metric == TOP_SOURCES} == {
        frozenset({event_digest(third.event_id)})
    }
    assert result.checkpoint.sequence_number == "3"


def test_a_batch_entirely_applied_changes_nothing() -> None:
    # GIVEN a batch that was committed
    batch = records(make_event(MINUTE), make_event(MINUTE + timedelta(seconds=1)))
    checkpoint = process(batch).checkpoint
    # WHEN it is redelivered
    result = process(batch, checkpoint)
    # THEN there is nothing to commit
    assert not result.has_new_records
    assert result.deltas == {}
    assert result.checkpoint == checkpoint


def test_invalid_records_are_quarantined_with_their_reason() -> None:
    # GIVEN a batch with two broken records between valid ones
    batch = records(make_event(MINUTE), b"{not json", b'{"event_id": 1}', make_event(MINUTE))
    # WHEN it is processed
    result = process(batch)
    # THEN the broken ones are quarantined with the parser's reasons, in order
    assert [(q.sequence_number, q.reason) for q in result.quarantined] == [
        (
            "2",
            "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (
            "3",
            "missing required field(s): custid, trafficfrom, url, device, touchproduct, "
            "trans_timestamp",
        ),
    ]
    assert result.valid == 2
    assert result.checkpoint.sequence_number == "4"


def test_a_batch_of_only_invalid_records_advances_the_sequence_but_not_event_time() -> None:
    # GIVEN a checkpoint with events seen earlier
    before = process(records(make_event(MINUTE))).checkpoint
    # WHEN only invalid records follow
    result = process(records(b"", b"[]", first=2), before)
    # THEN the sequence number moves but event time, last event and watermark do not
    assert result.checkpoint.sequence_number == "3"
    assert result.checkpoint.max_event_time == before.max_event_time
    assert result.checkpoint.last_event_at == before.last_event_at
    assert result.checkpoint.watermark == before.watermark
    assert [q.reason for q in result.quarantined] == [
        "record is empty",
        "expected a JSON object, got list",
    ]


def test_duplicates_in_a_batch_count_once_and_reconcile() -> None:
    # GIVEN an event sent three times, another event, and one invalid record
    event = make_event(MINUTE, custid=7, trafficfrom="google")
    other = make_event(MINUTE, custid=8, trafficfrom="google")
    result = process(records(event, event, other, event, b"x"))
    # THEN it counts once
    google = result.deltas[key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "google")]
    assert google.members == {event_digest(event.event_id), event_digest(other.event_id)}
    assert (result.valid, result.distinct, result.duplicates) == (4, 2, 2)
    # AND every record is accounted for
    assert result.received == result.already_applied + len(result.quarantined) + result.valid
    assert result.valid == result.distinct + result.duplicates


def test_late_events_are_classified_against_the_checkpoint_watermark() -> None:
    # GIVEN a watermark at 14:04:20 (the 14:04:00-15 window is final, the minute is not)
    before = FRESH.advanced(
        sequence_number="1",
        max_event_time=at("2026-03-07T14:04:25"),
        last_event_at=NOW,
        watermark=at("2026-03-07T14:04:20"),
    )
    late_for_15s = make_event(at("2026-03-07T14:04:05"), custid=3, trafficfrom="google")
    on_time = make_event(at("2026-03-07T14:04:16"), custid=4, trafficfrom="google")
    # WHEN they arrive
    result = process(records(late_for_15s, on_time, first=2), before)
    # THEN the first is late for its 15 s window only
    digest = event_digest(late_for_15s.event_id)
    late_window = result.deltas[key(UNIQUE_USERS, 15, "2026-03-07T14:04:00", "beer_vitrine_nav")]
    assert late_window == WindowDelta(late=frozenset({digest}))
    minute = result.deltas[key(UNIQUE_USERS, 60, "2026-03-07T14:04:00", "beer_vitrine_nav")]
    assert minute.members == {3, 4}
    assert not minute.late
    assert digest in result.deltas[key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "google")].members
    assert result.late == 1


def test_an_event_of_the_batch_can_make_a_later_one_late() -> None:
    # GIVEN a fresh shard, one event far ahead, then an event of an old minute
    ahead = make_event(at("2026-03-07T14:10:00"))
    old = make_event(at("2026-03-07T14:04:00"), trafficfrom="email_MyFirstBeer")
    # WHEN processed in that order
    result = process(records(ahead, old))
    # THEN the old event is late everywhere
    old_keys = [k for k, delta in result.deltas.items() if delta.late]
    assert len(old_keys) == 3
    assert result.deltas[key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "email_MyFirstBeer")] == (
        WindowDelta(late=frozenset({event_digest(old.event_id)}))
    )
    assert result.late == 1
    assert result.checkpoint.watermark == at("2026-03-07T14:09:55")


def test_processing_is_deterministic() -> None:
    # GIVEN the same checkpoint and records
    batch = records(*(make_event(MINUTE + timedelta(seconds=n), custid=n) for n in range(40)))
    # WHEN processed twice
    first, second = process(batch), process(list(batch))
    # THEN the results and the updates they produce are equal
    assert first == second
    assert window_updates("state", first, 7) == window_updates("state", second, 7)


def test_event_digests_fit_a_dynamodb_number_and_spread_sequential_ids() -> None:
    # GIVEN ids that share their high half
    digests = {event_digest(f"00000000-0000-0000-0000-{n:012x}") for n in range(1000)}
    # THEN the digests differ and stay under 20 digits
    assert len(digests) == 1000
    assert all(0 <= d < 2**64 and len(str(d)) <= 20 for d in digests)


def test_one_update_per_window_key_adds_only_non_empty_sets() -> None:
    # GIVEN a unique-users delta with members and events, and a top-sources delta that is late
    users = key(UNIQUE_USERS, 15, "2026-03-07T14:04:00", "beer_cart")
    update = window_update(
        "state", users, WindowDelta(frozenset({2, 1}), frozenset({9}), frozenset()), "s-0", 7
    )["Update"]
    sources = key(TOP_SOURCES, 60, "2026-03-07T14:04:00", "google")
    late = window_update("state", sources, WindowDelta(late=frozenset({5})), "s-0", 7)["Update"]
    # THEN the keys follow the layout and sets are added, never set
    assert update["Key"] == {
        "pk": {"S": "W#unique-users#15#1772892240000000"},
        "sk": {"S": "beer_cart#s-0"},
    }
    assert update["UpdateExpression"].endswith("ADD members :members, events :events")
    assert update["ExpressionAttributeValues"][":members"] == {"NS": ["1", "2"]}
    assert update["ExpressionAttributeValues"][":expires"] == {"N": str(1772892255 + 7 * 86_400)}
    assert late["UpdateExpression"].endswith("ADD late :late")
    assert ":members" not in late["ExpressionAttributeValues"]


def test_the_documented_item_bound() -> None:
    # THEN about 36 thousand 20-digit numbers fit one item
    assert MAX_NUMBERS_PER_ITEM == 36_491


def test_partials_merge_by_union_and_late_copies_of_counted_events_are_not_late() -> None:
    # GIVEN two shards' partials of one key, one late copy of an event counted on time
    partials = [
        WindowPartial("google", "s-0", frozenset({1, 2}), frozenset({1, 2}), frozenset({7})),
        WindowPartial("google", "s-1", frozenset({2, 3}), frozenset({2, 3}), frozenset({3, 8})),
        WindowPartial("Alexa", "s-1", late=frozenset({4})),
    ]
    # WHEN merged
    values = merge_partials(partials)
    # THEN counts are sizes of unions, and late excludes events counted on time
    assert values == {"google": WindowValue(3, 2), "Alexa": WindowValue(0, 1)}


def test_rows_rank_sources_by_count_then_name_and_know_finality() -> None:
    # GIVEN merged values of a minute
    values = {
        "google": WindowValue(3, 0),
        "Alexa": WindowValue(3, 1),
        "amazon.com": WindowValue(5, 0),
        "twitter.com": WindowValue(0, 2),
    }
    # WHEN rows are built with a watermark at the minute's end
    rows = window_rows(TOP_SOURCES, 60, MINUTE, values, at("2026-03-07T14:05:00"))
    # THEN ranks are ordinal, ties by name, and a source with only late events has no rank
    assert [(r.rank, r.key, r.value, r.late_events) for r in rows] == [
        (1, "amazon.com", 5, 0),
        (2, "Alexa", 3, 1),
        (3, "google", 3, 0),
        (None, "twitter.com", 0, 2),
    ]
    assert all(r.final and r.window_end == at("2026-03-07T14:05:00") for r in rows)
    # AND one microsecond earlier the window is not final
    assert not window_rows(TOP_SOURCES, 60, MINUTE, values, at("2026-03-07T14:04:59.999999"))[
        0
    ].final
    assert window_rows(UNIQUE_USERS, 60, MINUTE, values, None)[0].rank is None


class RacingState(WindowStateStore):
    """Commits checkpoints; a concurrent writer (idle watermark) moves it ``races`` times first."""

    def __init__(self, checkpoints: MemoryCheckpoints, races: int) -> None:
        self.checkpoints = checkpoints
        self.races = races
        self.applied: list[ShardBatchResult] = []

    def registered(
        self, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        return {}

    def apply(self, result: ShardBatchResult) -> None:
        if self.races:
            self.races -= 1
            current = self.checkpoints.load(result.checkpoint.consumer, result.checkpoint.shard_id)
            advanced = current.idle_advanced(NOW + timedelta(hours=1), timedelta(0), timedelta(0))
            self.checkpoints.save(replace(advanced, version=current.version + 1), current.version)
        self.checkpoints.save(result.checkpoint, result.checkpoint_before.version)
        self.applied.append(result)

    def read_window(
        self, metric: str, size_seconds: int, window_start: datetime
    ) -> dict[str, WindowValue]:
        return {}


def ports_of(
    checkpoints: MemoryCheckpoints,
    state: WindowStateStore,
    quarantine: QuarantineSink | None = None,
) -> WindowCounterPorts:
    """The window counter's ports: the given state, in-memory fakes for the rest."""
    return WindowCounterPorts(
        checkpoints=checkpoints,
        state=state,
        results=MemoryWindowResults(),
        quarantine=quarantine or MemoryQuarantine(),
        shards=FixedShards(["shardId-0"]),
    )


def run(
    batch: list[ParsedRecord], checkpoints: MemoryCheckpoints, state: RacingState
) -> ShardCommit:
    return run_batch(
        batch,
        "shardId-0",
        "windows",
        ports_of(checkpoints, state),
        allowed_lateness=timedelta(seconds=5),
        now=NOW,
    )


def test_run_batch_recomputes_from_the_fresh_checkpoint_after_a_conflict() -> None:
    # GIVEN a shard that saw one event, and a finalizer that advances its watermark meanwhile
    checkpoints = MemoryCheckpoints()
    state = RacingState(checkpoints, races=0)
    run(records(make_event(MINUTE)), checkpoints, state)
    state.races = 1
    # WHEN the next batch, for the same minute, commits
    commit = run(records(make_event(MINUTE + timedelta(seconds=1)), first=2), checkpoints, state)
    result = commit.result
    assert commit.failure is None
    # THEN it was recomputed against the advanced watermark: its event is now late
    assert result.late == 1
    assert result.checkpoint_before.version == 2
    assert checkpoints.load("windows", "shardId-0") == result.checkpoint


def test_run_batch_gives_up_after_the_allowed_attempts_and_skips_empty_commits() -> None:
    # GIVEN a checkpoint that changes on every attempt
    checkpoints = MemoryCheckpoints()
    run(records(make_event(MINUTE)), checkpoints, RacingState(checkpoints, races=0))
    state = RacingState(checkpoints, races=3)
    # WHEN a batch tries to commit THEN the conflict is reported after three attempts, naming
    # the batch's first record for the retry
    commit = run(records(make_event(MINUTE), first=2), checkpoints, state)
    assert commit.failure == RecordFailure(
        "shardId-0", "2", "CheckpointConflict: the checkpoint moved", poison=False
    )
    assert (commit.result.received, commit.result.has_new_records) == (0, False)
    assert state.applied == []
    # AND a fully applied batch commits nothing at all
    quiet = RacingState(checkpoints, races=0)
    assert not run(records(make_event(MINUTE)), checkpoints, quiet).result.has_new_records
    assert quiet.applied == []


def test_invalid_records_are_stored_before_the_commit_that_marks_them_applied() -> None:
    # GIVEN a batch with an invalid record, and a quarantine that records what it was given
    checkpoints = MemoryCheckpoints()
    state = RacingState(checkpoints, races=0)
    stored: list[tuple[str, bool]] = []

    class Recording(QuarantineSink):
        def put(self, rejected: Sequence[RejectedRecord]) -> None:
            committed = checkpoints.load("windows", "shardId-0").sequence_number is not None
            stored.extend((item.sequence_number, committed) for item in rejected)

    batch = records(make_event(MINUTE), b"{not json")
    # WHEN the batch runs, and is then redelivered (a crash after the commit)
    for _ in range(2):
        run_batch(
            batch,
            "shardId-0",
            "windows",
            ports_of(checkpoints, state, Recording()),
            allowed_lateness=timedelta(seconds=5),
            now=NOW,
        )
    # THEN the invalid record was stored once, before the commit covered it
    assert stored == [("2", False)]
