"""Run a Glue job of the template in AWS's Glue 5.0 container image, against the local stack.

``clickstream glue-docker JOB`` (``make glue-docker JOB=...``) runs the job's script with
``spark-submit`` in ``public.ecr.aws/glue/aws-glue-libs:5``, the image AWS publishes for local
development of Glue 5.0 jobs: Glue's own Spark build and the real ``awsglue`` library, so the
jobs take their Glue branch (``GlueContext``, ``Job.init``/``commit``, ``getResolvedOptions``).
The script gets the arguments the template gives it, as Glue passes them: every
``DefaultArguments`` entry resolved to the local stack's names, then ``--JOB_NAME``.

- ``glue_jobs/`` is mounted read-only at ``/home/hadoop/workspace/glue_jobs`` (the image's user
  is ``hadoop``), so the script path is ``/home/hadoop/workspace/<ScriptLocation>``;
- the jobs' code bundle (``glue_jobs/bundle.py``: ``clickstream_glue`` and the domain package
  ``clickstream``) is built into ``<state folder>/glue-docker/``, mounted, and handed to
  ``spark-submit --py-files``, which is what ``--extra-py-files`` does on Glue;
- the container shares the host's network, since the stack listens on 127.0.0.1, and gets the
  stack's AWS environment (``AWS_ENDPOINT_URL``, the job role's temporary credentials, region)
  and Hadoop's s3a settings, so that boto3 and ``s3://`` both reach the local endpoint;
- a job with ``--enable-glue-datacatalog`` gets the Glue Data Catalog client of the image,
  pointed at the local endpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from clickstream_local.aws import ADMIN, Credentials, client_environment, role_credentials
from clickstream_local.cfn import LOCAL_REGION, Template
from clickstream_local.glue_local import LocalGlueJob, template_jobs
from clickstream_local.spark import s3a_settings
from clickstream_local.stack import LocalStack, StackError, local_parameters

IMAGE = "public.ecr.aws/glue/aws-glue-libs:5"
"""AWS's Glue 5.0 image (Spark 3.5.4, Python 3.11, Amazon Linux 2023)."""

WORKSPACE = PurePosixPath("/home/hadoop/workspace")
JOBS_FOLDER = "glue_jobs"
BUNDLE_FOLDER = "_glue"
BUNDLE_NAME = "clickstream_glue.zip"

GLUE_CATALOG_CLIENT = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"

Which = Callable[[str], str | None]
Runner = Callable[..., subprocess.CompletedProcess[Any]]


class DockerUnavailable(StackError):
    """No Docker engine answers: the command line is there but cannot run."""


def find_job(jobs: dict[str, LocalGlueJob], name: str) -> LocalGlueJob:
    """The job whose logical id or physical name is ``name``; the error lists the valid ones."""
    for job in jobs.values():
        if name in (job.logical_id, job.name):
            return job
    valid = ", ".join(f"{job.logical_id} ({job.name})" for job in jobs.values())
    raise StackError(f"no Glue job {name!r} in the template; the jobs are: {valid}")


def spark_settings(
    job: LocalGlueJob, endpoint_url: str, credentials: Credentials = ADMIN
) -> dict[str, str]:
    """``--conf`` settings: ``s3://`` through s3a on the endpoint, and the catalog if asked for."""
    s3a = s3a_settings(endpoint_url, credentials)
    settings = {f"spark.hadoop.{key}": value for key, value in s3a.items()}
    settings["spark.hadoop.fs.s3a.endpoint.region"] = LOCAL_REGION
    if job.uses_catalog:
        settings["spark.sql.catalogImplementation"] = "hive"
        settings["spark.hadoop.hive.metastore.client.factory.class"] = GLUE_CATALOG_CLIENT
        settings["spark.hadoop.aws.glue.endpoint"] = endpoint_url
        settings["spark.hadoop.aws.region"] = LOCAL_REGION
    return settings


def container_script(job: LocalGlueJob, repo_root: Path) -> PurePosixPath:
    """Where the job's script is inside the container (it must be under ``glue_jobs/``)."""
    try:
        relative = job.script.relative_to(repo_root / JOBS_FOLDER)
    except ValueError:
        raise StackError(
            f"{job.logical_id}: script {job.script} is not under {JOBS_FOLDER}/"
        ) from None
    return WORKSPACE / JOBS_FOLDER / relative.as_posix()


def docker_command(
    job: LocalGlueJob,
    endpoint_url: str,
    repo_root: Path,
    bundle_dir: Path,
    image: str = IMAGE,
    credentials: Credentials = ADMIN,
) -> list[str]:
    """``docker run ... <image> spark-submit ... <script> <the job's arguments>``.

    ``credentials`` are the job role's, so the endpoint holds the run to the role's policies.
    """
    command = ["docker", "run", "--rm", "--network", "host"]
    command += ["-v", f"{repo_root / JOBS_FOLDER}:{WORKSPACE / JOBS_FOLDER}:ro"]
    command += ["-v", f"{bundle_dir}:{WORKSPACE / BUNDLE_FOLDER}:ro"]
    for name, value in client_environment(endpoint_url, credentials).items():
        command += ["-e", f"{name}={value}"]
    command += [image, "spark-submit"]
    for key, value in spark_settings(job, endpoint_url, credentials).items():
        command += ["--conf", f"{key}={value}"]
    command += ["--py-files", str(WORKSPACE / BUNDLE_FOLDER / BUNDLE_NAME)]
    _, *arguments = job.argv()
    return [*command, str(container_script(job, repo_root)), *arguments]


def docker_unavailable_reason(which: Which, run: Runner) -> str | None:
    """Why no Docker engine can run a container, or ``None`` when ``docker info`` answers."""
    if which("docker") is None:
        return "no docker command on PATH"
    try:
        info = run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if info.returncode != 0:
        lines = [line.strip() for line in (info.stderr or "").splitlines() if line.strip()]
        return f"docker info: {lines[0] if lines else f'exit {info.returncode}'}"
    return None


def require_docker(which: Which, run: Runner) -> None:
    """Raise :class:`DockerUnavailable` unless a Docker engine answers."""
    reason = docker_unavailable_reason(which, run)
    if reason is not None:
        raise DockerUnavailable(
            f"Docker is not available ({reason}): glue-docker needs a Docker engine"
        )


def build_job_bundle(repo_root: Path, bundle_dir: Path) -> Path:
    """Build ``clickstream_glue.zip`` with ``glue_jobs/bundle.py`` into ``bundle_dir``."""
    script = repo_root / JOBS_FOLDER / "bundle.py"
    spec = importlib.util.spec_from_file_location("glue_bundle", script)
    if spec is None or spec.loader is None:
        raise StackError(f"cannot load {script}")
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    output = bundle_dir / BUNDLE_NAME
    bundle.build_bundle(output)
    return output


def stack_target(stack: LocalStack, endpoint_url: str | None) -> tuple[str, Template]:
    """The endpoint and template: the running stack's, or ``endpoint_url`` with the repository's.

    With an explicit endpoint no stack needs to run; the names are the template's with the local
    parameter defaults, as ``clickstream local up`` provisions them.
    """
    if endpoint_url is None:
        state = stack.running()
        return state.endpoint_url, state.template()
    template_path = stack.root / "template.yaml"
    parameters = local_parameters(template_path, {})
    return endpoint_url, Template.load(template_path, parameter_overrides=parameters)


ROLE_PLACEHOLDER = Credentials("<role access key>", "<role secret key>", "<role session token>")
"""What ``--dry-run`` shows in place of the job role's temporary credentials."""


def cmd_glue_docker(arguments: argparse.Namespace) -> int:
    """``clickstream glue-docker JOB``: run the job in the Glue 5.0 image; its exit code."""
    if not arguments.dry_run:
        require_docker(shutil.which, subprocess.run)
    stack = LocalStack()
    endpoint_url, template = stack_target(stack, arguments.endpoint)
    job = find_job(template_jobs(template, stack.root), arguments.job)
    bundle_dir = stack.home / "glue-docker"
    credentials = (
        ROLE_PLACEHOLDER if arguments.dry_run else role_credentials(endpoint_url, job.role_arn)
    )
    command = docker_command(
        job, endpoint_url, stack.root, bundle_dir, arguments.image, credentials
    )
    if arguments.dry_run:
        print(shlex.join(command))
        return 0
    build_job_bundle(stack.root, bundle_dir)
    print(f"+ {shlex.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command, check=False).returncode


def add_glue_docker_command(commands: Any) -> None:
    """Register ``glue-docker`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "glue-docker",
        help="run a Glue job of the template in AWS's Glue 5.0 container against the local stack",
    )
    parser.add_argument("job", help="logical id (e.g. RawToCuratedEventsJob) or the job's name")
    parser.add_argument("--image", default=IMAGE, help="container image (default %(default)s)")
    parser.add_argument("--endpoint", help="AWS endpoint URL to use instead of the running stack's")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the docker command instead of running it"
    )
    parser.set_defaults(handler=cmd_glue_docker)
