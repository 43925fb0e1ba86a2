"""What the command modules share: progress lines, ``KEY=VALUE`` options, the stack to read."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from clickstream.generator import SendReport
from clickstream_analytics.deployed import DeployedStack
from clickstream_analytics.engines import SparkFactory
from clickstream_analytics.stack import Stack
from clickstream_local.stack import LocalStack, StackState, project_root, state_home


class Progress:
    """One self-overwriting line on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr, every: float = 5.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self._last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` now on a terminal, or if ``every`` seconds passed (or ``force``)."""
        now = time.monotonic()
        if self.tty:
            self.out.write(f"\r\033[K{text}")
            self.out.flush()
        elif force or now - self._last >= self.every:
            self.out.write(text + "\n")
            self.out.flush()
            self._last = now

    def done(self) -> None:
        """End the progress line."""
        if self.tty:
            self.out.write("\n")


def report_progress(progress: Progress, total: int | None) -> Callable[[SendReport], None]:
    """A generator callback showing events sent and accepted."""

    def show(report: SendReport) -> None:
        goal = f" of ~{total:,}" if total else ""
        progress.show(f"sent {report.sent:,}{goal} events, {report.accepted:,} accepted")

    return show


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as a pair (an argparse type)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def local_spark(state: StackState, home: Path) -> Any:
    """A local SparkSession on the stack's S3 with the stack's Hive metastore.

    The JVM's warnings go to ``logs/spark.log`` under ``home``, not to the terminal.
    """
    from clickstream_local.spark import local_spark_session

    return local_spark_session(
        state.endpoint_url,
        metastore_dir=home / "metastore",
        app_name="query",
        log_file=home / "logs" / "spark.log",
    )


@dataclass(frozen=True)
class ReadTarget:
    """The stack a read command reads, and where its caches and outputs go."""

    stack: Stack
    home: Path
    """``.local/`` for the local stack; ``.local/stacks/<region>/<name>/`` for a deployed one."""
    spark: SparkFactory | None
    """Spark SQL over the local metastore; None on a deployed stack."""

    @property
    def local(self) -> bool:
        """True for the local stack."""
        return self.spark is not None


def read_target(arguments: argparse.Namespace) -> ReadTarget:
    """``--stack NAME [--region R] [--endpoint-url URL]``, else the running local stack."""
    if arguments.stack is None:
        local = LocalStack()
        state = local.running()
        return ReadTarget(state, local.home, lambda: local_spark(state, local.home))
    stack = DeployedStack.connect(
        arguments.stack,
        project_root() / "sql",
        region=arguments.region,
        endpoint_url=arguments.endpoint_url,
    )
    return ReadTarget(stack, state_home() / "stacks" / stack.region / stack.stack_name, None)


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """The global options that point the read commands at a deployed stack."""
    group = parser.add_argument_group(
        "deployed stack",
        "report, query, windows, sessions and summary read a deployed stack with these, through"
        " the same S3, DynamoDB and Glue calls, and redrive invokes its functions; without"
        " --stack they work on the local stack",
    )
    group.add_argument("--stack", metavar="NAME", help="CloudFormation stack name (sam deploy's)")
    group.add_argument("--region", help="the stack's region (default: the AWS configuration's)")
    group.add_argument(
        "--endpoint-url", metavar="URL", help="AWS endpoint (an emulator), for every service"
    )
