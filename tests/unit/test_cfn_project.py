"""The template reader on the project's template.yaml: names, wiring, every resource resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
PROJECT_TEMPLATE = ROOT / "template.yaml"


# ---------------------------------------------------------------------------- project template


@pytest.fixture(scope="module")
def project() -> Template:
    """The project's template.yaml with its defaults, bound to the stack ``clickstream``."""
    return Template.load(PROJECT_TEMPLATE)


def test_project_stream_and_bucket_names(project: Template) -> None:
    # GIVEN the project's template with the default stack name
    # WHEN the stream and raw bucket names are resolved
    # THEN they follow the naming scheme in the template
    assert project.physical_id("ClickstreamStream") == "clickstream-clickstream"
    assert project.physical_id("RawBucket") == "clickstream-raw-123456789012-us-east-1"
    assert project.resource("ClickstreamStream").properties["ShardCount"] == "2"


def test_project_generator_environment_and_layers(project: Template) -> None:
    # GIVEN the generator function with Globals applied
    generator = project.resource("GeneratorFunction")
    # WHEN its environment and layers are read
    variables = generator.properties["Environment"]["Variables"]
    layers = generator.properties["Layers"]
    # THEN it writes to the project's stream and loads the domain layer first
    assert variables["STREAM_NAME"] == "clickstream-clickstream"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "generator"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Clickstream"
    domain_arn = "arn:aws:lambda:us-east-1:123456789012:layer:clickstream-domain:1"
    assert project.arn("DomainLayer") == domain_arn
    assert layers[0] == domain_arn
    assert any(":layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:" in arn for arn in layers)
    assert generator.properties["Timeout"] == 300
    assert generator.properties["Runtime"] == "python3.11"
    assert generator.physical_id == "clickstream-generator"
    # AND its schedule is off unless GeneratorScheduleEnabled turns it on
    assert generator.properties["Events"]["Schedule"]["Properties"]["Enabled"] is False


def test_project_template_follows_the_stack_name() -> None:
    # GIVEN the project's template bound to another stack with overrides
    template = Template.load(
        PROJECT_TEMPLATE,
        stack_name="t1",
        parameter_overrides={"ShardCount": "4", "GeneratorScheduleEnabled": "true"},
    )
    # WHEN names, the schedule and the delivery stream are resolved
    generator = template.resource("GeneratorFunction")
    delivery = template.resource("RawDeliveryStream").properties
    # THEN everything is named after the stack, and the overrides take effect
    assert template.physical_id("ClickstreamStream") == "t1-clickstream"
    assert generator.properties["Environment"]["Variables"]["STREAM_NAME"] == "t1-clickstream"
    assert generator.properties["Events"]["Schedule"]["Properties"]["Enabled"] is True
    assert template.resource("ClickstreamStream").properties["ShardCount"] == "4"
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == (
        "arn:aws:kinesis:us-east-1:123456789012:stream/t1-clickstream"
    )
    assert delivery["ExtendedS3DestinationConfiguration"]["BucketARN"] == (
        "arn:aws:s3:::t1-raw-123456789012-us-east-1"
    )


def test_project_resources_all_resolve(project: Template) -> None:
    # GIVEN every resource in the project's template
    # WHEN each is resolved
    resources = project.resources()
    # THEN none is left with an unresolved intrinsic (resources whose condition is false aside)
    declared = project.document["Resources"].items()
    assert {r.logical_id for r in resources} == {
        logical_id
        for logical_id, spec in declared
        if "Condition" not in spec or project.condition(spec["Condition"])
    }
    for resource in resources:
        text = repr(resource.properties)
        assert "'Ref'" not in text
        assert "'Fn::" not in text, resource.logical_id


def test_project_data_lake_wiring(project: Template) -> None:
    # GIVEN the project's template with the default stack name
    curated = project.physical_id("CuratedBucket")
    raw = project.physical_id("RawBucket")
    # WHEN the rules, triggers, jobs and tables are resolved
    rule_target = project.resource("RawEventsRule").properties["Targets"][0]
    trigger = project.resource("RawEventsTrigger").properties
    job = project.resource("RawToCuratedEventsJob").properties
    table = project.resource("CuratedEventsTable").properties["TableInput"]
    # THEN the rule targets the workflow the trigger belongs to, and the trigger runs the job
    assert curated == "clickstream-curated-123456789012-us-east-1"
    assert trigger["WorkflowName"] == project.physical_id("RawEventsWorkflow")
    assert rule_target["Arn"] == (
        f"arn:aws:glue:us-east-1:123456789012:workflow/{trigger['WorkflowName']}"
    )
    assert trigger["Actions"] == [{"JobName": "clickstream-raw-to-curated-events"}]
    assert trigger["EventBatchingCondition"] == {"BatchSize": "100", "BatchWindow": "900"}
    # AND the job is pointed at the project's buckets, database and shared module
    arguments = job["DefaultArguments"]
    assert arguments["--source_bucket"] == raw
    assert arguments["--curated_bucket"] == curated
    assert arguments["--database"] == "clickstream"
    assert arguments["--extra-py-files"] == f"s3://{curated}/_glue/clickstream_glue.zip"
    # AND the projected partition locations keep Athena's ${...} placeholders
    assert table["Parameters"]["storage.location.template"] == (
        f"s3://{curated}/events/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/"
    )
