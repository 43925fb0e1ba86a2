"""Provisioning from template.yaml onto a real moto server over HTTP."""

from __future__ import annotations

import pytest

from clickstream.events import FIELDS
from clickstream_local.aws import local_client
from clickstream_local.provision import PROVISIONED_TYPES, Provisioner

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
    # (only the TLS-only bucket policy is skipped: the local endpoint is plain HTTP)
    assert skipped == {"RawBucketPolicy"}
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
    # AND the Glue table has the event columns
    glue = local_client("glue", moto_endpoint)
    table = glue.get_table(DatabaseName=f"db_{stack_name}", Name="rawdata")["Table"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert tuple(columns) == FIELDS
