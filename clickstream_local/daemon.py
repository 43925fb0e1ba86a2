"""Daemon process of the local stack: runs :class:`StackServices` until told to shut down."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path

from clickstream.adapters.aws.window_results import DynamoWindowResults
from clickstream_analytics.dashboard import (
    LatestWindowResults,
    NoWindowResults,
    UniqueVisitorsSource,
    WindowResultsSource,
)
from clickstream_local.aws import local_client
from clickstream_local.cfn import Template
from clickstream_local.dashboard import dashboard_app
from clickstream_local.services import StackServices, control_server


def main(argv: list[str] | None = None) -> None:
    """``python -m clickstream_local.daemon --template T --root R --endpoint URL --port P ...``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--parameters", default="{}", help="JSON object of parameter overrides")
    parser.add_argument(
        "--local-environment", default="{}", help="JSON object of local function environment values"
    )
    parser.add_argument("--search-url", help="the local OpenSearch node, for the live dashboard")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="share of consumer invocations to fail on purpose (testing exactly-once)",
    )
    parser.add_argument(
        "--glue-home", type=Path, help="local state folder: enables the Glue EVENT triggers"
    )
    parser.add_argument(
        "--glue-manual",
        action="store_true",
        help="run Glue workflows only when asked (POST /glue/run), not on their batches",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
    )
    template = Template.load(
        arguments.template,
        stack_name=arguments.stack_name,
        parameter_overrides=json.loads(arguments.parameters),
    )
    services = StackServices(
        template,
        arguments.root,
        arguments.endpoint,
        local_environment=json.loads(arguments.local_environment),
        fault_rate=arguments.fault_rate,
        glue_home=arguments.glue_home,
        glue_auto=not arguments.glue_manual,
    )
    services.start()
    dashboard = None
    if arguments.search_url:
        windows: WindowResultsSource = NoWindowResults()
        if "WindowResultsTable" in template.document["Resources"]:
            table = template.resource("WindowResultsTable").physical_id
            sink = DynamoWindowResults(local_client("dynamodb", arguments.endpoint), table)
            windows = LatestWindowResults(sink)
        dashboard = dashboard_app(UniqueVisitorsSource.from_url(arguments.search_url), windows)
    server = control_server(services, arguments.port, dashboard)

    def terminate(*_: object) -> None:
        def stop() -> None:
            services.stop()
            server.shutdown()

        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, terminate)
    logging.info(
        "serving on 127.0.0.1:%d: %d pollers, %d delivery streams, %d Glue triggers",
        arguments.port,
        len(services.pollers),
        len(services.deliveries),
        len(services.glue_triggers),
    )
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    logging.info("stopped")


if __name__ == "__main__":
    main()
