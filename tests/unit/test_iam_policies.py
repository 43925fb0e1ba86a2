"""The AWS managed policy documents kept in clickstream_local/data/managed_policies.json."""

from __future__ import annotations

import re

import pytest

from clickstream_local.iam_policies import (
    REFERENCE_URL,
    UnknownManagedPolicyError,
    managed_policy_document,
    managed_policy_entries,
)

ATTACHED_BY_TEMPLATES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}
"""Policies SAM or templates of this kind attach: SAM's defaults, Glue's, SAM's event sources'."""


def test_the_data_file_holds_the_policies_templates_attach() -> None:
    # GIVEN the data file's entries
    # WHEN their ARNs are listed
    arns = {entry["arn"] for entry in managed_policy_entries()}
    # THEN each policy SAM or the templates attach is there, once
    assert arns >= ATTACHED_BY_TEMPLATES
    assert len(arns) == len(managed_policy_entries())


def test_every_entry_names_its_reference_page_version_and_a_policy_document() -> None:
    # GIVEN every entry of the data file
    for entry in managed_policy_entries():
        name = entry["arn"].rsplit("/", 1)[-1]
        # WHEN its fields are read
        document = entry["document"]
        # THEN it was copied from AWS's reference page of that policy, at a named version
        assert re.fullmatch(r"arn:aws:iam::aws:policy/(service-role/)?\w+", entry["arn"])
        assert entry["source"] == REFERENCE_URL.format(name=name)
        assert re.fullmatch(r"v\d+", entry["version"]), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z", entry["edited"]), name
        # AND the document is an IAM policy of Allow statements with actions and resources
        assert document["Version"] == "2012-10-17"
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", name
            assert statement["Action"] and statement["Resource"], name


def test_managed_policy_document_returns_a_copy() -> None:
    # GIVEN the basic execution role's document, changed by its caller
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    document = managed_policy_document(arn)
    document["Statement"].clear()
    # WHEN it is asked for again
    again = managed_policy_document(arn)
    # THEN the stored document is intact: log writing on every log group
    assert again["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ]


def test_an_unknown_managed_policy_names_the_data_file_and_the_reference_page() -> None:
    # GIVEN a managed policy the data file does not hold
    arn = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
    # WHEN its document is asked for
    # THEN the error names the data file to add it to, and where to copy it from
    with pytest.raises(UnknownManagedPolicyError) as raised:
        managed_policy_document(arn)
    message = str(raised.value)
    assert "clickstream_local/data/managed_policies.json" in message
    assert REFERENCE_URL.format(name="AmazonS3FullAccess") in message
