"""The template reader's values: short-form tags, intrinsics, parameters and conditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_local.cfn import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    Template,
    TemplateError,
    load_template_document,
)
from tests.support.inline_templates import load, write_template

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


def test_an_unsupported_intrinsic_is_an_error_not_a_silent_pass_through() -> None:
    # GIVEN a template value using an intrinsic the local reader does not implement
    template = Template({"Resources": {}})
    # WHEN it is resolved THEN the reader says so
    with pytest.raises(TemplateError, match="Fn::FindInMap is not supported"):
        template.resolve({"Fn::FindInMap": ["Map", "Key", "Value"]})
