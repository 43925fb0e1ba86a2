"""Run the template's Glue jobs locally: the same scripts, with a local SparkSession.

A job is an ``AWS::Glue::Job`` of ``template.yaml``: its ``Command.ScriptLocation`` (a path in
this repository) and its ``DefaultArguments`` (resolved to the local stack's names) are what Glue
would run. Locally the session reads and writes ``s3://`` on the moto endpoint through s3a, with
the temporary credentials of the job's ``Role`` (boto3 and s3a alike), so the endpoint holds the
job to its role's policies as Glue would. A job with ``--enable-glue-datacatalog`` gets Hive
support over the local metastore (Derby) instead of the Glue Data Catalog. The job's own
``main(argv)`` runs, exactly as on Glue.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream_local.aws import Credentials, client_environment, role_credentials
from clickstream_local.cfn import Resource, Template

REPORT_MARKER = "GLUE-JOB-REPORT "


@dataclass(frozen=True)
class LocalGlueJob:
    """One Glue job of the template, ready to run locally."""

    logical_id: str
    name: str
    script: Path
    default_arguments: dict[str, str]
    role_arn: str = ""

    @classmethod
    def from_resource(cls, resource: Resource, root: Path) -> LocalGlueJob:
        """From a resolved ``AWS::Glue::Job`` resource; the script path is relative to ``root``."""
        properties = resource.properties
        return cls(
            logical_id=resource.logical_id,
            name=properties["Name"],
            script=root / properties["Command"]["ScriptLocation"],
            default_arguments={
                k: str(v) for k, v in properties.get("DefaultArguments", {}).items()
            },
            role_arn=str(properties.get("Role", "")),
        )

    @property
    def uses_catalog(self) -> bool:
        """True when the job talks to the Data Catalog through Spark SQL (Hive support)."""
        return self.default_arguments.get("--enable-glue-datacatalog") == "true"

    def argv(self, overrides: Mapping[str, str] | None = None) -> list[str]:
        """``[script, --NAME, value, ...]`` as Glue passes them, ``overrides`` winning."""
        arguments = {
            **self.default_arguments,
            **{f"--{k}": v for k, v in (overrides or {}).items()},
        }
        arguments.setdefault("--JOB_NAME", self.name)
        return [str(self.script), *(item for pair in arguments.items() for item in pair)]


def template_jobs(template: Template, root: Path) -> dict[str, LocalGlueJob]:
    """Every Glue job of the template by logical id."""
    return {
        resource.logical_id: LocalGlueJob.from_resource(resource, root)
        for resource in template.resources("AWS::Glue::Job")
    }


def run_in_session(job: LocalGlueJob, overrides: Mapping[str, str] | None = None) -> Any:
    """Run the job's ``main(argv)`` in this process, on the active SparkSession."""
    module = runpy.run_path(str(job.script), run_name=f"glue_job_{job.logical_id}")
    return module["main"](job.argv(overrides))


def run_in_subprocess(
    jobs: Sequence[LocalGlueJob],
    endpoint_url: str,
    metastore_dir: Path,
    log: Path,
    overrides: Mapping[str, str] | None = None,
) -> list[Any]:
    """Run the jobs one after another in a fresh Python process (one JVM); their reports.

    The process has the jobs' role's credentials (all jobs of one run share a role).
    """
    roles = {job.role_arn for job in jobs}
    if len(roles) != 1 or not next(iter(roles)):
        raise ValueError(f"jobs of one local run must share one role, not {sorted(roles)}")
    credentials = role_credentials(endpoint_url, roles.pop())
    command = [sys.executable, "-m", "clickstream_local.glue_local", "--endpoint", endpoint_url]
    command += ["--metastore", str(metastore_dir)]
    for key, value in (overrides or {}).items():
        command += ["--arg", f"{key}={value}"]
    for job in jobs:
        command += ["--job", json.dumps(_job_document(job))]
    environment = {**os.environ, **client_environment(endpoint_url, credentials)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as output:
        completed = subprocess.run(
            command, env=environment, stdout=subprocess.PIPE, stderr=output, text=True, check=False
        )
        output.write(completed.stdout)
    if completed.returncode != 0:
        raise RuntimeError(f"Glue job run failed (exit {completed.returncode}); see {log}")
    return [
        json.loads(line[len(REPORT_MARKER) :])
        for line in completed.stdout.splitlines()
        if line.startswith(REPORT_MARKER)
    ]


def _job_document(job: LocalGlueJob) -> dict[str, Any]:
    return {
        "logical_id": job.logical_id,
        "name": job.name,
        "script": str(job.script),
        "default_arguments": job.default_arguments,
        "role_arn": job.role_arn,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m clickstream_local.glue_local``: run jobs given as JSON in one SparkSession."""
    from clickstream_local.spark import local_spark_session

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--metastore", type=Path, required=True)
    parser.add_argument("--job", action="append", default=[])
    parser.add_argument("--arg", action="append", default=[])
    arguments = parser.parse_args(argv)
    jobs = [
        LocalGlueJob(
            d["logical_id"], d["name"], Path(d["script"]), d["default_arguments"], d["role_arn"]
        )
        for d in map(json.loads, arguments.job)
    ]
    overrides = dict(item.split("=", 1) for item in arguments.arg)
    catalog = any(job.uses_catalog for job in jobs)
    local_spark_session(
        arguments.endpoint,
        metastore_dir=arguments.metastore if catalog else None,
        app_name="clickstream-glue",
        credentials=Credentials(
            os.environ["AWS_ACCESS_KEY_ID"],
            os.environ["AWS_SECRET_ACCESS_KEY"],
            os.environ.get("AWS_SESSION_TOKEN") or None,
        ),
    )
    for job in jobs:
        report = run_in_session(job, overrides)
        print(REPORT_MARKER + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
