"""The analytics report: accesses by device, source × page heat map, top products, insights.

Entry points: :func:`clickstream_analytics.report.stack_report.write_report` (a stack's curated
layer) and :func:`clickstream_analytics.report.build.build_report` (any DuckDB connection with the
curated tables). Only ``build``, ``charts`` and ``insights`` load matplotlib and scipy, so the CLI
imports them when a report is built, not at start-up.
"""
