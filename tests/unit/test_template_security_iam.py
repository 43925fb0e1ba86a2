"""Static checks of the permissions template.yaml grants: IAM statements and log groups.

Every statement is collected with its owner: roles' inline and attached managed policies,
standalone policies, and the role SAM creates for a function without ``Role``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from clickstream_local.iam_policies import managed_policy_document, managed_policy_entries
from tests.support.template_documents import as_list, of_type

DATA_PLANE_SERVICES = ("kinesis", "s3", "dynamodb", "sqs", "firehose", "es")


BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY_WRITE_POLICY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
SAM_EVENT_POLICIES = {
    "Kinesis": "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole",
    "SQS": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "DynamoDB": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
}
"""Managed policies SAM attaches to the role it creates for a function with these event sources."""


def managed_arn(value: Any) -> str:
    """The ARN, in the ``aws`` partition, of an AWS managed policy as a template names it.

    A plain ARN, ``!Sub`` or ``!Join`` with ``AWS::Partition``, or a bare name (SAM ``Policies``).
    """
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        value = value["Fn::Sub"].replace("${AWS::Partition}", "aws")
    elif isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        parts = ["aws" if part == {"Ref": "AWS::Partition"} else part for part in parts]
        assert all(isinstance(part, str) for part in parts), f"not understood: {value!r}"
        value = separator.join(parts)
    assert isinstance(value, str) and "${" not in value, f"not understood: {value!r}"
    if value.startswith("arn:"):
        return value
    by_name = {entry["arn"].rsplit("/", 1)[-1]: entry["arn"] for entry in managed_policy_entries()}
    return by_name.get(value, f"arn:aws:iam::aws:policy/{value}")


def attached_document(template: dict[str, Any], value: Any) -> dict[str, Any]:
    """The document of one ``ManagedPolicyArns`` entry: a template managed policy, or AWS's."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template["Resources"]:
        return template["Resources"][value["Ref"]]["Properties"]["PolicyDocument"]
    return managed_policy_document(managed_arn(value))


def sam_role_documents(
    template: dict[str, Any], properties: dict[str, Any]
) -> list[dict[str, Any]]:
    """The policy documents of the role SAM creates for a function without ``Role``.

    Its ``Policies`` (statements, or managed policies by name or ARN), and the managed policies
    SAM adds: the basic execution role always, X-Ray's under ``Tracing: Active`` (the function's
    or the Globals'), and the execution role of each Kinesis, SQS or DynamoDB event source.
    """
    globals_tracing = template.get("Globals", {}).get("Function", {}).get("Tracing")
    arns = [BASIC_EXECUTION_POLICY]
    if properties.get("Tracing", globals_tracing) == "Active":
        arns.append(XRAY_WRITE_POLICY)
    for event in properties.get("Events", {}).values():
        if event["Type"] in SAM_EVENT_POLICIES:
            arns.append(SAM_EVENT_POLICIES[event["Type"]])
    documents = [managed_policy_document(arn) for arn in arns]
    for policy in as_list(properties.get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            documents.append(policy)
        elif isinstance(policy, str) or (
            isinstance(policy, dict) and set(policy) & {"Fn::Sub", "Fn::Join"}
        ):
            documents.append(managed_policy_document(managed_arn(policy)))
        else:
            raise AssertionError(f"SAM policy template not expanded by these checks: {policy!r}")
    return documents


def permission_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permission statement the template grants, with its owner.

    IAM roles' inline and attached managed policies (owner: the role), standalone IAM policies
    (owner: the policy), and the role SAM creates for a function without ``Role`` (owner: the
    function). Managed policies' documents come from ``clickstream_local.iam_policies``.
    """
    for logical_id, spec in of_type(template, "AWS::IAM::Role").items():
        properties = spec.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        documents += [
            attached_document(template, arn) for arn in properties.get("ManagedPolicyArns", [])
        ]
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, spec in of_type(template, kind).items():
            for statement in as_list(spec["Properties"]["PolicyDocument"]["Statement"]):
                yield logical_id, statement
    for logical_id, spec in of_type(template, "AWS::Serverless::Function").items():
        properties = spec.get("Properties", {})
        if "Role" in properties:
            continue  # SAM creates no role, and ignores Policies
        for document in sam_role_documents(template, properties):
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def function_role(template: dict[str, Any], function_id: str) -> str:
    """The owner of a function's statements: its ``Role``'s logical id, else the function's own."""
    role = template["Resources"][function_id]["Properties"].get("Role")
    if role is None:
        return function_id
    assert isinstance(role, dict) and set(role) == {"Fn::GetAtt"}, f"{function_id}: {role!r}"
    target = role["Fn::GetAtt"]
    return target[0] if isinstance(target, list) else target.split(".")[0]


def is_wildcard_resource(resource: str) -> bool:
    """``*``, or an ARN for every resource of its kind (``...:*``, ``arn:aws:s3:::*/...``)."""
    if resource == "*" or resource.endswith(":*"):
        return True
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[5].startswith("*")


def wildcard_action_problems(template: dict[str, Any]) -> list[str]:
    """Allow statements granting every action or a whole service (``service:*``), or NotAction."""
    problems = []
    for owner, statement in permission_statements(template):
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"{owner}: NotAction")
        for action in as_list(statement.get("Action", [])):
            if not isinstance(action, str) or action == "*" or action.endswith(":*"):
                problems.append(f"{owner}: {action}")
    return problems


def unscoped_data_plane_problems(template: dict[str, Any]) -> list[str]:
    """Allow statements with data-plane actions on every resource (``*``, wildcard ARNs)."""
    problems = []
    for owner, statement in permission_statements(template):
        actions = [
            action for action in as_list(statement.get("Action", [])) if isinstance(action, str)
        ]
        services = {action.split(":", 1)[0] for action in actions} & set(DATA_PLANE_SERVICES)
        if statement["Effect"] != "Allow" or not services:
            continue
        if "NotResource" in statement:
            problems.append(f"{owner}: NotResource")
        for resource in as_list(statement.get("Resource", [])):
            if isinstance(resource, str) and is_wildcard_resource(resource):
                problems.append(f"{owner}: {sorted(services)} on {resource}")
    return problems


def any_resource_statements(
    template: dict[str, Any],
) -> set[tuple[str, frozenset[str], str | None]]:
    """Allow statements on Resource ``*``: owner, actions and condition (sorted JSON, or None)."""
    found = set()
    for owner, statement in permission_statements(template):
        if statement["Effect"] == "Allow" and "*" in as_list(statement.get("Resource", [])):
            condition = statement.get("Condition")
            condition_text = json.dumps(condition, sort_keys=True) if condition else None
            found.add((owner, frozenset(as_list(statement["Action"])), condition_text))
    return found


def sub_text(value: Any) -> str | None:
    """A plain string, or the text of a ``!Sub`` without a variable map; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"]
    return None


def function_name_text(template: dict[str, Any], function_id: str) -> str:
    """A function's name as template text: its ``FunctionName``, else ``${<logical id>}``."""
    name = template["Resources"][function_id]["Properties"].get("FunctionName")
    text = sub_text(name) if name is not None else f"${{{function_id}}}"
    assert text is not None, f"{function_id}: FunctionName not understood: {name!r}"
    return text


def log_group_name_text(template: dict[str, Any], log_group_id: str) -> str | None:
    """A log group's name as template text, each ``${<function>}`` replaced by the name's text."""
    name = sub_text(template["Resources"][log_group_id]["Properties"].get("LogGroupName"))
    if name is None:
        return None
    for function_id in of_type(template, "AWS::Serverless::Function"):
        name = name.replace(f"${{{function_id}}}", function_name_text(template, function_id))
    return name


LOG_GROUP_ARN = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"


def logged_group(template: dict[str, Any], resource: Any) -> str | None:
    """The name (template text) of the log group a statement's resource names, else None."""
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        target = resource["Fn::GetAtt"]
        logical_id, attribute = target if isinstance(target, list) else target.split(".", 1)
        if attribute == "Arn" and logical_id in log_groups:
            return log_group_name_text(template, logical_id)
        return None
    text = sub_text(resource)
    if text is None:
        return None
    reference = re.fullmatch(r"\$\{(\w+)\.Arn\}", text)
    if reference and reference.group(1) in log_groups:
        return log_group_name_text(template, reference.group(1))
    if text.startswith(LOG_GROUP_ARN):
        name = text.removeprefix(LOG_GROUP_ARN).removesuffix(":log-stream:*")
        return name.removesuffix(":*")
    return None


def log_group_problems(template: dict[str, Any]) -> list[str]:
    """Functions without exactly one log group ``/aws/lambda/<name>`` kept LogRetentionDays."""
    problems = []
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    for function_id in of_type(template, "AWS::Serverless::Function"):
        expected = "/aws/lambda/" + function_name_text(template, function_id)
        own = [lg for lg in log_groups if log_group_name_text(template, lg) == expected]
        if len(own) != 1:
            problems.append(f"{function_id}: {len(own)} log groups named {expected}")
        for log_group in own:
            retention = log_groups[log_group]["Properties"].get("RetentionInDays")
            if retention != {"Ref": "LogRetentionDays"}:
                problems.append(f"{log_group}: RetentionInDays is {retention!r}")
    return problems


def own_log_group_problems(template: dict[str, Any]) -> list[str]:
    """Logs statements of a function's role that name anything but that function's log group."""
    problems = []
    roles = {
        function_id: function_role(template, function_id)
        for function_id in of_type(template, "AWS::Serverless::Function")
    }
    statements = list(permission_statements(template))
    for function_id, role in roles.items():
        sharing = sorted(other for other, other_role in roles.items() if other_role == role)
        if len(sharing) > 1:
            problems.append(f"{role}: the role of {sharing}")
        expected = "/aws/lambda/" + function_name_text(template, function_id)
        for owner, statement in statements:
            actions = [
                a for a in as_list(statement.get("Action", [])) if str(a).startswith("logs:")
            ]
            if owner != role or statement["Effect"] != "Allow" or not actions:
                continue
            for resource in as_list(statement.get("Resource", [])):
                if logged_group(template, resource) != expected:
                    problems.append(f"{role}: {actions} on {resource}")
    return problems


# ---------------------------------------------------------------------------- IAM


TRACE_UPLOAD = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
ANY_RESOURCE_ALLOW_LIST = {
    # X-Ray's trace upload has no resource-level permissions: the role of every traced function.
    ("GeneratorRole", TRACE_UPLOAD, None),
    ("WindowCounterRole", TRACE_UPLOAD, None),
    ("FinalizerRole", TRACE_UPLOAD, None),
    ("SessionizerRole", TRACE_UPLOAD, None),
    ("SearchIndexerRole", TRACE_UPLOAD, None),
    # Neither has PutMetricData: the Glue jobs' metrics, held to Glue's namespace.
    (
        "GlueJobRole",
        frozenset({"cloudwatch:PutMetricData"}),
        json.dumps({"StringEquals": {"cloudwatch:namespace": "Glue"}}, sort_keys=True),
    ),
}
"""Every Allow statement with Resource "*" the template may have: owner, actions, condition."""

GLUE_SERVICE_ROLE = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSGlueServiceRole"
}


def test_every_role_grants_permission_statements(template: dict[str, Any]) -> None:
    # GIVEN the project's template
    # WHEN its permission statements are collected
    owners = {owner for owner, _ in permission_statements(template)}
    # THEN every IAM role contributes some
    assert set(of_type(template, "AWS::IAM::Role")) <= owners


def test_no_statement_allows_every_action(template: dict[str, Any]) -> None:
    # GIVEN every Allow statement, managed policies' included
    # WHEN its actions are read
    # THEN none is "*" or a whole service ("service:*"), and NotAction is not used
    assert wildcard_action_problems(template) == []


def test_data_plane_actions_are_scoped_to_resources(template: dict[str, Any]) -> None:
    # GIVEN every Allow statement with data-plane actions, managed policies' included
    # WHEN its resources are read
    # THEN each is a specific resource, never "*" or an ARN wildcard for a whole service
    assert unscoped_data_plane_problems(template) == []


def test_only_actions_without_resource_level_permissions_apply_to_every_resource(
    template: dict[str, Any],
) -> None:
    # GIVEN every Allow statement, managed policies' included
    # WHEN those with Resource "*" are collected
    found = any_resource_statements(template)
    # THEN they are exactly the allow-list: X-Ray's trace upload, and Glue's namespaced metrics
    assert found == ANY_RESOURCE_ALLOW_LIST


def test_a_role_attaching_aws_glue_service_role_fails_the_checks(template: dict[str, Any]) -> None:
    # GIVEN a copy of the template whose Glue job role attaches AWSGlueServiceRole
    modified = copy.deepcopy(template)
    role = modified["Resources"]["GlueJobRole"]["Properties"]
    role["ManagedPolicyArns"] = [GLUE_SERVICE_ROLE]
    # WHEN the checks run on it
    actions = wildcard_action_problems(modified)
    data_plane = unscoped_data_plane_problems(modified)
    extra = any_resource_statements(modified) - ANY_RESOURCE_ALLOW_LIST
    # THEN the managed policy's statements are caught: glue:*, S3 on every bucket, more "*"
    assert actions == ["GlueJobRole: glue:*"]
    assert data_plane == [
        "GlueJobRole: ['s3'] on *",
        "GlueJobRole: ['s3'] on arn:aws:s3:::*/*aws-glue-*/*",
    ]
    assert {owner for owner, _, _ in extra} == {"GlueJobRole"}


def test_a_function_without_role_gets_the_managed_policies_sam_attaches(
    template: dict[str, Any],
) -> None:
    # GIVEN a copy of the template whose window counter has no Role, so SAM creates one, and
    # traces actively (ConsumerTracing=Active)
    modified = copy.deepcopy(template)
    del modified["Resources"]["WindowCounterFunction"]["Properties"]["Role"]
    modified["Resources"]["WindowCounterFunction"]["Properties"]["Tracing"] = "Active"
    # WHEN its permission statements are collected
    actions = {
        action
        for owner, statement in permission_statements(modified)
        if owner == "WindowCounterFunction"
        for action in as_list(statement["Action"])
    }
    # THEN the basic execution role, X-Ray's (Tracing: Active) and Kinesis's are in
    assert {"logs:CreateLogGroup", "xray:GetSamplingRules", "kinesis:ListStreams"} <= actions
    # AND the checks see them: Kinesis reads on every stream, logs on every log group
    assert "WindowCounterFunction: ['kinesis'] on *" in unscoped_data_plane_problems(modified)
    assert any(p.startswith("WindowCounterFunction: ") for p in own_log_group_problems(modified))


def test_sam_attaches_x_ray_only_under_active_tracing_and_queue_policies_for_queues(
    template: dict[str, Any],
) -> None:
    # GIVEN a copy whose generator has no Role, passes tracing through and also reads a queue
    modified = copy.deepcopy(template)
    properties = modified["Resources"]["GeneratorFunction"]["Properties"]
    del properties["Role"]
    properties["Tracing"] = "PassThrough"
    queue = {"Queue": "arn:aws:sqs:us-east-1:123456789012:requests"}
    properties["Events"]["Failures"] = {"Type": "SQS", "Properties": queue}
    # WHEN its permission statements are collected
    actions = {
        action
        for owner, statement in permission_statements(modified)
        if owner == "GeneratorFunction"
        for action in as_list(statement["Action"])
    }
    # THEN no X-Ray permission, but the basic execution role's and the SQS execution role's
    assert not {action for action in actions if action.startswith("xray:")}
    assert {"logs:PutLogEvents", "sqs:ReceiveMessage"} <= actions
    assert "GeneratorFunction: ['sqs'] on *" in unscoped_data_plane_problems(modified)


# ---------------------------------------------------------------------------- log groups


def test_every_function_has_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    # GIVEN every function and every log group
    # WHEN each function's log group (/aws/lambda/<its name>) is looked up
    # THEN there is exactly one, kept for LogRetentionDays
    assert log_group_problems(template) == []


def test_function_roles_write_only_their_own_log_group(template: dict[str, Any]) -> None:
    # GIVEN the role of every function (declared, or the one SAM creates)
    # WHEN its statements with logs actions are read, managed policies' included
    # THEN each names only the function's own log group, and no role serves two functions
    assert own_log_group_problems(template) == []


def test_the_log_checks_catch_a_missing_group_and_a_foreign_one(template: dict[str, Any]) -> None:
    # GIVEN a copy without the finalizer's log group, whose window counter role writes to the
    # sessionizer's log group
    modified = copy.deepcopy(template)
    del modified["Resources"]["FinalizerLogGroup"]
    role = modified["Resources"]["WindowCounterRole"]["Properties"]
    for policy in role["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if any(str(action).startswith("logs:") for action in as_list(statement["Action"])):
                statement["Resource"] = {"Fn::GetAtt": ["SessionizerLogGroup", "Arn"]}
    # WHEN the log checks run on it
    missing = log_group_problems(modified)
    foreign = own_log_group_problems(modified)
    # THEN both are reported
    assert missing == [
        "FinalizerFunction: 0 log groups named /aws/lambda/${AWS::StackName}-finalizer"
    ]
    assert foreign and all(problem.startswith("WindowCounterRole: ") for problem in foreign)
