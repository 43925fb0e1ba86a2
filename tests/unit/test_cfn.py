"""The template reader: short-form tags, intrinsics, names, ARNs and SAM Globals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from clickstream_local.cfn import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    Template,
    TemplateError,
    load_template_document,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT_TEMPLATE = ROOT / "template.yaml"

TAGS_TEMPLATE = """
Parameters:
  Env:
    Type: String
    Default: dev
  Zones:
    Type: String
    Default: a,b,c
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !Sub ${AWS::StackName}-events
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      Tags:
        - Key: ref
          Value: !Ref Env
        - Key: getatt
          Value: !GetAtt Stream.Arn
        - Key: if
          Value: !If [IsProd, big, small]
        - Key: join
          Value: !Join ["/", [!Ref Env, x, !Ref AWS::Region]]
        - Key: select
          Value: !Select [1, !Split [",", !Ref Zones]]
        - Key: split
          Value: !Join ["+", !Split [",", !Ref Zones]]
"""


def write_template(tmp_path: Path, text: str) -> Path:
    """Write a template body (dedented) to ``tmp_path`` and return its path."""
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **overrides: str) -> Template:
    """Load an inline template bound to the stack ``demo``."""
    return Template.load(
        write_template(tmp_path, text), stack_name="demo", parameter_overrides=overrides
    )


# ---------------------------------------------------------------------------- YAML tags


def test_short_form_tags_load_as_long_form_intrinsics(tmp_path: Path) -> None:
    # GIVEN a template written with short-form tags
    path = write_template(tmp_path, TAGS_TEMPLATE)
    # WHEN it is loaded as a plain document
    document = load_template_document(path)
    # THEN each tag becomes its long form, and !GetAtt a.b is split into [a, b]
    tags = {t["Key"]: t["Value"] for t in document["Resources"]["Queue"]["Properties"]["Tags"]}
    assert tags["ref"] == {"Ref": "Env"}
    assert tags["getatt"] == {"Fn::GetAtt": ["Stream", "Arn"]}
    assert tags["if"] == {"Fn::If": ["IsProd", "big", "small"]}
    assert tags["join"] == {"Fn::Join": ["/", [{"Ref": "Env"}, "x", {"Ref": "AWS::Region"}]]}
    assert tags["select"] == {"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Zones"}]}]}
    assert document["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
    assert document["Resources"]["Stream"]["Properties"]["Name"] == {
        "Fn::Sub": "${AWS::StackName}-events"
    }


def test_short_form_tags_resolve(tmp_path: Path) -> None:
    # GIVEN the same template bound to a stack
    template = load(tmp_path, TAGS_TEMPLATE)
    # WHEN the queue's properties are resolved
    tags = {t["Key"]: t["Value"] for t in template.resource("Queue").properties["Tags"]}
    # THEN every intrinsic gives its CloudFormation value
    assert tags == {
        "ref": "dev",
        "getatt": f"arn:aws:kinesis:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:stream/demo-events",
        "if": "small",
        "join": f"dev/x/{LOCAL_REGION}",
        "select": "b",
        "split": "a+b+c",
    }


def test_non_template_is_rejected(tmp_path: Path) -> None:
    # GIVEN a YAML file without Resources
    path = write_template(tmp_path, "Parameters: {}\n")
    # WHEN it is loaded
    # THEN it is refused as not a template
    with pytest.raises(TemplateError, match="no Resources"):
        load_template_document(path)


# ---------------------------------------------------------------------------- Fn::Sub


def test_sub_keeps_escaped_literals(tmp_path: Path) -> None:
    # GIVEN a Sub mixing a reference with ${!Literal} escapes
    template = load(
        tmp_path,
        """
        Resources:
          Bucket:
            Type: AWS::S3::Bucket
            Properties:
              Tags:
                - Key: location
                  Value: !Sub s3://${Bucket}/rawdata/${!year}/${!month}/
        """,
    )
    # WHEN it is resolved
    (tag,) = template.resource("Bucket").properties["Tags"]
    # THEN the reference is substituted and the escapes become literal ${...}
    assert tag["Value"] == "s3://demo-bucket/rawdata/${year}/${month}/"


def test_sub_with_a_variables_map(tmp_path: Path) -> None:
    # GIVEN a Sub whose variables map shadows a parameter and uses intrinsics
    template = load(
        tmp_path,
        """
        Parameters:
          Env: {Type: String, Default: dev}
        Resources:
          Stream:
            Type: AWS::Kinesis::Stream
            Properties:
              Name: !Sub
                - ${Env}-${Prefix}-${AWS::AccountId}-${Stream2.Arn}
                - Env: shadowed
                  Prefix: !Join ["", [p, !Ref Env]]
          Stream2:
            Type: AWS::Kinesis::Stream
            Properties:
              Name: other
        """,
    )
    # WHEN the name is resolved
    name = template.physical_id("Stream")
    # THEN map variables win, then pseudo parameters and attributes are substituted
    other_arn = f"arn:aws:kinesis:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:stream/other"
    assert name == f"shadowed-pdev-{LOCAL_ACCOUNT_ID}-{other_arn}"


def test_pseudo_parameters(tmp_path: Path) -> None:
    # GIVEN a template bound to the stack "demo"
    template = load(tmp_path, "Resources: {}\n")
    # WHEN each pseudo parameter is referenced
    # THEN it has the local account, region and stack values
    assert template.resolve({"Ref": "AWS::StackName"}) == "demo"
    assert template.resolve({"Ref": "AWS::AccountId"}) == LOCAL_ACCOUNT_ID
    assert template.resolve({"Ref": "AWS::Region"}) == LOCAL_REGION
    assert template.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert template.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert template.resolve({"Ref": "AWS::StackId"}).startswith(
        f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:stack/demo/"
    )
    assert template.resolve({"Fn::Sub": "${AWS::Partition}:${AWS::Region}"}) == (
        f"aws:{LOCAL_REGION}"
    )


# ---------------------------------------------------------------------------- parameters


PARAMETERS_TEMPLATE = """
Parameters:
  Shards: {Type: Number, Default: 2}
  Name: {Type: String, Default: clicks}
  Flag: {Type: String, Default: true}
Resources: {}
"""


def test_parameter_defaults_are_strings(tmp_path: Path) -> None:
    # GIVEN parameters with number, string and unquoted boolean defaults
    # WHEN the template is loaded without overrides
    template = load(tmp_path, PARAMETERS_TEMPLATE)
    # THEN each default is a string, booleans spelled as CloudFormation does
    assert template.parameters == {"Shards": "2", "Name": "clicks", "Flag": "true"}


def test_parameter_overrides_replace_defaults(tmp_path: Path) -> None:
    # GIVEN overrides for some parameters
    # WHEN the template is loaded with them
    template = load(tmp_path, PARAMETERS_TEMPLATE, Shards="8")
    # THEN they replace the defaults, the others keep theirs
    assert template.parameters == {"Shards": "8", "Name": "clicks", "Flag": "true"}
    assert template.resolve({"Ref": "Shards"}) == "8"


def test_unknown_parameter_override_is_rejected(tmp_path: Path) -> None:
    # GIVEN an override for a parameter the template does not declare
    # WHEN the template is loaded
    # THEN the typo is reported by name
    with pytest.raises(TemplateError, match="unknown template parameter"):
        load(tmp_path, PARAMETERS_TEMPLATE, Shard="8")


def test_parameter_without_default_needs_an_override(tmp_path: Path) -> None:
    # GIVEN a parameter with no default
    text = "Parameters:\n  Key: {Type: String}\nResources: {}\n"
    # WHEN the template is loaded without and with an override
    # THEN the first fails naming the parameter, the second uses the override
    with pytest.raises(TemplateError, match="parameter Key has no Default"):
        load(tmp_path, text)
    assert load(tmp_path, text, Key="k").parameters == {"Key": "k"}


# ---------------------------------------------------------------------------- conditions


CONDITIONS_TEMPLATE = """
Parameters:
  Env: {Type: String, Default: dev}
  Enabled: {Type: String, Default: "true", AllowedValues: ["true", "false"]}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  IsEnabled: !Equals [!Ref Enabled, true]
  ProdAndEnabled: !And [!Condition IsProd, !Condition IsEnabled]
  ProdOrEnabled: !Or [!Condition IsProd, !Condition IsEnabled]
Resources:
  ProdQueue:
    Type: AWS::SQS::Queue
    Condition: IsProd
  DevQueue:
    Type: AWS::SQS::Queue
    Condition: IsDev
  Stream:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: !If [IsProd, 8, 1]
      StreamEncryption: !If [IsProd, {EncryptionType: KMS}, !Ref AWS::NoValue]
      Tags:
        - Key: always
          Value: x
        - !If [IsProd, {Key: prod, Value: y}, !Ref AWS::NoValue]
"""


def test_conditions_are_evaluated(tmp_path: Path) -> None:
    # GIVEN conditions built from Equals, Not, And, Or and Condition references
    # WHEN the template is loaded with defaults
    template = load(tmp_path, CONDITIONS_TEMPLATE)
    # THEN each evaluates as CloudFormation would, a YAML true comparing equal to "true"
    assert not template.condition("IsProd")
    assert template.condition("IsDev")
    assert template.condition("IsEnabled")
    assert not template.condition("ProdAndEnabled")
    assert template.condition("ProdOrEnabled")
    with pytest.raises(TemplateError, match="unknown condition 'Nope'"):
        template.condition("Nope")


@pytest.mark.parametrize(
    ("env", "queues"), [("dev", ["DevQueue"]), ("prod", ["ProdQueue"])], ids=["dev", "prod"]
)
def test_resources_with_a_false_condition_are_skipped(
    tmp_path: Path, env: str, queues: list[str]
) -> None:
    # GIVEN queues guarded by opposite conditions
    template = load(tmp_path, CONDITIONS_TEMPLATE, Env=env)
    # WHEN the queues are listed
    found = [resource.logical_id for resource in template.resources("AWS::SQS::Queue")]
    # THEN only the one whose condition holds is there
    assert found == queues


def test_no_value_drops_keys_and_list_items(tmp_path: Path) -> None:
    # GIVEN properties that are AWS::NoValue unless the stack is prod
    # WHEN they are resolved in dev and in prod
    dev = load(tmp_path, CONDITIONS_TEMPLATE).resource("Stream").properties
    prod = load(tmp_path, CONDITIONS_TEMPLATE, Env="prod").resource("Stream").properties
    # THEN in dev the key and the list item are gone, in prod they are there
    assert dev == {"ShardCount": 1, "Tags": [{"Key": "always", "Value": "x"}]}
    assert prod["ShardCount"] == 8
    assert prod["StreamEncryption"] == {"EncryptionType": "KMS"}
    assert prod["Tags"] == [{"Key": "always", "Value": "x"}, {"Key": "prod", "Value": "y"}]


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
    assert trigger["EventBatchingCondition"] == {"BatchSize": "100", "BatchWindow": "300"}
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


def test_an_unsupported_intrinsic_is_an_error_not_a_silent_pass_through() -> None:
    # GIVEN a template value using an intrinsic the local reader does not implement
    template = Template({"Resources": {}})
    # WHEN it is resolved THEN the reader says so
    with pytest.raises(TemplateError, match="Fn::FindInMap is not supported"):
        template.resolve({"Fn::FindInMap": ["Map", "Key", "Value"]})
