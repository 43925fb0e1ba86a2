"""The analytics report: accesses by device, source × page heat map, top products, insights.

Entry point: :func:`clickstream_local.report.build.build_report`; the ``clickstream report``
command is in :mod:`clickstream_local.report.cli`. Only ``build``, ``charts`` and ``insights``
load matplotlib and scipy, so the CLI imports them when a report is built, not at start-up.
"""
