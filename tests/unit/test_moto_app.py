"""The local endpoint's request serialization, on a fake WSGI application."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickstream_local.moto_app import AtomicRequests, signed_service


def signed(service: str) -> dict[str, Any]:
    """A WSGI environ signed with SigV4 for ``service``."""
    return {
        "HTTP_AUTHORIZATION": (
            "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/"
            f"{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }


class OverlapRecorder:
    """A WSGI app that records the most requests it ever served at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
        start_response("200 OK", [])
        return [b"part one, ", b"part two"]


def serve_at_once(app: AtomicRequests, environ: dict[str, Any], requests: int) -> list[Any]:
    """Send ``requests`` identical requests from as many threads."""
    with ThreadPoolExecutor(max_workers=requests) as pool:
        return list(pool.map(lambda _: app(environ, lambda *_: None), range(requests)))


def test_the_service_comes_from_the_credential_scope() -> None:
    assert signed_service(signed("dynamodb")) == "dynamodb"
    assert signed_service(signed("kinesis")) == "kinesis"
    assert signed_service({}) is None
    assert signed_service({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}) is None


def test_dynamodb_requests_run_one_at_a_time_and_keep_their_body() -> None:
    # GIVEN the middleware around an app that notes overlapping requests
    recorder = OverlapRecorder()
    app = AtomicRequests(recorder)
    # WHEN four DynamoDB requests arrive at once
    bodies = serve_at_once(app, signed("dynamodb"), 4)
    # THEN they never overlapped, and each response body is whole
    assert recorder.most_active == 1
    assert bodies == [[b"part one, part two"]] * 4


def test_s3_and_unsigned_requests_stay_concurrent() -> None:
    for environ in (signed("s3"), {}):
        # GIVEN the middleware around an app that notes overlapping requests
        recorder = OverlapRecorder()
        # WHEN four such requests arrive at once
        serve_at_once(AtomicRequests(recorder), environ, 4)
        # THEN they ran side by side
        assert recorder.most_active > 1
