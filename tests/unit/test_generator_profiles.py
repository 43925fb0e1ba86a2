"""The classic and realistic generator profiles: determinism, distributions, planted effects."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from clickstream.core.events import DEVICES, Event, parse_event
from clickstream.generator import expected_events_per_session, generate
from clickstream.generator import profiles as p

START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
FUNNEL_RANK = {url: rank for rank, url in enumerate(p.FUNNEL)}
CHI_SQUARE_CRITICAL_P001_DF2 = 13.816


def chi_square(table: list[list[int]]) -> float:
    """Pearson's chi-square statistic of a contingency table."""
    total = sum(map(sum, table))
    column_totals = [sum(column) for column in zip(*table, strict=True)]
    statistic = 0.0
    for row in table:
        for observed, column_total in zip(row, column_totals, strict=True):
            expected = sum(row) * column_total / total
            statistic += (observed - expected) ** 2 / expected
    return statistic


def within_binomial(observed: int, trials: int, probability: float, sigmas: float = 5) -> bool:
    """True when ``observed`` is within ``sigmas`` binomial standard deviations of its mean."""
    deviation = math.sqrt(trials * probability * (1 - probability))
    return abs(observed - trials * probability) <= sigmas * deviation


def sessions_of(events: Iterable[Event]) -> list[list[Event]]:
    """30-minute inactivity sessions per (custid, device), as a reader would compute them."""
    by_key: dict[tuple[int, str], list[list[Event]]] = defaultdict(list)
    for event in events:
        runs = by_key[(event.custid, event.device)]
        gap = timedelta(seconds=p.SESSION_TIMEOUT_SECONDS)
        if runs and event.trans_timestamp - runs[-1][-1].trans_timestamp <= gap:
            runs[-1].append(event)
        else:
            runs.append([event])
    return [session for runs in by_key.values() for session in runs]


def gaps(session: list[Event]) -> list[float]:
    return [
        (later.trans_timestamp - earlier.trans_timestamp).total_seconds()
        for earlier, later in itertools.pairwise(session)
    ]


def is_bot(session: list[Event]) -> bool:
    return len(session) > 1 and max(gaps(session)) <= p.BOT_GAP_MAX_SECONDS


def converted(session: list[Event]) -> bool:
    return any(event.url == p.URL_CHECKOUT for event in session)


@pytest.fixture(scope="module")
def classic_events() -> list[Event]:
    return list(generate("classic", seed=11, start=START, rate=50, count=22_000))


@pytest.fixture(scope="module")
def realistic_events() -> list[Event]:
    return list(generate("realistic", seed=2026, start=START, rate=5, count=22_000))


@pytest.fixture(scope="module")
def realistic_sessions(realistic_events: list[Event]) -> list[list[Event]]:
    # Sessions starting in the last 10 minutes may be cut short by the end of generation.
    cutoff = realistic_events[-1].trans_timestamp - timedelta(seconds=600)
    return [s for s in sessions_of(realistic_events) if s[0].trans_timestamp < cutoff]


@pytest.fixture(scope="module")
def human_sessions(realistic_sessions: list[list[Event]]) -> list[list[Event]]:
    return [session for session in realistic_sessions if not is_bot(session)]


# ------------------------------------------------------------------------------ both profiles


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_same_seed_gives_identical_events_and_other_seeds_differ(profile: str) -> None:
    # GIVEN two runs with the same arguments and one with another seed
    first = list(generate(profile, seed=42, start=START, rate=10, count=500))
    second = list(generate(profile, seed=42, start=START, rate=10, count=500))
    other = list(generate(profile, seed=43, start=START, rate=10, count=500))

    # THEN the same seed reproduces every field, event ids included, and another seed does not
    assert first == second
    assert [e.event_id for e in first] != [e.event_id for e in other]
    assert first != other


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_events_are_valid_ordered_and_not_before_start(profile: str) -> None:
    # WHEN generating
    events = list(generate(profile, seed=5, start=START, rate=20, count=2000))

    # THEN every event round-trips through the event model, in non-decreasing event time
    assert [parse_event(event.to_json_line()) for event in events] == events
    times = [event.trans_timestamp for event in events]
    assert times == sorted(times)
    assert times[0] >= START
    assert len({event.event_id for event in events}) == len(events)


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_count_stops_after_count_events_and_is_a_prefix_of_a_duration_run(profile: str) -> None:
    # WHEN the same seed runs by count and by duration
    by_count = list(generate(profile, seed=9, start=START, rate=10, count=300))
    by_duration = list(generate(profile, seed=9, start=START, rate=10, duration=120))

    # THEN the count run has exactly count events and is the beginning of the duration run
    assert len(by_count) == 300
    assert by_duration[:300] == by_count


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_duration_keeps_events_before_the_end_at_the_mean_rate(profile: str) -> None:
    # WHEN generating 1000 s at 20 events/s
    events = list(generate(profile, seed=3, start=START, rate=20, duration=1000))

    # THEN all events are in [start, start + duration) and their number is near rate * duration
    assert all(START <= e.trans_timestamp < START + timedelta(seconds=1000) for e in events)
    assert abs(len(events) - 20_000) <= 0.1 * 20_000


def test_zero_count_and_zero_duration_give_nothing() -> None:
    assert list(generate("realistic", seed=1, start=START, rate=5, count=0)) == []
    assert list(generate("classic", seed=1, start=START, rate=5, duration=0)) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"profile": "nope", "count": 1}, "unknown profile 'nope'"),
        ({"count": 1, "duration": 1.0}, "exactly one of count or duration"),
        ({}, "exactly one of count or duration"),
        ({"count": -1}, "count must be a non-negative integer"),
        ({"duration": -5.0}, "duration must be a non-negative"),
        ({"count": 1, "rate": 0.0}, "rate must be a positive"),
        ({"count": 1, "rate": math.inf}, "rate must be a positive"),
        ({"count": 1, "start": datetime(2026, 3, 7)}, "start must be timezone-aware"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(arguments: dict, message: str) -> None:
    # GIVEN valid defaults overridden by one bad argument
    call = {"profile": "classic", "seed": 1, "start": START, "rate": 1.0, **arguments}
    profile = call.pop("profile")

    # WHEN / THEN generate refuses at call time, before iterating
    with pytest.raises(ValueError, match=message):
        generate(profile, **call)


def test_start_in_another_timezone_is_converted_to_utc() -> None:
    from datetime import timezone

    local = START.astimezone(timezone(timedelta(hours=-3)))
    events = list(generate("classic", seed=1, start=local, rate=1, count=2))
    assert events[0].trans_timestamp == START
    assert events[0].trans_timestamp.utcoffset() == timedelta(0)


# ------------------------------------------------------------------------------ classic


def test_classic_values_come_from_the_exact_lists(classic_events: list[Event]) -> None:
    assert {e.trafficfrom for e in classic_events} == set(p.CLASSIC_TRAFFIC_SOURCES)
    assert {e.url for e in classic_events} == set(p.CLASSIC_URLS)
    assert {e.device for e in classic_events} == set(DEVICES)
    assert {e.custid for e in classic_events} <= set(range(1, p.CLASSIC_CUSTOMER_POOL + 1))


def test_classic_frequencies_are_uniform_over_the_lists(classic_events: list[Event]) -> None:
    # GIVEN 22,000 events; a list entry repeated k times out of n has probability k/n
    trials = len(classic_events)

    # THEN each count is within 5 binomial standard deviations of its mean
    # (with 22,000 draws at p = 1/11, one deviation is 43 events, about 2%)
    for field, values in (
        ("trafficfrom", p.CLASSIC_TRAFFIC_SOURCES),
        ("url", p.CLASSIC_URLS),
        ("device", p.CLASSIC_DEVICES),
    ):
        counts = Counter(getattr(e, field) for e in classic_events)
        for value, repeats in Counter(values).items():
            assert within_binomial(counts[value], trials, repeats / len(values)), (field, value)
    counts = Counter(e.trafficfrom for e in classic_events)
    assert counts["Alexa"] > 1.5 * counts["google"]  # listed twice on purpose


def test_classic_touchproduct_is_zero_exactly_on_vitrine(classic_events: list[Event]) -> None:
    for event in classic_events:
        if event.url == p.URL_VITRINE:
            assert event.touchproduct == 0
        else:
            assert 1 <= event.touchproduct <= p.PRODUCT_COUNT
    products = Counter(e.touchproduct for e in classic_events if e.touchproduct)
    assert set(products) == set(range(1, p.PRODUCT_COUNT + 1))


def test_classic_timestamps_are_evenly_spaced(classic_events: list[Event]) -> None:
    # GIVEN rate 50 events/s THEN event i is at start + i/50 s
    for index in (0, 1, 2, 999, 21_999):
        expected = START + timedelta(seconds=index / 50)
        assert classic_events[index].trans_timestamp == expected


# ------------------------------------------------------------------------------ realistic


def test_realistic_vocabularies_match_classic(realistic_events: list[Event]) -> None:
    assert {e.trafficfrom for e in realistic_events} == set(p.CLASSIC_TRAFFIC_SOURCES)
    assert {e.url for e in realistic_events} == set(p.FUNNEL)
    assert {e.device for e in realistic_events} == set(DEVICES)
    assert all(e.custid >= 1 for e in realistic_events)


def test_realistic_sessions_keep_one_source_and_follow_the_funnel(
    human_sessions: list[list[Event]],
) -> None:
    for session in human_sessions:
        # THEN one traffic source, pages in funnel order, vitrine only first
        assert len({event.trafficfrom for event in session}) == 1
        ranks = [FUNNEL_RANK[event.url] for event in session]
        assert ranks == sorted(ranks)
        assert all(event.url != p.URL_VITRINE for event in session[1:])
        # and touchproduct is 0 on vitrine, the last viewed product on cart and checkout
        for event in session:
            assert (event.touchproduct == 0) == (event.url == p.URL_VITRINE)
        # (a session under way when generation started may lack its first pages)
        viewed = [e.touchproduct for e in session if e.url == p.URL_DETAIL]
        bought = {e.touchproduct for e in session if e.url in (p.URL_CART, p.URL_CHECKOUT)}
        assert len(bought) <= 1
        if viewed and bought:
            assert bought == {viewed[-1]}
        # and no internal gap comes near the 30-minute timeout
        assert all(gap <= p.THINK_TIME_MAX_SECONDS for gap in gaps(session))


def test_realistic_product_popularity_is_zipf(human_sessions: list[list[Event]]) -> None:
    # GIVEN the products of human detail views
    views = Counter(e.touchproduct for s in human_sessions for e in s if e.url == p.URL_DETAIL)
    total = sum(views.values())

    # THEN product k has a share near (1/k) / H(250): product 1 ~16%, product 10 ~1.6%
    harmonic = sum(1 / k for k in range(1, p.PRODUCT_COUNT + 1))
    for product in (1, 2, 10):
        assert within_binomial(views[product], total, 1 / product / harmonic), product
    assert views[1] > 5 * views[10] > 5 * views[100]


def test_realistic_bots_are_a_tenth_of_sessions_and_never_buy(
    realistic_sessions: list[list[Event]],
) -> None:
    # GIVEN sessions classified as bots when all their gaps are at most 2 s
    bots = [session for session in realistic_sessions if is_bot(session)]

    # THEN they are about 10% of sessions, browse many pages, come from google and never buy
    share = len(bots) / len(realistic_sessions)
    assert abs(share - p.BOT_SESSION_SHARE) < 0.02
    assert all(e.url in (p.URL_VITRINE, p.URL_DETAIL) for s in bots for e in s)
    assert all(e.trafficfrom == p.BOT_TRAFFIC_SOURCE for s in bots for e in s)
    assert sum(map(len, bots)) / len(bots) > 10
    browser = sum(s[0].device == "browser" for s in bots)
    assert browser / len(bots) > 0.8


def test_realistic_mixes_are_non_uniform_as_planted(human_sessions: list[list[Event]]) -> None:
    devices = Counter(session[0].device for session in human_sessions)
    sources = Counter(session[0].trafficfrom for session in human_sessions)
    total = len(human_sessions)
    for device, share in p.DEVICE_MIX.items():
        assert abs(devices[device] / total - share) < 0.03, device
    for source, share in p.SOURCE_MIX.items():
        assert abs(sources[source] / total - share) < 0.03, source


def test_realistic_conversion_differs_by_device_as_planted(
    human_sessions: list[list[Event]],
) -> None:
    # GIVEN human sessions grouped by device
    table = []
    for device, planted in p.CHECKOUT_RATE_BY_DEVICE.items():
        group = [session for session in human_sessions if session[0].device == device]
        buyers = sum(map(converted, group))
        # THEN each device converts near its planted rate
        assert abs(buyers / len(group) - planted) < 0.05, device
        table.append([buyers, len(group) - buyers])

    # AND a chi-square test rejects "conversion independent of device" at p < 0.001
    assert chi_square(table) > CHI_SQUARE_CRITICAL_P001_DF2


def test_realistic_conversion_differs_by_source_as_planted(
    human_sessions: list[list[Event]],
) -> None:
    # GIVEN human sessions from email campaigns, google and social networks
    groups = {
        "email": {"email_CampanhaBeer", "email_MyFirstBeer"},
        "google": {"google"},
        "social": {"facebook.com", "twitter.com"},
    }
    rates = {}
    table = []
    for name, sources in groups.items():
        group = [session for session in human_sessions if session[0].trafficfrom in sources]
        buyers = sum(map(converted, group))
        rates[name] = buyers / len(group)
        table.append([buyers, len(group) - buyers])

    # THEN email converts best and social worst, clearly enough for a chi-square test
    assert abs(rates["email"] - 0.322) < 0.06
    assert abs(rates["google"] - 0.161) < 0.05
    assert abs(rates["social"] - 0.0644) < 0.04
    assert chi_square(table) > CHI_SQUARE_CRITICAL_P001_DF2


def test_planted_constants_are_consistent() -> None:
    assert math.isclose(sum(p.DEVICE_MIX.values()), 1.0)
    assert math.isclose(sum(p.SOURCE_MIX.values()), 1.0)
    assert math.isclose(sum(p.BOT_DEVICE_MIX.values()), 1.0)
    assert set(p.SOURCE_MIX) == set(p.CLASSIC_TRAFFIC_SOURCES) == set(p.CHECKOUT_LIFT_BY_SOURCE)
    assert set(p.DEVICE_MIX) == set(DEVICES) == set(p.CHECKOUT_RATE_BY_DEVICE)
    lift = sum(p.SOURCE_MIX[s] * p.CHECKOUT_LIFT_BY_SOURCE[s] for s in p.SOURCE_MIX)
    assert math.isclose(lift, 1.0)
    assert (
        max(p.CHECKOUT_RATE_BY_DEVICE.values()) * max(p.CHECKOUT_LIFT_BY_SOURCE.values())
        <= p.DETAIL_REACH
    )
    assert p.THINK_TIME_MAX_SECONDS < p.SESSION_TIMEOUT_SECONDS
    assert p.THINK_TIME_MIN_SECONDS > p.BOT_GAP_MAX_SECONDS
    assert 5 < expected_events_per_session() < 5.3
