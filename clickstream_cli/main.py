"""``clickstream``: run the pipeline locally, and read a stack's analytics, local or deployed.

Commands, one module each: ``local up|down|status`` (:mod:`.stack_commands`); ``generate``,
``replay``, ``invoke``, ``drain`` (:mod:`.traffic`); ``windows``, ``sessions``, ``summary``
(:mod:`.readers`); ``curate``, ``catalog``, ``query``, ``glue-docker`` (:mod:`.lake`);
``report`` (:mod:`.report`); ``redrive`` (:mod:`.redrive`); ``demo`` (:mod:`.demo`, what
``make run`` calls); ``cost`` (:mod:`.cost`, the monthly AWS cost at an event rate).

The read commands (``report``, ``query``, ``windows``, ``sessions``, ``summary``) and
``redrive`` work on a deployed stack with ``--stack NAME [--region R] [--endpoint-url URL]``,
and on the running local stack otherwise. Errors exit non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import BotoCoreError, ClientError

from clickstream_analytics.stack import AnalyticsError
from clickstream_cli import cost, demo, lake, readers, redrive, report, stack_commands, traffic
from clickstream_cli.common import add_stack_options
from clickstream_local.stack import StackError

READ_COMMANDS = frozenset({"report", "query", "windows", "sessions", "summary"})
"""The commands that read a stack."""
STACK_COMMANDS = READ_COMMANDS | {"redrive"}
"""The commands that take ``--stack``."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="clickstream",
        description="Run the clickstream analytics pipeline locally on a moto server, and read"
        " its analytics from the local stack or a deployed one.",
    )
    add_stack_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack_commands.add_commands(commands)
    traffic.add_commands(commands)
    readers.add_commands(commands)
    lake.add_commands(commands)
    report.add_commands(commands)
    redrive.add_commands(commands)
    demo.add_commands(commands)
    cost.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clickstream`` command."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.stack is None and (arguments.region or arguments.endpoint_url):
        parser.error("--region and --endpoint-url go with --stack NAME")
    if arguments.stack is not None and arguments.command not in STACK_COMMANDS:
        parser.error(f"--stack works on a deployed stack: {', '.join(sorted(STACK_COMMANDS))}")
    try:
        return int(arguments.handler(arguments))
    except (
        StackError,
        AnalyticsError,
        ValueError,
        ClientError,
        BotoCoreError,
        OSError,
    ) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"clickstream: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clickstream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
