"""The template reader's resources: physical names, ARNs, what Ref returns, SAM Globals."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_local.cfn import LOCAL_ACCOUNT_ID, LOCAL_REGION, TemplateError
from tests.support.inline_templates import load

# ---------------------------------------------------------------------------- names, ARNs


NAMES_TEMPLATE = """
Parameters:
  Named: {Type: String, Default: "yes"}
Conditions:
  UseName: !Equals [!Ref Named, "yes"]
Resources:
  ClickStream:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !Sub ${AWS::StackName}-clicks
  RawBucket:
    Type: AWS::S3::Bucket
  DeadLetters:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !If [UseName, dlq, !Ref AWS::NoValue]
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: worker-fn
  Table:
    Type: AWS::DynamoDB::Table
  Database:
    Type: AWS::Glue::Database
    Properties:
      DatabaseInput:
        Name: lake
"""


@pytest.mark.parametrize(
    ("logical_id", "name"),
    [
        ("ClickStream", "demo-clicks"),
        ("RawBucket", "demo-rawbucket"),
        ("DeadLetters", "dlq"),
        ("Worker", "worker-fn"),
        ("Table", "demo-table"),
        ("Database", "lake"),
    ],
    ids=["stream-sub", "bucket-generated", "queue-if", "function", "table-generated", "nested"],
)
def test_physical_names(tmp_path: Path, logical_id: str, name: str) -> None:
    # GIVEN resources with and without an explicit name property
    template = load(tmp_path, NAMES_TEMPLATE)
    # WHEN their physical names are asked
    # THEN the explicit name wins, else <stack>-<logicalid> in lower case
    assert template.physical_id(logical_id) == name


def test_name_resolving_to_no_value_falls_back_to_the_generated_name(tmp_path: Path) -> None:
    # GIVEN a queue whose name is AWS::NoValue when the condition is false
    # WHEN the template is loaded with the condition false
    template = load(tmp_path, NAMES_TEMPLATE, Named="no")
    # THEN the queue gets the generated name, as CloudFormation would
    assert template.physical_id("DeadLetters") == "demo-deadletters"


GLUE_EVENTS_TEMPLATE = """
Resources:
  Job:
    Type: AWS::Glue::Job
    Properties:
      Name: !Sub ${AWS::StackName}-job
  Flow:
    Type: AWS::Glue::Workflow
    Properties:
      Name: !Sub ${AWS::StackName}-flow
  Start:
    Type: AWS::Glue::Trigger
    Properties:
      Name: !Sub ${AWS::StackName}-start
      WorkflowName: !Ref Flow
      Actions:
        - JobName: !Ref Job
  OnUpload:
    Type: AWS::Events::Rule
    Properties:
      Name: !Sub ${AWS::StackName}-on-upload
      Targets:
        - Id: flow
          Arn: !Sub arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:workflow/${Flow}
  Queries:
    Type: AWS::Athena::WorkGroup
    Properties:
      Name: !Sub ${AWS::StackName}-queries
  Unnamed:
    Type: AWS::Glue::Workflow
"""


def test_glue_events_and_athena_names_are_what_ref_returns(tmp_path: Path) -> None:
    # GIVEN a Glue job, workflows, a trigger, an EventBridge rule and an Athena workgroup
    template = load(tmp_path, GLUE_EVENTS_TEMPLATE)
    # WHEN their names and the references between them are resolved
    trigger = template.resource("Start").properties
    rule = template.resource("OnUpload").properties
    # THEN Ref gives the Name property, as CloudFormation does, else the generated name
    assert template.physical_id("Job") == "demo-job"
    assert template.physical_id("Queries") == "demo-queries"
    assert template.physical_id("OnUpload") == "demo-on-upload"
    assert template.physical_id("Start") == "demo-start"
    assert template.physical_id("Unnamed") == "demo-unnamed"
    assert trigger == {
        "Name": "demo-start",
        "WorkflowName": "demo-flow",
        "Actions": [{"JobName": "demo-job"}],
    }
    assert rule["Targets"][0]["Arn"] == (
        f"arn:aws:glue:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:workflow/demo-flow"
    )


def test_arns(tmp_path: Path) -> None:
    # GIVEN a stream, a bucket, a queue and a function
    template = load(tmp_path, NAMES_TEMPLATE)
    region, account = LOCAL_REGION, LOCAL_ACCOUNT_ID
    # WHEN their ARNs are asked, directly and through Fn::GetAtt
    # THEN they have the shapes AWS gives them
    assert template.arn("ClickStream") == f"arn:aws:kinesis:{region}:{account}:stream/demo-clicks"
    assert template.arn("RawBucket") == "arn:aws:s3:::demo-rawbucket"
    assert template.arn("DeadLetters") == f"arn:aws:sqs:{region}:{account}:dlq"
    assert template.arn("Worker") == f"arn:aws:lambda:{region}:{account}:function:worker-fn"
    assert template.resolve({"Fn::GetAtt": ["RawBucket", "Arn"]}) == template.arn("RawBucket")
    assert template.resolve({"Fn::GetAtt": "DeadLetters.QueueName"}) == "dlq"
    assert template.resolve({"Fn::GetAtt": ["DeadLetters", "Arn"]}) == template.arn("DeadLetters")
    assert template.resolve({"Ref": "DeadLetters"}) == f"http://local/{account}/dlq"


def test_unknown_resource_and_attribute_are_errors(tmp_path: Path) -> None:
    # GIVEN a loaded template
    template = load(tmp_path, NAMES_TEMPLATE)
    # WHEN a missing resource or an unsupported attribute is referenced
    # THEN a TemplateError names it
    with pytest.raises(TemplateError, match="no resource 'Missing'"):
        template.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match=r"ClickStream\.Bogus"):
        template.resolve({"Fn::GetAtt": ["ClickStream", "Bogus"]})


# ---------------------------------------------------------------------------- SAM Globals


GLOBALS_TEMPLATE = """
Parameters:
  Debug: {Type: String, Default: "false"}
Conditions:
  IsDebug: !Equals [!Ref Debug, "true"]
Globals:
  Function:
    Runtime: python3.11
    Timeout: 30
    Architectures: [x86_64]
    Layers:
      - arn:aws:lambda:us-east-1:111111111111:layer:common:1
    Tags:
      team: data
    Environment:
      Variables:
        LOG_LEVEL: INFO
        SHARED: global
        MODE: !If [IsDebug, debug, quiet]
Resources:
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Custom:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Timeout: 300
      Architectures: [arm64]
      Layers:
        - arn:aws:lambda:us-east-1:111111111111:layer:own:3
      Tags:
        owner: me
      Environment:
        Variables:
          SHARED: local
          EXTRA: "1"
          MODE: !Sub ${AWS::Region}-mode
"""


def test_globals_apply_to_functions_without_the_property(tmp_path: Path) -> None:
    # GIVEN a function that sets none of the global properties
    # WHEN its properties are resolved
    properties = load(tmp_path, GLOBALS_TEMPLATE).resource("Plain").properties
    # THEN it has every global property
    assert properties == {
        "Runtime": "python3.11",
        "Timeout": 30,
        "Architectures": ["x86_64"],
        "Layers": ["arn:aws:lambda:us-east-1:111111111111:layer:common:1"],
        "Tags": {"team": "data"},
        "Environment": {"Variables": {"LOG_LEVEL": "INFO", "SHARED": "global", "MODE": "quiet"}},
        "Handler": "app.handler",
    }


def test_globals_merge_rules(tmp_path: Path) -> None:
    # GIVEN a function overriding scalars, lists and maps of the globals
    # WHEN its properties are resolved
    properties = load(tmp_path, GLOBALS_TEMPLATE).resource("Custom").properties
    # THEN scalars are overridden, lists concatenated globals first, maps merged key by key
    assert properties["Timeout"] == 300
    assert properties["Runtime"] == "python3.11"
    assert properties["Layers"] == [
        "arn:aws:lambda:us-east-1:111111111111:layer:common:1",
        "arn:aws:lambda:us-east-1:111111111111:layer:own:3",
    ]
    assert properties["Tags"] == {"team": "data", "owner": "me"}
    assert properties["Environment"]["Variables"] == {
        "LOG_LEVEL": "INFO",
        "SHARED": "local",
        "EXTRA": "1",
        "MODE": f"{LOCAL_REGION}-mode",
    }


def test_globals_architectures_are_replaced_not_concatenated(tmp_path: Path) -> None:
    # GIVEN a function choosing another architecture than the globals
    # WHEN its properties are resolved
    properties = load(tmp_path, GLOBALS_TEMPLATE).resource("Custom").properties
    # THEN it has only its own, as SAM does (a function has one architecture)
    assert properties["Architectures"] == ["arm64"]


def test_globals_do_not_apply_to_other_resource_types(tmp_path: Path) -> None:
    # GIVEN a template with Function globals and a plain resource
    text = GLOBALS_TEMPLATE + "  Queue:\n    Type: AWS::SQS::Queue\n"
    # WHEN the queue is resolved
    # THEN it has no function properties
    assert load(tmp_path, text).resource("Queue").properties == {}
