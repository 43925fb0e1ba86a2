"""What the local endpoint's middleware reads of a WSGI request: its signature and its body."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Signature:
    """Who signed a SigV4 request, and for which region and service."""

    access_key_id: str
    region: str
    service: str


def request_signature(environ: dict[str, Any]) -> Signature | None:
    """The SigV4 credential scope of a request (header or presigned query), or None if unsigned."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
        match = _CREDENTIAL_SCOPE.search(f"Credential={credential}/aws4_request")
    if match is None:
        return None
    return Signature(match.group(1), match.group(2), match.group(3))


def signed_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4-signed request is for (its credential scope), or None if unsigned."""
    signature = request_signature(environ)
    return signature.service if signature else None


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read from ``wsgi.input`` and put back for the application.

    A chunked body (``wsgi.input_terminated``) is read to its end, any other for its
    ``Content-Length``.
    """
    if environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
