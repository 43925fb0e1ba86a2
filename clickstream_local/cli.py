"""``clickstream``: run the pipeline locally.

Commands: ``local up|down|status``, ``generate``, ``replay``, ``invoke``, ``drain``,
``summary``, the lake's ``curate``, ``catalog``, ``query`` and ``glue-docker``, the analytics
``report``, and ``demo`` (what ``make run`` calls). Errors exit non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from clickstream.dynamo import DynamoCheckpointStore
from clickstream.events import InvalidEvent, format_timestamp, parse_event, parse_timestamp
from clickstream.generator import PROFILES, GeneratorConfig, SendReport, generate, run_generator
from clickstream.generator.config import count_mode_events
from clickstream.generator.producer import send_records
from clickstream.search.documents import INDEX_PATTERN
from clickstream.sessions import MINUTE_SESSION_COLUMNS
from clickstream.streams import KinesisRecordStream, StreamRecord
from clickstream.window_consumer import CONSUMER as WINDOW_CONSUMER
from clickstream.window_results import DynamoWindowResults
from clickstream.windows import END_OF_STREAM, TOP_SOURCES, UNIQUE_USERS
from clickstream_local.aws import ADMIN, client_environment, role_credentials
from clickstream_local.glue_docker import add_glue_docker_command
from clickstream_local.lake_commands import (
    add_commands,
    print_curate_reports,
    reconcile_lake,
    run_query,
)
from clickstream_local.lambda_worker import LocalFunction, WorkerInvoker
from clickstream_local.queries import save_result
from clickstream_local.reconcile import (
    StreamAccounting,
    event_id_counts,
    lake_event_ids,
    read_gap_sessions,
    read_minute_sessions,
    reconcile,
    search_document_count,
    search_document_ids,
    stream_accounting,
    stream_data,
    stream_event_ids,
)
from clickstream_local.report.cli import add_report_command, print_report_summary, write_report
from clickstream_local.signals import status_lines
from clickstream_local.stack import LocalStack, StackError, StackState

FINALIZER = "FinalizerFunction"
"""The template function that closes windows (``{"close_all": true}`` ends the stream)."""


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


def _report_progress(progress: Progress, total: int | None) -> Callable[[SendReport], None]:
    def show(report: SendReport) -> None:
        goal = f" of ~{total:,}" if total else ""
        progress.show(f"sent {report.sent:,}{goal} events, {report.accepted:,} accepted")

    return show


def _stream(state: StackState) -> tuple[KinesisRecordStream, str]:
    name = state.template().resource("ClickstreamStream").physical_id
    return KinesisRecordStream(state.client("kinesis"), name), name


# ---------------------------------------------------------------------- local up/down/status
def cmd_local_up(arguments: argparse.Namespace) -> int:
    parameters = dict(_key_value(item) for item in arguments.param)
    state, provisioned = LocalStack().up(
        parameters, progress=lambda text: print(text, file=sys.stderr)
    )
    for resource in provisioned:
        print(f"  {resource.status:<13} {resource.type:<40} {resource.physical_id}")
    print(f"local stack up: AWS endpoint {state.endpoint_url}, control {state.control_url}")
    if state.opensearch_url:
        print(f"OpenSearch {state.opensearch_url}; live dashboard {state.control_url}/dashboard")
    print(
        f"export AWS_ENDPOINT_URL={state.endpoint_url} "
        f"AWS_ACCESS_KEY_ID={ADMIN.access_key_id} AWS_SECRET_ACCESS_KEY={ADMIN.secret_access_key}"
    )
    return 0


def cmd_local_down(arguments: argparse.Namespace) -> int:
    stack = LocalStack()
    if not stack.down(keep_lake=not arguments.discard_lake):
        print("the local stack was not running")
        return 0
    kept = "discarded" if arguments.discard_lake else f"saved to {stack.snapshot_dir}"
    print(f"local stack stopped; lake {kept}")
    return 0


def cmd_local_status(arguments: argparse.Namespace) -> int:
    stack = LocalStack()
    state = stack.running()
    status = stack.services_status()
    if arguments.json:
        print(json.dumps({"endpoint_url": state.endpoint_url, **status}, indent=2))
        return 0
    print(f"running since {datetime.fromtimestamp(state.started_at, UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"  AWS endpoint   {state.endpoint_url}\n  state folder   {stack.home}")
    for poller in status["pollers"]:
        print(
            f"  poller  {poller['function']}/{poller['shard_id']}: read {poller['records_read']:,},"
            f" done {poller['records_done']:,}, to on-failure {poller['records_to_destination']:,},"
            f" invocations {poller['invocations']:,}, errors {poller['function_errors']:,}"
        )
    for schedule in status.get("schedules", []):
        state_text = "runs" if schedule["running"] else "not run locally"
        print(
            f"  schedule {schedule['function']} {schedule['expression']} ({state_text}):"
            f" invocations {schedule['invocations']:,}, errors {schedule['errors']:,}"
        )
    for delivery in status["deliveries"]:
        print(
            f"  firehose {delivery['name']}: in {delivery['records_in']:,}, delivered"
            f" {delivery['records_delivered']:,} in {delivery['objects_written']:,} objects,"
            f" buffered {delivery['buffered_records']:,}"
        )
    for line in status_lines(status):
        print(f"  {line}")
    return 0


# ---------------------------------------------------------------------- generate / replay
def cmd_generate(arguments: argparse.Namespace) -> int:
    state = LocalStack().running()
    stream, name = _stream(state)
    now = datetime.now(UTC)
    config = _generator_config(arguments, name, now)
    report = _run_generator(config, stream, now)
    print(json.dumps(report.as_dict()))
    return 0 if not report.unaccepted else 1


def _generator_config(
    arguments: argparse.Namespace, stream_name: str, now: datetime
) -> GeneratorConfig:
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


def _run_generator(
    config: GeneratorConfig, stream: KinesisRecordStream, now: datetime
) -> SendReport:
    progress = Progress()
    total = config.count if config.mode == "count" else int(config.rate * config.duration)
    print(
        f"generating {config.profile} events ({config.mode} mode, seed {config.seed}) into "
        f"{stream.stream_name}",
        file=sys.stderr,
    )
    report = run_generator(config, stream, now=now, on_progress=_report_progress(progress, total))
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


@dataclass
class ReplayFile:
    """Reads a JSON-lines file into stream records, keeping a list of rejected lines."""

    path: Path
    include_invalid: bool = False
    rejected: list[tuple[int, str]] = field(default_factory=list)
    valid: int = 0

    def records(self) -> Iterator[StreamRecord]:
        """A record per valid line (its bytes as-is); invalid lines are reported, not sent."""
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
    if not arguments.file.is_file():
        raise StackError(f"no such file: {arguments.file}")
    state = LocalStack().running()
    stream, _ = _stream(state)
    replay = ReplayFile(arguments.file, include_invalid=arguments.include_invalid)
    progress = Progress()
    report = send_records(replay.records(), stream, on_progress=_report_progress(progress, None))
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


def invoke_function(
    state: StackState, logical_id: str, event: Any, extra_environment: dict[str, str] | None = None
) -> Any:
    """Run one template function once in a worker process with its role: result or StackError."""
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
    invoker = WorkerInvoker(function, client_environment(state.endpoint_url, credentials))
    try:
        outcome = invoker.invoke(event)
    finally:
        invoker.close()
    if not outcome.ok:
        raise StackError(f"{function.name} failed: {outcome.error_type}: {outcome.error_message}")
    return outcome.payload


def cmd_invoke(arguments: argparse.Namespace) -> int:
    state = LocalStack().running()
    event = json.loads(arguments.event.read_text()) if arguments.event else {}
    payload = invoke_function(
        state, arguments.function, event, dict(map(_key_value, arguments.env))
    )
    print(json.dumps(payload, default=str))
    return 0


# ---------------------------------------------------------------------- drain / summary / demo
def cmd_drain(arguments: argparse.Namespace) -> int:
    progress = Progress()

    def show(status: dict[str, Any]) -> None:
        done = sum(p["records_done"] + p["records_to_destination"] for p in status["pollers"])
        delivered = sum(d["records_in"] for d in status["deliveries"])
        progress.show(f"draining: runner done {done:,} records, Firehose read {delivered:,}")

    stack = LocalStack()
    final = stack.drain(timeout=arguments.timeout, progress=show)
    progress.done()
    print(f"drained in {final['drain_seconds']}s; flushed {len(final['flushed'])} objects")
    if arguments.close_windows:
        state = stack.running()
        if FINALIZER not in state.template().document["Resources"]:
            raise StackError(f"the template has no {FINALIZER} to close windows with")
        payload = invoke_function(state, FINALIZER, {"close_all": True})
        print(
            f"end of stream: every window and session is final ({payload['rows_rewritten']} window"
            f" rows rewritten, {payload['minute_sessions_closed']} minute and"
            f" {payload['gap_sessions_closed']} gap sessions closed)"
        )
    return 0


def cmd_sessions(arguments: argparse.Namespace) -> int:
    state = LocalStack().running()
    bucket = _raw_bucket(state)
    if arguments.kind == "minute":
        rows = read_minute_sessions(state.client("s3"), bucket)
        if arguments.json:
            print(json.dumps([dict(zip(MINUTE_SESSION_COLUMNS, row, strict=True)) for row in rows]))
            return 0
        print(",".join(MINUTE_SESSION_COLUMNS))
        for row in rows:
            print(",".join(str(value) for value in row))
        print(f"{len(rows)} sessions", file=sys.stderr)
        return 0
    sessions = read_gap_sessions(state.client("s3"), bucket)
    if arguments.json:
        print(json.dumps(sessions))
        return 0
    for session in sessions:
        print(
            f"{session['session_id']:<34} {session['device']:<11} {session['start']} "
            f"{session['page_count']:>4} pages {session['duration_seconds']:>9.1f} s "
            f"{session['trafficfrom']:<20} checkout="
            f"{'yes' if session['reached_checkout'] else 'no'}"
        )
    print(f"{len(sessions)} sessions", file=sys.stderr)
    return 0


def cmd_windows(arguments: argparse.Namespace) -> int:
    state = LocalStack().running()
    table = state.template().resource("WindowResultsTable").physical_id
    metric = {"unique-users": UNIQUE_USERS, "top-sources": TOP_SOURCES}[arguments.metric]
    size = {"15s": 15, "1m": 60}[arguments.size]
    if (metric, size) == (TOP_SOURCES, 15):
        raise StackError("top sources are counted per minute only: use --size 1m")
    rows = [
        row
        for row in DynamoWindowResults(state.client("dynamodb"), table).rows(metric, size)
        if (not arguments.final_only or row.final)
        and (arguments.start is None or row.window_start >= parse_timestamp(arguments.start))
        and (arguments.end is None or row.window_start < parse_timestamp(arguments.end))
    ]
    rows.sort(key=lambda r: (r.window_start, r.rank or 0, r.key))
    if arguments.json:
        print(json.dumps([row.to_item() for row in rows], default=str, indent=1))
        return 0
    print(f"{'window start (UTC)':<28} {'key':<24} {'value':>7} {'rank':>5} {'late':>5}  final")
    for row in rows:
        rank = "" if row.rank is None else str(row.rank)
        print(
            f"{format_timestamp(row.window_start):<28} {row.key:<24} {row.value:>7} "
            f"{rank:>5} {row.late_events:>5}  {'yes' if row.final else 'no'}"
        )
    print(f"{len(rows)} rows")
    return 0


def cmd_summary(arguments: argparse.Namespace) -> int:
    state = LocalStack().running()
    _, stream_name = _stream(state)
    records = stream_data(state.client("kinesis"), stream_name)
    ids = event_id_counts(records)
    lake = lake_event_ids(state.client("s3"), _raw_bucket(state), "rawdata/")
    sent = [key for key in ids.elements() if key]
    result = reconcile(sent, sum(ids.values()), ids, lake, **_search_stage(state, sent))
    print("\n".join(result.lines()))
    accounting = _window_counter_accounting(state, records)
    if accounting is None:
        return 0 if result.ok else 1
    print("\nwindow counter:")
    print("\n".join(accounting.lines()))
    return 0 if result.ok and accounting.ok else 1


def _window_counter_accounting(state: StackState, records: list[bytes]) -> StreamAccounting | None:
    """Where each stream record went in the window counter, when the template has one."""
    if "WindowStateTable" not in state.template().document["Resources"]:
        return None
    table = state.template().resource("WindowStateTable").physical_id
    s3, dynamodb = state.client("s3"), state.client("dynamodb")
    return stream_accounting(records, s3, _raw_bucket(state), dynamodb, table)


def _raw_bucket(state: StackState) -> str:
    return state.template().resource("RawBucket").physical_id


def _search_stage(state: StackState, event_ids: list[str]) -> dict[str, Any]:
    """Searchable ids and the document total, when the stack runs OpenSearch."""
    if state.opensearch_url is None:
        return {}
    return {
        "searchable": search_document_ids(state.opensearch_url, INDEX_PATTERN, event_ids),
        "search_documents": search_document_count(state.opensearch_url, INDEX_PATTERN),
    }


def cmd_demo(arguments: argparse.Namespace) -> int:
    stack = LocalStack()
    if stack.load() is not None and _is_running(stack) and _stream_ended(stack.running()):
        # A stream that was ended counts every later event as late: start a fresh one.
        print("the running stack's stream was ended; restarting it (the lake is kept)")
        stack.down(keep_lake=True)
    if stack.load() is None or not _is_running(stack):
        cmd_local_up(argparse.Namespace(param=[]))
    state = stack.running()
    stream, stream_name = _stream(state)
    now = datetime.now(UTC)
    config = _generator_config(arguments, stream_name, now)
    report = _run_generator(config, stream, now)
    cmd_drain(argparse.Namespace(timeout=arguments.timeout, close_windows=False))
    sent_ids = generated_event_ids(config, now)
    result = reconcile(
        sent_ids,
        report.accepted,
        stream_event_ids(state.client("kinesis"), stream_name),
        lake_event_ids(state.client("s3"), _raw_bucket(state), "rawdata/"),
        **_search_stage(state, sent_ids),
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
    cmd_drain(argparse.Namespace(timeout=timeout, close_windows=True))
    cmd_drain(argparse.Namespace(timeout=timeout, close_windows=False))
    print_curate_reports(stack.run_glue())
    lines, ok = reconcile_lake(state, stack.home / "duckdb")
    print("\n".join(lines))
    top = run_query(state, stack.home, "top_products", "spark")
    files = save_result(top, "top_products", stack.home / "results")
    print("\ntask 1, the most searched products (sql/top_products.sql on Spark SQL):")
    print(top.to_markdown(10))
    print(f"saved: {', '.join(str(path) for path in files)}")
    print("\nanalytics report (tasks 3.1-3.3):")
    print_report_summary(write_report(state, stack.home, stack.home / "report", profile))
    return ok


def _stream_ended(state: StackState) -> bool:
    """True when a consumer's shard was closed for good (``drain --close-windows``, a demo)."""
    resources = state.template().document["Resources"]
    if "WindowStateTable" not in resources:
        return False
    table = state.template().resource("WindowStateTable").physical_id
    checkpoints = DynamoCheckpointStore(state.client("dynamodb"), table).all(WINDOW_CONSUMER)
    return any(checkpoint.watermark == END_OF_STREAM for checkpoint in checkpoints)


def _is_running(stack: LocalStack) -> bool:
    try:
        stack.running()
    except StackError:
        return False
    return True


# ---------------------------------------------------------------------- parser
def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _add_generator_options(
    parser: argparse.ArgumentParser, *, rate: float, duration: float
) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="clickstream",
        description="Run the clickstream analytics pipeline locally on a moto server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser("local", help="start, stop or inspect the local stack")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_commands.add_parser(
        "up", help="start moto, provision template.yaml, start the runner and Firehose emulation"
    )
    up.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter override",
    )
    up.set_defaults(handler=cmd_local_up)
    down = local_commands.add_parser(
        "down", help="flush, snapshot the lake to disk, stop everything"
    )
    down.add_argument(
        "--discard-lake", action="store_true", help="do not snapshot S3 before stopping"
    )
    down.set_defaults(handler=cmd_local_down)
    status = local_commands.add_parser("status", help="show the stack's endpoints and counters")
    status.add_argument("--json", action="store_true", help="print the raw status document")
    status.set_defaults(handler=cmd_local_status)

    generate_parser = commands.add_parser("generate", help="send synthetic events to the stream")
    _add_generator_options(generate_parser, rate=20, duration=60)
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

    drain = commands.add_parser(
        "drain", help="wait until every consumer read everything, then flush Firehose buffers"
    )
    drain.add_argument("--timeout", type=float, default=300, help="seconds (default %(default)s)")
    drain.add_argument(
        "--close-windows",
        action="store_true",
        help="then end the stream: every window becomes final (the finalizer with close_all)",
    )
    drain.set_defaults(handler=cmd_drain)

    sessions = commands.add_parser("sessions", help="sessions written to the lake (deduplicated)")
    sessions.add_argument(
        "--kind",
        choices=("minute", "gap"),
        default="minute",
        help="seed-compatible per-minute sessions (aggregated/) or 30-min gap sessions (sessions/)",
    )
    sessions.add_argument("--json", action="store_true", help="print JSON")
    sessions.set_defaults(handler=cmd_sessions)

    windows = commands.add_parser("windows", help="near-real-time window results (DynamoDB)")
    windows.add_argument("--size", choices=("15s", "1m"), default="1m", help="window size")
    windows.add_argument(
        "--metric", choices=("unique-users", "top-sources"), default="unique-users"
    )
    windows.add_argument("--from", dest="start", help="first window start (ISO-8601 UTC)")
    windows.add_argument("--to", dest="end", help="windows starting before this (ISO-8601 UTC)")
    windows.add_argument("--final-only", action="store_true", help="only closed windows")
    windows.add_argument("--json", action="store_true", help="print JSON rows")
    windows.set_defaults(handler=cmd_windows)

    invoke = commands.add_parser(
        "invoke", help="run one function of the template once, like `sam local invoke`"
    )
    invoke.add_argument("function", help="logical id, e.g. GeneratorFunction")
    invoke.add_argument("-e", "--event", type=Path, help="JSON event file, e.g. events/*.json")
    invoke.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment variable"
    )
    invoke.set_defaults(handler=cmd_invoke)

    summary = commands.add_parser("summary", help="reconcile the stream with the raw layer")
    summary.set_defaults(handler=cmd_summary)
    add_commands(commands)
    add_glue_docker_command(commands)
    add_report_command(commands)

    demo = commands.add_parser(
        "demo",
        help="up if needed, generate, drain, curate, reconcile, save task 1's top 10, build the"
        " report (make run)",
    )
    _add_generator_options(demo, rate=20, duration=60)
    demo.add_argument("--timeout", type=float, default=300, help="drain timeout in seconds")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clickstream`` command."""
    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except (StackError, ValueError, ClientError, BotoCoreError, OSError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"clickstream: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clickstream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
