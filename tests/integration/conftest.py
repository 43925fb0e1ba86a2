"""Integration fixtures: one real moto server over HTTP on loopback for the whole run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream_local.aws import local_client
from clickstream_local.cfn import Template
from clickstream_local.moto_server import start_moto, stop_process
from clickstream_local.opensearch import start_opensearch

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port, shared by the integration tests."""
    process, endpoint = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield endpoint
    stop_process(process.pid)


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenSearch node (Maven Central distribution, Java 17) on loopback for the run.

    The node works in a folder of its own outside pytest's (removed when it stops); only its
    console log is kept here.
    """
    node = start_opensearch(tmp_path_factory.mktemp("opensearch") / "opensearch.log")
    yield node.url
    node.stop()


@pytest.fixture(scope="session")
def spark(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The one local SparkSession of the run: s3:// and s3a:// on the shared moto server, Hive."""
    from clickstream_local.spark import local_spark_session

    session = local_spark_session(
        moto_endpoint, metastore_dir=tmp_path_factory.mktemp("hive"), app_name="tests"
    )
    yield session
    session.stop()


@pytest.fixture
def stack_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique stack name, so each test gets its own resources on the shared server.

    Its delivery streams (``<stack>-...``) are deleted after the test: the server serves the whole
    run, and moto refuses a region's 51st delivery stream.
    """
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    if "moto_endpoint" in request.fixturenames:
        delete_delivery_streams(request.getfixturevalue("moto_endpoint"), f"{name}-")


def delete_delivery_streams(endpoint: str, prefix: str) -> None:
    """Delete every delivery stream whose name starts with ``prefix``."""
    firehose = local_client("firehose", endpoint)
    names: list[str] = []
    page = firehose.list_delivery_streams(Limit=50)
    names.extend(page["DeliveryStreamNames"])
    while page["HasMoreDeliveryStreams"]:
        page = firehose.list_delivery_streams(Limit=50, ExclusiveStartDeliveryStreamName=names[-1])
        names.extend(page["DeliveryStreamNames"])
    for name in names:
        if name.startswith(prefix):
            firehose.delete_delivery_stream(DeliveryStreamName=name)


def project_template(stack_name: str, **parameters: str) -> Template:
    """The project's template.yaml bound to ``stack_name``."""
    unique = {"GlueDatabaseName": f"db_{stack_name}", **parameters}
    return Template.load(ROOT / "template.yaml", stack_name=stack_name, parameter_overrides=unique)
