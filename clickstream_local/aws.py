"""boto3 clients bound to the local endpoint, as the administrator or as a template role.

The local endpoint enforces IAM (``clickstream_local.iam_endpoint``): the administrator key
(``testing``) may do everything, and everything that acts for a function, a delivery stream or
a Glue job uses the temporary credentials of that resource's role, from ``sts:AssumeRole`` on the
endpoint, so each call is checked against the role's policies as on AWS. The endpoint's control
API (``/_clickstream/iam/...``) takes the roles, DirectPut destinations and search domains it
enforces, and reports its decisions.
"""

from __future__ import annotations

import functools
import json
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from clickstream_local.cfn import LOCAL_REGION

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""The local administrator's credentials (the stack's set-up and bookkeeping, and its user)."""

SEARCH_PREFIX = "/_clickstream/search/"
"""``<endpoint><SEARCH_PREFIX><domain>/<path>``: a search domain's HTTP API on the local endpoint,
authorized like OpenSearch Service, then forwarded to the local node."""


@dataclass(frozen=True)
class Credentials:
    """AWS credentials: the administrator's, or a role's temporary ones."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def client_arguments(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.client``."""
        arguments = {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }
        if self.session_token:
            arguments["aws_session_token"] = self.session_token
        return arguments

    def environment(self) -> dict[str, str]:
        """The standard environment variables for these credentials."""
        return {name.upper(): value for name, value in self.client_arguments().items()}


ADMIN = Credentials(
    LOCAL_CREDENTIALS["aws_access_key_id"], LOCAL_CREDENTIALS["aws_secret_access_key"]
)


def client_environment(endpoint_url: str, credentials: Credentials = ADMIN) -> dict[str, str]:
    """Environment variables that point unmodified AWS code (handlers, jobs) at the local stack."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        **credentials.environment(),
    }


def local_client(
    service: str, endpoint_url: str, credentials: Credentials = ADMIN, **config: Any
) -> Any:
    """A boto3 client for ``service`` talking to the local endpoint at ``endpoint_url``."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, **config),
        **credentials.client_arguments(),
    )


@functools.lru_cache(maxsize=256)
def role_credentials(endpoint_url: str, role_arn: str) -> Credentials:
    """Temporary credentials of ``role_arn`` from ``sts:AssumeRole`` on the local endpoint.

    One session per role and endpoint in a process, like a warm container's; the endpoint does
    not expire them.
    """
    answer = local_client("sts", endpoint_url).assume_role(
        RoleArn=role_arn,
        RoleSessionName=role_arn.rsplit("/", 1)[-1][:64],
        DurationSeconds=43200,
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def register_roles(
    endpoint_url: str,
    roles: Iterable[dict[str, Any]],
    delivery_streams: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """Give the local endpoint the policies it enforces for each role; the roles it now knows."""
    document = {"roles": list(roles), "delivery_streams": delivery_streams or {}}
    return list(_post_iam_control(endpoint_url, document)["roles"])


def register_search_domain(
    endpoint_url: str, name: str, node_url: str, access_policy: dict[str, Any]
) -> None:
    """Have the local endpoint serve domain ``name`` from ``node_url``, under its access policy."""
    document = {"search_domains": {name: {"url": node_url, "access_policy": access_policy}}}
    _post_iam_control(endpoint_url, document)


def _post_iam_control(endpoint_url: str, document: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint_url}/_clickstream/iam/roles",
        data=json.dumps(document).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def iam_audit(endpoint_url: str) -> dict[str, Any]:
    """Every authorization decision the local endpoint made, counted by role, action, resource."""
    with urllib.request.urlopen(f"{endpoint_url}/_clickstream/iam/audit", timeout=30) as response:
        return json.loads(response.read())
