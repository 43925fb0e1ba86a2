"""Read ``template.yaml`` the way CloudFormation would, for local provisioning.

Loads the YAML short-form intrinsics, applies SAM ``Globals`` to functions, and resolves ``Ref``,
``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::If`` and friends to the physical names and
ARNs the local stack uses. The template stays the single source of truth for resources.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "us-east-1"
DEFAULT_STACK_NAME = "clickstream"

NO_VALUE = object()
"""Marker for ``AWS::NoValue``: the key or list item is dropped."""


class TemplateError(ValueError):
    """The template uses something the local reader cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader turning ``!Ref x`` into ``{"Ref": x}``, ``!Sub s`` into ``{"Fn::Sub": s}``."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template_document(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into plain dicts."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return document


@dataclass(frozen=True)
class Resource:
    """One resource with its properties already resolved to local values."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    physical_id: str


@dataclass
class Template:
    """A loaded template bound to a stack name, account, region and parameter values."""

    document: dict[str, Any]
    stack_name: str = DEFAULT_STACK_NAME
    account_id: str = LOCAL_ACCOUNT_ID
    region: str = LOCAL_REGION
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> Template:
        """Load ``path`` and bind it to ``stack_name`` with optional parameter overrides."""
        return cls(
            load_template_document(path),
            stack_name=stack_name,
            parameter_overrides=dict(parameter_overrides or {}),
        )

    def __post_init__(self) -> None:
        declared = self.document.get("Parameters", {})
        unknown = set(self.parameter_overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        self.parameters: dict[str, str] = {}
        for name, spec in declared.items():
            if name in self.parameter_overrides:
                self.parameters[name] = _text(self.parameter_overrides[name])
            elif "Default" in spec:
                self.parameters[name] = _text(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no Default and no override")
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------ resources
    def resources(self, *types: str) -> list[Resource]:
        """Resources of the given types (all when none given), with properties resolved."""
        found = []
        for logical_id, spec in self.document["Resources"].items():
            if types and spec["Type"] not in types:
                continue
            if "Condition" in spec and not self.condition(spec["Condition"]):
                continue
            found.append(self.resource(logical_id))
        return found

    def resource(self, logical_id: str) -> Resource:
        """One resource by logical id, with SAM Globals applied and intrinsics resolved."""
        spec = self._spec(logical_id)
        properties = copy.deepcopy(spec.get("Properties", {}))
        if spec["Type"] == "AWS::Serverless::Function":
            properties = _merge_globals(
                self.document.get("Globals", {}).get("Function", {}), properties
            )
        resolved = self.resolve(properties)
        return Resource(logical_id, spec["Type"], resolved, self.physical_id(logical_id))

    def _spec(self, logical_id: str) -> dict[str, Any]:
        resources = self.document["Resources"]
        if logical_id in resources:
            return resources[logical_id]
        function_id = logical_id.removesuffix("Role")
        if function_id != logical_id and resources.get(function_id, {}).get("Type") == (
            "AWS::Serverless::Function"
        ):
            # SAM creates <Function>Role for a function without an explicit Role.
            return {"Type": "AWS::IAM::Role", "Properties": {}}
        raise TemplateError(f"no resource {logical_id!r} in the template")

    def physical_id(self, logical_id: str) -> str:
        """The name the resource gets: its explicit name property, else ``<stack>-<logicalid>``."""
        spec = self._spec(logical_id)
        name_key = _NAME_PROPERTIES.get(spec["Type"])
        properties = spec.get("Properties", {})
        if name_key is not None:
            value: Any = properties
            for part in name_key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                resolved = self.resolve(value)
                if resolved is not NO_VALUE:
                    return _text(resolved)
        return f"{self.stack_name}-{logical_id}".lower()

    def arn(self, logical_id: str) -> str:
        """The ARN a deployed resource would have."""
        kind = self._spec(logical_id)["Type"]
        name = self.physical_id(logical_id)
        partition, region, account = "aws", self.region, self.account_id
        formats = {
            "AWS::Kinesis::Stream": f"arn:{partition}:kinesis:{region}:{account}:stream/{name}",
            "AWS::S3::Bucket": f"arn:{partition}:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:{partition}:dynamodb:{region}:{account}:table/{name}",
            "AWS::SQS::Queue": f"arn:{partition}:sqs:{region}:{account}:{name}",
            "AWS::SNS::Topic": f"arn:{partition}:sns:{region}:{account}:{name}",
            "AWS::KinesisFirehose::DeliveryStream": (
                f"arn:{partition}:firehose:{region}:{account}:deliverystream/{name}"
            ),
            "AWS::IAM::Role": f"arn:{partition}:iam::{account}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
            "AWS::Serverless::Function": (
                f"arn:{partition}:lambda:{region}:{account}:function:{name}"
            ),
            "AWS::Serverless::LayerVersion": (
                f"arn:{partition}:lambda:{region}:{account}:layer:{name}:1"
            ),
            "AWS::Glue::Database": f"arn:{partition}:glue:{region}:{account}:database/{name}",
            "AWS::CloudWatch::Alarm": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
        }
        if kind == "AWS::Kinesis::StreamConsumer":
            properties = self.resolve(self._spec(logical_id)["Properties"])
            return f"{properties['StreamARN']}/consumer/{properties['ConsumerName']}:0"
        if kind not in formats:
            return f"arn:{partition}:local:{region}:{account}:{kind}/{name}"
        return formats[kind]

    def find_by_arn(self, arn: str) -> Resource | None:
        """The resource whose ARN (or stream-consumer ARN) is ``arn``, if declared."""
        for logical_id in self.document["Resources"]:
            if self.arn(logical_id) == arn:
                return self.resource(logical_id)
        return None

    # ------------------------------------------------------------------ intrinsics
    def condition(self, name: str) -> bool:
        """Evaluate a named condition of the template."""
        if name not in self._conditions:
            expression = self.document.get("Conditions", {}).get(name)
            if expression is None:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(expression))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside ``value``."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, argument)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local template reader")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def ref(self, name: str) -> Any:
        """``Ref``: a parameter value, a pseudo parameter, or a resource's physical id."""
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
            ),
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self._spec(name)["Type"]
        if kind == "AWS::SQS::Queue":
            return f"http://local/{self.account_id}/{self.physical_id(name)}"
        if kind in ("AWS::Serverless::LayerVersion", "AWS::SNS::Topic"):
            return self.arn(name)
        if kind == "AWS::Kinesis::StreamConsumer":
            return self.arn(name)
        return self.physical_id(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        """``Fn::GetAtt``: the attributes the project's resources expose."""
        kind = self._spec(logical_id)["Type"]
        if attribute in ("Arn", "ConsumerARN", "StreamArn") and not (
            kind == "AWS::DynamoDB::Table" and attribute == "StreamArn"
        ):
            return self.arn(logical_id)
        if attribute in ("QueueName", "Name"):
            return self.physical_id(logical_id)
        if attribute == "QueueUrl":
            return str(self.ref(logical_id))
        if attribute == "DomainEndpoint":
            return f"{self.physical_id(logical_id)}.{self.region}.es.amazonaws.com"
        if attribute == "DomainArn":
            return (
                f"arn:aws:es:{self.region}:{self.account_id}:domain/{self.physical_id(logical_id)}"
            )
        if attribute == "StreamArn":
            return f"{self.arn(logical_id)}/stream/local"
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not supported locally")

    def sub(self, argument: Any) -> str:
        """``Fn::Sub`` with ``${Param}``, ``${Res.Attr}``, ``${!Literal}`` and a variables map."""
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _merge_globals(
    globals_: dict[str, Any], properties: dict[str, Any], path: str = ""
) -> dict[str, Any]:
    """SAM Globals: maps merge, lists concatenate (globals first), scalars are overridden.

    As in SAM, an intrinsic function counts as a scalar, and ``Architectures`` is replaced.
    """
    merged = copy.deepcopy(globals_)
    for key, value in properties.items():
        current = merged.get(key)
        child = f"{path}.{key}".lstrip(".")
        if _is_map(current) and _is_map(value):
            merged[key] = _merge_globals(current, value, child)
        elif isinstance(current, list) and isinstance(value, list) and child not in _REPLACED:
            merged[key] = current + value
        else:
            merged[key] = value
    return merged


_REPLACED = frozenset({"Architectures"})
"""Global list properties SAM replaces rather than concatenates (one architecture per function)."""


def _is_map(value: Any) -> bool:
    """A plain mapping; a single-key ``Ref``/``Condition``/``Fn::*`` dict is a scalar."""
    if not isinstance(value, dict):
        return False
    if len(value) == 1:
        (key,) = value
        return not (key in ("Ref", "Condition") or key.startswith("Fn::"))
    return True


def _text(value: Any) -> str:
    """A scalar as CloudFormation stringifies it: YAML booleans become ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _select(template: Template, argument: list[Any]) -> Any:
    index, items = template.resolve(argument[0]), template.resolve(argument[1])
    return items[int(index)]


_INTRINSICS: dict[str, Any] = {
    "Ref": lambda t, a: t.ref(t.resolve(a)),
    "Fn::GetAtt": lambda t, a: t.get_att(*(a if isinstance(a, list) else a.split(".", 1))),
    "Fn::Sub": lambda t, a: t.sub(a),
    "Fn::Join": lambda t, a: _text(t.resolve(a[0])).join(_text(x) for x in t.resolve(a[1])),
    "Fn::Split": lambda t, a: _text(t.resolve(a[1])).split(t.resolve(a[0])),
    "Fn::Select": _select,
    "Fn::If": lambda t, a: t.resolve(a[1] if t.condition(a[0]) else a[2]),
    "Fn::Equals": lambda t, a: _text(t.resolve(a[0])) == _text(t.resolve(a[1])),
    "Fn::Not": lambda t, a: not t.resolve(a[0]),
    "Fn::And": lambda t, a: all(t.resolve(x) for x in a),
    "Fn::Or": lambda t, a: any(t.resolve(x) for x in a),
    "Condition": lambda t, a: t.condition(a),
}

_NAME_PROPERTIES: dict[str, str] = {
    "AWS::Kinesis::Stream": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::Glue::Database": "DatabaseInput.Name",
    "AWS::Glue::Table": "TableInput.Name",
    "AWS::Glue::Job": "Name",
    "AWS::Glue::Workflow": "Name",
    "AWS::Glue::Trigger": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Kinesis::StreamConsumer": "ConsumerName",
    "AWS::OpenSearchService::Domain": "DomainName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}
