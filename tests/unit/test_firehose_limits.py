"""Firehose's size limits on the local endpoint, on a fake WSGI application."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

from clickstream_local.firehose_limits import (
    MAX_BYTES_PER_CALL,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL,
    FirehoseLimits,
    LimitRefusal,
    put_limit_refusal,
)


def records(*sizes: int) -> list[dict[str, str]]:
    """PutRecordBatch records holding ``sizes`` bytes of data each, base64 as on the wire."""
    return [{"Data": base64.b64encode(b"x" * size).decode()} for size in sizes]


def batch(*sizes: int) -> dict[str, Any]:
    return {"DeliveryStreamName": "aggregated", "Records": records(*sizes)}


def test_a_batch_within_every_limit_passes() -> None:
    # GIVEN 500 records of 8,388 bytes: 4,194,000 bytes, just under 4 MiB
    # WHEN checked THEN nothing is refused
    assert put_limit_refusal("PutRecordBatch", batch(*[8388] * 500)) is None
    # AND a record of exactly 1,024,000 bytes passes too
    assert put_limit_refusal("PutRecordBatch", batch(MAX_RECORD_BYTES, 10)) is None
    assert put_limit_refusal("PutRecord", {"Record": records(MAX_RECORD_BYTES)[0]}) is None


def test_a_record_over_1000_kib_is_a_validation_error_naming_it() -> None:
    # GIVEN a batch whose second and third records are one byte over 1,000 KiB
    request = batch(10, MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES + 1)
    # WHEN checked THEN AWS's validation error names both, counted from 1
    assert put_limit_refusal("PutRecordBatch", request) == LimitRefusal(
        "ValidationException",
        "2 validation errors detected: "
        "Value at 'records.2.member.data' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024000; "
        "Value at 'records.3.member.data' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024000",
    )


def test_a_single_record_over_1000_kib_is_refused_by_put_record() -> None:
    # GIVEN a PutRecord of 1,024,001 bytes WHEN checked THEN its data is named
    refusal = put_limit_refusal("PutRecord", {"Record": records(MAX_RECORD_BYTES + 1)[0]})
    assert refusal is not None and refusal.code == "ValidationException"
    assert "'record.data'" in refusal.message


def test_a_batch_of_501_records_or_of_none_is_a_validation_error() -> None:
    # GIVEN batches of 501 records and of none WHEN checked THEN both break the records' length
    too_many = put_limit_refusal("PutRecordBatch", batch(*[1] * (MAX_RECORDS_PER_CALL + 1)))
    assert too_many == LimitRefusal(
        "ValidationException",
        "1 validation error detected: Value at 'records' failed to satisfy constraint: "
        "Member must have length less than or equal to 500",
    )
    empty = put_limit_refusal("PutRecordBatch", batch())
    assert empty is not None and "greater than or equal to 1" in empty.message


def test_a_batch_over_4_mib_is_an_invalid_argument() -> None:
    # GIVEN five records of 1,000,000 bytes: each within its limit, 5,000,000 bytes in all
    # WHEN checked THEN the call is refused as AWS does
    assert put_limit_refusal("PutRecordBatch", batch(*[1_000_000] * 5)) == LimitRefusal(
        "InvalidArgumentException", "Records size exceeds 4 MB limit"
    )
    # AND exactly 4 MiB passes
    exact = [MAX_RECORD_BYTES] * 4 + [MAX_BYTES_PER_CALL - 4 * MAX_RECORD_BYTES]
    assert put_limit_refusal("PutRecordBatch", batch(*exact)) is None


def test_other_operations_are_not_checked() -> None:
    # GIVEN a call that puts no record WHEN checked THEN it is left to moto
    assert put_limit_refusal("DescribeDeliveryStream", {"DeliveryStreamName": "a"}) is None


class Recorder:
    """A WSGI app that records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.bodies.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"{}"]


def firehose_call(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """A WSGI environ of a signed Firehose JSON call."""
    payload = json.dumps(body).encode()
    return {
        "HTTP_AUTHORIZATION": (
            "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/"
            "firehose/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
        ),
        "HTTP_X_AMZ_TARGET": f"Firehose_20150804.{operation}",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }


def test_a_call_beyond_the_limits_gets_aws_error_and_never_reaches_moto() -> None:
    # GIVEN the middleware in front of an application
    app = Recorder()
    limits = FirehoseLimits(app)
    statuses: list[str] = []
    # WHEN a batch of 501 records is put
    answer = limits(
        firehose_call("PutRecordBatch", batch(*[1] * 501)),
        lambda status, headers: statuses.append(status),
    )
    # THEN it is refused with a JSON-protocol error, and the application never saw it
    assert statuses == ["400 Bad Request"]
    assert json.loads(b"".join(answer))["__type"] == "ValidationException"
    assert app.bodies == []
    # WHEN a batch within the limits is put THEN it reaches the application whole
    within = firehose_call("PutRecordBatch", batch(3, 4))
    limits(within, lambda status, headers: statuses.append(status))
    assert statuses[-1] == "200 OK"
    assert json.loads(app.bodies[0]) == batch(3, 4)
