"""Glue-style ``--NAME value`` job arguments, resolved without ``awsglue``."""

from __future__ import annotations

import sys

import pytest

from clickstream_glue.args import MissingArgument, resolve_options

SCRIPT = "raw_to_curated_events.py"


@pytest.fixture(autouse=True)
def _without_awsglue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``awsglue`` unimportable, so the local parser is the one under test."""
    monkeypatch.setitem(sys.modules, "awsglue", None)
    monkeypatch.setitem(sys.modules, "awsglue.utils", None)


def test_required_names_take_the_following_token() -> None:
    # GIVEN a command line with two required names, each followed by its value
    argv = [SCRIPT, "--source_bucket", "raw-bucket", "--curated_bucket", "curated-bucket"]
    # WHEN the options are resolved
    options = resolve_options(argv, ["source_bucket", "curated_bucket"])
    # THEN exactly those names are returned with their values
    assert options == {"source_bucket": "raw-bucket", "curated_bucket": "curated-bucket"}


def test_required_names_accept_the_equals_form() -> None:
    # GIVEN required names written as --name=value, one value itself holding "="
    argv = [SCRIPT, "--source_bucket=raw-bucket", "--filter=a=b"]
    # WHEN the options are resolved
    options = resolve_options(argv, ["source_bucket", "filter"])
    # THEN the value is everything after the first "="
    assert options == {"source_bucket": "raw-bucket", "filter": "a=b"}


def test_defaults_fill_optional_names_that_are_absent() -> None:
    # GIVEN a command line without the optional names
    argv = [SCRIPT, "--source_bucket", "raw-bucket"]
    # WHEN the options are resolved with defaults
    options = resolve_options(
        argv, ["source_bucket"], {"raw_prefix": "rawdata/", "compression": "zstd"}
    )
    # THEN the defaults are used for them
    assert options == {
        "source_bucket": "raw-bucket",
        "raw_prefix": "rawdata/",
        "compression": "zstd",
    }


def test_a_given_optional_name_overrides_its_default() -> None:
    # GIVEN a command line that sets one of two optional names
    argv = [SCRIPT, "--source_bucket", "raw-bucket", "--compression", "snappy"]
    # WHEN the options are resolved with defaults
    options = resolve_options(
        argv, ["source_bucket"], {"raw_prefix": "rawdata/", "compression": "zstd"}
    )
    # THEN the given value wins and the other default stays
    assert options["compression"] == "snappy"
    assert options["raw_prefix"] == "rawdata/"


def test_an_empty_default_is_kept_when_absent() -> None:
    # GIVEN an optional name whose default is the empty string, not on the command line
    argv = [SCRIPT, "--source_bucket", "raw-bucket"]
    # WHEN the options are resolved
    options = resolve_options(argv, ["source_bucket"], {"JOB_RUN_ID": ""})
    # THEN the empty default is returned
    assert options["JOB_RUN_ID"] == ""


def test_glue_extra_arguments_are_ignored() -> None:
    # GIVEN the arguments Glue adds around the job's own
    argv = [
        SCRIPT,
        "--JOB_ID",
        "j_0123",
        "--source_bucket",
        "raw-bucket",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--TempDir",
        "s3://temp/",
        "--enable-metrics",
        "true",
    ]
    # WHEN only the job's own names are resolved
    options = resolve_options(argv, ["source_bucket"], {"JOB_NAME": "raw_to_curated_events"})
    # THEN nothing else leaks into the options
    assert options == {"source_bucket": "raw-bucket", "JOB_NAME": "raw_to_curated_events"}


def test_a_repeated_name_takes_its_last_value() -> None:
    # GIVEN a name given twice
    argv = [SCRIPT, "--source_bucket", "first", "--source_bucket", "second"]
    # WHEN the options are resolved
    # THEN the last value wins, as with argparse
    assert resolve_options(argv, ["source_bucket"]) == {"source_bucket": "second"}


def test_missing_required_names_are_all_listed() -> None:
    # GIVEN a command line with only the second of three required names
    argv = [SCRIPT, "--curated_bucket", "curated-bucket", "--JOB_ID", "j_0123"]
    # WHEN the options are resolved
    with pytest.raises(MissingArgument) as caught:
        resolve_options(argv, ["source_bucket", "curated_bucket", "database"])
    # THEN the message lists every missing name, in the order asked for
    assert str(caught.value) == "missing job argument(s): --source_bucket, --database"
    assert isinstance(caught.value, ValueError)


def test_a_trailing_name_without_a_value_is_missing() -> None:
    # GIVEN a required name as the last token, with no value after it
    argv = [SCRIPT, "--source_bucket"]
    # WHEN the options are resolved
    # THEN it is reported missing
    with pytest.raises(MissingArgument, match="--source_bucket"):
        resolve_options(argv, ["source_bucket"])


def test_an_optional_name_in_equals_form_overrides_its_default() -> None:
    # GIVEN an optional name written as --name=value WHEN resolved THEN its value wins
    resolved = resolve_options(["job.py", "--a=1", "--opt=x"], ["a"], {"opt": "d"})
    assert resolved == {"a": "1", "opt": "x"}


def test_a_name_followed_by_another_name_has_no_value() -> None:
    # GIVEN --a directly followed by --b WHEN --a is required THEN it is reported missing
    with pytest.raises(MissingArgument, match="--a"):
        resolve_options(["job.py", "--a", "--b", "2"], ["a", "b"])
