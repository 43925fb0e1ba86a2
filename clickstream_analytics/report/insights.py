"""The report's findings, computed from the numbers alone: tests, effect sizes and their text.

Pure functions, no I/O. Every sentence is built from the counts it is given, so the same code
says "no real difference" on uniform data and names the groups that differ on data that differs.

Conversion insights test a ``group x (reached checkout, did not)`` contingency table of gap
sessions with Pearson's chi-square test of independence:

- groups with fewer than :data:`MIN_GROUP_SESSIONS` sessions are left out of the test;
- the test runs only when Cochran's rule holds (every expected count at least 1, at most 20 % of
  them below 5), otherwise there is "not enough data";
- a difference is **real** when ``p < ALPHA`` and Cramér's V reaches :data:`MIN_EFFECT_SIZE`;
  significant but smaller is **negligible**; otherwise there is **no real difference**.

The effect is stated as the ratio and the difference between the best and the worst group's
rates, with a 95 % Wald interval for the difference; each group's rate has a 95 % Wilson interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from scipy.stats import chi2_contingency, chisquare

ALPHA = 0.01
"""Significance level. Many sessions make small p-values easy, so 1 % rather than 5 %."""

MIN_EFFECT_SIZE = 0.1
"""Smallest Cramér's V (or Cohen's w) worth reporting: Cohen's "small" effect."""

MIN_GROUP_SESSIONS = 20
"""A group needs this many sessions to take part in a test."""

MIN_EXPECTED_COUNT = 5.0
"""Cochran's rule: at most 20 % of the expected counts below this, and none below 1."""

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""


class Verdict(StrEnum):
    """What a test says about a difference between groups."""

    REAL = "real difference"
    NEGLIGIBLE = "negligible difference"
    NONE = "no real difference"
    NOT_ENOUGH_DATA = "not enough data"


@dataclass(frozen=True)
class GroupRate:
    """Sessions of one group (a device, a traffic source) and how many reached checkout."""

    name: str
    sessions: int
    checkouts: int

    @property
    def rate(self) -> float:
        """Share of the group's sessions that reached checkout (0 for no sessions)."""
        return self.checkouts / self.sessions if self.sessions else 0.0

    def interval(self) -> tuple[float, float]:
        """95 % Wilson score interval of the rate."""
        return wilson_interval(self.checkouts, self.sessions)


@dataclass(frozen=True)
class TestResult:
    """Pearson's chi-square test of a contingency table, with Cramér's V."""

    chi2: float
    dof: int
    p_value: float
    cramers_v: float
    sessions: int


@dataclass(frozen=True)
class ConversionInsight:
    """Checkout conversion compared across the groups of one dimension."""

    dimension: str
    """Singular name of the dimension, e.g. ``device`` or ``traffic source``."""
    groups: tuple[GroupRate, ...]
    """Every group, highest rate first."""
    tested: tuple[GroupRate, ...]
    """The groups with enough sessions to take part in the test, highest rate first."""
    verdict: Verdict
    test: TestResult | None
    title: str
    """A chart title that states the finding."""
    analysis: str
    """Two or three sentences for the report, from the numbers."""

    @property
    def best(self) -> GroupRate | None:
        """The tested group with the highest rate."""
        return self.tested[0] if self.tested else None

    @property
    def worst(self) -> GroupRate | None:
        """The tested group with the lowest rate."""
        return self.tested[-1] if self.tested else None


@dataclass(frozen=True)
class ShareFinding:
    """How accesses split across categories, tested against an even split."""

    verdict: Verdict
    title: str
    chi2: float | None
    p_value: float | None
    cohens_w: float | None


# --------------------------------------------------------------------------- statistics
def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95 % Wilson score interval of ``successes / trials``; (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + Z_95**2 / trials
    centre = (rate + Z_95**2 / (2 * trials)) / denominator
    half = Z_95 * math.sqrt(rate * (1 - rate) / trials + Z_95**2 / (4 * trials**2)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return min(low, rate), max(high, rate)


def rate_difference_interval(best: GroupRate, worst: GroupRate) -> tuple[float, float]:
    """95 % Wald interval of ``best.rate - worst.rate`` (independent samples)."""
    spread = math.sqrt(
        best.rate * (1 - best.rate) / best.sessions + worst.rate * (1 - worst.rate) / worst.sessions
    )
    difference = best.rate - worst.rate
    return difference - Z_95 * spread, difference + Z_95 * spread


def cochran_rule_holds(expected: Sequence[Sequence[float]]) -> bool:
    """Every expected count at least 1 and at most 20 % of them below 5."""
    cells = [value for row in expected for value in row]
    small = sum(1 for value in cells if value < MIN_EXPECTED_COUNT)
    return min(cells) >= 1 and small <= 0.2 * len(cells)


def independence_test(groups: Sequence[GroupRate]) -> TestResult | None:
    """Chi-square test of ``group x reached checkout``; None when Cochran's rule fails."""
    table = [[group.checkouts, group.sessions - group.checkouts] for group in groups]
    checkouts = sum(row[0] for row in table)
    sessions = sum(group.sessions for group in groups)
    if len(groups) < 2 or checkouts in (0, sessions):
        return None
    chi2, p_value, dof, expected = chi2_contingency(table, correction=False)
    if not cochran_rule_holds(expected.tolist()):
        return None
    cramers_v = math.sqrt(chi2 / sessions)  # min(rows, columns) - 1 = 1 for two columns
    return TestResult(float(chi2), int(dof), float(p_value), cramers_v, sessions)


def verdict_of(p_value: float, effect_size: float) -> Verdict:
    """Real when significant at ALPHA and at least MIN_EFFECT_SIZE; negligible when smaller."""
    if p_value >= ALPHA:
        return Verdict.NONE
    return Verdict.REAL if effect_size >= MIN_EFFECT_SIZE else Verdict.NEGLIGIBLE


# --------------------------------------------------------------------------- formatting
def percent(share: float) -> str:
    """A share as a percentage: one decimal below 10 %, none above, e.g. ``6.4%``, ``32%``."""
    value = share * 100
    if value != 0 and abs(value) < 10:
        return f"{value:.1f}%"
    return f"{value:.0f}%"


def points(difference: float) -> str:
    """A difference of shares in percentage points, one decimal."""
    return f"{difference * 100:.1f}"


def p_text(p_value: float) -> str:
    """``p < 0.001`` or ``p = 0.48`` (two significant digits)."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.2g}"


def statistics_text(test: TestResult) -> str:
    """``χ² = 96.1, df = 2, p < 0.001, Cramér's V = 0.18, n = 3,048 sessions``."""
    return (
        f"χ² = {test.chi2:.1f}, df = {test.dof}, {p_text(test.p_value)}, "
        f"Cramér's V = {test.cramers_v:.2f}, n = {test.sessions:,} sessions"
    )


def plural(dimension: str) -> str:
    """``device`` -> ``devices``, ``traffic source`` -> ``traffic sources``."""
    return dimension + ("es" if dimension.endswith(("s", "x")) else "s")


# --------------------------------------------------------------------------- conversion
def conversion_insight(
    dimension: str, preposition: str, groups: Sequence[GroupRate]
) -> ConversionInsight:
    """Compare checkout conversion across ``groups`` (e.g. "sessions *from* google")."""
    ordered = tuple(sorted(groups, key=lambda g: (-g.rate, -g.sessions, g.name)))
    tested = tuple(group for group in ordered if group.sessions >= MIN_GROUP_SESSIONS)
    test = independence_test(tested)
    if test is None:
        return ConversionInsight(
            dimension,
            ordered,
            tested,
            Verdict.NOT_ENOUGH_DATA,
            None,
            f"Checkout rate by {dimension}: not enough data to test",
            _not_enough_text(dimension, ordered, tested),
        )
    verdict = verdict_of(test.p_value, test.cramers_v)
    best, worst = tested[0], tested[-1]
    left_out = _left_out_text(ordered, tested)
    if verdict is Verdict.REAL:
        title = _real_title(preposition, best, worst)
        analysis = f"{_real_text(dimension, preposition, tested, test)}{left_out}"
    elif verdict is Verdict.NEGLIGIBLE:
        title = f"Checkout rate by {dimension}: a detectable but negligible difference"
        analysis = (
            f"The checkout rate differs by {dimension} beyond chance, but the effect is"
            f" negligible (Cramér's V = {test.cramers_v:.2f}, below {MIN_EFFECT_SIZE:.2f}):"
            f" from {percent(worst.rate)} ({worst.name}) to {percent(best.rate)} ({best.name})"
            f" ({statistics_text(test)}).{left_out}"
        )
    else:
        title = f"No real difference in checkout rate by {dimension}"
        analysis = (
            f"No real difference: the checkout rate ranges from {percent(worst.rate)}"
            f" ({worst.name}) to {percent(best.rate)} ({best.name}) across {len(tested)}"
            f" {plural(dimension)}, a spread chance can explain (not significant at"
            f" α = {ALPHA}: {statistics_text(test)}). The data show no {dimension} converting"
            f" better than another.{left_out}"
        )
    return ConversionInsight(dimension, ordered, tested, verdict, test, title, analysis)


def _real_title(preposition: str, best: GroupRate, worst: GroupRate) -> str:
    if worst.checkouts == 0:
        return (
            f"{percent(best.rate)} of sessions {preposition} {best.name} reach checkout;"
            f" none {preposition} {worst.name} do"
        )
    ratio = best.rate / worst.rate
    return (
        f"Sessions {preposition} {best.name} reach checkout {ratio:.1f}× as often"
        f" as sessions {preposition} {worst.name}"
    )


def _real_text(
    dimension: str, preposition: str, tested: Sequence[GroupRate], test: TestResult
) -> str:
    best, worst = tested[0], tested[-1]
    low, high = rate_difference_interval(best, worst)
    if worst.checkouts == 0:
        comparison = (
            f"{percent(best.rate)} of sessions {preposition} {best.name} reach checkout,"
            f" none of the {worst.sessions:,} {preposition} {worst.name}"
        )
    else:
        comparison = (
            f"Sessions {preposition} {best.name} reach checkout"
            f" {best.rate / worst.rate:.1f}× as often as sessions {preposition} {worst.name}"
            f" ({percent(best.rate)} vs {percent(worst.rate)})"
        )
    return (
        f"{comparison}: a gap of {points(best.rate - worst.rate)} percentage points"
        f" (95% CI {points(low)} to {points(high)})."
        f" Across the {len(tested)} {plural(dimension)} the difference is real:"
        f" {statistics_text(test)}."
    )


def _left_out_text(groups: Sequence[GroupRate], tested: Sequence[GroupRate]) -> str:
    small = [group.name for group in groups if group not in tested]
    if not small:
        return ""
    return (
        f" Left out of the test, with fewer than {MIN_GROUP_SESSIONS} sessions: {', '.join(small)}."
    )


def _not_enough_text(
    dimension: str, groups: Sequence[GroupRate], tested: Sequence[GroupRate]
) -> str:
    sessions = sum(group.sessions for group in groups)
    checkouts = sum(group.checkouts for group in groups)
    reason = (
        f"{sessions:,} gap sessions, {checkouts:,} of them reached checkout, and"
        f" {len(tested)} {plural(dimension)} have at least {MIN_GROUP_SESSIONS} sessions"
    )
    return (
        f"Not enough data to test checkout conversion by {dimension}: {reason}. A chi-square"
        f" test needs two or more groups of {MIN_GROUP_SESSIONS} sessions, some sessions that"
        " reach checkout and some that do not, and expected counts of"
        f" {MIN_EXPECTED_COUNT:.0f} or more."
    )


# --------------------------------------------------------------------------- descriptive titles
def share_finding(counts: Sequence[tuple[str, int]], noun: str) -> ShareFinding:
    """Test ``counts`` against an even split (chi-square goodness of fit, Cohen's w); a title.

    ``noun`` names the categories, e.g. ``device``.
    """
    ordered = sorted(counts, key=lambda item: (-item[1], item[0]))
    total = sum(count for _, count in ordered)
    if total == 0:
        return ShareFinding(Verdict.NOT_ENOUGH_DATA, "No accesses yet", None, None, None)
    if len(ordered) == 1:
        title = f"Every access comes from {ordered[0][0]}"
        return ShareFinding(Verdict.NOT_ENOUGH_DATA, title, None, None, None)
    chi2, p_value = chisquare([count for _, count in ordered])
    cohens_w = math.sqrt(float(chi2) / total)
    expected = total / len(ordered)
    verdict = (
        verdict_of(float(p_value), cohens_w) if expected >= MIN_EXPECTED_COUNT else Verdict.NONE
    )
    shares = [(name, count / total) for name, count in ordered]
    if verdict is Verdict.REAL:
        (top, top_share), *rest = shares
        others = ", ".join(f"{name} {percent(share)}" for name, share in rest[:3])
        title = f"{top} brings the most accesses ({percent(top_share)}); then {others}"
    else:
        low, high = percent(shares[-1][1]), percent(shares[0][1])
        spread = low if low == high else f"{low}–{high}"
        title = f"Accesses split about evenly across the {len(shares)} {plural(noun)} ({spread})"
        if expected < MIN_EXPECTED_COUNT:
            title = f"Too few accesses to compare {plural(noun)} ({total:,} in all)"
    return ShareFinding(verdict, title, float(chi2), float(p_value), cohens_w)


def heatmap_title(cells: Sequence[tuple[str, str, int]]) -> str:
    """Names the busiest (trafficfrom, url) cell and its share of all accesses."""
    total = sum(count for _, _, count in cells)
    if total == 0:
        return "No accesses yet"
    source, url, count = min(cells, key=lambda cell: (-cell[2], cell[0], cell[1]))
    return (
        f"Busiest source and page: {source} → {url}, {count:,} accesses"
        f" ({percent(count / total)} of all)"
    )


def top_products_title(top: Sequence[tuple[int, int]], product_views: int) -> str:
    """How much of all product views the listed products draw, and the first one alone."""
    if not top or product_views == 0:
        return "No product views yet"
    listed = sum(count for _, count in top)
    first_product, first_count = top[0]
    return (
        f"The top {len(top)} products draw {percent(listed / product_views)} of product views;"
        f" product {first_product} alone {percent(first_count / product_views)}"
    )
