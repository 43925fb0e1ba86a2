"""IAM enforced by the local endpoint, with the template's own roles, on a real moto server.

A handler runs in a worker process with its role's temporary credentials, exactly as the local
stack runs it; the endpoint allows what the role's policies allow and refuses the rest as AWS does.
The negative case removes one action from one role in a copy of the template.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from opensearchpy import AuthorizationException, OpenSearch, Urllib3AWSV4SignerAuth

from clickstream_local.aws import (
    SEARCH_PREFIX,
    Credentials,
    client_environment,
    iam_audit,
    local_client,
    register_search_domain,
    role_credentials,
)
from clickstream_local.cfn import Template, load_template_document
from clickstream_local.esm import kinesis_event, kinesis_mappings
from clickstream_local.lambda_worker import Invocation, LocalFunction, WorkerInvoker
from clickstream_local.provision import Provisioner
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

SEQUENCE_NUMBER = "49600000000000000000000000000000000000000000000000000001"


def template_without(
    tmp_path: Path, stack_name: str, role: str, action: str, sid: str | None = None
) -> tuple[Template, Path]:
    """A copy of template.yaml whose ``role`` no longer grants ``action`` (in statement ``sid``
    only, when given)."""
    document = load_template_document(ROOT / "template.yaml")
    removed = 0
    for policy in document["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if sid is not None and statement.get("Sid") != sid:
                continue
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            kept = [a for a in actions if a != action]
            removed += len(actions) - len(kept)
            statement["Action"] = kept or ["none:NoAction"]
    assert removed == 1, f"{role} grants {action} {removed} times"
    path = tmp_path / "template.json"
    path.write_text(json.dumps(document))
    return Template.load(path, stack_name=stack_name, parameter_overrides=_unique(stack_name)), path


def _unique(stack_name: str) -> dict[str, str]:
    return {"GlueDatabaseName": f"db_{stack_name}"}


def provisioned(endpoint: str, stack_name: str) -> Template:
    """The project's template under ``stack_name``, provisioned with its roles registered."""
    template = Template.load(
        ROOT / "template.yaml", stack_name=stack_name, parameter_overrides=_unique(stack_name)
    )
    Provisioner(template, endpoint).provision()
    return template


def invoke_window_counter(template: Template, endpoint: str, data: bytes) -> Invocation:
    """Invoke the window counter with one record, as the local stack does: its role, a worker."""
    resource = template.resource("WindowCounterFunction")
    function = LocalFunction.from_template(template, resource, ROOT)
    (mapping,) = kinesis_mappings(template, [function])
    credentials = role_credentials(endpoint, function.role_arn)
    invoker = WorkerInvoker(function, client_environment(endpoint, credentials))
    record = {
        "Data": data,
        "PartitionKey": "1",
        "SequenceNumber": SEQUENCE_NUMBER,
        "ApproximateArrivalTimestamp": time.time(),
    }
    try:
        return invoker.invoke(kinesis_event([record], mapping, "shardId-000000000000", "us-east-1"))
    finally:
        invoker.close()


def quarantined_keys(template: Template, endpoint: str) -> list[str]:
    """The window counter's quarantine objects, read as the administrator."""
    bucket = template.resource("RawBucket").physical_id
    listing = local_client("s3", endpoint).list_objects_v2(
        Bucket=bucket, Prefix="quarantine/window-counter/"
    )
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_role_may_do_what_its_template_policies_allow(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the project's template provisioned, with its roles registered
    template = provisioned(moto_endpoint, stack_name)
    # WHEN the window counter handles a malformed record with its own role
    outcome = invoke_window_counter(template, moto_endpoint, b"not json\n")
    # THEN it succeeds: the record is quarantined under the role's own prefix
    assert outcome.ok, outcome.error_message
    assert len(quarantined_keys(template, moto_endpoint)) == 1
    # AND the endpoint allowed each call it checked, and refused none
    role = template.arn("WindowCounterRole")
    decisions = [d for d in iam_audit(moto_endpoint)["decisions"] if d["role"] == role]
    assert {d["decision"] for d in decisions} == {"allow"}
    actions = {d["action"] for d in decisions}
    assert "s3:PutObject" in actions
    assert any(action.startswith("dynamodb:") for action in actions)


def test_removing_one_action_from_one_role_fails_the_call_with_aws_access_denied(
    moto_endpoint: str, stack_name: str, tmp_path: Path
) -> None:
    # GIVEN a copy of the template whose window counter may no longer write its quarantine
    template, _ = template_without(
        tmp_path, stack_name, "WindowCounterRole", "s3:PutObject", sid="QuarantineInvalidRecords"
    )
    Provisioner(template, moto_endpoint).provision()
    # WHEN the window counter handles a malformed record with that role
    outcome = invoke_window_counter(template, moto_endpoint, b"not json\n")
    # THEN the record is not committed: the handler names it for Lambda's retry
    assert outcome.ok, outcome.error_message
    assert outcome.payload == {"batchItemFailures": [{"itemIdentifier": SEQUENCE_NUMBER}]}
    assert quarantined_keys(template, moto_endpoint) == []
    # AND the endpoint refused the quarantine write, and only that
    role = template.arn("WindowCounterRole")
    refused = {
        (d["action"], d["decision"])
        for d in iam_audit(moto_endpoint)["decisions"]
        if d["role"] == role and d["decision"] != "allow"
    }
    assert refused == {("s3:PutObject", "implicit deny")}


def test_refusals_have_the_shape_aws_gives_each_protocol(
    moto_endpoint: str, stack_name: str
) -> None:
    # GIVEN the provisioned template and the generator's role, which may only put records
    template = provisioned(moto_endpoint, stack_name)
    credentials = role_credentials(moto_endpoint, template.arn("GeneratorRole"))
    dynamodb = local_client("dynamodb", moto_endpoint, credentials)
    s3 = local_client("s3", moto_endpoint, credentials)
    table = template.resource("WindowStateTable").physical_id
    bucket = template.resource("RawBucket").physical_id
    # WHEN it reads a table and an object it has no grant for
    with pytest.raises(ClientError) as denied_table:
        dynamodb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    with pytest.raises(ClientError) as denied_object:
        s3.get_object(Bucket=bucket, Key="rawdata/x")
    # THEN DynamoDB answers AccessDeniedException with HTTP 400 and S3 AccessDenied with 403
    table_error = denied_table.value.response
    assert table_error["Error"]["Code"] == "AccessDeniedException"
    assert table_error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "dynamodb:GetItem" in table_error["Error"]["Message"]
    object_error = denied_object.value.response
    assert object_error["Error"]["Code"] == "AccessDenied"
    assert object_error["ResponseMetadata"]["HTTPStatusCode"] == 403
    # AND a key the endpoint never issued is not an identity at all
    stranger = local_client("dynamodb", moto_endpoint, Credentials("AKIANOTISSUEDHERE000", "x"))
    with pytest.raises(ClientError) as unknown:
        stranger.list_tables()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_search_domain_admits_the_roles_its_policies_name(
    moto_endpoint: str, opensearch_url: str, stack_name: str
) -> None:
    # GIVEN the template's search domain served by the local endpoint from a real node
    template = provisioned(moto_endpoint, stack_name)
    domain = template.resource("SearchDomain")
    register_search_domain(
        moto_endpoint, domain.physical_id, opensearch_url, domain.properties["AccessPolicies"]
    )
    url = f"{moto_endpoint}{SEARCH_PREFIX}{domain.physical_id}"

    def client(role: str) -> OpenSearch:
        credentials = role_credentials(moto_endpoint, template.arn(role))
        session = boto3.Session(**credentials.client_arguments())
        signer = Urllib3AWSV4SignerAuth(session.get_credentials(), "us-east-1", "es")
        return OpenSearch(hosts=[url], http_auth=signer, timeout=30)

    index = f"iam-{stack_name}"
    # WHEN the indexer's role writes a document, SigV4-signed as on AWS
    indexer = client("SearchIndexerRole")
    indexer.index(index=index, id="1", body={"custid": 1}, refresh=True)
    # THEN the node has it
    node = OpenSearch(hosts=[opensearch_url], timeout=30)
    assert node.get(index=index, id="1")["_source"] == {"custid": 1}
    # AND the indexer may not read, which it never needs (its role grants PUT and POST only)
    with pytest.raises(AuthorizationException):
        indexer.get(index=index, id="1")
    # AND the generator's role, which neither its policies nor the domain's name, is refused
    with pytest.raises(AuthorizationException):
        client("GeneratorRole").index(index=index, id="2", body={"custid": 2})
    decisions = {
        (d["role"].rsplit("/", 1)[-1].split("-", 1)[1], d["action"], d["decision"])
        for d in iam_audit(moto_endpoint)["decisions"]
        if d["action"].startswith("es:") and stack_name in d["role"]
    }
    assert ("searchindexerrole", "es:ESHttpPut", "allow") in decisions
    assert ("searchindexerrole", "es:ESHttpGet", "implicit deny") in decisions
    assert ("generatorrole", "es:ESHttpPut", "implicit deny") in decisions
