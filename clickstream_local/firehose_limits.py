"""Firehose's size limits on PutRecord and PutRecordBatch, enforced on the local endpoint.

Moto's Firehose accepts a call of any size and writes it. AWS refuses, whoever the caller:

- a record over 1,000 KiB (1,024,000 bytes of data, before base64): ``ValidationException``,
  naming each such record (``records.<n>.member.data``, counted from 1; ``record.data`` for
  PutRecord);
- a PutRecordBatch of no record or of more than 500: ``ValidationException`` on ``records``;
- a PutRecordBatch whose records hold more than 4 MiB of data: ``InvalidArgumentException``,
  ``Records size exceeds 4 MB limit``.

:class:`FirehoseLimits` refuses such a call the same way before moto sees it, so nothing of it
is delivered; :func:`put_limit_refusal` is the rule, without I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clickstream_local.wsgi import WsgiApp, read_body, signed_service

MAX_RECORD_BYTES = 1_024_000
"""One record's data, before base64: 1,000 KiB."""
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
"""A PutRecordBatch call's records and the sum of their data: 500 and 4 MiB."""


@dataclass(frozen=True)
class LimitRefusal:
    """The error AWS answers a call beyond the limits with."""

    code: str
    message: str


def put_limit_refusal(operation: str | None, request: dict[str, Any]) -> LimitRefusal | None:
    """Why AWS would refuse this Firehose call for its size, or ``None`` if it is within limits.

    ``operation`` is the JSON-protocol target's operation (``PutRecordBatch``), ``request`` the
    decoded JSON body. Other operations, and a body whose records cannot be read (left to moto's
    own parsing), are never refused here.
    """
    if operation == "PutRecord":
        record = request.get("Record")
        size = _data_bytes(record)
        if size is not None and size > MAX_RECORD_BYTES:
            return _validation_error(["record.data"], MAX_RECORD_BYTES)
        return None
    if operation != "PutRecordBatch":
        return None
    records = request.get("Records")
    if not isinstance(records, list):
        return None
    if not 1 <= len(records) <= MAX_RECORDS_PER_CALL:
        bound = (
            f"less than or equal to {MAX_RECORDS_PER_CALL}"
            if records
            else "greater than or equal to 1"
        )
        return LimitRefusal(
            "ValidationException",
            "1 validation error detected: Value at 'records' failed to satisfy constraint: "
            f"Member must have length {bound}",
        )
    sizes = [_data_bytes(record) for record in records]
    too_large = [
        f"records.{position}.member.data"
        for position, size in enumerate(sizes, start=1)
        if size is not None and size > MAX_RECORD_BYTES
    ]
    if too_large:
        return _validation_error(too_large, MAX_RECORD_BYTES)
    if sum(size or 0 for size in sizes) > MAX_BYTES_PER_CALL:
        return LimitRefusal("InvalidArgumentException", "Records size exceeds 4 MB limit")
    return None


def _validation_error(fields: list[str], limit: int) -> LimitRefusal:
    count = len(fields)
    errors = "; ".join(
        f"Value at '{name}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
        for name in fields
    )
    noun = "error" if count == 1 else "errors"
    return LimitRefusal("ValidationException", f"{count} validation {noun} detected: {errors}")


def _data_bytes(record: Any) -> int | None:
    """The bytes of a record's base64 ``Data``, or ``None`` when it cannot be read."""
    if not isinstance(record, dict) or not isinstance(record.get("Data"), str):
        return None
    try:
        return len(base64.b64decode(record["Data"], validate=True))
    except (binascii.Error, ValueError):
        return None


class FirehoseLimits:
    """WSGI middleware: a Firehose put beyond AWS's size limits gets AWS's error, not moto."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if signed_service(environ) != "firehose" or not target:
            return self.app(environ, start_response)
        try:
            request = json.loads(read_body(environ) or b"{}")
        except ValueError:
            return self.app(environ, start_response)
        operation = target.rsplit(".", 1)[-1]
        refusal = put_limit_refusal(operation, request if isinstance(request, dict) else {})
        if refusal is None:
            return self.app(environ, start_response)
        body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
