"""The local AWS endpoint: moto's server application, with each request atomic as on AWS.

Moto keeps every service's state in plain Python objects and its server answers requests on
many threads, so two requests can interleave halfway. Two cases break what the consumers rely on:

- a DynamoDB transaction whose condition fails rolls back by restoring a copy of the whole table
  taken when it started, undoing every write other requests made to that table meanwhile (a
  committed batch of another shard, its checkpoint included);
- Kinesis gives a record the last sequence number plus one, and GetRecords iterates over the
  shard while a PutRecords adds to it.

:class:`AtomicRequests` therefore gives each request the locks of what it touches: a DynamoDB
request those of the tables it names, a request to another service but S3 that of its service.
On AWS each of those requests is atomic, so this only restores the real semantics, and what
touches different state keeps running side by side (a long transaction on the sessionizer's
table must not hold up the window counter's tables, nor Kinesis). S3 requests stay concurrent:
Spark writes many objects in parallel, and an object request already replaces a whole object.

In front of that, :class:`IamEnforcement` authorizes every request as AWS would: a caller
signing with an assumed role's temporary credentials may do only what that role's policies allow
(:mod:`clickstream_local.iam_endpoint`); the stack's administrator key may do everything.
Behind it, :class:`FirehoseLimits` refuses a Firehose put beyond AWS's size limits (a record over
1,000 KiB, a batch of over 500 records or 4 MiB) with AWS's error, whoever the caller
(:mod:`clickstream_local.firehose_limits`).

Run it with ``python -m clickstream_local.moto_app -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from clickstream_local.firehose_limits import FirehoseLimits
from clickstream_local.iam_endpoint import IamEnforcement
from clickstream_local.wsgi import WsgiApp, read_body, signed_service

CONCURRENT_SERVICES = frozenset({"s3"})
"""Services whose requests may run at the same time (see the module docstring)."""


def dynamodb_tables(body: bytes) -> list[str]:
    """The tables a DynamoDB request names (``TableName``, ``RequestItems``, ``TransactItems``)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    names: set[str] = set()
    if isinstance(request.get("TableName"), str):
        names.add(request["TableName"])
    if isinstance(request.get("RequestItems"), dict):
        names.update(request["RequestItems"])
    for action in request.get("TransactItems") or []:
        for operation in action.values() if isinstance(action, dict) else []:
            if isinstance(operation, dict) and isinstance(operation.get("TableName"), str):
                names.add(operation["TableName"])
    return sorted(name.rsplit("table/", 1)[-1] for name in names)


def lock_names(service: str, environ: dict[str, Any]) -> list[str]:
    """What a request touches, by name: its DynamoDB tables, or else its service.

    A DynamoDB request naming no table (``ListTables``) takes the service's name, which no
    table request shares: it reads no item, so it needs no table lock.
    """
    if service == "dynamodb":
        tables = dynamodb_tables(read_body(environ))
        if tables:
            return [f"dynamodb/{table}" for table in tables]
    return [service]


class AtomicRequests:
    """WSGI middleware: requests touching the same state (see :func:`lock_names`) run one at a time.

    A request takes its locks in name order (so no two requests can each hold a lock the other
    waits for) and holds them until its response body is complete, so its reads and writes of
    that state never interleave with another request's.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _locks_of(self, names: list[str]) -> list[threading.Lock]:
        """The locks of ``names``, in that order, each created on first use."""
        with self._locks_guard:
            return [self._locks.setdefault(name, threading.Lock()) for name in names]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        service = signed_service(environ)
        if service is None or service in CONCURRENT_SERVICES:
            return self.app(environ, start_response)
        with contextlib.ExitStack() as held:
            for lock in self._locks_of(lock_names(service, environ)):
                held.enter_context(lock)
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def application() -> IamEnforcement:
    """Moto's server application behind :class:`AtomicRequests`, :class:`FirehoseLimits` and
    :class:`IamEnforcement`."""
    dispatcher = DomainDispatcherApplication(create_backend_app)
    return IamEnforcement(FirehoseLimits(AtomicRequests(dispatcher)))


def main(argv: list[str] | None = None) -> None:
    """Serve the application on ``--host``/``--port`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    arguments = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    run_simple(
        arguments.host,
        arguments.port,
        application(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
