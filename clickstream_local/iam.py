"""IAM for the local stack: the template's roles and an evaluator of their policies.

Every function, Firehose delivery stream and Glue job of ``template.yaml`` acts locally with the
credentials of its own template role, and the local AWS endpoint checks each call against that
role's policies (``clickstream_local.moto_app``). This module holds the two pure halves of that:

- :func:`template_roles`: each role's policy documents, resolved like CloudFormation would:
  inline ``Policies``, ``ManagedPolicyArns`` (documents from ``clickstream_local/data/
  managed_policies.json``), and the role SAM creates for a function without ``Role``
  (its ``Policies``, ``AWSLambdaBasicExecutionRole``, and ``AWSXrayWriteOnlyAccess`` under
  ``Tracing: Active``);
- :func:`evaluate`: the identity-policy part of AWS's evaluation logic. An explicit ``Deny``
  wins, then an ``Allow``; nothing matching is an implicit deny. ``Action``/``NotAction`` match
  case-insensitively with ``*`` and ``?``, ``Resource``/``NotResource`` case-sensitively. A
  condition operator this module does not know makes an ``Allow`` not apply and a ``Deny``
  apply, so the local check is never more permissive than AWS.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clickstream_local.cfn import Resource, Template, TemplateError

BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY_WRITE_POLICY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
SAM_EVENT_POLICIES = {
    "Kinesis": "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole",
    "SQS": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}
"""Managed policies SAM attaches to a function's generated role for these event sources."""

_DESTINATION_ACTIONS = {"SQS": "sqs:SendMessage", "SNS": "sns:Publish"}
"""What SAM grants a generated role for an event source's on-failure queue or topic."""


@dataclass(frozen=True)
class Permission:
    """One authorization a request needs: an action on a resource, with condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


class Decision(enum.Enum):
    """The outcome of evaluating a role's policies for one permission."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


DECISION_CACHE_SIZE = 10_000
"""Decisions a role remembers before it starts over (object keys make resources unbounded)."""


@dataclass(frozen=True)
class RolePolicies:
    """A template role: its ARN, the resource that declares it and its policy documents."""

    arn: str
    logical_id: str
    documents: tuple[dict[str, Any], ...]

    _decisions: dict[tuple[Any, ...], Decision] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def decide(self, permission: Permission) -> Decision:
        """This role's decision on ``permission``, remembered (policies never change)."""
        key = (permission.action, permission.resource, tuple(sorted(permission.context.items())))
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= DECISION_CACHE_SIZE:
                self._decisions.clear()
            decision = self._decisions[key] = evaluate(self.documents, permission)
        return decision

    def granted_actions(self) -> set[str]:
        """Every action an ``Allow`` statement names (wildcards as written)."""
        return {
            action
            for document in self.documents
            for statement in _statements(document)
            if statement.get("Effect") == "Allow"
            for action in _as_list(statement.get("Action", []))
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form, as the local endpoint receives it."""
        return {"arn": self.arn, "logical_id": self.logical_id, "documents": list(self.documents)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RolePolicies:
        """The inverse of :meth:`to_json`."""
        return cls(document["arn"], document["logical_id"], tuple(document["documents"]))


# ---------------------------------------------------------------------------- evaluation


def evaluate(
    documents: tuple[dict[str, Any], ...] | list[dict[str, Any]], permission: Permission
) -> Decision:
    """AWS's identity-policy evaluation of ``permission`` over ``documents``."""
    allowed = False
    for document in documents:
        for statement in _statements(document):
            effect = statement.get("Effect")
            if not _statement_matches(statement, permission, deny=effect == "Deny"):
                continue
            if effect == "Deny":
                return Decision.EXPLICIT_DENY
            if effect == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def evaluate_resource_policy(
    document: Mapping[str, Any], principal_arn: str, permission: Permission
) -> Decision:
    """A resource policy's decision for ``principal_arn`` (its statements naming that principal)."""
    applicable = [
        statement
        for statement in _statements(document)
        if _names_principal(statement.get("Principal"), principal_arn)
    ]
    return evaluate([{"Statement": applicable}], permission)


def _names_principal(principal: Any, arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    return any(value in ("*", arn) for value in _as_list(principal.get("AWS", [])))


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _as_list(document.get("Statement", []))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_matches(statement: dict[str, Any], permission: Permission, *, deny: bool) -> bool:
    if "Action" in statement:
        action_ok = _any_match(statement["Action"], permission.action, ignore_case=True)
    else:
        action_ok = not _any_match(statement.get("NotAction", []), permission.action, True)
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = _any_match(statement["Resource"], permission.resource, ignore_case=False)
    else:
        resource_ok = not _any_match(statement.get("NotResource", []), permission.resource, False)
    if not resource_ok:
        return False
    return _conditions_hold(statement.get("Condition", {}), permission.context, deny=deny)


def _any_match(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(
        _wildcard(str(pattern), ignore_case).fullmatch(value) for pattern in _as_list(patterns)
    )


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's ``*`` (any run of characters) and ``?`` (one character) as a regular expression."""
    expression = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(expression, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


_STRING_OPERATORS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringNotEquals": lambda value, wanted: value != wanted,
    "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
    "StringNotEqualsIgnoreCase": lambda value, wanted: value.lower() != wanted.lower(),
    "StringLike": lambda value, wanted: bool(_wildcard(wanted, False).fullmatch(value)),
    "StringNotLike": lambda value, wanted: not _wildcard(wanted, False).fullmatch(value),
    "ArnEquals": lambda value, wanted: value == wanted,
    "ArnNotEquals": lambda value, wanted: value != wanted,
    "ArnLike": lambda value, wanted: bool(_wildcard(wanted, False).fullmatch(value)),
    "ArnNotLike": lambda value, wanted: not _wildcard(wanted, False).fullmatch(value),
    "Bool": lambda value, wanted: value.lower() == wanted.lower(),
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def _conditions_hold(
    conditions: Mapping[str, Any], context: Mapping[str, str], *, deny: bool
) -> bool:
    """Whether every condition holds; an unknown operator resolves against the caller."""
    for operator, tests in conditions.items():
        base = operator.removesuffix("IfExists")
        if_exists = base != operator
        if base == "Null":
            for key, wanted in tests.items():
                is_null = key not in context
                if is_null != (str(wanted).lower() == "true"):
                    return False
            continue
        compare = _STRING_OPERATORS.get(base)
        if compare is None or not isinstance(tests, Mapping):
            return deny
        for key, wanted in tests.items():
            if key not in context:
                if if_exists or base in _NEGATED:
                    continue
                return False
            values = [str(v) for v in _as_list(wanted)]
            if base in _NEGATED:
                holds = all(compare(context[key], value) for value in values)
            else:
                holds = any(compare(context[key], value) for value in values)
            if not holds:
                return False
    return True


# ---------------------------------------------------------------------------- template roles


def template_roles(template: Template) -> dict[str, RolePolicies]:
    """Every role of the template by ARN: declared roles and the roles SAM creates."""
    roles: dict[str, RolePolicies] = {}
    for resource in template.resources("AWS::IAM::Role"):
        documents = [policy["PolicyDocument"] for policy in resource.properties.get("Policies", [])]
        documents += [_managed(arn) for arn in resource.properties.get("ManagedPolicyArns", [])]
        arn = template.arn(resource.logical_id)
        roles[arn] = RolePolicies(arn, resource.logical_id, tuple(documents))
    for function in template.resources("AWS::Serverless::Function"):
        if "Role" not in function.properties:
            role = _sam_function_role(template, function)
            roles[role.arn] = role
    return roles


def function_role_arn(template: Template, function: Resource) -> str:
    """The role a function runs with: its ``Role``, or the ``<Function>Role`` SAM creates."""
    role = function.properties.get("Role")
    return str(role) if role else template.arn(f"{function.logical_id}Role")


def _sam_function_role(template: Template, function: Resource) -> RolePolicies:
    """The role SAM generates for a function that names no ``Role``."""
    properties = function.properties
    documents: list[dict[str, Any]] = [_managed(BASIC_EXECUTION_POLICY)]
    if properties.get("Tracing") == "Active":
        documents.append(_managed(XRAY_WRITE_POLICY))
    for event in properties.get("Events", {}).values():
        if event.get("Type") in SAM_EVENT_POLICIES:
            documents.append(_managed(SAM_EVENT_POLICIES[event["Type"]]))
        on_failure = event.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure", {})
        statements = _destination_statements(on_failure)
        if statements:
            documents.append({"Version": "2012-10-17", "Statement": statements})
    for policy in _as_list(properties.get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            documents.append({"Version": "2012-10-17", "Statement": policy["Statement"]})
        elif isinstance(policy, str):
            arn = policy if policy.startswith("arn:") else f"arn:aws:iam::aws:policy/{policy}"
            documents.append(_managed(arn))
        else:
            raise TemplateError(
                f"{function.logical_id}: SAM policy templates are not evaluated locally: {policy}"
            )
    logical_id = f"{function.logical_id}Role"
    return RolePolicies(template.arn(logical_id), logical_id, tuple(documents))


def _destination_statements(on_failure: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What SAM grants a generated role for an event source's on-failure destination: the
    queue's or topic's action, or for a bucket ``s3:PutObject`` on its objects and
    ``s3:ListBucket`` on it."""
    destination, kind = on_failure.get("Destination"), on_failure.get("Type", "")
    if not destination:
        return []
    if kind == "S3":
        return [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{destination}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": destination},
        ]
    action = _DESTINATION_ACTIONS.get(kind)
    return [{"Effect": "Allow", "Action": action, "Resource": destination}] if action else []


def _managed(arn: str) -> dict[str, Any]:
    from clickstream_local.iam_policies import managed_policy_document

    return managed_policy_document(str(arn).replace("arn:aws-cn:", "arn:aws:"))
