"""Deterministic synthetic clickstream: the ``classic`` and ``realistic`` profiles.

:func:`generate` yields :class:`~clickstream.core.events.Event` objects in non-decreasing event
time. Everything, ``event_id`` included, comes from one ``random.Random(seed)``: the same arguments
always give the same events.

``classic`` reproduces the public challenge's generator: every field is drawn independently and
uniformly from the lists below, and events are evenly spaced ``1/rate`` seconds apart.

``realistic`` simulates sessions. Sessions arrive as a Poisson process whose rate is
``rate / expected_events_per_session()``, so the long-run mean is ``rate`` events per second.
The simulation starts :data:`WARMUP_SECONDS` before ``start`` and drops earlier events, so the
rate is steady from the first second; sessions already under way at ``start`` (or still under
way when generation stops) appear cut.

A human session keeps one ``custid``, ``device`` and ``trafficfrom``. It opens on
``beer_vitrine_nav`` (touchproduct 0), then may view one or more ``beer_product_detail`` pages
(Zipf-popular products), put the last viewed product in ``beer_cart`` and reach
``beer_checkout`` with it, dropping out at each step. Think times between pages are
``3 s + Exp(mean 17 s)`` (mean 20 s), capped at 600 s.

Planted effects (the constants below; an analytics report can state and test them):

(a) Conversion. A human session reaches checkout with probability
    ``CHECKOUT_RATE_BY_DEVICE[device] * CHECKOUT_LIFT_BY_SOURCE[trafficfrom]``
    (:func:`human_checkout_probability`). Device and source are drawn independently and the
    lifts average exactly 1 under :data:`SOURCE_MIX`, so among human sessions:

    - by device: browser 30%, app_tablet 18%, app_mobile 8%;
    - overall: 16.1%; by source: 16.1% times the lift, i.e. email_CampanhaBeer and
      email_MyFirstBeer 32.2%, google, amazon.com and Alexa 16.1%, BeerHug_TV and
      Jao_Cervejeiro 12.88%, facebook.com and twitter.com 6.44%.

(b) Mixes. Human sessions use :data:`DEVICE_MIX` (app_mobile 55%, browser 30%, app_tablet 15%)
    and :data:`SOURCE_MIX` (google 26%, facebook.com 14%, amazon.com 14%, email_CampanhaBeer
    10%, twitter.com 8%, Alexa 8%, BeerHug_TV 8%, email_MyFirstBeer 6%, Jao_Cervejeiro 6%).

(c) Bots. :data:`BOT_SESSION_SHARE` (10%) of sessions are bots: ``trafficfrom`` "google",
    device browser (90%) or app_mobile (10%), 8 to 24 pages 0.2 to 2 s apart, only
    vitrine_nav (30%) and product_detail (70%, products uniform, not Zipf), never cart or
    checkout. Bots make about 31% of the events. Human gaps are at least 3 s, so a session whose
    gaps are all at most 2 s is a bot.

Counting all sessions, bots included, browser converts at 22.5% and google at 11.3%.

Sessions per ``(custid, device)`` match 30-minute inactivity sessions exactly: no session has an
internal gap over 600 s, and a customer starts a new session on a device only more than
30 minutes (plus one second) after their previous session on that device ended. Sessions are
not continued across separate calls of :func:`generate`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clickstream.core.events import DEVICES, Event

PROFILES: tuple[str, ...] = ("classic", "realistic")

URL_VITRINE = "beer_vitrine_nav"
URL_DETAIL = "beer_product_detail"
URL_CART = "beer_cart"
URL_CHECKOUT = "beer_checkout"
FUNNEL: tuple[str, ...] = (URL_VITRINE, URL_DETAIL, URL_CART, URL_CHECKOUT)
"""The funnel steps, in order. Human sessions visit them in this order."""

PRODUCT_COUNT = 250
"""Products are numbered 1..250; touchproduct 0 means the page shows no product."""

# --- classic --------------------------------------------------------------------------------

CLASSIC_TRAFFIC_SOURCES: tuple[str, ...] = (
    "amazon.com",
    "facebook.com",
    "twitter.com",
    "amazon.com",
    "google",
    "email_CampanhaBeer",
    "email_MyFirstBeer",
    "Alexa",
    "BeerHug_TV",
    "Alexa",
    "Jao_Cervejeiro",
)
"""Drawn uniformly; amazon.com and Alexa appear twice on purpose, as in the original."""

CLASSIC_URLS: tuple[str, ...] = (
    URL_VITRINE,
    URL_DETAIL,
    URL_VITRINE,
    URL_CHECKOUT,
    URL_DETAIL,
    URL_CART,
)
"""Drawn uniformly; vitrine_nav and product_detail appear twice on purpose."""

CLASSIC_DEVICES: tuple[str, ...] = DEVICES
CLASSIC_CUSTOMER_POOL = 100
"""classic customer ids are uniform in 1..100."""

# --- realistic ------------------------------------------------------------------------------

CUSTOMER_POOL = 5000
"""realistic customer ids are drawn from 1..5000 (rarely above, see :class:`_Customers`)."""

RETURNING_CUSTOMER_SHARE = 0.3
"""Share of sessions whose customer is drawn again among those already seen."""

DEVICE_MIX: dict[str, float] = {"app_mobile": 0.55, "browser": 0.30, "app_tablet": 0.15}
"""Device of a human session (planted effect b)."""

SOURCE_MIX: dict[str, float] = {
    "google": 0.26,
    "facebook.com": 0.14,
    "amazon.com": 0.14,
    "email_CampanhaBeer": 0.10,
    "twitter.com": 0.08,
    "Alexa": 0.08,
    "BeerHug_TV": 0.08,
    "email_MyFirstBeer": 0.06,
    "Jao_Cervejeiro": 0.06,
}
"""Traffic source of a human session (planted effect b)."""

CHECKOUT_RATE_BY_DEVICE: dict[str, float] = {
    "browser": 0.30,
    "app_tablet": 0.18,
    "app_mobile": 0.08,
}
"""Probability that a human session on this device reaches checkout (planted effect a)."""

CHECKOUT_LIFT_BY_SOURCE: dict[str, float] = {
    "email_CampanhaBeer": 2.0,
    "email_MyFirstBeer": 2.0,
    "google": 1.0,
    "amazon.com": 1.0,
    "Alexa": 1.0,
    "BeerHug_TV": 0.8,
    "Jao_Cervejeiro": 0.8,
    "facebook.com": 0.4,
    "twitter.com": 0.4,
}
"""Multiplies the device's checkout rate; averages exactly 1 under SOURCE_MIX (effect a)."""

DETAIL_REACH = 0.85
"""Probability that a human session goes on from vitrine_nav to a product_detail page."""

MORE_DETAIL_PROBABILITY = 0.65
"""After each product_detail page, probability of viewing another one (mean 1/0.35 pages)."""

THINK_TIME_MIN_SECONDS = 3.0
THINK_TIME_MEAN_SECONDS = 20.0
THINK_TIME_MAX_SECONDS = 600.0
"""Human think time: ``min(3 + Exp(mean 17), 600)`` seconds."""

ZIPF_EXPONENT = 1.0
"""Product ``k`` is viewed with weight ``1 / k**ZIPF_EXPONENT``: product 1 is the most popular."""

BOT_SESSION_SHARE = 0.10
"""Share of sessions that are bots (planted effect c)."""

BOT_TRAFFIC_SOURCE = "google"
BOT_DEVICE_MIX: dict[str, float] = {"browser": 0.9, "app_mobile": 0.1}
BOT_PAGES_MIN = 8
BOT_PAGES_MAX = 24
BOT_DETAIL_PROBABILITY = 0.7
"""Each bot page after the first is product_detail with this probability, else vitrine_nav."""

BOT_GAP_MIN_SECONDS = 0.2
BOT_GAP_MAX_SECONDS = 2.0

SESSION_TIMEOUT_SECONDS = 1800.0
"""Inactivity gap that ends a session; the generator never reuses (custid, device) sooner."""

WARMUP_SECONDS = 600.0
"""The realistic simulation starts this long before ``start`` so the rate is steady at once."""

_MAX_CUSTOMER_DRAWS = 20

# (offset seconds from start, custid, trafficfrom, url, device, touchproduct)
_Page = tuple[float, int, str, str, str, int]


def generate(
    profile: str,
    *,
    seed: int,
    start: datetime,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
) -> Iterator[Event]:
    """Yield events from ``start`` at a mean of ``rate`` per second of event time.

    Give exactly one of ``count`` (stop after that many events) or ``duration`` (yield the
    events whose time is in ``[start, start + duration)``). Raises ValueError on bad arguments.
    """
    _check_arguments(profile, seed, start, rate, count, duration)
    rng = random.Random(seed)
    pages = _classic(rng, rate) if profile == "classic" else _realistic(rng, rate)
    return _events(pages, rng, start.astimezone(UTC), count, duration)


def human_checkout_probability(device: str, trafficfrom: str) -> float:
    """Probability that a human session with this device and source reaches checkout."""
    return CHECKOUT_RATE_BY_DEVICE[device] * CHECKOUT_LIFT_BY_SOURCE[trafficfrom]


def expected_events_per_session() -> float:
    """Mean number of events of a realistic session (bots included), from the constants."""
    details = 1 / (1 - MORE_DETAIL_PROBABILITY)
    human = 0.0
    for device, device_share in DEVICE_MIX.items():
        for source, source_share in SOURCE_MIX.items():
            checkout = human_checkout_probability(device, source)
            cart = math.sqrt(DETAIL_REACH * checkout)
            pages = 1 + DETAIL_REACH * details + cart + checkout
            human += device_share * source_share * pages
    bot = (BOT_PAGES_MIN + BOT_PAGES_MAX) / 2
    return (1 - BOT_SESSION_SHARE) * human + BOT_SESSION_SHARE * bot


def _check_arguments(
    profile: str,
    seed: int,
    start: datetime,
    rate: float,
    count: int | None,
    duration: float | None,
) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be timezone-aware (UTC), got naive {start.isoformat()}")
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a positive number of events per second, got {rate!r}")
    if (count is None) == (duration is None):
        raise ValueError("give exactly one of count or duration")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if duration is not None and (not math.isfinite(duration) or duration < 0):
        raise ValueError(f"duration must be a non-negative number of seconds, got {duration!r}")


def _events(
    pages: Iterator[_Page],
    rng: random.Random,
    start: datetime,
    count: int | None,
    duration: float | None,
) -> Iterator[Event]:
    if count == 0:
        return
    for emitted, (offset, custid, trafficfrom, url, device, touchproduct) in enumerate(pages, 1):
        if duration is not None and offset >= duration:
            return
        yield Event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            custid=custid,
            trafficfrom=trafficfrom,
            url=url,
            device=device,
            touchproduct=touchproduct,
            trans_timestamp=start + timedelta(seconds=offset),
        )
        if emitted == count:
            return


# --- classic --------------------------------------------------------------------------------


def _classic(rng: random.Random, rate: float) -> Iterator[_Page]:
    for index in itertools.count():
        trafficfrom = rng.choice(CLASSIC_TRAFFIC_SOURCES)
        url = rng.choice(CLASSIC_URLS)
        device = rng.choice(CLASSIC_DEVICES)
        touchproduct = 0 if url == URL_VITRINE else rng.randint(1, PRODUCT_COUNT)
        custid = rng.randint(1, CLASSIC_CUSTOMER_POOL)
        yield index / rate, custid, trafficfrom, url, device, touchproduct


# --- realistic ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Session:
    custid: int
    device: str
    trafficfrom: str
    pages: list[tuple[float, str, int]]  # (offset, url, touchproduct)


class _Customers:
    """Picks session customers so that each (custid, device) session stands alone.

    A customer is reused on a device only more than 30 minutes after their previous session
    there ended. When 20 draws all collide (only at very high rates), the next id above the
    pool is used.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: list[int] = []
        self._known: set[int] = set()
        self._last_end: dict[tuple[int, str], float] = {}
        self._next_overflow = CUSTOMER_POOL + 1

    def pick(self, device: str, start: float) -> int:
        """A customer free to start a session on ``device`` at offset ``start``."""
        for _ in range(_MAX_CUSTOMER_DRAWS):
            if self._seen and self._rng.random() < RETURNING_CUSTOMER_SHARE:
                custid = self._rng.choice(self._seen)
            else:
                custid = self._rng.randint(1, CUSTOMER_POOL)
            if self._is_free(custid, device, start):
                break
        else:
            custid = self._next_overflow
            self._next_overflow += 1
        if custid not in self._known:
            self._known.add(custid)
            self._seen.append(custid)
        return custid

    def record_end(self, custid: int, device: str, end: float) -> None:
        """Remember when this customer's session on ``device`` ended."""
        self._last_end[(custid, device)] = end

    def _is_free(self, custid: int, device: str, start: float) -> bool:
        last_end = self._last_end.get((custid, device))
        return last_end is None or start - last_end > SESSION_TIMEOUT_SECONDS + 1.0


def _weighted(mix: dict[str, float]) -> Callable[[random.Random], str]:
    names = list(mix)
    cumulative = list(itertools.accumulate(mix.values()))
    return lambda rng: rng.choices(names, cum_weights=cumulative)[0]


_pick_device = _weighted(DEVICE_MIX)
_pick_source = _weighted(SOURCE_MIX)
_pick_bot_device = _weighted(BOT_DEVICE_MIX)
_PRODUCTS = list(range(1, PRODUCT_COUNT + 1))
_ZIPF_CUMULATIVE = list(itertools.accumulate(1 / k**ZIPF_EXPONENT for k in _PRODUCTS))


def _popular_product(rng: random.Random) -> int:
    return rng.choices(_PRODUCTS, cum_weights=_ZIPF_CUMULATIVE)[0]


def _think_time(rng: random.Random) -> float:
    extra = rng.expovariate(1 / (THINK_TIME_MEAN_SECONDS - THINK_TIME_MIN_SECONDS))
    return min(THINK_TIME_MIN_SECONDS + extra, THINK_TIME_MAX_SECONDS)


def _human_session(rng: random.Random, start: float, customers: _Customers) -> _Session:
    device = _pick_device(rng)
    trafficfrom = _pick_source(rng)
    custid = customers.pick(device, start)
    moment = start
    pages = [(moment, URL_VITRINE, 0)]
    if rng.random() < DETAIL_REACH:
        while True:
            moment += _think_time(rng)
            product = _popular_product(rng)
            pages.append((moment, URL_DETAIL, product))
            if rng.random() >= MORE_DETAIL_PROBABILITY:
                break
        # cart and checkout each pass with this probability, so checkout has the planted rate
        step = math.sqrt(human_checkout_probability(device, trafficfrom) / DETAIL_REACH)
        for url in (URL_CART, URL_CHECKOUT):
            if rng.random() >= step:
                break
            moment += _think_time(rng)
            pages.append((moment, url, product))
    customers.record_end(custid, device, moment)
    return _Session(custid, device, trafficfrom, pages)


def _bot_session(rng: random.Random, start: float, customers: _Customers) -> _Session:
    device = _pick_bot_device(rng)
    custid = customers.pick(device, start)
    moment = start
    pages = [(moment, URL_VITRINE, 0)]
    for _ in range(rng.randint(BOT_PAGES_MIN, BOT_PAGES_MAX) - 1):
        moment += rng.uniform(BOT_GAP_MIN_SECONDS, BOT_GAP_MAX_SECONDS)
        if rng.random() < BOT_DETAIL_PROBABILITY:
            pages.append((moment, URL_DETAIL, rng.randint(1, PRODUCT_COUNT)))
        else:
            pages.append((moment, URL_VITRINE, 0))
    customers.record_end(custid, device, moment)
    return _Session(custid, device, BOT_TRAFFIC_SOURCE, pages)


def _realistic(rng: random.Random, rate: float) -> Iterator[_Page]:
    """Endless pages at offsets >= 0, merged across concurrent sessions in time order."""
    session_rate = rate / expected_events_per_session()
    customers = _Customers(rng)
    order = itertools.count()  # breaks ties in time by creation order
    pending: list[tuple[float, int, _Session, str, int]] = []
    next_arrival = -WARMUP_SECONDS
    while True:
        # Sessions arriving later cannot have pages before next_arrival.
        while not pending or next_arrival <= pending[0][0]:
            is_bot = rng.random() < BOT_SESSION_SHARE
            make = _bot_session if is_bot else _human_session
            session = make(rng, next_arrival, customers)
            for offset, url, touchproduct in session.pages:
                heapq.heappush(pending, (offset, next(order), session, url, touchproduct))
            next_arrival += rng.expovariate(session_rate)
        offset, _, session, url, touchproduct = heapq.heappop(pending)
        if offset >= 0:
            yield offset, session.custid, session.trafficfrom, url, session.device, touchproduct
