"""The local stack's adaptations of the template: the bucket policy, and Firehose prefixes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from clickstream_local.firehose import render_prefix
from clickstream_local.provision import local_bucket_policy

# ---------------------------------------------------------------------------- local policy


TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
READ_ONLY = {
    "Sid": "AllowRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::b/*",
}
DENY_DELETE = {
    "Sid": "DenyDeleteFromOutside",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:DeleteObject",
    "Resource": "arn:aws:s3:::b/*",
    "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}},
}


def test_local_bucket_policy_drops_only_the_secure_transport_statement() -> None:
    # GIVEN a policy with a TLS-only deny between two other statements
    document = {"Version": "2012-10-17", "Statement": [READ_ONLY, TLS_ONLY, DENY_DELETE]}
    original = copy.deepcopy(document)
    # WHEN it is adapted for the plain-HTTP local endpoint
    local = local_bucket_policy(document)
    # THEN only the TLS statement is gone, in order, and the input is unchanged
    assert local == {"Version": "2012-10-17", "Statement": [READ_ONLY, DENY_DELETE]}
    assert document == original


def test_local_bucket_policy_accepts_a_single_statement() -> None:
    # GIVEN policies whose Statement is a single object
    # WHEN they are adapted
    # THEN a TLS-only statement leaves an empty list, any other is kept as a list
    assert local_bucket_policy({"Statement": TLS_ONLY})["Statement"] == []
    assert local_bucket_policy({"Statement": READ_ONLY})["Statement"] == [READ_ONLY]


def test_local_bucket_policy_of_the_project_bucket_is_empty(template: dict[str, Any]) -> None:
    # GIVEN the project's raw bucket policy, which only requires TLS
    document = template["Resources"]["RawBucketPolicy"]["Properties"]["PolicyDocument"]
    # WHEN it is adapted
    local = local_bucket_policy(document)
    # THEN nothing is left to apply locally, and the version is kept
    assert local == {"Version": "2012-10-17", "Statement": []}


# ---------------------------------------------------------------------------- prefixes


ARRIVAL = datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prefix", "error_type", "expected"),
    [
        (
            "rawdata/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
            None,
            "rawdata/2026/03/07/04/",
        ),
        (
            "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/",
            None,
            "errors/processing-failed/2026/03/",
        ),
        (
            "errors/!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/",
            "format-conversion-failed",
            "errors/format-conversion-failed/2026-03-07/",
        ),
        ("rawdata/", None, "rawdata/2026/03/07/04/"),
        ("", None, "2026/03/07/04/"),
        ("at/!{timestamp:HH:mm:ss}/", None, "at/04:05:06/"),
    ],
    ids=[
        "hourly-partitions",
        "default-error-type",
        "given-error-type",
        "no-expression",
        "empty",
        "minutes-seconds",
    ],
)
def test_render_prefix(prefix: str, error_type: str | None, expected: str) -> None:
    # GIVEN a Firehose prefix and an arrival time in UTC
    # WHEN it is rendered
    rendered = render_prefix(prefix, ARRIVAL, error_type)
    # THEN expressions are evaluated, and a prefix without any gets YYYY/MM/DD/HH/ appended
    assert rendered == expected


def test_render_prefix_of_the_project_template(template: dict[str, Any]) -> None:
    # GIVEN the raw delivery stream's prefixes
    destination = template["Resources"]["RawDeliveryStream"]["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    # WHEN they are rendered for one arrival time
    data = render_prefix(destination["Prefix"], ARRIVAL)
    errors = render_prefix(destination["ErrorOutputPrefix"], ARRIVAL, "processing-failed")
    # THEN data lands in the hourly partition the Glue table projects, errors elsewhere
    assert data == "rawdata/2026/03/07/04/"
    assert errors == "errors/rawdata/processing-failed/2026/03/07/04/"


def test_render_prefix_rejects_unknown_expressions() -> None:
    # GIVEN a prefix with an expression Firehose does not define
    # WHEN it is rendered
    # THEN it fails naming the expression
    with pytest.raises(ValueError, match=r"!\{partitionKeyFromQuery:custid\}"):
        render_prefix("x/!{partitionKeyFromQuery:custid}/", ARRIVAL)


def test_secure_transport_statements_are_dropped_whatever_the_key_case() -> None:
    # GIVEN a TLS-only statement whose condition key is spelled in lower case (IAM ignores case)
    document = {
        "Statement": [
            {"Effect": "Deny", "Condition": {"Bool": {"aws:securetransport": "false"}}},
            {"Effect": "Allow", "Action": "s3:GetObject"},
        ]
    }
    # WHEN the local form is computed THEN only the TLS statement is dropped
    assert local_bucket_policy(document)["Statement"] == [
        {"Effect": "Allow", "Action": "s3:GetObject"}
    ]
