"""The sessionizer's log of commits: its lines, its parts, and the in-memory view of a shard."""

from __future__ import annotations

import zlib

import pytest

from clickstream.adapters.aws import session_state
from clickstream.adapters.aws.session_state import (
    LoggedChange,
    ShardLog,
    decode_changes,
    encode_changes,
)
from clickstream.core.session_state import KeyChange, KeyState, Run, TailEvent

KEY = (7, "browser")


def tail_event(n: int, micros: int | None = None) -> TailEvent:
    return TailEvent(f"id-{n:04d}", micros if micros is not None else 1_000_000 * n, "u", "s")


def state(*events: TailEvent, head: Run | None = None) -> KeyState:
    return KeyState(*KEY, head=head).with_events(events)


def test_a_change_that_only_adds_events_is_logged_as_an_append() -> None:
    # GIVEN a stored state and the same state with two more events, one of them earlier
    before = state(tail_event(2), tail_event(5))
    after = before.with_events([tail_event(3), tail_event(9)])
    # WHEN the change is logged
    line = LoggedChange.of(KeyChange(KEY, before, after, 1, 2))
    # THEN only the added events are written, and reading the line gives them back
    assert line.appended == (tail_event(3), tail_event(9))
    assert line.state is None
    assert LoggedChange.from_line(line.to_line()) == line


def test_a_change_the_rules_reshaped_is_logged_whole() -> None:
    # GIVEN a state whose first minute closed: its tail moved into the head
    before = state(tail_event(2), tail_event(5))
    head = Run.of(tail_event(2)).plus(tail_event(5))
    after = state(tail_event(70), head=head)
    # WHEN the change is logged
    line = LoggedChange.of(KeyChange(KEY, before, after, 1, 2))
    # THEN the whole new state is written
    assert line.appended is None
    assert line.state == after.to_json()
    assert LoggedChange.from_line(line.to_line()) == line


def test_a_new_key_and_a_closed_key_are_a_whole_state_and_a_deletion() -> None:
    created = LoggedChange.of(KeyChange(KEY, None, state(tail_event(1)), None, 5))
    closed = LoggedChange.of(KeyChange(KEY, state(tail_event(1)), None, 5, None))
    assert created.state is not None and created.close_at == 5
    assert closed.deleted
    assert LoggedChange.from_line(closed.to_line()) == closed


def test_parts_stay_under_the_raw_size_and_decode_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN lines larger in total than a part may hold
    monkeypatch.setattr(session_state, "PART_RAW_BYTES", 2_000)
    lines = [
        LoggedChange((n, "mobile"), state=state(tail_event(n)).to_json(), close_at=n)
        for n in range(60)
    ]
    # WHEN they are encoded
    parts = encode_changes(lines)
    # THEN there are several parts, none over the limit raw, and together they give the lines
    assert len(parts) > 1
    assert all(len(zlib.decompress(part)) <= 2_000 for part in parts)
    assert [line for part in parts for line in decode_changes(part)] == lines


def test_an_append_keeps_the_entry_holding_the_whole_state() -> None:
    # GIVEN a key written whole at version 3, then appended to at version 8
    log = ShardLog()
    first = state(tail_event(1))
    log.apply(3, LoggedChange(KEY, state=first.to_json(), close_at=60_000_000))
    log.apply(8, LoggedChange(KEY, appended=(tail_event(2),), close_at=60_000_000))
    # THEN the state has both events, and the log must still be read from version 3
    assert KeyState.from_json(*KEY, log.open[KEY].state) == first.with_events([tail_event(2)])
    assert log.keep_from(8) == 3
    # WHEN the key is written whole again, and later closed
    log.apply(11, LoggedChange(KEY, state=state(tail_event(80)).to_json(), close_at=120_000_000))
    assert log.keep_from(11) == 11
    log.apply(12, LoggedChange(KEY))
    # THEN nothing older than the newest entry is needed
    assert log.keep_from(12) == 12
    assert KEY not in log.open


def test_an_append_to_a_key_without_state_is_refused() -> None:
    log = ShardLog()
    with pytest.raises(ValueError, match="has no state"):
        log.apply(2, LoggedChange(KEY, appended=(tail_event(1),), close_at=1))


def test_due_keys_come_earliest_first_and_moved_keys_only_at_their_new_time() -> None:
    # GIVEN three keys, one of which moved to a later close time
    log = ShardLog()
    for custid, close_at in ((1, 30), (2, 10), (3, 20)):
        key = (custid, "tablet")
        log.apply(1, LoggedChange(key, state=KeyState(*key).to_json(), close_at=close_at))
    log.apply(2, LoggedChange((2, "tablet"), state=KeyState(2, "tablet").to_json(), close_at=40))
    # WHEN the keys due are asked for, twice (a read leaves the index as it was)
    assert log.due(30, limit=10) == [(3, "tablet"), (1, "tablet")]
    assert log.due(30, limit=1) == [(3, "tablet")]
    assert log.due(40, limit=10) == [(3, "tablet"), (1, "tablet"), (2, "tablet")]
    assert log.every_key() == [(3, "tablet"), (1, "tablet"), (2, "tablet")]
