"""Static checks of the DynamoDB tables' capacity: provisioned with auto scaling by default, or on
demand (``TableBillingMode``).

In provisioned mode every table, and every global secondary index one may get, needs its own
capacity and, for reads and for writes, a scalable target and a target tracking policy;
Application Auto Scaling acts with DynamoDB's service-linked role. On demand there is neither.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_local.cfn import Resource, Template

ROOT = Path(__file__).resolve().parents[2]
SCALING_TYPES = (
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)
SERVICE_LINKED_ROLE = (
    "arn:aws:iam::123456789012:role/aws-service-role/dynamodb.application-autoscaling"
    ".amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"
)
METRICS = {
    "ReadCapacityUnits": "DynamoDBReadCapacityUtilization",
    "WriteCapacityUnits": "DynamoDBWriteCapacityUtilization",
}


@pytest.fixture(scope="module")
def provisioned() -> Template:
    """The project's template.yaml with its defaults."""
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def on_demand() -> Template:
    """The project's template.yaml with on-demand tables."""
    return Template.load(
        ROOT / "template.yaml", parameter_overrides={"TableBillingMode": "PAY_PER_REQUEST"}
    )


def tables(template: Template) -> list[Resource]:
    return template.resources("AWS::DynamoDB::Table")


def scaled_capacities(table: Resource) -> dict[tuple[str, str], dict[str, str]]:
    """Each (ResourceId, dimension) auto scaling must cover, with its provisioned throughput:
    the table's, and each global secondary index's."""
    found = {}
    for dimension in METRICS:
        found[(f"table/{table.physical_id}", f"dynamodb:table:{dimension}")] = table.properties[
            "ProvisionedThroughput"
        ]
        for index in table.properties.get("GlobalSecondaryIndexes", []):
            resource_id = f"table/{table.physical_id}/index/{index['IndexName']}"
            found[(resource_id, f"dynamodb:index:{dimension}")] = index["ProvisionedThroughput"]
    return found


def test_the_tables_are_provisioned_by_default_starting_at_the_minimum_capacity(
    provisioned: Template,
) -> None:
    # GIVEN the template with its defaults
    minimum = provisioned.parameters["TableMinCapacityUnits"]
    # WHEN its tables are read
    found = tables(provisioned)
    # THEN the three are provisioned, each table and index with the minimum read and write units
    assert provisioned.parameters["TableBillingMode"] == "PROVISIONED"
    assert len(found) == 3
    for table in found:
        assert table.properties["BillingMode"] == "PROVISIONED", table.logical_id
        for key, throughput in scaled_capacities(table).items():
            assert throughput == {"ReadCapacityUnits": minimum, "WriteCapacityUnits": minimum}, key


def test_every_provisioned_capacity_has_a_scalable_target_and_a_target_tracking_policy(
    provisioned: Template,
) -> None:
    # GIVEN the template with its defaults, and the capacities its tables and indexes provision
    parameters = provisioned.parameters
    needed = {key for table in tables(provisioned) for key in scaled_capacities(table)}
    targets = provisioned.resources("AWS::ApplicationAutoScaling::ScalableTarget")
    policies = provisioned.resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    # WHEN the scalable targets are keyed by what they scale
    by_capacity = {
        (t.properties["ResourceId"], t.properties["ScalableDimension"]): t for t in targets
    }
    # THEN each capacity has exactly one target, within the bounds the parameters give, acting
    # with DynamoDB's service-linked role
    assert len(by_capacity) == len(targets) == len(needed) == 6
    assert set(by_capacity) == needed
    for target in targets:
        assert target.properties["ServiceNamespace"] == "dynamodb"
        assert target.properties["MinCapacity"] == parameters["TableMinCapacityUnits"]
        assert target.properties["MaxCapacity"] == parameters["TableMaxCapacityUnits"]
        assert target.properties["RoleARN"] == SERVICE_LINKED_ROLE
    # AND each target has one target tracking policy on the utilization of its dimension
    policy_of = {p.properties["ScalingTargetId"]: p for p in policies}
    assert len(policy_of) == len(policies) == len(targets)
    for target in targets:
        policy = policy_of[target.physical_id].properties
        dimension = target.properties["ScalableDimension"].rsplit(":", 1)[1]
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert policy["PolicyType"] == "TargetTrackingScaling"
        assert tracking["TargetValue"] == parameters["TableTargetUtilization"]
        assert tracking["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": METRICS[dimension]
        }


def test_the_default_bounds_leave_auto_scaling_room_at_the_documented_target_range(
    provisioned: Template,
) -> None:
    # GIVEN the capacity parameters' declarations and defaults
    declared = provisioned.document["Parameters"]
    minimum = int(provisioned.parameters["TableMinCapacityUnits"])
    maximum = int(provisioned.parameters["TableMaxCapacityUnits"])
    # THEN the minimum is below the maximum, and the target stays within 20 to 90 percent
    assert 1 <= minimum < maximum
    target = declared["TableTargetUtilization"]
    assert (target["MinValue"], target["MaxValue"]) == (20, 90)
    assert 20 <= int(provisioned.parameters["TableTargetUtilization"]) <= 90


def test_on_demand_tables_have_no_throughput_and_nothing_to_scale(on_demand: Template) -> None:
    # GIVEN the template with on-demand tables
    # WHEN its tables and scaling resources are read
    found = tables(on_demand)
    # THEN every table is billed per request, without throughput, its indexes too
    assert len(found) == 3
    for table in found:
        assert table.properties["BillingMode"] == "PAY_PER_REQUEST", table.logical_id
        assert "ProvisionedThroughput" not in table.properties
        for index in table.properties.get("GlobalSecondaryIndexes", []):
            assert "ProvisionedThroughput" not in index
    # AND no scalable target or policy is deployed
    assert on_demand.resources(*SCALING_TYPES) == []
