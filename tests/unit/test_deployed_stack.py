"""The deployed stack: physical ids from a fake CloudFormation, clients with its region/endpoint."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clickstream_analytics.deployed import OUTPUT_KEYS, DeployedStack
from clickstream_analytics.stack import AnalyticsError
from clickstream_local.cfn import Template
from clickstream_local.provision import Provisioner

ROOT = Path(__file__).resolve().parents[2]


def validation_error(message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationError", "Message": message}}, operation)


class FakeCloudFormation:
    """Answers DescribeStacks and DescribeStackResources for one stack; counts the calls."""

    def __init__(
        self,
        name: str,
        outputs: dict[str, str],
        resources: dict[str, str],
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.outputs = outputs
        self.resources = resources
        self.parameters = parameters or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_stacks(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("DescribeStacks", arguments))
        if arguments["StackName"] != self.name:
            raise validation_error(
                f"Stack with id {arguments['StackName']} does not exist", "DescribeStacks"
            )
        outputs = [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()]
        parameters = [
            {"ParameterKey": key, "ParameterValue": value} for key, value in self.parameters.items()
        ]
        stack = {"StackName": self.name, "Outputs": outputs, "Parameters": parameters}
        return {"Stacks": [stack]}

    def describe_stack_resources(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("DescribeStackResources", arguments))
        logical_id = arguments["LogicalResourceId"]
        if logical_id not in self.resources:
            raise validation_error(
                f"Resource {logical_id} does not exist for stack {self.name}",
                "DescribeStackResources",
            )
        resource = {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": self.resources[logical_id],
        }
        return {"StackResources": [resource]}


class FakeSession:
    """A boto3 session stand-in: one region, and the fake client for every service asked."""

    def __init__(self, cloudformation: FakeCloudFormation, region: str = "eu-west-1") -> None:
        self.region_name = region
        self.cloudformation = cloudformation
        self.clients: list[tuple[str, dict[str, Any]]] = []

    def client(self, service: str, **arguments: Any) -> Any:
        self.clients.append((service, arguments))
        return self.cloudformation

    def get_credentials(self) -> None:
        return None


def deployed(
    outputs: dict[str, str], resources: dict[str, str], parameters: dict[str, str] | None = None
) -> DeployedStack:
    fake = FakeCloudFormation("shop", outputs, resources, parameters)
    return DeployedStack("shop", FakeSession(fake), ROOT / "sql", "http://127.0.0.1:5000")


def test_physical_ids_come_from_the_outputs_with_one_describe_stacks() -> None:
    # GIVEN a stack whose outputs name its bucket, database and workgroup
    stack = deployed(
        {
            "RawBucketName": "shop-raw",
            "GlueDatabaseName": "db_shop",
            "AnalyticsWorkGroupName": "wg",
        },
        {},
    )
    # WHEN the read side asks for their physical ids, twice
    ids = [stack.physical_id(logical_id) for logical_id in ("RawBucket", "GlueDatabase") * 2]
    # THEN the outputs answer, read with a single DescribeStacks call
    assert ids == ["shop-raw", "db_shop"] * 2
    assert stack.physical_id("AnalyticsWorkGroup") == "wg"
    fake = stack.session.cloudformation
    assert [name for name, _ in fake.calls] == ["DescribeStacks"]


def test_parameters_come_from_the_same_describe_stacks_as_the_outputs() -> None:
    # GIVEN a stack deployed with a clock skew of 120 s
    stack = deployed({"RawBucketName": "shop-raw"}, {}, {"MaxClockSkewSeconds": "120"})
    # WHEN the read side asks for the parameter and an output
    skew = stack.parameter("MaxClockSkewSeconds")
    bucket = stack.physical_id("RawBucket")
    # THEN both come from one DescribeStacks call
    assert (skew, bucket) == ("120", "shop-raw")
    assert [name for name, _ in stack.session.cloudformation.calls] == ["DescribeStacks"]
    # AND a parameter the stack does not have is a one-line error
    with pytest.raises(AnalyticsError, match="has no parameter Missing"):
        stack.parameter("Missing")


def test_a_resource_without_an_output_is_found_by_its_logical_id() -> None:
    # GIVEN a stack without an output for its window state table
    stack = deployed({"RawBucketName": "shop-raw"}, {"WindowStateTable": "shop-window-state"})
    # WHEN its physical id is asked for
    physical_id = stack.physical_id("WindowStateTable")
    # THEN DescribeStackResources by LogicalResourceId answers
    assert physical_id == "shop-window-state"
    calls = stack.session.cloudformation.calls
    assert calls[-1] == (
        "DescribeStackResources",
        {"StackName": "shop", "LogicalResourceId": "WindowStateTable"},
    )
    assert stack.has_resource("WindowStateTable")


def test_a_missing_resource_or_stack_is_a_one_line_error() -> None:
    # GIVEN a stack that has no window results table
    stack = deployed({}, {})
    # THEN asking for it says so, and has_resource is False
    with pytest.raises(AnalyticsError, match="has no resource WindowResultsTable"):
        stack.physical_id("WindowResultsTable")
    assert not stack.has_resource("WindowResultsTable")
    # AND a stack name that does not exist names the stack and region
    other = DeployedStack("nope", stack.session, ROOT / "sql")
    with pytest.raises(AnalyticsError, match="no stack 'nope' in eu-west-1"):
        other.physical_id("RawBucket")


def test_clients_use_the_stack_region_and_endpoint() -> None:
    # GIVEN a deployed stack with an endpoint URL
    stack = deployed({}, {})
    # WHEN a client is made
    stack.client("s3")
    # THEN it gets the stack's region and endpoint
    service, arguments = stack.session.clients[-1]
    assert service == "s3"
    assert arguments["region_name"] == "eu-west-1"
    assert arguments["endpoint_url"] == "http://127.0.0.1:5000"


def test_without_a_search_output_there_is_no_search_client() -> None:
    assert deployed({"RawBucketName": "shop-raw"}, {}).search_client() is None


def test_connect_without_any_region_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN no region in the environment or the AWS configuration
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    # THEN connecting asks for one
    with pytest.raises(AnalyticsError, match="give --region"):
        DeployedStack.connect("shop", ROOT / "sql")


def test_the_local_stack_registers_every_output_the_read_side_resolves() -> None:
    # GIVEN the project's template as the local stack provisions it
    template = Template.load(ROOT / "template.yaml", stack_name="shop")
    outputs = Provisioner(template, "http://127.0.0.1:5000").stack_outputs()
    # THEN every output the deployed stack looks up is there, equal to the template's physical id
    for logical_id, key in OUTPUT_KEYS.items():
        assert outputs[key] == template.physical_id(logical_id), key
    # AND the search domain's endpoint is the local endpoint's signed route to it
    domain = template.physical_id("SearchDomain")
    assert outputs["SearchDomainEndpoint"] == f"http://127.0.0.1:5000/_clickstream/search/{domain}"


def test_the_read_side_never_imports_the_local_stack() -> None:
    # GIVEN every module of clickstream_analytics
    imported = set()
    for path in (ROOT / "clickstream_analytics").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
            if isinstance(node, ast.Import):
                imported.update((path.name, alias.name) for alias in node.names)
    # THEN none of them imports clickstream_local (or the CLI)
    assert [
        (name, module)
        for name, module in imported
        if module.split(".")[0] in ("clickstream_local", "clickstream_cli")
    ] == []
