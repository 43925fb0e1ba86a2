"""The local AWS endpoint: moto's server application, with each request atomic as on AWS.

Moto keeps every service's state in plain Python objects and its server answers requests on
many threads, so two requests can interleave halfway. Two cases break what the consumers rely on:

- a DynamoDB transaction whose condition fails rolls back by restoring a copy of the whole table
  taken when it started, undoing every write other requests made to that table meanwhile (a
  committed batch of another shard, its checkpoint included);
- Kinesis gives a record the last sequence number plus one, and GetRecords iterates over the
  shard while a PutRecords adds to it.

:class:`AtomicRequests` therefore runs the requests of every service but S3 one at a time. On AWS
each of those requests is atomic, so this only restores the real semantics. S3 requests stay
concurrent: Spark writes many objects in parallel, and an object request already replaces a
whole object.

Run it with ``python -m clickstream_local.moto_app -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

CONCURRENT_SERVICES = frozenset({"s3"})
"""Services whose requests may run at the same time (see the module docstring)."""

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def signed_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4-signed request is for (its credential scope), or None if unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL_SCOPE.search(authorization)
    return match.group(1) if match else None


class AtomicRequests:
    """WSGI middleware: requests to services outside :data:`CONCURRENT_SERVICES` run one at a time.

    The lock is held until the response body is complete, so a request's reads and writes of the
    backend state never interleave with another's.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        service = signed_service(environ)
        if service is None or service in CONCURRENT_SERVICES:
            return self.app(environ, start_response)
        with self._lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def application() -> AtomicRequests:
    """Moto's server application (every service backend) behind :class:`AtomicRequests`."""
    dispatcher = DomainDispatcherApplication(create_backend_app)
    return AtomicRequests(dispatcher)


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
