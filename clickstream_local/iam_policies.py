"""AWS managed policy documents, from the copies kept in ``clickstream_local/data``.

A template that attaches an AWS managed policy (``ManagedPolicyArns``, or the policies SAM adds
to the role it creates for a function) grants whatever that policy's current version allows. The
documents are not in the template, so ``managed_policies.json`` keeps a copy of each one the
project's templates attach, with the reference page it was copied from and its version.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

DATA_FILE = "clickstream_local/data/managed_policies.json"
"""Where the documents live, as named in error messages."""

REFERENCE_URL = "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/{name}.html"
"""AWS's managed policy reference page of a policy, by its name."""


class UnknownManagedPolicyError(LookupError):
    """An AWS managed policy whose document the data file does not hold."""


def managed_policy_document(arn: str) -> dict[str, Any]:
    """The document of the AWS managed policy ``arn`` (a copy), e.g. ``arn:aws:iam::aws:policy/X``.

    Raises :class:`UnknownManagedPolicyError`, naming the data file, for an ARN it does not hold.
    """
    entry = _entries().get(arn)
    if entry is None:
        name = arn.rsplit("/", 1)[-1]
        raise UnknownManagedPolicyError(
            f"no document for the managed policy {arn!r} in {DATA_FILE}: add it from "
            f"{REFERENCE_URL.format(name=name)} (with its source and version)"
        )
    return copy.deepcopy(entry["document"])


def managed_policy_entries() -> list[dict[str, Any]]:
    """Every entry of the data file (arn, source, version, edited, document), as copies."""
    return [copy.deepcopy(entry) for entry in _entries().values()]


@functools.cache
def _entries() -> dict[str, dict[str, Any]]:
    """The data file's entries by ARN, read once."""
    path = resources.files("clickstream_local").joinpath("data", "managed_policies.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {entry["arn"]: entry for entry in data["policies"]}
