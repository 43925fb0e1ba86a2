"""The Glue code bundle: what the zip holds, that it is reproducible, that the jobs import it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENT_LINE = json.dumps(
    {
        "event_id": "0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a",
        "custid": 42,
        "trafficfrom": "google",
        "url": "beer_cart",
        "device": "browser",
        "touchproduct": 117,
        "trans_timestamp": "2026-03-07T14:04:56.683790",
    }
)


@pytest.fixture(scope="module")
def bundle() -> ModuleType:
    """``glue_jobs/bundle.py`` (a script, not a package), loaded as a module."""
    spec = importlib.util.spec_from_file_location("glue_bundle", ROOT / "glue_jobs" / "bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundle_holds_both_packages_as_python_sources_only(
    bundle: ModuleType, tmp_path: Path
) -> None:
    # GIVEN a bundle built from the repository
    output = tmp_path / "out" / "clickstream_glue.zip"
    written = bundle.build_bundle(output)
    # WHEN its entries are listed
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    # THEN it holds the jobs' package and the domain modules the jobs parse with
    assert {
        "clickstream_glue/records.py",
        "clickstream/core/events.py",
        "clickstream/core/sessions.py",
    } <= set(names)
    assert {
        "clickstream_glue/__init__.py",
        "clickstream/__init__.py",
        "clickstream/core/__init__.py",
    } <= set(names)
    # AND nothing but .py files, no caches, in sorted order
    assert all(name.endswith(".py") and "__pycache__" not in name for name in names)
    assert names == sorted(names) == written


def test_two_builds_are_byte_identical(bundle: ModuleType, tmp_path: Path) -> None:
    # GIVEN a copy of the sources, written now (other paths, other modification times)
    copies = {
        package: shutil.copytree(folder, tmp_path / "copy" / package, copy_function=shutil.copy)
        for package, folder in bundle.PACKAGES.items()
    }
    # WHEN the bundle is built twice from the repository and once from the copy
    first, second, copied = tmp_path / "first.zip", tmp_path / "second.zip", tmp_path / "copy.zip"
    bundle.build_bundle(first)
    bundle.build_bundle(second)
    bundle.build_bundle(copied, copies)
    # THEN the three zips are the same bytes
    assert first.read_bytes() == second.read_bytes() == copied.read_bytes()


def test_records_import_from_the_zip_and_parse_an_event(bundle: ModuleType, tmp_path: Path) -> None:
    # GIVEN a bundle, first on the path of a fresh interpreter
    output = tmp_path / "clickstream_glue.zip"
    bundle.build_bundle(output)
    program = (
        "import json, sys\n"
        "from clickstream_glue import records\n"
        "import clickstream.core.events\n"
        "row = records.event_row(sys.argv[1])\n"
        "print(json.dumps({'records': records.__file__,"
        " 'events': clickstream.core.events.__file__, 'row': row}))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(output)}
    # WHEN the jobs' parser is imported from it and parses a raw line
    completed = subprocess.run(
        [sys.executable, "-c", program, EVENT_LINE],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    # THEN both packages resolve inside the zip
    assert result["records"].startswith(str(output))
    assert result["events"].startswith(str(output))
    # AND the line becomes a typed row, the timestamp in epoch microseconds
    assert result["row"] == [
        "0b9a6b0e-3f6e-4d37-9a4c-1f2e3d4c5b6a",
        42,
        "google",
        "beer_cart",
        "browser",
        117,
        1772892296683790,
    ]


def test_stack_name_and_region_come_from_samconfig(bundle: ModuleType, tmp_path: Path) -> None:
    # GIVEN the project's samconfig.toml, and one with the name only under deploy
    other = tmp_path / "samconfig.toml"
    other.write_text('version = 0.1\n[default.deploy.parameters]\nstack_name = "other"\n')
    # THEN the stack is the one `sam deploy` deploys, in its region
    assert bundle.default_stack_name() == "clickstream"
    assert bundle.default_region() == "us-east-1"
    assert bundle.default_stack_name(other) == "other"
    assert bundle.default_region(other) is None


class FakeCloudFormation:
    """``describe_stacks`` of one deployed stack."""

    def __init__(self, outputs: list[dict[str, str]]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


class FakeS3:
    """Records ``upload_file`` calls."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, str, dict[str, Any]]] = []

    def upload_file(self, filename: str, bucket: str, key: str, ExtraArgs: dict[str, Any]) -> None:
        self.uploads.append((filename, bucket, key, ExtraArgs))


def test_upload_puts_the_bundle_where_the_jobs_load_it(bundle: ModuleType, tmp_path: Path) -> None:
    # GIVEN a deployed stack with its curated bucket output, and a built bundle
    cloudformation = FakeCloudFormation(
        [
            {"OutputKey": "RawBucketName", "OutputValue": "raw"},
            {"OutputKey": "CuratedBucketName", "OutputValue": "curated-bucket"},
        ]
    )
    s3 = FakeS3()
    output = tmp_path / "clickstream_glue.zip"
    bundle.build_bundle(output)
    # WHEN the bucket is looked up and the bundle uploaded
    bucket = bundle.curated_bucket(cloudformation, "clickstream")
    uri = bundle.upload_bundle(s3, output, bucket)
    # THEN it lands at the key of the jobs' --extra-py-files
    assert cloudformation.asked == ["clickstream"]
    assert uri == "s3://curated-bucket/_glue/clickstream_glue.zip"
    assert s3.uploads == [
        (
            str(output),
            "curated-bucket",
            "_glue/clickstream_glue.zip",
            {"ContentType": "application/zip"},
        )
    ]


def test_a_stack_without_the_curated_bucket_output_is_an_error(bundle: ModuleType) -> None:
    # GIVEN a stack whose outputs lack the curated bucket
    cloudformation = FakeCloudFormation([{"OutputKey": "RawBucketName", "OutputValue": "raw"}])
    # THEN the lookup fails, naming the output
    with pytest.raises(LookupError, match="CuratedBucketName"):
        bundle.curated_bucket(cloudformation, "clickstream")
