"""Create on the moto server every resource ``template.yaml`` declares, by reading the template.

There is no hand-written list of resources: each supported resource type has one function that
turns its (resolved) CloudFormation properties into the matching API calls. IAM roles (declared
ones and those SAM creates for functions) are registered with the local endpoint, which enforces
their policies on every call made with their credentials. Types with no data-plane meaning
locally (log groups, layers, Glue jobs and their triggers, EventBridge rules, Athena workgroups,
CloudWatch alarms and dashboards, DynamoDB auto scaling) are listed as not emulated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from clickstream_local.aws import SEARCH_PREFIX, local_client, register_roles
from clickstream_local.cfn import Resource, Template
from clickstream_local.firehose import render_prefix
from clickstream_local.iam import template_roles

PROVISIONED_TYPES = (
    "AWS::Kinesis::Stream",
    "AWS::Kinesis::StreamConsumer",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
)
"""Resource types created on the moto server."""

RUN_LOCALLY_TYPES = ("AWS::Serverless::Function", "AWS::OpenSearchService::Domain")
"""Resource types the local stack runs itself: functions (event-source runner), OpenSearch."""

ENFORCED_TYPES = ("AWS::IAM::Role",)
"""Resource types whose policies the local endpoint enforces (:mod:`clickstream_local.iam`)."""

NOT_EMULATED_TYPES = (
    "AWS::Logs::LogGroup",
    "AWS::Logs::LogStream",
    "AWS::Serverless::LayerVersion",
    "AWS::Glue::Job",
    "AWS::Glue::Workflow",
    "AWS::Glue::Trigger",
    "AWS::Events::Rule",
    "AWS::Athena::WorkGroup",
    "AWS::Athena::NamedQuery",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)
"""Resource types with no local data-plane meaning, reported as ``not emulated``.

Logs are the daemon's log file, and layers are the local import path. Glue job
scripts run locally with PySpark, not as Glue jobs started by workflows, event triggers and S3
EventBridge rules; queries run with Spark SQL or DuckDB, not in an Athena workgroup. The
daemon evaluates the CloudWatch alarms itself (``clickstream_local.signals``). Moto creates a
provisioned table with its capacity but never throttles it, so there is no capacity to scale:
the tables' scalable targets and target tracking policies act on AWS only.
"""


@dataclass(frozen=True)
class ProvisionedResource:
    """What happened to one template resource."""

    logical_id: str
    type: str
    physical_id: str
    status: str  # "created", "exists", "skipped", "enforced", "run locally" or "not emulated"


class Provisioner:
    """Creates (idempotently) and checks the template's resources on one moto endpoint."""

    def __init__(self, template: Template, endpoint_url: str) -> None:
        self.template = template
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A cached local client for ``service``."""
        if service not in self._clients:
            self._clients[service] = local_client(service, self.endpoint_url)
        return self._clients[service]

    def provision(self) -> list[ProvisionedResource]:
        """Create every supported resource, in dependency-safe type order."""
        results = []
        by_order = sorted(self.template.resources(), key=lambda r: _ORDER.get(r.type, 99))
        for resource in by_order:
            creator = self._creators().get(resource.type)
            if resource.type in ENFORCED_TYPES:
                status = "enforced"
            elif creator is None:
                status = "run locally" if resource.type in RUN_LOCALLY_TYPES else "not emulated"
            elif self.skip_reason(resource):
                status = "skipped"
            elif self.exists(resource):
                status = "exists"
            else:
                creator(resource)
                status = "created"
            results.append(
                ProvisionedResource(
                    resource.logical_id, resource.type, resource.physical_id, status
                )
            )
        self.register_roles()
        results.append(self.register_stack())
        return results

    def register_stack(self) -> ProvisionedResource:
        """Register a CloudFormation stack of the template's name, parameters and outputs.

        The read side finds a deployed stack's physical ids in its outputs (``clickstream --stack
        NAME --endpoint-url URL``); this gives the emulator's CloudFormation the same stack, so
        those commands read the local stack the way they read one on AWS. Its only resource is a
        wait condition handle, for which moto creates nothing: the resources themselves are the
        ones provisioned above.
        """
        body = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"Outputs of the local stack {self.template.stack_name}",
            "Parameters": {name: {"Type": "String"} for name in self.template.parameters},
            "Resources": {"LocalStack": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in self.stack_outputs().items()},
        }
        parameters = [
            {"ParameterKey": name, "ParameterValue": value}
            for name, value in self.template.parameters.items()
        ]
        cloudformation = self.client("cloudformation")
        name = self.template.stack_name
        arguments = {"StackName": name, "TemplateBody": json.dumps(body), "Parameters": parameters}
        try:
            cloudformation.create_stack(**arguments)
            status = "registered"
        except ClientError as error:
            if error.response["Error"]["Code"] != "AlreadyExistsException":
                raise
            try:
                cloudformation.update_stack(**arguments)
            except ClientError as unchanged:
                if "No updates are to be performed" not in str(unchanged):
                    raise
            status = "exists"
        return ProvisionedResource("Stack", "AWS::CloudFormation::Stack", name, status)

    def stack_outputs(self) -> dict[str, str]:
        """The template's outputs as this stack resolves them.

        A search domain's endpoint is the local endpoint's route to it, which authorizes each
        signed request as OpenSearch Service does and forwards it to the local node.
        """
        domains = {
            r.logical_id: r for r in self.template.resources("AWS::OpenSearchService::Domain")
        }
        outputs: dict[str, str] = {}
        for key, spec in self.template.document.get("Outputs", {}).items():
            if "Condition" in spec and not self.template.condition(spec["Condition"]):
                continue
            value = spec["Value"]
            target = value.get("Fn::GetAtt", [None, None]) if isinstance(value, dict) else None
            if target and target[1] == "DomainEndpoint" and target[0] in domains:
                domain = domains[target[0]].physical_id
                outputs[key] = f"{self.endpoint_url}{SEARCH_PREFIX}{domain}"
                continue
            outputs[key] = str(self.template.resolve(value))
        return outputs

    def register_roles(self) -> list[str]:
        """Give the endpoint every template role's policies and each DirectPut stream's role."""
        roles = [role.to_json() for role in template_roles(self.template).values()]
        return register_roles(self.endpoint_url, roles, direct_put_destinations(self.template))

    def exists(self, resource: Resource) -> bool:
        """Whether the resource exists on the endpoint (types this module provisions)."""
        checks: dict[str, Callable[[Resource], Any]] = {
            "AWS::Kinesis::Stream": lambda r: self.client("kinesis").describe_stream_summary(
                StreamName=r.physical_id
            ),
            "AWS::Kinesis::StreamConsumer": lambda r: self.client(
                "kinesis"
            ).describe_stream_consumer(
                StreamARN=r.properties["StreamARN"], ConsumerName=r.properties["ConsumerName"]
            ),
            "AWS::S3::Bucket": lambda r: self.client("s3").head_bucket(Bucket=r.physical_id),
            "AWS::S3::BucketPolicy": self._bucket_policy_applied,
            "AWS::DynamoDB::Table": lambda r: self.client("dynamodb").describe_table(
                TableName=r.physical_id
            ),
            "AWS::SQS::Queue": lambda r: self.client("sqs").get_queue_url(QueueName=r.physical_id),
            "AWS::KinesisFirehose::DeliveryStream": lambda r: self.client(
                "firehose"
            ).describe_delivery_stream(DeliveryStreamName=r.physical_id),
            "AWS::Glue::Database": lambda r: self.client("glue").get_database(Name=r.physical_id),
            "AWS::Glue::Table": lambda r: self.client("glue").get_table(
                DatabaseName=r.properties["DatabaseName"], Name=r.physical_id
            ),
        }
        try:
            checks[resource.type](resource)
        except ClientError:
            return False
        return True

    def skip_reason(self, resource: Resource) -> str | None:
        """Why a supported resource has nothing to create locally, if so."""
        document = resource.properties.get("PolicyDocument", {})
        if (
            resource.type == "AWS::S3::BucketPolicy"
            and not local_bucket_policy(document)["Statement"]
        ):
            return "only aws:SecureTransport statements, which the HTTP endpoint cannot meet"
        return None

    def _bucket_policy_applied(self, resource: Resource) -> None:
        """Raises unless the local form of the policy is in place (nothing left is in place)."""
        if not self.skip_reason(resource):
            self.client("s3").get_bucket_policy(Bucket=resource.properties["Bucket"])

    def _creators(self) -> dict[str, Callable[[Resource], None]]:
        return {
            "AWS::Kinesis::Stream": self._create_stream,
            "AWS::Kinesis::StreamConsumer": self._create_stream_consumer,
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::S3::BucketPolicy": self._create_bucket_policy,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::KinesisFirehose::DeliveryStream": self._create_delivery_stream,
            "AWS::Glue::Database": self._create_glue_database,
            "AWS::Glue::Table": self._create_glue_table,
        }

    # ------------------------------------------------------------------ creators
    def _create_stream(self, resource: Resource) -> None:
        kinesis = self.client("kinesis")
        properties = resource.properties
        mode = properties.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
        arguments: dict[str, Any] = {
            "StreamName": resource.physical_id,
            "StreamModeDetails": {"StreamMode": mode},
        }
        if mode == "PROVISIONED":
            arguments["ShardCount"] = int(properties.get("ShardCount", 1))
        kinesis.create_stream(**arguments)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=resource.physical_id, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        retention = int(properties.get("RetentionPeriodHours", 24))
        if retention > 24:
            kinesis.increase_stream_retention_period(
                StreamName=resource.physical_id, RetentionPeriodHours=retention
            )
        encryption = properties.get("StreamEncryption")
        if encryption:
            kinesis.start_stream_encryption(
                StreamName=resource.physical_id,
                EncryptionType=encryption["EncryptionType"],
                KeyId=encryption["KeyId"],
            )

    def _create_stream_consumer(self, resource: Resource) -> None:
        self.client("kinesis").register_stream_consumer(
            StreamARN=resource.properties["StreamARN"],
            ConsumerName=resource.properties["ConsumerName"],
        )

    def _create_bucket(self, resource: Resource) -> None:
        s3 = self.client("s3")
        bucket, properties = resource.physical_id, resource.properties
        s3.create_bucket(Bucket=bucket)
        if "BucketEncryption" in properties:
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        _encryption_rule(rule)
                        for rule in properties["BucketEncryption"][
                            "ServerSideEncryptionConfiguration"
                        ]
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"],
            )
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=bucket,
                VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]},
            )
        if "NotificationConfiguration" in properties:
            notification = properties["NotificationConfiguration"]
            if "EventBridgeConfiguration" in notification:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={"EventBridgeConfiguration": {}},
                )

    def _create_bucket_policy(self, resource: Resource) -> None:
        document = local_bucket_policy(resource.properties["PolicyDocument"])
        if document["Statement"]:
            self.client("s3").put_bucket_policy(
                Bucket=resource.properties["Bucket"], Policy=json.dumps(document)
            )

    def _create_table(self, resource: Resource) -> None:
        dynamodb = self.client("dynamodb")
        properties = resource.properties
        arguments: dict[str, Any] = {
            "TableName": resource.physical_id,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if arguments["BillingMode"] == "PROVISIONED":
            arguments["ProvisionedThroughput"] = _throughput(properties["ProvisionedThroughput"])
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                arguments[key] = properties[key]
        if "StreamSpecification" in properties:
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                **properties["StreamSpecification"],
            }
        dynamodb.create_table(**arguments)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled")).lower() == "true":
            dynamodb.update_time_to_live(
                TableName=resource.physical_id,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _create_queue(self, resource: Resource) -> None:
        attributes = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in resource.properties.items()
            if key in _QUEUE_ATTRIBUTES
        }
        if "RedrivePolicy" in resource.properties:
            attributes["RedrivePolicy"] = json.dumps(resource.properties["RedrivePolicy"])
        self.client("sqs").create_queue(QueueName=resource.physical_id, Attributes=attributes)

    def _create_delivery_stream(self, resource: Resource) -> None:
        properties = resource.properties
        arguments: dict[str, Any] = {
            "DeliveryStreamName": resource.physical_id,
            "DeliveryStreamType": properties.get("DeliveryStreamType", "DirectPut"),
        }
        for key in ("KinesisStreamSourceConfiguration", "ExtendedS3DestinationConfiguration"):
            if key in properties:
                arguments[key] = _firehose_config(properties[key])
        self.client("firehose").create_delivery_stream(**arguments)

    def _create_glue_database(self, resource: Resource) -> None:
        self.client("glue").create_database(DatabaseInput=resource.properties["DatabaseInput"])

    def _create_glue_table(self, resource: Resource) -> None:
        self.client("glue").create_table(
            DatabaseName=resource.properties["DatabaseName"],
            TableInput=resource.properties["TableInput"],
        )


def direct_put_destinations(template: Template) -> dict[str, dict[str, str]]:
    """Each DirectPut delivery stream's S3 destination and the role Firehose writes it with."""
    destinations = {}
    for resource in template.resources("AWS::KinesisFirehose::DeliveryStream"):
        properties = resource.properties
        destination = properties.get("ExtendedS3DestinationConfiguration") or properties.get(
            "S3DestinationConfiguration"
        )
        if properties.get("DeliveryStreamType", "DirectPut") != "DirectPut" or not destination:
            continue
        destinations[resource.physical_id] = {
            "role_arn": destination["RoleARN"],
            "bucket": destination["BucketARN"].split(":::", 1)[1],
            "prefix": render_prefix(destination.get("Prefix", ""), datetime.now(UTC)),
        }
    return destinations


def local_bucket_policy(document: dict[str, Any]) -> dict[str, Any]:
    """The policy without statements on ``aws:SecureTransport``.

    Moto evaluates bucket policies, and the local endpoint is plain HTTP on loopback, so a
    deny-non-TLS statement would refuse every local request. It applies unchanged on AWS.
    """
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [
        s
        for s in statements
        if "aws:securetransport" not in json.dumps(s.get("Condition", {})).lower()
    ]
    return {**document, "Statement": kept}


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ``ServerSideEncryptionByDefault`` is the API's ``Apply...`` key."""
    converted: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]
    }
    if "BucketKeyEnabled" in rule:
        converted["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
    return converted


def _throughput(spec: dict[str, Any]) -> dict[str, int]:
    return {key: int(value) for key, value in spec.items()}


def _firehose_config(config: Any) -> Any:
    """CloudFormation gives numbers as strings after Ref; the Firehose API wants ints/bools."""
    if isinstance(config, dict):
        return {key: _firehose_value(key, value) for key, value in config.items()}
    return config


def _firehose_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return _firehose_config(value)
    if key in ("IntervalInSeconds", "SizeInMBs", "DurationInSeconds"):
        return int(value)
    if key == "Enabled":
        return str(value).lower() == "true"
    return value


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
)

_ORDER = {
    "AWS::Kinesis::Stream": 0,
    "AWS::S3::Bucket": 0,
    "AWS::SQS::Queue": 0,
    "AWS::DynamoDB::Table": 0,
    "AWS::Glue::Database": 0,
    "AWS::Kinesis::StreamConsumer": 1,
    "AWS::S3::BucketPolicy": 1,
    "AWS::Glue::Table": 1,
    "AWS::KinesisFirehose::DeliveryStream": 2,
}
