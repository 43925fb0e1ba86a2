"""The DuckDB reference on hand-computed cases: minute sessions and gap sessions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.support.reference_lines import line, reference, utc

# --- Minute sessions ---------------------------------------------------------------------------


def test_minute_sessions_split_at_the_minute_and_keep_the_seed_columns(tmp_path: Path) -> None:
    # GIVEN user 7 browsing across 14:01:00, and twice at the same instant on a tablet
    lines = [
        line(1, "2026-03-07T14:00:50.700000", custid=7, url="beer_vitrine_nav"),
        line(2, "2026-03-07T14:00:59.999999", custid=7, url="beer_product_detail"),
        line(3, "2026-03-07T14:01:00.000000", custid=7, url="beer_cart"),
        line(5, "2026-03-07T14:01:10.000000", custid=7, device="app_tablet", url="beer_cart"),
        line(4, "2026-03-07T14:01:10.000000", custid=7, device="app_tablet", url="beer_checkout"),
        line(6, "2026-03-07T14:01:11.000000", custid=7, device="app_mobile"),
    ]
    # WHEN the reference is computed
    rows = reference(tmp_path, lines, lateness=timedelta(minutes=1)).minute_sessions
    # THEN each (custid, device, minute) is one row; equal times are ordered by event_id
    assert rows == [
        (
            "7_bro_1772892000",
            7,
            "browser",
            "2026-03-07 14:00:00",
            2,
            "beer_vitrine_nav",
            "beer_product_detail",
            "00:50",
            "00:59",
            9,
        ),
        (
            "7_bro_1772892060",
            7,
            "browser",
            "2026-03-07 14:01:00",
            1,
            "beer_cart",
            "beer_cart",
            "01:00",
            "01:00",
            0,
        ),
        (
            "7_mob_1772892060",
            7,
            "app_mobile",
            "2026-03-07 14:01:00",
            1,
            "beer_cart",
            "beer_cart",
            "01:11",
            "01:11",
            0,
        ),
        (
            "7_tab_1772892060",
            7,
            "app_tablet",
            "2026-03-07 14:01:00",
            2,
            "beer_checkout",
            "beer_cart",
            "01:10",
            "01:10",
            0,
        ),
    ]


def test_minute_sessions_leave_out_events_late_for_their_minute(tmp_path: Path) -> None:
    # GIVEN W = 14:01:00, then an event of 14:00:30
    lines = [line(1, "2026-03-07T14:01:10"), line(2, "2026-03-07T14:00:30")]
    # WHEN the reference is computed
    rows = reference(tmp_path, lines).minute_sessions
    # THEN only the 14:01 minute has a session
    assert [row[3] for row in rows] == ["2026-03-07 14:01:00"]


# --- Gap sessions ------------------------------------------------------------------------------


def test_a_gap_equal_to_the_timeout_continues_the_session(tmp_path: Path) -> None:
    # GIVEN events at 14:00, 14:30 (gap = 30 min) and 15:00:00.000001 (gap = 30 min + 1 µs)
    lines = [
        line(1, "2026-03-07T14:00:00.000000", trafficfrom="Alexa"),
        line(2, "2026-03-07T14:30:00.000000", url="beer_checkout"),
        line(3, "2026-03-07T15:00:00.000001", url="beer_vitrine_nav"),
    ]
    # WHEN the reference is computed
    sessions = reference(tmp_path, lines).gap_sessions
    # THEN the equal gap continues the session and the longer one starts a new one
    assert sessions == [
        {
            "session_id": "1_bro_1772892000000000",
            "custid": 1,
            "device": "browser",
            "start": "2026-03-07T14:00:00.000000",
            "end": "2026-03-07T14:30:00.000000",
            "trafficfrom": "Alexa",
            "entry_url": "beer_cart",
            "exit_url": "beer_checkout",
            "page_count": 2,
            "duration_seconds": 1800.0,
            "reached_checkout": True,
        },
        {
            "session_id": "1_bro_1772895600000001",
            "custid": 1,
            "device": "browser",
            "start": "2026-03-07T15:00:00.000001",
            "end": "2026-03-07T15:00:00.000001",
            "trafficfrom": "google",
            "entry_url": "beer_vitrine_nav",
            "exit_url": "beer_vitrine_nav",
            "page_count": 1,
            "duration_seconds": 0.0,
            "reached_checkout": False,
        },
    ]


def test_a_session_is_cut_when_an_event_reaches_24_hours_after_its_start(tmp_path: Path) -> None:
    # GIVEN a user active every 20 minutes for 24 hours and 20 minutes
    start = utc("2026-03-07T14:00:00")
    moments = [start + timedelta(minutes=20 * k) for k in range(74)]
    lines = [line(k + 1, moment.isoformat()[:26]) for k, moment in enumerate(moments)]
    # WHEN the reference is computed
    sessions = reference(tmp_path, lines).gap_sessions
    # THEN the event at exactly start + 24 h opens the second session
    assert [(s["start"], s["page_count"]) for s in sessions] == [
        ("2026-03-07T14:00:00.000000", 72),
        ("2026-03-08T14:00:00.000000", 2),
    ]
    assert sessions[0]["duration_seconds"] == 85200.0


def test_gap_session_timeouts_are_parameters(tmp_path: Path) -> None:
    # GIVEN events 5 min apart
    lines = [line(n, f"2026-03-07T14:{5 * n:02d}:00.000123") for n in range(1, 5)]
    # WHEN the timeouts are 4 minutes of inactivity and then 10 minutes of length
    by_gap = reference(tmp_path, lines, inactivity_timeout=timedelta(minutes=4)).gap_sessions
    by_cap = reference(tmp_path, lines, max_duration=timedelta(minutes=10)).gap_sessions
    # THEN each event is alone, or sessions are cut every 10 minutes
    assert [s["page_count"] for s in by_gap] == [1, 1, 1, 1]
    assert [s["page_count"] for s in by_cap] == [2, 2]
    assert by_cap[0]["duration_seconds"] == 300.0


def test_events_before_the_watermark_are_left_out_of_gap_sessions_only(tmp_path: Path) -> None:
    # GIVEN W = 14:00:19, then events at 14:00:16 (before W) and at 14:00:19 (on W)
    lines = [
        line(1, "2026-03-07T14:00:29"),
        line(2, "2026-03-07T14:00:16", url="beer_checkout"),
        line(3, "2026-03-07T14:00:19", url="beer_vitrine_nav"),
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN the 14:00:16 event counts in its open window but not in the gap session
    assert result.counts.late == {15: 0, 60: 0}
    assert result.counts.gap_late == 1
    assert result.unique_users[(15, utc("2026-03-07T14:00:15"), "beer_checkout")] == 1
    [session] = result.gap_sessions
    assert (session["page_count"], session["entry_url"]) == (2, "beer_vitrine_nav")
    assert session["reached_checkout"] is False


def test_session_ids_tell_devices_apart(tmp_path: Path) -> None:
    # GIVEN the same user on the three devices at the same moment
    lines = [
        line(n, "2026-03-07T14:00:00.5", device=device)
        for n, device in enumerate(("app_mobile", "app_tablet", "browser"), start=1)
    ]
    # WHEN the reference is computed
    result = reference(tmp_path, lines)
    # THEN both kinds of session ids are unique per device
    assert [s["session_id"] for s in result.gap_sessions] == [
        "1_mob_1772892000500000",
        "1_tab_1772892000500000",
        "1_bro_1772892000500000",
    ]
    assert sorted(row[0] for row in result.minute_sessions) == [
        "1_bro_1772892000",
        "1_mob_1772892000",
        "1_tab_1772892000",
    ]
