"""Provisioning from template.yaml onto a real moto server over HTTP."""

from __future__ import annotations

import json

import pytest

from clickstream.core.events import FIELDS
from clickstream.core.sessions import MINUTE_SESSION_COLUMNS
from clickstream_local.aws import local_client
from clickstream_local.provision import NOT_EMULATED_TYPES, PROVISIONED_TYPES, Provisioner

from .conftest import project_template

pytestmark = pytest.mark.integration


def test_every_supported_resource_of_the_template_is_created(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the project's template
    template = project_template(stack_name, ShardCount="3")
    provisioner = Provisioner(template, moto_endpoint)
    # WHEN it is provisioned
    results = provisioner.provision()
    # THEN every resource of a supported type was created and now exists
    supported = [r for r in template.resources() if r.type in PROVISIONED_TYPES]
    assert supported, "the template declares resources the local stack provisions"
    created = {r.logical_id for r in results if r.status == "created"}
    skipped = {r.logical_id for r in results if r.status == "skipped"}
    assert created | skipped == {r.logical_id for r in supported}
    # (only the TLS-only bucket policies are skipped: the local endpoint is plain HTTP)
    assert skipped == {"RawBucketPolicy", "CuratedBucketPolicy", "FailedBatchBucketPolicy"}
    assert all(provisioner.exists(resource) for resource in supported)
    # AND a second run finds them all in place
    again = {r.logical_id: r.status for r in provisioner.provision() if r.type in PROVISIONED_TYPES}
    assert {again[logical_id] for logical_id in created} == {"exists"}


def test_resources_carry_the_template_settings(moto_endpoint: str, stack_name: str) -> None:
    # GIVEN a provisioned template with a shard-count override
    template = project_template(stack_name, ShardCount="3")
    Provisioner(template, moto_endpoint).provision()
    kinesis = local_client("kinesis", moto_endpoint)
    s3 = local_client("s3", moto_endpoint)
    # THEN the stream has the shard count and KMS encryption
    stream = kinesis.describe_stream_summary(StreamName=f"{stack_name}-clickstream")
    summary = stream["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
    assert summary["EncryptionType"] == "KMS"
    # AND the raw bucket is encrypted and blocks public access
    bucket = template.resource("RawBucket").physical_id
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # AND the delivery stream reads the stream and writes under rawdata/
    firehose = local_client("firehose", moto_endpoint)
    description = firehose.describe_delivery_stream(DeliveryStreamName=f"{stack_name}-raw")
    destination = description["DeliveryStreamDescription"]["Destinations"][0]
    assert destination["ExtendedS3DestinationDescription"]["Prefix"].startswith("rawdata/")
    # AND the sessionizer's two Direct PUT streams write under aggregated/ and sessions/
    for name, prefix in [("aggregated", "aggregated/"), ("sessions", "sessions/")]:
        description = firehose.describe_delivery_stream(DeliveryStreamName=f"{stack_name}-{name}")
        stream = description["DeliveryStreamDescription"]
        assert stream["DeliveryStreamType"] == "DirectPut"
        written = stream["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert (written["BucketARN"], written["Prefix"]) == (f"arn:aws:s3:::{bucket}", prefix)
    # AND the Glue table has the event columns
    glue = local_client("glue", moto_endpoint)
    table = glue.get_table(DatabaseName=f"db_{stack_name}", Name="rawdata")["Table"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert tuple(columns) == FIELDS


def test_data_lake_resources_are_provisioned_or_reported(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the project's template, provisioned
    template = project_template(stack_name)
    results = {r.logical_id: r for r in Provisioner(template, moto_endpoint).provision()}
    s3 = local_client("s3", moto_endpoint)
    glue = local_client("glue", moto_endpoint)
    # THEN the curated bucket exists, encrypted and closed to the public
    curated = template.resource("CuratedBucket").physical_id
    assert results["CuratedBucket"].status == "created"
    rules = s3.get_bucket_encryption(Bucket=curated)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(
        s3.get_public_access_block(Bucket=curated)["PublicAccessBlockConfiguration"].values()
    )
    # AND every lake table is in the catalog, the curated ones partitioned by int hour columns
    database = f"db_{stack_name}"
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {
        "rawdata",
        "aggregated",
        "sessions",
        "curated_events",
        "curated_sessions",
        "curated_gap_sessions",
    }
    columns = [c["Name"] for c in tables["aggregated"]["StorageDescriptor"]["Columns"]]
    assert tuple(columns) == MINUTE_SESSION_COLUMNS
    for name, prefix in [
        ("curated_events", "events"),
        ("curated_sessions", "minute_sessions"),
        ("curated_gap_sessions", "gap_sessions"),
    ]:
        table = tables[name]
        keys = [(k["Name"], k["Type"]) for k in table["PartitionKeys"]]
        assert keys == [("year", "int"), ("month", "int"), ("day", "int"), ("hour", "int")]
        assert table["StorageDescriptor"]["Location"] == f"s3://{curated}/{prefix}/"
        assert table["Parameters"]["storage.location.template"] == (
            f"s3://{curated}/{prefix}/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/"
        )
    # AND jobs, workflows, triggers, rules and the workgroup are reported, not created
    for resource in template.resources(*NOT_EMULATED_TYPES):
        assert results[resource.logical_id].status == "not emulated", resource.logical_id
    assert {"RawToCuratedEventsJob", "RawEventsWorkflow", "SessionsRule", "AnalyticsWorkGroup"} <= {
        r.logical_id for r in template.resources(*NOT_EMULATED_TYPES)
    }


def test_tables_are_created_provisioned_and_their_auto_scaling_is_reported(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the project's template with its defaults: provisioned tables with auto scaling
    template = project_template(stack_name)
    # WHEN it is provisioned
    results = {r.logical_id: r for r in Provisioner(template, moto_endpoint).provision()}
    dynamodb = local_client("dynamodb", moto_endpoint)
    # THEN moto holds each table in provisioned mode with the minimum read and write units
    minimum = int(template.parameters["TableMinCapacityUnits"])
    tables = template.resources("AWS::DynamoDB::Table")
    assert len(tables) == 3
    for table in tables:
        description = dynamodb.describe_table(TableName=table.physical_id)["Table"]
        assert description["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
        throughput = description["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (
            minimum,
            minimum,
        )
    # AND each table's read and write scalable targets and policies are reported, not emulated
    scaling = template.resources(
        "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy"
    )
    assert len(scaling) == 12
    assert {results[r.logical_id].status for r in scaling} == {"not emulated"}


def test_on_demand_tables_are_created_without_capacity_or_auto_scaling(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the project's template with on-demand tables
    template = project_template(stack_name, TableBillingMode="PAY_PER_REQUEST")
    # WHEN it is provisioned
    results = {r.logical_id: r for r in Provisioner(template, moto_endpoint).provision()}
    dynamodb = local_client("dynamodb", moto_endpoint)
    # THEN moto holds each table on demand
    for table in template.resources("AWS::DynamoDB::Table"):
        description = dynamodb.describe_table(TableName=table.physical_id)["Table"]
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert results[table.logical_id].status == "created"
    # AND there is no auto scaling resource to report
    assert not [r for r in results.values() if r.type.startswith("AWS::ApplicationAutoScaling::")]


def test_raw_bucket_events_match_the_workflow_rules(moto_endpoint: str, stack_name: str) -> None:
    # GIVEN the provisioned template, and its two S3 rules recreated on the local EventBridge with
    # a queue in place of the Glue workflow (rules and workflows are not emulated)
    template = project_template(stack_name)
    Provisioner(template, moto_endpoint).provision()
    s3 = local_client("s3", moto_endpoint)
    events = local_client("events", moto_endpoint)
    sqs = local_client("sqs", moto_endpoint)
    raw = template.resource("RawBucket").physical_id
    received: dict[str, str] = {}
    rules = [template.resource(logical_id) for logical_id in ("RawEventsRule", "SessionsRule")]
    try:
        for rule in rules:
            queue_url = sqs.create_queue(QueueName=rule.physical_id)["QueueUrl"]
            received[rule.logical_id] = queue_url
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            events.put_rule(
                Name=rule.physical_id, EventPattern=json.dumps(rule.properties["EventPattern"])
            )
            events.put_targets(
                Rule=rule.physical_id,
                Targets=[{"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]}],
            )
        # WHEN objects land under each raw-bucket prefix
        for key in (
            "rawdata/2026/03/07/14/a.json",
            "aggregated/2026/03/07/14/b.csv",
            "sessions/2026/03/07/14/c.jsonl",
            "errors/rawdata/processing-failed/2026/03/07/14/d",
            "quarantine/sessionizer/e.json",
        ):
            s3.put_object(Bucket=raw, Key=key, Body=b"x")
        # THEN each rule sees exactly the objects of its workflow's prefixes
        keys = {}
        for logical_id, queue_url in received.items():
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
            assert {b["detail-type"] for b in bodies} == {"Object Created"}
            keys[logical_id] = sorted(b["detail"]["object"]["key"] for b in bodies)
        assert keys == {
            "RawEventsRule": ["rawdata/2026/03/07/14/a.json"],
            "SessionsRule": ["aggregated/2026/03/07/14/b.csv", "sessions/2026/03/07/14/c.jsonl"],
        }
    finally:
        for rule in rules:
            if rule.logical_id in received:
                events.remove_targets(Rule=rule.physical_id, Ids=["queue"])
                events.delete_rule(Name=rule.physical_id)
                sqs.delete_queue(QueueUrl=received[rule.logical_id])
