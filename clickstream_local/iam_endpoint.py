"""IAM on the local endpoint: each request authorized against its caller's template role.

:class:`IamEnforcement` is WSGI middleware in front of moto (``clickstream_local.moto_app``). The
administrator key may do everything; a caller signing with an assumed role's temporary
credentials may do only what that role's policies allow (:mod:`clickstream_local.iam`), each
request's permissions being those AWS checks (:mod:`clickstream_local.iam_requests`). A search
domain's requests are authorized the same way and forwarded to the local node. Refusals have
AWS's shapes, and every decision is counted for the audit.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from clickstream_local.aws import ADMIN, SEARCH_PREFIX
from clickstream_local.cfn import LOCAL_ACCOUNT_ID
from clickstream_local.iam import Decision, Permission, RolePolicies, evaluate_resource_policy
from clickstream_local.iam_requests import (
    AwsRequest,
    UnknownOperation,
    form_parameters,
    required_permissions,
)
from clickstream_local.wsgi import Signature, WsgiApp, read_body, request_signature

ADMIN_ACCESS_KEY_ID = ADMIN.access_key_id
"""The local administrator's access key: the stack's own set-up and bookkeeping, and its user."""

CONTROL_PREFIX = "/_clickstream/iam"
"""Paths of the endpoint's IAM control API: ``POST .../roles``, ``GET .../audit``."""


@dataclass(frozen=True)
class DeliveryStreamRole:
    """A DirectPut delivery stream's S3 destination, written with the stream's own role."""

    role_arn: str
    bucket: str
    prefix: str


@dataclass(frozen=True)
class SearchDomain:
    """A local OpenSearch node standing in for a domain, and the domain's access policy."""

    url: str
    access_policy: dict[str, Any]


class Refusal(Exception):
    """A request the endpoint refuses: an error code, its message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class IamEnforcement:
    """WSGI middleware: each request is authorized against its caller's role, as on AWS.

    - The administrator key (:data:`ADMIN_ACCESS_KEY_ID`) may do everything.
    - Temporary credentials from ``sts:AssumeRole`` on this endpoint act as that role: every
      permission the request needs (:func:`clickstream_local.iam_requests.required_permissions`)
      must be allowed by the role's policies, registered with ``POST /_clickstream/iam/roles``.
      A role that was never registered may do nothing.
    - A DirectPut delivery stream writes S3 with its own role: a put to it also needs
      ``s3:PutObject`` under the destination prefix for that role.
    - Any other key is an unknown identity; unsigned requests reach only ``/moto-api/``.

    A refused call gets AWS's answer: ``AccessDeniedException`` (HTTP 400) for JSON protocols,
    ``AccessDenied`` (HTTP 403) for S3 and the query protocols. Every decision is counted by
    (role, action, resource) and served by ``GET /_clickstream/iam/audit``.
    """

    def __init__(self, app: WsgiApp, admin_access_key_id: str = ADMIN_ACCESS_KEY_ID) -> None:
        self.app = app
        self.admin_access_key_id = admin_access_key_id
        self.roles: dict[str, RolePolicies] = {}
        self.delivery_streams: dict[str, DeliveryStreamRole] = {}
        self.search_domains: dict[str, SearchDomain] = {}
        self.audit: Counter[tuple[str, str, str, str]] = Counter()
        self._principals: dict[str, tuple[str, str]] = {}
        self._guard = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        signature = request_signature(environ)
        if signature is None:
            if path.startswith("/moto-api"):
                return self.app(environ, start_response)
            return _refuse(environ, start_response, None, _missing_authentication())
        if path.startswith(SEARCH_PREFIX):
            return self._search(environ, start_response, signature)
        if signature.access_key_id == self.admin_access_key_id:
            return self.app(environ, start_response)
        try:
            self._authorize(environ, signature)
        except Refusal as refusal:
            return _refuse(environ, start_response, signature.service, refusal)
        return self.app(environ, start_response)

    # ------------------------------------------------------------------ search domains
    def _search(
        self, environ: dict[str, Any], start_response: Callable[..., Any], signature: Signature
    ) -> list[bytes]:
        """Authorize ``es:ESHttp<Method>`` as OpenSearch Service does, then forward to the node.

        The caller's identity policies and the domain's access policy are united (same account):
        either may allow, and an explicit deny in either refuses.
        """
        name, _, rest = environ["PATH_INFO"].removeprefix(SEARCH_PREFIX).partition("/")
        domain = self.search_domains.get(name)
        if domain is None:
            return _answer(start_response, "404 Not Found", {"error": f"no search domain {name}"})
        if signature.access_key_id != self.admin_access_key_id:
            try:
                self._authorize_search(signature, name, domain, environ, rest)
            except Refusal as refusal:
                return _answer(start_response, "403 Forbidden", {"Message": refusal.message})
        return _forward(environ, start_response, domain.url, rest)

    def _authorize_search(
        self,
        signature: Signature,
        name: str,
        domain: SearchDomain,
        environ: dict[str, Any],
        path: str,
    ) -> None:
        role_arn, caller = self._principal(signature)
        permission = Permission(
            f"es:ESHttp{environ.get('REQUEST_METHOD', 'GET').capitalize()}",
            f"arn:aws:es:{signature.region}:{LOCAL_ACCOUNT_ID}:domain/{name}/{path}",
        )
        role = self.roles.get(role_arn)
        decisions = {
            role.decide(permission) if role else Decision.IMPLICIT_DENY,
            evaluate_resource_policy(domain.access_policy, role_arn, permission),
        }
        decision = (
            Decision.EXPLICIT_DENY
            if Decision.EXPLICIT_DENY in decisions
            else Decision.ALLOW
            if Decision.ALLOW in decisions
            else Decision.IMPLICIT_DENY
        )
        self._settle(decision, role_arn, caller, permission, "es")

    # ------------------------------------------------------------------ authorization
    def _authorize(self, environ: dict[str, Any], signature: Signature) -> None:
        role_arn, caller = self._principal(signature)
        role = self.roles.get(role_arn)
        request = _aws_request(environ, signature)
        try:
            permissions = required_permissions(request)
        except UnknownOperation as error:
            self._count(role_arn, f"{signature.service}:?", str(error), "unknown operation")
            raise Refusal(
                "AccessDeniedException",
                f"User: {caller} is not authorized: the local endpoint cannot authorize "
                f"this {signature.service} request ({error})",
                403 if signature.service == "s3" else 400,
            ) from None
        for permission in permissions:
            self._check(role, role_arn, caller, permission, signature.service)
        if signature.service == "firehose" and request.target in ("PutRecord", "PutRecordBatch"):
            name = request.json().get("DeliveryStreamName")
            destination = self.delivery_streams.get(str(name))
            if destination is not None:
                service_role = self.roles.get(destination.role_arn)
                write = Permission(
                    "s3:PutObject", f"arn:aws:s3:::{destination.bucket}/{destination.prefix}object"
                )
                self._check(
                    service_role, destination.role_arn, destination.role_arn, write, "firehose"
                )

    def _check(
        self,
        role: RolePolicies | None,
        role_arn: str,
        caller: str,
        permission: Permission,
        service: str,
    ) -> None:
        decision = role.decide(permission) if role else Decision.IMPLICIT_DENY
        self._settle(decision, role_arn, caller, permission, service, registered=role is not None)

    def _settle(
        self,
        decision: Decision,
        role_arn: str,
        caller: str,
        permission: Permission,
        service: str,
        registered: bool = True,
    ) -> None:
        """Count the decision; raise the refusal AWS would give unless it allows."""
        self._count(role_arn, permission.action, permission.resource, decision.value)
        if decision is Decision.ALLOW:
            return
        policies = (
            "identity-based or resource-based policy"
            if service == "es"
            else ("identity-based policy")
        )
        reason = (
            f"with an explicit deny in an {policies}"
            if decision is Decision.EXPLICIT_DENY
            else f"because no {policies} allows the {permission.action} action"
        )
        if not registered:
            reason = "because the role is not registered with the local endpoint"
        message = (
            f"User: {caller} is not authorized to perform: {permission.action} "
            f"on resource: {permission.resource} {reason}"
        )
        print(f"IAM DENY {message}", file=sys.stderr, flush=True)
        raise Refusal("AccessDenied", message, 403 if service in ("s3", "sns", "sts") else 400)

    def _principal(self, signature: Signature) -> tuple[str, str]:
        """The role ARN and the assumed-role ARN of an access key from ``sts:AssumeRole``."""
        with self._guard:
            known = self._principals.get(signature.access_key_id)
        if known is not None:
            return known
        from moto.sts.models import sts_backends

        for account in list(sts_backends.values()):
            for backend in list(account.values()):
                assumed = backend.get_assumed_role_from_access_key(signature.access_key_id)
                if assumed is not None:
                    principal = (assumed.role_arn, assumed.arn)
                    with self._guard:
                        self._principals[signature.access_key_id] = principal
                    return principal
        raise Refusal(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            403 if signature.service == "s3" else 400,
        )

    def _count(self, role_arn: str, action: str, resource: str, decision: str) -> None:
        with self._guard:
            self.audit[(role_arn, action, audited_resource(resource), decision)] += 1

    # ------------------------------------------------------------------ control API
    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"].removeprefix(CONTROL_PREFIX)
        if path == "/roles" and environ["REQUEST_METHOD"] == "POST":
            document = json.loads(read_body(environ) or b"{}")
            with self._guard:
                for role in document.get("roles", []):
                    self.roles[role["arn"]] = RolePolicies.from_json(role)
                for name, stream in document.get("delivery_streams", {}).items():
                    self.delivery_streams[name] = DeliveryStreamRole(**stream)
                for name, domain in document.get("search_domains", {}).items():
                    self.search_domains[name] = SearchDomain(**domain)
            answer: Any = {"roles": sorted(self.roles)}
        elif path == "/audit":
            with self._guard:
                answer = {
                    "decisions": [
                        {
                            "role": role,
                            "action": action,
                            "resource": resource,
                            "decision": decision,
                            "count": count,
                        }
                        for (role, action, resource, decision), count in sorted(self.audit.items())
                    ],
                    "roles": [role.to_json() for role in self.roles.values()],
                }
        else:
            return _answer(start_response, "404 Not Found", {"error": f"no route {path}"})
        return _answer(start_response, "200 OK", answer)


def audited_resource(resource: str) -> str:
    """The resource as the audit counts it: an S3 object by its first two folders at most.

    Object keys are unbounded; their first folders are what the roles' statements tell apart
    (``quarantine/window-counter/*``, ``events*``).
    """
    if not resource.startswith("arn:aws:s3:::") or "/" not in resource:
        return resource
    bucket, _, key = resource.partition("/")
    folders = key.split("/")[:-1][:2]
    return "/".join([bucket, *folders, "*"]) if folders else resource


def _aws_request(environ: dict[str, Any], signature: Signature) -> AwsRequest:
    body = read_body(environ)
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return AwsRequest(
        service=signature.service,
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", "/"),
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        body=body,
        region=signature.region,
        form=form_parameters(environ.get("CONTENT_TYPE", ""), body),
    )


def _forward(
    environ: dict[str, Any], start_response: Callable[..., Any], base_url: str, path: str
) -> list[bytes]:
    """Send the request on to ``base_url`` and answer with the node's response."""
    body = read_body(environ)
    query = environ.get("QUERY_STRING", "")
    url = f"{base_url.rstrip('/')}/{path}" + (f"?{query}" if query else "")
    headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/json"}
    request = urllib.request.Request(
        url, data=body or None, method=environ.get("REQUEST_METHOD", "GET"), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, content, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, content, kind = error.code, error.read(), error.headers
    except OSError as error:
        return _answer(start_response, "502 Bad Gateway", {"error": f"search node: {error}"})
    content_type = kind.get("Content-Type", "application/json")
    start_response(
        f"{status} {'OK' if status < 400 else 'Error'}",
        [("Content-Type", content_type), ("Content-Length", str(len(content)))],
    )
    return [content]


def _missing_authentication() -> Refusal:
    return Refusal("MissingAuthenticationToken", "Request is missing Authentication Token", 403)


def _refuse(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    service: str | None,
    refusal: Refusal,
) -> list[bytes]:
    """AWS's error answer for ``service``'s protocol."""
    status = f"{refusal.status} {'Forbidden' if refusal.status == 403 else 'Bad Request'}"
    json_protocol = "HTTP_X_AMZ_TARGET" in environ
    if json_protocol:
        code = refusal.code
        if code == "AccessDenied":
            code = "AccessDeniedException"
        namespace = {
            "dynamodb": "com.amazonaws.dynamodb.v20120810#",
            "sqs": "com.amazon.coral.service#",
        }.get(service or "", "")
        body = json.dumps({"__type": f"{namespace}{code}", "message": refusal.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1")]
        if service == "sqs":
            headers.append(("x-amzn-query-error", f"{refusal.code};Sender"))
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]
    code = (
        "AuthorizationError"
        if service == "sns" and refusal.code == "AccessDenied"
        else refusal.code
    )
    message = refusal.message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        )
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n{xml}'.encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _answer(start_response: Callable[..., Any], status: str, document: Any) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
