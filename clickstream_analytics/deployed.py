"""A deployed stack, found by its CloudFormation name and region (``sam deploy``'s stack).

Physical ids come from the stack's Outputs (one ``DescribeStacks``) for the resources the template
exports, and otherwise from ``DescribeStackResources`` by logical id. Clients use the default
credential chain, the stack's region and, when given, an endpoint URL (an emulator, or a VPC
endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from clickstream_analytics.stack import AnalyticsError

OUTPUT_KEYS: dict[str, str] = {
    "ClickstreamStream": "StreamName",
    "RawBucket": "RawBucketName",
    "CuratedBucket": "CuratedBucketName",
    "GlueDatabase": "GlueDatabaseName",
    "AnalyticsWorkGroup": "AnalyticsWorkGroupName",
    "WindowResultsTable": "WindowResultsTableName",
    "WindowStateTable": "WindowStateTableName",
    "FailedBatchBucket": "FailedBatchBucketName",
    "WindowCounterFunction": "WindowCounterFunctionName",
}
"""Logical id -> the template output holding its physical id."""

SEARCH_ENDPOINT_OUTPUT = "SearchDomainEndpoint"
"""The output with the search domain's endpoint (a host name, or a URL)."""


@dataclass
class DeployedStack:
    """A CloudFormation stack read through the AWS APIs (implements ``Stack``)."""

    stack_name: str
    session: Any
    """A ``boto3.session.Session`` (or anything with ``client()``, ``region_name`` and
    ``get_credentials()``)."""
    sql_path: Path
    endpoint_url: str | None = None
    _stack: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _ids: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def connect(
        cls,
        stack_name: str,
        sql_path: Path,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> DeployedStack:
        """The stack ``stack_name`` in ``region`` (default: the AWS configuration's region)."""
        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise AnalyticsError("no AWS region: give --region or set AWS_REGION")
        return cls(stack_name, session, sql_path, endpoint_url)

    @property
    def region(self) -> str:
        """The stack's region."""
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in the stack's region (and endpoint, if given)."""
        return self.session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def outputs(self) -> dict[str, str]:
        """The stack's outputs by key (``DescribeStacks``, read once)."""
        outputs = self._description().get("Outputs", [])
        return {item["OutputKey"]: item["OutputValue"] for item in outputs}

    def parameter(self, name: str) -> str:
        """The value the stack was deployed with for the template parameter ``name``."""
        for item in self._description().get("Parameters", []):
            if item["ParameterKey"] == name:
                return str(item.get("ResolvedValue", item["ParameterValue"]))
        raise AnalyticsError(f"stack {self.stack_name!r} has no parameter {name}")

    def _description(self) -> dict[str, Any]:
        """The stack as ``DescribeStacks`` gives it, read once."""
        if self._stack is None:
            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)
            except ClientError as error:
                raise AnalyticsError(
                    f"no stack {self.stack_name!r} in {self.region}: "
                    f"{error.response['Error'].get('Message', error)}"
                ) from None
            self._stack = stacks["Stacks"][0]
        return self._stack

    def physical_id(self, logical_id: str) -> str:
        """From the stack's outputs, else from ``DescribeStackResources`` by logical id."""
        if logical_id in self._ids:
            return self._ids[logical_id]
        output = OUTPUT_KEYS.get(logical_id)
        if output is not None and output in self.outputs():
            self._ids[logical_id] = self.outputs()[output]
            return self._ids[logical_id]
        try:
            resources = self.client("cloudformation").describe_stack_resources(
                StackName=self.stack_name, LogicalResourceId=logical_id
            )["StackResources"]
        except ClientError as error:
            raise AnalyticsError(
                f"stack {self.stack_name!r} has no resource {logical_id}: "
                f"{error.response['Error'].get('Message', error)}"
            ) from None
        if not resources or not resources[0].get("PhysicalResourceId"):
            raise AnalyticsError(f"stack {self.stack_name!r} has no resource {logical_id}")
        self._ids[logical_id] = resources[0]["PhysicalResourceId"]
        return self._ids[logical_id]

    def has_resource(self, logical_id: str) -> bool:
        """Whether the stack has ``logical_id`` (as an output or a resource)."""
        try:
            self.physical_id(logical_id)
        except AnalyticsError:
            return False
        return True

    def sql_folder(self) -> Path:
        """The ``sql/`` folder the stack's named queries were deployed from."""
        return self.sql_path

    def search_client(self) -> Any | None:
        """A SigV4-signing OpenSearch client for the domain in the stack's outputs, if any."""
        endpoint = self.outputs().get(SEARCH_ENDPOINT_OUTPUT)
        if not endpoint:
            return None
        from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth

        credentials = self.session.get_credentials()
        if credentials is None:
            raise AnalyticsError("no AWS credentials to sign the search domain's requests")
        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        auth = Urllib3AWSV4SignerAuth(credentials, self.region, "es")
        return OpenSearch(hosts=[url], http_auth=auth, timeout=60)
