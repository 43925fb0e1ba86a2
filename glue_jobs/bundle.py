"""Build the Glue jobs' code bundle, ``clickstream_glue.zip``, and upload it to the stack.

Every Glue job of ``template.yaml`` loads it with
``--extra-py-files s3://<CuratedBucket>/_glue/clickstream_glue.zip``. ``sam deploy`` uploads the
job scripts (``Command.ScriptLocation``) but not this bundle, so it is built and uploaded here:

    python glue_jobs/bundle.py [--output PATH] [--upload] [--stack-name NAME] [--region REGION]

The zip holds two packages, ``.py`` files only: ``clickstream_glue`` (the jobs' shared code) and
``clickstream`` (the domain package; the jobs parse with its pure core, ``clickstream.core.events``
and ``clickstream.core.sessions``). Entries are sorted and carry a fixed timestamp and mode, so the
same sources always give a byte-identical zip. With ``--upload`` the bucket is the deployed stack's
``CuratedBucketName`` output; the stack name and region default to ``samconfig.toml``'s.
"""

from __future__ import annotations

import argparse
import tomllib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES: Mapping[str, Path] = {
    "clickstream": ROOT / "layers" / "clickstream" / "python" / "clickstream",
    "clickstream_glue": ROOT / "glue_jobs" / "clickstream_glue",
}
DEFAULT_OUTPUT = ROOT / ".aws-sam" / "glue" / "clickstream_glue.zip"
SAMCONFIG = ROOT / "samconfig.toml"
BUNDLE_KEY = "_glue/clickstream_glue.zip"
BUCKET_OUTPUT = "CuratedBucketName"

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_FILE_MODE = 0o100644  # a regular file, rw-r--r--


def bundle_entries(packages: Mapping[str, Path] = PACKAGES) -> list[tuple[str, Path]]:
    """``(name in the zip, source file)`` of every ``.py`` file of the packages, sorted by name."""
    entries: list[tuple[str, Path]] = []
    for package, folder in packages.items():
        if not (folder / "__init__.py").is_file():
            raise FileNotFoundError(f"{folder} is not a package (no __init__.py)")
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder)
            if "__pycache__" in relative.parts or not path.is_file():
                continue
            entries.append((f"{package}/{relative.as_posix()}", path))
    return sorted(entries)


def build_bundle(output: Path, packages: Mapping[str, Path] = PACKAGES) -> list[str]:
    """Write the bundle to ``output`` (folders created); returns the names it holds, in order."""
    entries = bundle_entries(packages)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w") as bundle:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is read the same everywhere
            info.external_attr = _FILE_MODE << 16
            bundle.writestr(info, path.read_bytes(), compresslevel=9)
    return [name for name, _ in entries]


def samconfig_parameters(
    command: str, path: Path = SAMCONFIG, environment: str = "default"
) -> dict[str, Any]:
    """The ``[<environment>.<command>.parameters]`` of ``samconfig.toml``, empty when absent."""
    with path.open("rb") as handle:
        config = tomllib.load(handle)
    return dict(config.get(environment, {}).get(command, {}).get("parameters", {}))


def default_stack_name(path: Path = SAMCONFIG) -> str:
    """The stack ``sam deploy`` deploys: ``stack_name`` of the deploy or global parameters."""
    for command in ("deploy", "global"):
        name = samconfig_parameters(command, path).get("stack_name")
        if name:
            return str(name)
    raise LookupError(f"{path}: no stack_name in [default.deploy] or [default.global] parameters")


def default_region(path: Path = SAMCONFIG) -> str | None:
    """The region ``sam deploy`` deploys to, if ``samconfig.toml`` names one."""
    region = samconfig_parameters("deploy", path).get("region")
    return str(region) if region else None


def curated_bucket(cloudformation: Any, stack_name: str) -> str:
    """The stack's ``CuratedBucketName`` output, read with CloudFormation ``describe_stacks``."""
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == BUCKET_OUTPUT:
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack_name} has no {BUCKET_OUTPUT} output: is it deployed?")


def upload_bundle(s3: Any, bundle: Path, bucket: str) -> str:
    """Upload ``bundle`` to ``s3://<bucket>/_glue/clickstream_glue.zip``; returns that URI."""
    s3.upload_file(str(bundle), bucket, BUNDLE_KEY, ExtraArgs={"ContentType": "application/zip"})
    return f"s3://{bucket}/{BUNDLE_KEY}"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the bundle; with ``--upload``, put it where the stack's Glue jobs load it from."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write it")
    parser.add_argument("--upload", action="store_true", help="upload it to the deployed stack")
    parser.add_argument("--stack-name", help="the stack (default: samconfig.toml's stack_name)")
    parser.add_argument("--region", help="the stack's region (default: samconfig.toml's region)")
    args = parser.parse_args(argv)

    names = build_bundle(args.output)
    print(f"built {args.output} ({len(names)} files)")
    if args.upload:
        import boto3

        session = boto3.session.Session(region_name=args.region or default_region())
        stack_name = args.stack_name or default_stack_name()
        bucket = curated_bucket(session.client("cloudformation"), stack_name)
        print(f"uploaded {upload_bundle(session.client('s3'), args.output, bucket)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
