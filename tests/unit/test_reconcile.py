"""The raw path's reconciliation (each event_id as often as sent) and the stream's account."""

from __future__ import annotations

from collections import Counter

from clickstream_analytics.reconcile import LakeCount, StreamAccounting, reconcile


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


def account(**fields: int) -> StreamAccounting:
    counts = {
        "records": 10,
        "not_events": 1,
        "skewed": 1,
        "quarantined": 2,
        "duplicates": 1,
        "counted": 6,
        "late": 1,
    }
    return StreamAccounting(**{**counts, **fields})


def test_the_account_holds_with_skewed_events_among_the_quarantined() -> None:
    result = account()
    assert (result.invalid, result.ok) == (2, True)
    lines = result.lines()
    assert "  ahead of their arrival by more than MaxClockSkewSeconds          1" in lines
    assert lines[-1] == (
        "  ACCOUNTED: records = quarantined + duplicates + counted + late: 10 = 2 + 1 + 6 + 1"
    )


def test_records_in_kept_batches_leave_the_account_open_until_redriven() -> None:
    result = account(counted=5, kept=1)
    assert not result.ok
    assert result.lines()[-1].startswith(
        "  NOT ACCOUNTED YET (1 records await `clickstream redrive`)"
    )


def test_approximate_counts_are_accounted_within_the_sketches_bound() -> None:
    # GIVEN 1,000 records whose one (minute, source) count is an estimate, 30 too high
    exact = {"records": 1000, "not_events": 0, "skewed": 0, "quarantined": 0, "duplicates": 0}
    close = StreamAccounting(**exact, counted=1030, late=0, approximate=1, approximate_total=1030)
    far = StreamAccounting(**exact, counted=1060, late=0, approximate=1, approximate_total=1060)
    # THEN 30 is within 4.875 % of 1,030 (50), and 60 is not within that of 1,060 (51)
    assert (close.tolerance, close.ok) == (50, True)
    assert (far.tolerance, far.ok) == (51, False)
    assert "(counts within ±50, the sketches' 4.875%)" in close.lines()[-1]


def test_a_valid_record_quarantined_breaks_the_account() -> None:
    assert not account(quarantined=3, counted=5).ok


def test_only_valid_events_are_expected_in_the_search_index() -> None:
    # GIVEN a run of three ids, one of them an event the consumers refuse (its clock is wrong)
    sent = ["a", "b", "skewed"]
    stream = Counter[str | None](sent)
    # WHEN the two valid ones are searchable
    result = reconcile(
        sent, 3, stream, lake(sent), searchable={"a", "b"}, search_documents=2, indexable={"a", "b"}
    )
    # THEN the run reconciles, and says how many were to be indexed
    assert (result.indexable_of_run, result.ok) == (2, True)
    assert "  valid event_ids of this run (to index)          2" in result.lines()
