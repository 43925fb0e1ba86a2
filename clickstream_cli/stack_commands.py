"""``clickstream local up|down|status``: the local stack's lifecycle."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from clickstream_cli.common import key_value
from clickstream_local.aws import ADMIN
from clickstream_local.signals import status_lines
from clickstream_local.stack import LocalStack


def cmd_local_up(arguments: argparse.Namespace) -> int:
    """``clickstream local up``: start, provision, print what was provisioned."""
    parameters = dict(key_value(item) for item in arguments.param)
    state, provisioned = LocalStack().up(
        parameters, progress=lambda text: print(text, file=sys.stderr)
    )
    if arguments.brief:
        counts = Counter(resource.status for resource in provisioned)
        print(
            f"{len(provisioned)} template resources: "
            + ", ".join(f"{count} {status}" for status, count in counts.most_common())
        )
    else:
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
    """``clickstream local down``: snapshot the lake (unless discarded) and stop."""
    stack = LocalStack()
    if not stack.down(keep_lake=not arguments.discard_lake):
        print("the local stack was not running")
        return 0
    kept = "discarded" if arguments.discard_lake else f"saved to {stack.snapshot_dir}"
    print(f"local stack stopped; lake {kept}")
    return 0


def cmd_local_status(arguments: argparse.Namespace) -> int:
    """``clickstream local status``: endpoints and the services' counters."""
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


def add_commands(commands: Any) -> None:
    """Register ``local up|down|status``."""
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
    up.add_argument(
        "--brief", action="store_true", help="count the provisioned resources by status, no table"
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
