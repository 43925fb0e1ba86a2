"""Traffic into the local stack and out of its buffers: ``generate``, ``replay``, ``invoke``,
``drain``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.adapters.aws.kinesis import KinesisRecordStream
from clickstream.core.events import InvalidEvent, parse_event
from clickstream.generator import PROFILES, GeneratorConfig, SendReport, generate, run_generator
from clickstream.generator.config import count_mode_events
from clickstream.generator.producer import packed_windows, send_records
from clickstream.ports import StreamRecord
from clickstream_cli.common import Progress, key_value, report_progress
from clickstream_local.aws import client_environment, role_credentials
from clickstream_local.lambda_worker import LocalFunction, WorkerInvoker
from clickstream_local.stack import LocalStack, StackError, StackState

FINALIZER = "FinalizerFunction"
"""The template function that closes windows (``{"close_all": true}`` ends the stream)."""


def stream_of(state: StackState) -> tuple[KinesisRecordStream, str]:
    """The stack's clickstream and its name."""
    name = state.physical_id("ClickstreamStream")
    return KinesisRecordStream(state.client("kinesis"), name), name


# ---------------------------------------------------------------------- generate
def generator_config(
    arguments: argparse.Namespace, stream_name: str, now: datetime
) -> GeneratorConfig:
    """The generator settings of the options of :func:`add_generator_options`."""
    settings: dict[str, Any] = {
        "profile": arguments.profile,
        "seed": arguments.seed,
        "rate": arguments.rate,
    }
    if arguments.count is not None:
        settings.update(mode="count", count=arguments.count)
    else:
        settings.update(mode="rate", duration=arguments.duration)
    return GeneratorConfig.from_sources({"STREAM_NAME": stream_name}, settings, now)


def send_generated(
    config: GeneratorConfig, stream: KinesisRecordStream, now: datetime
) -> SendReport:
    """Run the generator into ``stream`` with a progress line; report unaccepted events."""
    progress = Progress()
    total = config.count if config.mode == "count" else int(config.rate * config.duration)
    print(
        f"generating {config.profile} events ({config.mode} mode, seed {config.seed}) into "
        f"{stream.stream_name}",
        file=sys.stderr,
    )
    report = run_generator(config, stream, now=now, on_progress=report_progress(progress, total))
    progress.done()
    for event_id, code, message in report.unaccepted:
        print(f"unaccepted: {event_id} {code}: {message}", file=sys.stderr)
    return report


def generated_event_ids(config: GeneratorConfig, now: datetime) -> list[str]:
    """The ids a run with ``config`` started at ``now`` sends (generation is deterministic)."""
    if config.mode == "count":
        return [event.event_id for event in count_mode_events(config, now)]
    events = generate(
        config.profile, seed=config.seed, start=now, rate=config.rate, duration=config.duration
    )
    return [event.event_id for event in events]


def cmd_generate(arguments: argparse.Namespace) -> int:
    """``clickstream generate``."""
    state = LocalStack().running()
    stream, name = stream_of(state)
    now = datetime.now(UTC)
    report = send_generated(generator_config(arguments, name, now), stream, now)
    print(json.dumps(report.as_dict()))
    return 0 if not report.unaccepted else 1


# ---------------------------------------------------------------------- replay
@dataclass
class ReplayFile:
    """Reads a JSON-lines file into stream records, keeping a list of rejected lines."""

    path: Path
    include_invalid: bool = False
    rejected: list[tuple[int, str]] = field(default_factory=list)
    valid: int = 0

    def records(self) -> Iterator[StreamRecord]:
        """A record per valid line (its bytes as-is, for packing per shard); invalid lines are
        reported, not sent, or with ``include_invalid`` sent each as its own record."""
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.rstrip(b"\r\n")
                try:
                    event = parse_event(line)
                except InvalidEvent as error:
                    self.rejected.append((number, error.reason))
                    if self.include_invalid:
                        yield StreamRecord(line + b"\n", f"line-{number}")
                    continue
                self.valid += 1
                yield StreamRecord(line + b"\n", event.partition_key, event.event_id)


def cmd_replay(arguments: argparse.Namespace) -> int:
    """``clickstream replay FILE``."""
    if not arguments.file.is_file():
        raise StackError(f"no such file: {arguments.file}")
    state = LocalStack().running()
    stream, _ = stream_of(state)
    replay = ReplayFile(arguments.file, include_invalid=arguments.include_invalid)
    progress = Progress()
    records = packed_windows(replay.records(), stream.shard_map())
    report = send_records(records, stream, on_progress=report_progress(progress, None))
    progress.done()
    for number, reason in replay.rejected:
        print(f"{arguments.file}:{number}: rejected: {reason}", file=sys.stderr)
    for event_id, code, message in report.unaccepted:
        print(f"unaccepted: {event_id} {code}: {message}", file=sys.stderr)
    summary = {
        "lines": replay.valid + len(replay.rejected),
        "valid": replay.valid,
        "rejected": len(replay.rejected),
        "sent": report.sent,
        "accepted": report.accepted,
        "unaccepted": len(report.unaccepted),
    }
    print(json.dumps(summary))
    return 0 if not report.unaccepted else 1


# ---------------------------------------------------------------------- invoke
def invoke_function(
    state: StackState,
    logical_id: str,
    event: Any,
    extra_environment: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> Any:
    """Run one template function once in a worker process with its role: result or StackError.

    The function's own log lines go to standard error, or to ``log_file`` when given.
    """
    template = state.template()
    resource = template.resource(logical_id)
    if resource.type != "AWS::Serverless::Function":
        raise StackError(f"{logical_id} is a {resource.type}, not a function")
    function = LocalFunction.from_template(
        template, resource, Path(state.template_path).parent
    ).with_local_environment(state.local_environment())
    function = dataclasses.replace(
        function, environment={**function.environment, **(extra_environment or {})}
    )
    credentials = role_credentials(state.endpoint_url, function.role_arn)
    invoker = WorkerInvoker(
        function, client_environment(state.endpoint_url, credentials), log_file=log_file
    )
    try:
        outcome = invoker.invoke(event)
    finally:
        invoker.close()
    if not outcome.ok:
        raise StackError(f"{function.name} failed: {outcome.error_type}: {outcome.error_message}")
    return outcome.payload


def cmd_invoke(arguments: argparse.Namespace) -> int:
    """``clickstream invoke FUNCTION [-e EVENT]``."""
    state = LocalStack().running()
    event = json.loads(arguments.event.read_text()) if arguments.event else {}
    payload = invoke_function(state, arguments.function, event, dict(map(key_value, arguments.env)))
    print(json.dumps(payload, default=str))
    return 0


# ---------------------------------------------------------------------- drain
def drain(timeout: float, *, close_windows: bool = False) -> None:
    """Wait until every consumer caught up and flush; then, if asked, end the stream."""
    progress = Progress()

    def show(status: dict[str, Any]) -> None:
        done = sum(p["records_done"] + p["records_to_destination"] for p in status["pollers"])
        delivered = sum(d["records_in"] for d in status["deliveries"])
        progress.show(f"draining: runner done {done:,} records, Firehose read {delivered:,}")

    stack = LocalStack()
    final = stack.drain(timeout=timeout, progress=show)
    progress.done()
    print(f"drained in {final['drain_seconds']}s; flushed {len(final['flushed'])} objects")
    if close_windows:
        state = stack.running()
        if not state.has_resource(FINALIZER):
            raise StackError(f"the template has no {FINALIZER} to close windows with")
        log_file = stack.logs / "functions.log"
        payload = invoke_function(state, FINALIZER, {"close_all": True}, log_file=log_file)
        print(
            f"end of stream: every window and session is final ({payload['rows_rewritten']} window"
            f" rows rewritten, {payload['minute_sessions_closed']} minute and"
            f" {payload['gap_sessions_closed']} gap sessions closed)"
        )


def cmd_drain(arguments: argparse.Namespace) -> int:
    """``clickstream drain [--close-windows]``."""
    drain(arguments.timeout, close_windows=arguments.close_windows)
    return 0


# ---------------------------------------------------------------------- parser
def add_generator_options(parser: argparse.ArgumentParser, *, rate: float, duration: float) -> None:
    """``--profile``, ``--rate``, ``--duration``, ``--count`` and ``--seed``."""
    parser.add_argument("--profile", choices=PROFILES, default="realistic", help="traffic profile")
    parser.add_argument(
        "--rate", type=float, default=rate, help="events per second (default %(default)s)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=duration,
        help="seconds of paced sending (default %(default)s)",
    )
    parser.add_argument(
        "--count", type=int, help="send N events at once instead (timestamps end now)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="random seed, for a reproducible run (default: the start time in ms, so every run"
        " gets new event_ids)",
    )


def add_commands(commands: Any) -> None:
    """Register ``generate``, ``replay``, ``invoke`` and ``drain``."""
    generate_parser = commands.add_parser("generate", help="send synthetic events to the stream")
    add_generator_options(generate_parser, rate=20, duration=60)
    generate_parser.set_defaults(handler=cmd_generate)

    replay = commands.add_parser(
        "replay", help="put the events of a JSON-lines file (their own timestamps) into the stream"
    )
    replay.add_argument("file", type=Path, help="one JSON event per line")
    replay.add_argument(
        "--include-invalid",
        action="store_true",
        help="also send rejected lines, to exercise the consumers' quarantine",
    )
    replay.set_defaults(handler=cmd_replay)

    invoke = commands.add_parser(
        "invoke", help="run one function of the template once, like `sam local invoke`"
    )
    invoke.add_argument("function", help="logical id, e.g. GeneratorFunction")
    invoke.add_argument("-e", "--event", type=Path, help="JSON event file, e.g. events/*.json")
    invoke.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment variable"
    )
    invoke.set_defaults(handler=cmd_invoke)

    drain_parser = commands.add_parser(
        "drain", help="wait until every consumer read everything, then flush Firehose buffers"
    )
    drain_parser.add_argument(
        "--timeout", type=float, default=300, help="seconds (default %(default)s)"
    )
    drain_parser.add_argument(
        "--close-windows",
        action="store_true",
        help="then end the stream: every window becomes final (the finalizer with close_all)",
    )
    drain_parser.set_defaults(handler=cmd_drain)
