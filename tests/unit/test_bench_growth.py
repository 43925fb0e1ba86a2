"""The growth benchmark's figures: sizes in keys, µs per event, ratios, marginal cost, /proc."""

from __future__ import annotations

import os

import pytest

from bench.bench_growth import (
    Mark,
    glue_figures,
    growth_figures,
    size_label,
    stat_fields,
    tree_cpu_seconds,
)


def test_sizes_are_named_in_thousands_or_millions() -> None:
    # GIVEN counts of events WHEN named THEN round thousands and millions are short
    assert [size_label(n) for n in (10_000, 100_000, 1_000_000, 5_000_000, 2_500)] == [
        "10k",
        "100k",
        "1m",
        "5m",
        "2500",
    ]


def test_consumer_figures_per_size_ratio_marginal_and_per_batch() -> None:
    # GIVEN cumulative times after 10k and 100k events
    marks = [Mark(10_000, 1.0, 2.0), Mark(100_000, 12.0, 30.0)]

    # WHEN turned into figures, the CPU per batch of 500 taken at 100k
    figures = growth_figures("window_counter", marks, 500, 100_000)

    # THEN µs per event, the ratio to 10k, the cost of the 90k events in between, per batch
    assert figures == pytest.approx(
        {
            "window_counter_cpu_us_per_event_10k": 100.0,
            "window_counter_wall_us_per_event_10k": 200.0,
            "window_counter_cpu_us_per_event_100k": 120.0,
            "window_counter_wall_us_per_event_100k": 300.0,
            "window_counter_cpu_us_per_event_100k_vs_10k_ratio": 1.2,
            "window_counter_wall_us_per_event_100k_vs_10k_ratio": 1.5,
            "window_counter_cpu_us_per_event_from_10k_to_100k": 11.0 / 90_000 * 1e6,
            "window_counter_cpu_seconds_per_batch_500": 12.0 / 200,
        }
    )


def test_consumer_figures_need_increasing_sizes_and_the_per_batch_size() -> None:
    # GIVEN marks out of order, and marks without the size of the per-batch figure
    unordered = [Mark(100_000, 12.0, 30.0), Mark(10_000, 1.0, 2.0)]
    ordered = list(reversed(unordered))

    # WHEN turned into figures THEN each is refused
    with pytest.raises(ValueError, match="increasing"):
        growth_figures("sessionizer", unordered, 500, 100_000)
    with pytest.raises(ValueError, match="1000000"):
        growth_figures("sessionizer", ordered, 500, 1_000_000)


def test_glue_figures_per_row_count_with_ratios_to_the_first() -> None:
    # GIVEN the job's CPU and wall seconds at 100k and 1m rows, and its own seconds
    marks = [Mark(100_000, 20.0, 10.0), Mark(1_000_000, 150.0, 40.0)]

    # WHEN turned into figures
    figures = glue_figures(marks, {100_000: 9.5, 1_000_000: 39.0})

    # THEN rows/s and µs per row from the wall time, CPU µs per row, and both ratios
    assert figures == pytest.approx(
        {
            "glue_events_us_per_row_100k": 100.0,
            "glue_events_cpu_us_per_row_100k": 200.0,
            "glue_events_rows_per_second_100k": 10_000.0,
            "glue_events_wall_seconds_100k": 10.0,
            "glue_events_job_seconds_100k": 9.5,
            "glue_events_us_per_row_1m": 40.0,
            "glue_events_cpu_us_per_row_1m": 150.0,
            "glue_events_rows_per_second_1m": 25_000.0,
            "glue_events_wall_seconds_1m": 40.0,
            "glue_events_job_seconds_1m": 39.0,
            "glue_events_us_per_row_1m_vs_100k_ratio": 0.4,
            "glue_events_cpu_us_per_row_1m_vs_100k_ratio": 0.75,
        }
    )


def test_a_proc_stat_line_gives_the_parent_and_the_cpu_ticks() -> None:
    # GIVEN a /proc/<pid>/stat line whose process name holds spaces and parentheses
    stat = "4242 (odd) name) S 17 4242 4242 0 -1 4194560 10 0 0 0 5 3 2 1 20 0 1 0 9 0 0"

    # WHEN read THEN the parent pid and utime + stime + cutime + cstime
    assert stat_fields(stat) == (17, 5 + 3 + 2 + 1)


def test_the_process_tree_counts_this_process_unless_excluded() -> None:
    # GIVEN the CPU this process has used so far
    used = sum(os.times()[:2])

    # WHEN its tree is read THEN it counts at least that; excluded, nothing
    assert tree_cpu_seconds(os.getpid(), excluded=-1) >= used - 1 / os.sysconf("SC_CLK_TCK")
    assert tree_cpu_seconds(os.getpid(), excluded=os.getpid()) == 0.0
