"""``clickstream demo`` (make run): up if needed, traffic, drain, the lake, the report."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from clickstream.adapters.aws.checkpoints import DynamoCheckpointStore
from clickstream.consumers.window_counter import CONSUMER as WINDOW_CONSUMER
from clickstream.core.windows import END_OF_STREAM
from clickstream_analytics.engines import named_query, run_statement
from clickstream_analytics.lake import reconcile_lake
from clickstream_analytics.queries import save_result
from clickstream_analytics.readers import search_stage
from clickstream_analytics.reconcile import lake_event_ids, reconcile, stream_event_ids
from clickstream_analytics.report.stack_report import write_report
from clickstream_cli.common import local_spark
from clickstream_cli.lake import print_curate_reports
from clickstream_cli.report import print_report_summary
from clickstream_cli.stack_commands import cmd_local_up
from clickstream_cli.traffic import (
    add_generator_options,
    drain,
    generated_event_ids,
    generator_config,
    send_generated,
    stream_of,
)
from clickstream_local.stack import LocalStack, StackError, StackState


def cmd_demo(arguments: argparse.Namespace) -> int:
    """Generate, drain, reconcile; then end the stream, curate, reconcile the lake, report."""
    stack = LocalStack()
    if stack.load() is not None and _is_running(stack) and _stream_ended(stack.running()):
        # A stream that was ended counts every later event as late: start a fresh one.
        print("the running stack's stream was ended; restarting it (the lake is kept)")
        stack.down(keep_lake=True)
    if stack.load() is None or not _is_running(stack):
        cmd_local_up(argparse.Namespace(param=[], brief=True))
    state = stack.running()
    stream, stream_name = stream_of(state)
    now = datetime.now(UTC)
    config = generator_config(arguments, stream_name, now)
    report = send_generated(config, stream, now)
    drain(arguments.timeout)
    sent_ids = generated_event_ids(config, now)
    result = reconcile(
        sent_ids,
        report.accepted,
        stream_event_ids(state.client("kinesis"), stream_name),
        lake_event_ids(state.client("s3"), state.physical_id("RawBucket"), "rawdata/"),
        **search_stage(state.search_client(), sent_ids),
    )
    print(f"\nsummary of this run ({config.profile}, seed {config.seed}):")
    print("\n".join(result.lines()))
    lake_ok = _demo_lake(stack, state, arguments.timeout, config.profile)
    if state.opensearch_url:
        print(f"\nLive dashboard (unique visitors over time): {state.control_url}/dashboard")
    print(
        f"The local stack keeps running at {state.endpoint_url} "
        "(`clickstream local status`; stop it with `make down`)."
    )
    return 0 if result.ok and lake_ok else 1


def _demo_lake(stack: LocalStack, state: StackState, timeout: float, profile: str) -> bool:
    """End the stream, curate the lake, reconcile it, save task 1's top 10, build the report.

    True when the lake reconciles exactly.
    """
    print("\nending the stream (every window and session closes), then curating the lake:")
    drain(timeout, close_windows=True)
    drain(timeout)
    print_curate_reports(stack.run_glue())
    lines, ok = reconcile_lake(state, stack.home / "duckdb")
    print("\n".join(lines))
    top = run_statement(
        state,
        named_query(state, "top_products"),
        "spark",
        cache=stack.home / "duckdb",
        spark=lambda: local_spark(state, stack.home),
        curated_only=True,
    )
    files = save_result(top, "top_products", stack.home / "results")
    print("\ntask 1, the most searched products (sql/top_products.sql on Spark SQL):")
    print(top.to_markdown(10))
    print(f"saved: {', '.join(str(path) for path in files)}")
    print("\nanalytics report (tasks 3.1-3.3):")
    built = write_report(state, stack.home / "duckdb", stack.home / "report", profile)
    print_report_summary(built)
    return ok


def _stream_ended(state: StackState) -> bool:
    """True when a consumer's shard was closed for good (``drain --close-windows``, a demo)."""
    if not state.has_resource("WindowStateTable"):
        return False
    table = state.physical_id("WindowStateTable")
    checkpoints = DynamoCheckpointStore(state.client("dynamodb"), table).all(WINDOW_CONSUMER)
    return any(checkpoint.watermark == END_OF_STREAM for checkpoint in checkpoints)


def _is_running(stack: LocalStack) -> bool:
    try:
        stack.running()
    except StackError:
        return False
    return True


def add_commands(commands: Any) -> None:
    """Register ``demo``."""
    demo = commands.add_parser(
        "demo",
        help="up if needed, generate, drain, curate, reconcile, save task 1's top 10, build the"
        " report (make run)",
    )
    add_generator_options(demo, rate=20, duration=60)
    demo.add_argument("--timeout", type=float, default=300, help="drain timeout in seconds")
    demo.set_defaults(handler=cmd_demo)
