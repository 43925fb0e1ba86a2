"""The read side: what a user reads of a stack, local or deployed.

Queries over the catalog's tables (Spark SQL over a metastore, DuckDB over the lake read through
the S3 API, Athena), the analytics report, the live page's data, the window, session and summary
readers and the lake's reconciliation. Everything here talks to a :class:`~.stack.Stack`: the
local stack (``clickstream_local``) or a deployed one found by its CloudFormation name
(:mod:`.deployed`). Nothing here imports ``clickstream_local``.
"""
