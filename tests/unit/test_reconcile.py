"""The raw path's reconciliation counts records, each event_id as often as it was sent."""

from __future__ import annotations

from collections import Counter

from clickstream_analytics.reconcile import LakeCount, reconcile


def lake(ids: list[str]) -> LakeCount:
    return LakeCount(objects=1, lines=len(ids), ids=Counter[str | None](ids))


def test_a_replay_that_repeats_event_ids_reconciles() -> None:
    # GIVEN a replay that sent "a" three times and "b" once, all in the stream and the raw layer
    sent = ["a", "b", "a", "a"]
    stream = Counter[str | None](sent)
    # WHEN it is reconciled, with one search document per distinct id
    result = reconcile(sent, 4, stream, lake(sent), searchable={"a", "b"}, search_documents=2)
    # THEN every record is accounted for
    assert result.ok
    assert (result.sent, result.distinct_sent, result.raw_lines_of_run) == (4, 2, 4)
    assert result.lines()[-1].startswith("  RECONCILED: sent = stream records = raw lines")


def test_a_repeat_missing_from_the_raw_layer_does_not_reconcile() -> None:
    sent = ["a", "b", "a"]
    result = reconcile(sent, 3, Counter[str | None](sent), lake(["a", "b"]))
    assert (result.missing_in_raw, result.duplicated_in_raw, result.ok) == (1, 0, False)
    assert result.lines()[-1] == "  NOT RECONCILED: see the counts above"


def test_a_raw_line_beyond_what_was_sent_does_not_reconcile() -> None:
    sent = ["a", "b"]
    result = reconcile(sent, 2, Counter[str | None](sent), lake(["a", "b", "b"]))
    assert (result.missing_in_raw, result.duplicated_in_raw, result.ok) == (0, 1, False)


def test_a_record_missing_from_the_stream_does_not_reconcile() -> None:
    sent = ["a", "a"]
    result = reconcile(sent, 2, Counter[str | None](["a"]), lake(["a"]))
    assert (result.missing_in_stream, result.missing_in_raw, result.ok) == (1, 1, False)


def test_a_distinct_id_without_its_search_document_does_not_reconcile() -> None:
    sent = ["a", "b", "a"]
    stream = Counter[str | None](sent)
    result = reconcile(sent, 3, stream, lake(sent), searchable={"a"}, search_documents=1)
    assert (result.searchable_of_run, result.ok) == (1, False)
