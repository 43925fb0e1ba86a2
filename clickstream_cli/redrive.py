"""``redrive``: the batches the stream consumers gave up on, listed, and applied after a fix.

``clickstream redrive`` lists the batches kept in the failed-batch bucket; ``clickstream redrive
KEY...`` or ``--all`` applies them through their functions, exactly once in effect, and moves
each object under ``redriven/`` (:mod:`clickstream_analytics.failed_batches`). Locally each
function runs in a worker with its role, as the runner runs it; with ``--stack NAME`` the
deployed function is invoked.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from clickstream.adapters.kept_batches import KeptBatch
from clickstream_analytics.failed_batches import (
    Invoke,
    RedriveResult,
    kept_batches,
    lambda_invoker,
    read_kept,
    redrive,
)
from clickstream_analytics.stack import Stack
from clickstream_cli.common import read_target
from clickstream_cli.traffic import invoke_function
from clickstream_local.stack import StackError, StackState


def local_invoker(state: StackState) -> Invoke:
    """Run a local stack's function, found by the name ending its ARN, once per call."""
    template = state.template()
    by_name = {
        function.physical_id: function.logical_id
        for function in template.resources("AWS::Serverless::Function")
    }

    def invoke(function_arn: str, event: dict[str, Any]) -> Any:
        name = function_arn.rsplit(":", 1)[-1]
        if name not in by_name:
            raise StackError(f"the stack has no function {name}")
        return invoke_function(state, by_name[name], event)

    return invoke


def batch_line(batch: KeptBatch) -> str:
    """One kept batch: its key, function, shard, sequence numbers, size, why and when."""
    return (
        f"{batch.key}\n    {batch.function_name} {batch.shard_id} "
        f"{batch.first_sequence_number}..{batch.last_sequence_number}: "
        f"{batch.batch_size} records, {batch.condition} ({batch.function_error}) at "
        f"{batch.timestamp}"
    )


def result_line(result: RedriveResult) -> str:
    """What a redrive did to one batch."""
    if result.redriven:
        return f"redriven {result.key} ({result.function}, {result.records} records)"
    return (
        f"not redriven {result.key} ({result.function}): it still fails at record "
        f"{result.resumes_at}; the records before it are applied, the object is kept"
    )


def cmd_redrive(arguments: argparse.Namespace) -> int:
    """``clickstream redrive [KEY ...] [--all] [--json]``."""
    target = read_target(arguments)
    stack: Stack = target.stack
    if not arguments.keys and not arguments.all:
        batches = kept_batches(stack)
        if arguments.json:
            print(json.dumps([_summary(batch) for batch in batches], indent=2))
        else:
            print(f"{len(batches)} kept batch(es)", file=sys.stderr)
            for batch in batches:
                print(batch_line(batch))
        return 0
    if arguments.keys and arguments.all:
        raise ValueError("give KEY... or --all, not both")
    invoke = local_invoker(stack) if isinstance(stack, StackState) else lambda_invoker(stack)
    batches = (
        kept_batches(stack) if arguments.all else [read_kept(stack, k) for k in arguments.keys]
    )
    results = [redrive(stack, batch, invoke) for batch in batches]
    if arguments.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    else:
        for result in results:
            print(result_line(result))
        print(f"{sum(r.redriven for r in results)} of {len(results)} batch(es) redriven")
    return 0 if all(result.redriven for result in results) else 1


def _summary(batch: KeptBatch) -> dict[str, Any]:
    return {
        "key": batch.key,
        "function": batch.function_name,
        "shard_id": batch.shard_id,
        "first_sequence_number": batch.first_sequence_number,
        "last_sequence_number": batch.last_sequence_number,
        "batch_size": batch.batch_size,
        "condition": batch.condition,
        "function_error": batch.function_error,
        "timestamp": batch.timestamp,
    }


def add_commands(commands: Any) -> None:
    """Register ``redrive``."""
    parser = commands.add_parser(
        "redrive",
        help="list the batches the stream consumers gave up on, or apply them again after a fix",
        description="Without KEY or --all, list the batches kept in the failed-batch bucket."
        " With them, apply each through its function, exactly once in effect, and move its"
        " object under redriven/.",
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="a kept batch's object key")
    parser.add_argument("--all", action="store_true", help="redrive every kept batch")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=cmd_redrive)
