"""boto3 clients bound to the local moto endpoint, with throwaway credentials."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from clickstream_local.cfn import LOCAL_REGION

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client_environment(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point unmodified AWS code (handlers, jobs) at the local stack."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


def local_client(service: str, endpoint_url: str, **config: Any) -> Any:
    """A boto3 client for ``service`` talking to the moto server at ``endpoint_url``."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, **config),
        **LOCAL_CREDENTIALS,
    )
