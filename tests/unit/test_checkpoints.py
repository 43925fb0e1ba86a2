"""Shard checkpoints: which records are applied, idle watermark advance, serialisation."""

from __future__ import annotations

from datetime import timedelta

from clickstream.core.checkpoints import ShardCheckpoint, combined_watermark, sequence_key
from tests.factories import at


def test_sequence_numbers_compare_as_numbers_not_as_text() -> None:
    # GIVEN sequence numbers of different lengths THEN they sort numerically
    assert sequence_key("9") < sequence_key("10") < sequence_key("49590338271490256608559692538361")


def test_records_up_to_the_checkpoint_are_applied() -> None:
    # GIVEN a checkpoint at sequence 120
    checkpoint = ShardCheckpoint("windows", "shardId-0", sequence_number="120")
    # THEN records at or before it are applied, later ones are not
    assert checkpoint.applied("99") and checkpoint.applied("120")
    assert not checkpoint.applied("121")
    assert not ShardCheckpoint("windows", "shardId-0").applied("1")


def test_advancing_bumps_the_version() -> None:
    # GIVEN a fresh checkpoint WHEN a batch commits THEN everything moves and the version is 1
    moment = at("2026-03-07T14:04:10")
    after = ShardCheckpoint("windows", "shardId-0").advanced(
        sequence_number="7", max_event_time=moment, last_event_at=moment, watermark=moment
    )
    assert (after.sequence_number, after.version, after.watermark) == ("7", 1, moment)


def test_an_idle_shard_advances_with_processing_time_only_after_the_timeout() -> None:
    # GIVEN a shard whose last event (at 14:00) arrived at 15:00 processing time, lateness 10 s
    checkpoint = ShardCheckpoint(
        "windows",
        "shardId-0",
        sequence_number="5",
        max_event_time=at("2026-03-07T14:00:00"),
        last_event_at=at("2026-03-07T15:00:00"),
        watermark=at("2026-03-07T13:59:50"),
        version=3,
    )
    lateness, idle = timedelta(seconds=10), timedelta(seconds=60)
    # WHEN 30 s pass THEN nothing changes (not idle yet)
    assert checkpoint.idle_advanced(at("2026-03-07T15:00:30"), idle, lateness) == checkpoint
    # WHEN 5 minutes pass THEN event time is taken to have moved on by the same 5 minutes
    later = checkpoint.idle_advanced(at("2026-03-07T15:05:00"), idle, lateness)
    assert later.watermark == at("2026-03-07T14:04:50")
    assert later.version == 4


def test_item_round_trip() -> None:
    # GIVEN a full checkpoint WHEN written as an item and read back THEN it is unchanged
    moment = at("2026-03-07T14:04:56.683790")
    checkpoint = ShardCheckpoint("sessions", "shardId-1", "42", moment, moment, moment, 9)
    assert ShardCheckpoint.from_item(checkpoint.to_item()) == checkpoint
    assert ShardCheckpoint.from_item(ShardCheckpoint("a", "b").to_item()) == ShardCheckpoint(
        "a", "b"
    )


def test_the_stream_watermark_is_the_lowest_and_waits_for_every_shard() -> None:
    # GIVEN two shards' checkpoints
    early, late = at("2026-03-07T14:00:00"), at("2026-03-07T14:05:00")
    checkpoints = [
        ShardCheckpoint("w", "shardId-0", watermark=late),
        ShardCheckpoint("w", "shardId-1", watermark=early),
    ]
    # THEN the stream's watermark is the lowest of them
    assert combined_watermark(checkpoints, ["shardId-0", "shardId-1"]) == early
    # AND a shard that has delivered nothing yet holds it back
    assert combined_watermark(checkpoints, ["shardId-0", "shardId-1", "shardId-2"]) is None
    assert combined_watermark([], []) is None
