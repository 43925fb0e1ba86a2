"""Static wiring checks of the data lake in template.yaml: tables, Glue jobs, event triggers."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream.core.events import FIELDS
from clickstream.core.sessions import MINUTE_SESSION_COLUMNS, GapSession
from clickstream_local.cfn import Template, load_template_document
from clickstream_local.firehose import render_prefix
from clickstream_local.provision import (
    ENFORCED_TYPES,
    NOT_EMULATED_TYPES,
    PROVISIONED_TYPES,
    RUN_LOCALLY_TYPES,
)

ROOT = Path(__file__).resolve().parents[2]
HOURLY = "year=${year}/month=${month}/day=${day}/hour=${hour}/"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The project's template.yaml as a plain document (intrinsics unresolved)."""
    return load_template_document(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def project() -> Template:
    """The project's template.yaml with its defaults, bound to the stack ``clickstream``."""
    return Template.load(ROOT / "template.yaml")


def of_type(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical id."""
    return {
        logical_id: spec
        for logical_id, spec in document["Resources"].items()
        if spec["Type"] == kind
    }


def table(project: Template, name: str) -> dict[str, Any]:
    """The resolved ``TableInput`` of the Glue table called ``name``."""
    (found,) = [
        r.properties["TableInput"]
        for r in project.resources("AWS::Glue::Table")
        if r.physical_id == name
    ]
    return found


def column_names(table_input: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c["Name"] for c in table_input["StorageDescriptor"]["Columns"])


# ---------------------------------------------------------------------------- local stack


def test_every_resource_type_is_classified_for_the_local_stack(document: dict[str, Any]) -> None:
    # GIVEN every resource type the template uses
    kinds = {spec["Type"] for spec in document["Resources"].values()}
    # WHEN it is looked up in the provisioner's lists
    lists = (PROVISIONED_TYPES, ENFORCED_TYPES, RUN_LOCALLY_TYPES, NOT_EMULATED_TYPES)
    # THEN each is provisioned, enforced, run locally or deliberately not emulated: one of them
    for kind in sorted(kinds):
        assert sum(kind in listed for listed in lists) == 1, kind


# ---------------------------------------------------------------------------- tables


def test_table_columns_follow_the_domain_records(project: Template) -> None:
    # GIVEN the catalog tables over the raw and curated layers
    # WHEN their columns are read
    # THEN they are the domain's fields, in the domain's order
    assert column_names(table(project, "rawdata")) == FIELDS
    assert column_names(table(project, "curated_events")) == FIELDS
    assert column_names(table(project, "aggregated")) == MINUTE_SESSION_COLUMNS
    assert column_names(table(project, "curated_sessions")) == MINUTE_SESSION_COLUMNS
    assert column_names(table(project, "sessions")) == tuple(f.name for f in fields(GapSession))
    curated_gap = column_names(table(project, "curated_gap_sessions"))
    assert curated_gap == tuple(
        {"start": "session_start", "end": "session_end"}.get(f.name, f.name)
        for f in fields(GapSession)
    )


@pytest.mark.parametrize(
    ("name", "delivery"),
    [
        ("rawdata", "RawDeliveryStream"),
        ("aggregated", "AggregatedDeliveryStream"),
        ("sessions", "SessionsDeliveryStream"),
    ],
)
def test_raw_tables_project_the_partitions_firehose_writes(
    project: Template, name: str, delivery: str
) -> None:
    # GIVEN a raw-layer table and the delivery stream writing its data
    table_input = table(project, name)
    destination = project.resource(delivery).properties["ExtendedS3DestinationConfiguration"]
    bucket = destination["BucketARN"].removeprefix("arn:aws:s3:::")
    # WHEN one arrival hour is rendered both ways
    arrival = datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC)
    written = render_prefix(destination["Prefix"], arrival)
    parameters = table_input["Parameters"]
    projected = parameters["storage.location.template"].replace("${year}", "2026")
    projected = projected.replace("${month}", "03").replace("${day}", "07")
    projected = projected.replace("${hour}", "04")
    # THEN the table's projected partition is the prefix Firehose writes to
    assert projected == f"s3://{bucket}/{written}"
    assert parameters["projection.enabled"] == "true"


def test_sessions_table_projects_the_hourly_layout(project: Template) -> None:
    # GIVEN the gap-sessions table over the raw bucket
    parameters = table(project, "sessions")["Parameters"]
    raw = project.physical_id("RawBucket")
    # THEN its partitions are the YYYY/MM/DD/HH/ folders Firehose writes, two digits each
    assert parameters["storage.location.template"] == (
        f"s3://{raw}/sessions/${{year}}/${{month}}/${{day}}/${{hour}}/"
    )
    assert [parameters[f"projection.{p}.digits"] for p in ("month", "day", "hour")] == ["2"] * 3


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("curated_events", "events/"),
        ("curated_sessions", "minute_sessions/"),
        ("curated_gap_sessions", "gap_sessions/"),
    ],
)
def test_curated_tables_are_parquet_in_unpadded_int_hour_partitions(
    project: Template, name: str, prefix: str
) -> None:
    # GIVEN a curated table
    table_input = table(project, name)
    parameters = table_input["Parameters"]
    location = table_input["StorageDescriptor"]["Location"]
    # THEN it is Parquet under its prefix of the curated bucket
    assert location == f"s3://{project.physical_id('CuratedBucket')}/{prefix}"
    assert parameters["classification"] == "parquet"
    serde = table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde.endswith("ParquetHiveSerDe")
    # AND it is partitioned by int year/month/day/hour, projected without zero padding
    keys = [(k["Name"], k["Type"]) for k in table_input["PartitionKeys"]]
    assert keys == [("year", "int"), ("month", "int"), ("day", "int"), ("hour", "int")]
    assert parameters["storage.location.template"] == location + HOURLY
    assert parameters["projection.enabled"] == "true"
    assert not [key for key in parameters if key.endswith(".digits")]


# ---------------------------------------------------------------------------- Glue jobs


def test_glue_jobs_run_one_at_a_time_with_their_own_ledger(document: dict[str, Any]) -> None:
    # GIVEN every Glue job
    jobs = of_type(document, "AWS::Glue::Job")
    assert set(jobs) == {
        "RawToCuratedEventsJob",
        "AggregatedToCuratedSessionsJob",
        "InferSchemasJob",
    }
    for logical_id, spec in jobs.items():
        properties = spec["Properties"]
        arguments = properties["DefaultArguments"]
        # THEN it is a Glue 5.0 Spark job whose script is a local file that packaging uploads
        assert properties["GlueVersion"] == "5.0", logical_id
        assert properties["Command"]["Name"] == "glueetl", logical_id
        script = properties["Command"]["ScriptLocation"]
        assert script.startswith("glue_jobs/") and script.endswith(".py"), logical_id
        # AND runs never overlap nor retry, with bookmarks off (the jobs keep a ledger)
        assert properties["ExecutionProperty"] == {"MaxConcurrentRuns": 1}, logical_id
        assert properties["MaxRetries"] == 0, logical_id
        assert arguments["--job-bookmark-option"] == "job-bookmark-disable", logical_id
        # AND it gets the buckets, the database and the shared module
        assert arguments["--source_bucket"] == {"Ref": "RawBucket"}, logical_id
        assert arguments["--curated_bucket"] == {"Ref": "CuratedBucket"}, logical_id
        assert arguments["--database"] == {"Ref": "GlueDatabase"}, logical_id
        assert arguments["--extra-py-files"] == {
            "Fn::Sub": "s3://${CuratedBucket}/_glue/clickstream_glue.zip"
        }, logical_id
        assert properties["NumberOfWorkers"] == {"Ref": "GlueWorkers"}, logical_id
        assert properties["Role"] == {"Fn::GetAtt": ["GlueJobRole", "Arn"]}, logical_id


# ---------------------------------------------------------------------------- event triggers


def test_each_event_trigger_is_fed_by_one_s3_rule(project: Template) -> None:
    # GIVEN the EVENT triggers, the EventBridge rules and the role the rules use
    triggers = project.resources("AWS::Glue::Trigger")
    rules = project.resources("AWS::Events::Rule")
    assert {t.properties["Type"] for t in triggers} == {"EVENT"}
    raw = project.physical_id("RawBucket")
    for trigger in triggers:
        workflow_arn = (
            "arn:aws:glue:us-east-1:123456789012:workflow/" + trigger.properties["WorkflowName"]
        )
        # WHEN the rules targeting the trigger's workflow are found
        feeding = [
            rule for rule in rules for t in rule.properties["Targets"] if t["Arn"] == workflow_arn
        ]
        # THEN exactly one rule feeds it S3 Object Created events of the raw bucket
        assert len(feeding) == 1, trigger.logical_id
        pattern = feeding[0].properties["EventPattern"]
        assert pattern["source"] == ["aws.s3"]
        assert pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"]["bucket"]["name"] == [raw]
        # AND the rule's role may notify that workflow
        (target,) = feeding[0].properties["Targets"]
        role_id = "WorkflowEventsRole"
        assert target["RoleArn"] == project.arn(role_id)
        statements = [
            s
            for p in project.resource(role_id).properties["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ]
        assert any(
            s["Action"] == "glue:NotifyEvent" and workflow_arn in s["Resource"] for s in statements
        )
        # AND the trigger batches by the template's parameters
        assert trigger.properties["EventBatchingCondition"] == {
            "BatchSize": project.parameters["GlueBatchSize"],
            "BatchWindow": project.parameters["GlueBatchWindowSeconds"],
        }


def test_rules_split_the_raw_bucket_prefixes_between_the_jobs(project: Template) -> None:
    # GIVEN the two S3 rules
    def prefixes(logical_id: str) -> list[str]:
        pattern = project.resource(logical_id).properties["EventPattern"]
        return [k["prefix"] for k in pattern["detail"]["object"]["key"]]

    # THEN raw events go to the events workflow, both session layers to the sessions workflow
    assert prefixes("RawEventsRule") == ["rawdata/"]
    assert prefixes("SessionsRule") == ["aggregated/", "sessions/"]
    # AND the raw bucket sends its events to EventBridge
    notification = project.resource("RawBucket").properties["NotificationConfiguration"]
    assert notification == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


# ---------------------------------------------------------------------------- Athena


def test_workgroup_enforces_results_under_the_curated_bucket(project: Template) -> None:
    # GIVEN the Athena workgroup
    configuration = project.resource("AnalyticsWorkGroup").properties["WorkGroupConfiguration"]
    # THEN its result location is enforced and lies under athena-results/, encrypted
    curated = project.physical_id("CuratedBucket")
    assert configuration["EnforceWorkGroupConfiguration"] is True
    result = configuration["ResultConfiguration"]
    assert result["OutputLocation"] == f"s3://{curated}/athena-results/"
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
