"""What IAM authorization an AWS API request needs: its actions and resource ARNs.

The local endpoint reads each request (service from the SigV4 credential scope, operation from
``X-Amz-Target``, the query or the REST path) and lists the permissions AWS would check, following
the service authorization reference:

- DynamoDB: the operation on the table (or ``table/T/index/I``); ``BatchGetItem`` and
  ``BatchWriteItem`` once per table; ``TransactWriteItems`` and ``TransactGetItems`` per item, as
  ``PutItem``, ``UpdateItem``, ``DeleteItem``, ``ConditionCheckItem`` or ``GetItem`` (IAM has no
  transaction action);
- Kinesis: the operation on the stream (named, by ARN, or the stream a shard iterator was issued
  for) or on the enhanced fan-out consumer;
- S3: ``ListBucket`` (with ``s3:prefix``), ``GetObject``, ``PutObject``, ``DeleteObject`` (per
  key of a multi-object delete), ``AbortMultipartUpload``, ``ListMultipartUploadParts``,
  ``ListBucketMultipartUploads``, ``GetBucketLocation``, and ``GetObject`` on a copy's source;
- SQS, SNS, Firehose and Glue: the operation on the queue, topic, delivery stream, or catalog,
  database and table.

An operation this module cannot place raises :class:`UnknownOperation`; the endpoint then
refuses the call for a role, so nothing is allowed by omission.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from clickstream_local.cfn import LOCAL_ACCOUNT_ID
from clickstream_local.iam import Permission

ACTION_PREFIXES = {"monitoring": "cloudwatch", "email": "ses"}
"""IAM action prefixes that differ from the SigV4 signing name."""


class UnknownOperation(ValueError):
    """The request's operation or resource could not be determined."""


@dataclass(frozen=True)
class AwsRequest:
    """The parts of an HTTP request to an AWS API that authorization reads."""

    service: str
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    region: str
    account: str = LOCAL_ACCOUNT_ID
    form: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def target(self) -> str | None:
        """The operation of a JSON-protocol request (``X-Amz-Target: Prefix.Operation``)."""
        target = self.headers.get("x-amz-target")
        return target.rsplit(".", 1)[-1] if target else None

    def json(self) -> dict[str, Any]:
        """The JSON body, or an empty object."""
        try:
            document = json.loads(self.body or b"{}")
        except ValueError as error:
            raise UnknownOperation(f"unreadable JSON body: {error}") from None
        return document if isinstance(document, dict) else {}

    def parameter(self, name: str) -> str | None:
        """A query-protocol parameter, from the form body or the query string."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


def required_permissions(request: AwsRequest) -> list[Permission]:
    """Every permission ``request`` needs, in the order AWS would check them."""
    mapper = _MAPPERS.get(request.service)
    if mapper is None:
        return _generic(request)
    return mapper(request)


# ---------------------------------------------------------------------------- DynamoDB

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb(request: AwsRequest) -> list[Permission]:
    operation = _operation(request)
    body = request.json()

    def table(name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{request.region}:{request.account}:table/{name}"

    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Permission(f"dynamodb:{operation}", table(n)) for n in body.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        permissions = []
        for item in body.get("TransactItems", []):
            for kind, spec in item.items():
                if kind not in _TRANSACT_ACTIONS:
                    raise UnknownOperation(f"transaction item {kind}")
                action = f"dynamodb:{_TRANSACT_ACTIONS[kind]}"
                permissions.append(Permission(action, table(spec["TableName"])))
        return permissions
    name = body.get("TableName")
    if not isinstance(name, str):
        return [Permission(f"dynamodb:{operation}", "*")]
    resource = table(name)
    if operation in ("Query", "Scan") and isinstance(body.get("IndexName"), str):
        resource = f"{resource}/index/{body['IndexName']}"
    return [Permission(f"dynamodb:{operation}", resource)]


# ---------------------------------------------------------------------------- Kinesis


def _kinesis(request: AwsRequest) -> list[Permission]:
    operation = _operation(request)
    body = request.json()
    action = f"kinesis:{operation}"
    if isinstance(body.get("ConsumerARN"), str):
        return [Permission(action, body["ConsumerARN"])]
    stream_arn = body.get("StreamARN")
    if not isinstance(stream_arn, str):
        name = body.get("StreamName")
        if not isinstance(name, str) and isinstance(body.get("ShardIterator"), str):
            name = stream_of_iterator(body["ShardIterator"])
        if not isinstance(name, str):
            return [Permission(action, "*")]
        stream_arn = f"arn:aws:kinesis:{request.region}:{request.account}:stream/{name}"
    if isinstance(body.get("ConsumerName"), str):
        raise UnknownOperation(f"{operation} names a consumer without its ARN")
    return [Permission(action, stream_arn)]


def stream_of_iterator(iterator: str) -> str:
    """The stream a (local endpoint's) shard iterator reads: base64 of ``stream:shard:seq``."""
    try:
        decoded = base64.b64decode(iterator.encode("ascii"), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise UnknownOperation("unreadable shard iterator") from None
    stream = decoded.split(":", 1)[0]
    if not stream:
        raise UnknownOperation("shard iterator names no stream")
    return stream


# ---------------------------------------------------------------------------- S3

_BUCKET_GET = {
    "location": "s3:GetBucketLocation",
    "uploads": "s3:ListBucketMultipartUploads",
    "versions": "s3:ListBucketVersions",
    "policy": "s3:GetBucketPolicy",
    "versioning": "s3:GetBucketVersioning",
    "encryption": "s3:GetEncryptionConfiguration",
    "notification": "s3:GetBucketNotification",
    "publicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "tagging": "s3:GetBucketTagging",
    "acl": "s3:GetBucketAcl",
}
_BUCKET_PUT = {
    "policy": "s3:PutBucketPolicy",
    "versioning": "s3:PutBucketVersioning",
    "encryption": "s3:PutEncryptionConfiguration",
    "notification": "s3:PutBucketNotification",
    "publicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "tagging": "s3:PutBucketTagging",
    "acl": "s3:PutBucketAcl",
}
_OBJECT_SUBRESOURCES = {
    ("GET", "tagging"): "s3:GetObjectTagging",
    ("PUT", "tagging"): "s3:PutObjectTagging",
    ("GET", "acl"): "s3:GetObjectAcl",
    ("PUT", "acl"): "s3:PutObjectAcl",
    ("GET", "uploadId"): "s3:ListMultipartUploadParts",
    ("DELETE", "uploadId"): "s3:AbortMultipartUpload",
}


def _s3(request: AwsRequest) -> list[Permission]:
    bucket, key = s3_location(request.path)
    if not bucket:
        return [Permission("s3:ListAllMyBuckets", "*")]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    subresources = set(request.query)
    method = request.method
    if not key:
        return _s3_bucket(request, bucket_arn, subresources)
    object_arn = f"{bucket_arn}/{key}"
    for subresource in ("tagging", "acl", "uploadId"):
        if subresource in subresources and (method, subresource) in _OBJECT_SUBRESOURCES:
            if method == "PUT" and subresource == "uploadId":
                break
            return [Permission(_OBJECT_SUBRESOURCES[(method, subresource)], object_arn)]
    if method in ("GET", "HEAD"):
        action = "s3:GetObjectVersion" if "versionId" in subresources else "s3:GetObject"
        return [Permission(action, object_arn)]
    if method == "PUT":
        permissions = [Permission("s3:PutObject", object_arn)]
        source = request.headers.get("x-amz-copy-source")
        if source:
            source_bucket, source_key = s3_location(
                "/" + unquote(source.split("?", 1)[0]).lstrip("/")
            )
            permissions.append(
                Permission("s3:GetObject", f"arn:aws:s3:::{source_bucket}/{source_key}")
            )
        return permissions
    if method == "POST" and ("uploads" in subresources or "uploadId" in subresources):
        return [Permission("s3:PutObject", object_arn)]
    if method == "DELETE":
        action = "s3:DeleteObjectVersion" if "versionId" in subresources else "s3:DeleteObject"
        return [Permission(action, object_arn)]
    raise UnknownOperation(f"S3 {method} on an object with {sorted(subresources)}")


def _s3_bucket(request: AwsRequest, bucket_arn: str, subresources: set[str]) -> list[Permission]:
    method = request.method
    if method == "POST" and "delete" in subresources:
        keys = _deleted_keys(request.body)
        return [Permission("s3:DeleteObject", f"{bucket_arn}/{key}") for key in keys]
    if method == "GET":
        for subresource, action in _BUCKET_GET.items():
            if subresource in subresources:
                return [Permission(action, bucket_arn)]
        prefix = (request.query.get("prefix") or [""])[0]
        return [Permission("s3:ListBucket", bucket_arn, {"s3:prefix": prefix})]
    if method == "HEAD":
        return [Permission("s3:ListBucket", bucket_arn)]
    if method == "PUT":
        for subresource, action in _BUCKET_PUT.items():
            if subresource in subresources:
                return [Permission(action, bucket_arn)]
        return [Permission("s3:CreateBucket", bucket_arn)]
    if method == "DELETE" and not subresources:
        return [Permission("s3:DeleteBucket", bucket_arn)]
    raise UnknownOperation(f"S3 {method} on a bucket with {sorted(subresources)}")


def s3_location(path: str) -> tuple[str, str]:
    """``(bucket, key)`` of a path-style S3 request path (the key URL-decoded)."""
    parts = urlsplit(path).path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0])
    key = unquote(parts[1]) if len(parts) > 1 else ""
    return bucket, key


def _deleted_keys(body: bytes) -> list[str]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise UnknownOperation(f"unreadable multi-object delete: {error}") from None
    return [
        element.text or "" for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Key"
    ]


# ---------------------------------------------------------------------------- queues, topics


def _sqs(request: AwsRequest) -> list[Permission]:
    if request.target:
        operation, body = request.target, request.json()
        url, name = body.get("QueueUrl"), body.get("QueueName")
    else:
        operation = _query_action(request)
        url, name = request.parameter("QueueUrl"), request.parameter("QueueName")
    if isinstance(url, str) and url:
        name = url.rstrip("/").rsplit("/", 1)[-1]
    resource = f"arn:aws:sqs:{request.region}:{request.account}:{name}" if name else "*"
    return [Permission(f"sqs:{operation}", resource)]


def _sns(request: AwsRequest) -> list[Permission]:
    operation = _query_action(request)
    topic = request.parameter("TopicArn") or request.parameter("TargetArn") or "*"
    return [Permission(f"sns:{operation}", topic)]


def _firehose(request: AwsRequest) -> list[Permission]:
    operation = _operation(request)
    name = request.json().get("DeliveryStreamName")
    if not isinstance(name, str):
        return [Permission(f"firehose:{operation}", "*")]
    arn = f"arn:aws:firehose:{request.region}:{request.account}:deliverystream/{name}"
    return [Permission(f"firehose:{operation}", arn)]


def _glue(request: AwsRequest) -> list[Permission]:
    operation = _operation(request)
    body = request.json()
    base = f"arn:aws:glue:{request.region}:{request.account}"
    resources = [f"{base}:catalog"]
    database = body.get("DatabaseName") or (body.get("DatabaseInput") or {}).get("Name")
    if operation in ("GetDatabase", "DeleteDatabase", "UpdateDatabase"):
        database = body.get("Name")
    if isinstance(database, str):
        resources.append(f"{base}:database/{database}")
        table = body.get("TableName") or (body.get("TableInput") or {}).get("Name")
        if operation in ("GetTable", "DeleteTable"):
            table = body.get("Name")
        if isinstance(table, str):
            resources.append(f"{base}:table/{database}/{table}")
    for key, kind in (("JobName", "job"), ("WorkflowName", "workflow"), ("TriggerName", "trigger")):
        if isinstance(body.get(key), str):
            resources = [f"{base}:{kind}/{body[key]}"]
    return [Permission(f"glue:{operation}", resource) for resource in resources]


def _sts(request: AwsRequest) -> list[Permission]:
    operation = _query_action(request) if not request.target else request.target
    if operation == "GetCallerIdentity":
        return []
    role = request.parameter("RoleArn") or "*"
    return [Permission(f"sts:{operation}", role)]


# ---------------------------------------------------------------------------- shared


def _generic(request: AwsRequest) -> list[Permission]:
    """Any other service: its operation on ``*`` (a role granting named resources is refused)."""
    operation = request.target or request.parameter("Action")
    if not operation:
        raise UnknownOperation(f"no operation in a {request.service} request")
    prefix = ACTION_PREFIXES.get(request.service, request.service)
    return [Permission(f"{prefix}:{operation}", "*")]


def _operation(request: AwsRequest) -> str:
    if not request.target:
        raise UnknownOperation(f"{request.service} request without X-Amz-Target")
    return request.target


def _query_action(request: AwsRequest) -> str:
    action = request.parameter("Action")
    if not action:
        raise UnknownOperation(f"{request.service} request without Action")
    return action


def form_parameters(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The parameters of a form-encoded (query-protocol) body."""
    if not re.match(r"application/x-www-form-urlencoded", content_type or ""):
        return {}
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


_MAPPERS = {
    "dynamodb": _dynamodb,
    "kinesis": _kinesis,
    "s3": _s3,
    "sqs": _sqs,
    "sns": _sns,
    "firehose": _firehose,
    "glue": _glue,
    "sts": _sts,
}
