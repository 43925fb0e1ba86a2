"""``clickstream glue-docker``: the docker command line that runs a job in the Glue 5.0 image."""

from __future__ import annotations

import shlex
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from clickstream_cli.main import main
from clickstream_local.aws import client_environment
from clickstream_local.cfn import Template
from clickstream_local.glue_docker import (
    BUNDLE_NAME,
    IMAGE,
    ROLE_PLACEHOLDER,
    DockerUnavailable,
    build_job_bundle,
    container_script,
    docker_command,
    find_job,
    require_docker,
)
from clickstream_local.glue_local import LocalGlueJob, template_jobs
from clickstream_local.spark import s3a_settings
from clickstream_local.stack import StackError, local_parameters

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "http://127.0.0.1:45123"
WORKSPACE = "/home/hadoop/workspace"
NO_DOCKER_LINE = (
    "clickstream: error: Docker is not available (no docker command on PATH):"
    " glue-docker needs a Docker engine"
)


@pytest.fixture(scope="module")
def jobs() -> dict[str, LocalGlueJob]:
    """The template's Glue jobs, with the names ``clickstream local up`` gives them."""
    template_path = ROOT / "template.yaml"
    template = Template.load(template_path, parameter_overrides=local_parameters(template_path, {}))
    return template_jobs(template, ROOT)


def option_values(command: list[str], option: str) -> list[str]:
    """The values following each occurrence of ``option`` in ``command``."""
    return [command[i + 1] for i, token in enumerate(command[:-1]) if token == option]


class FakeRunner:
    """Stands in for ``subprocess.run``: records each command, answers with a fixed outcome."""

    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)


def test_the_job_arguments_follow_the_script_in_the_templates_order(
    jobs: dict[str, LocalGlueJob],
) -> None:
    # GIVEN the raw events job of the template
    job = jobs["RawToCuratedEventsJob"]
    # WHEN its docker command is built
    command = docker_command(job, ENDPOINT, ROOT, ROOT / ".local" / "glue-docker")
    # THEN the script in the mounted workspace comes next to last, then every DefaultArgument
    # in the template's order, then --JOB_NAME with the job's name, as Glue passes them
    script = command.index(f"{WORKSPACE}/glue_jobs/raw_to_curated_events.py")
    expected = [item for pair in job.default_arguments.items() for item in pair]
    assert command[script + 1 :] == [*expected, "--JOB_NAME", job.name]
    # AND those are the local stack's names
    assert option_values(command, "--source_bucket") == [job.default_arguments["--source_bucket"]]
    assert job.default_arguments["--source_bucket"].startswith("clickstream-raw-")


def test_the_container_runs_spark_submit_in_the_glue_image_on_the_host_network(
    jobs: dict[str, LocalGlueJob],
) -> None:
    # GIVEN the raw events job
    job = jobs["RawToCuratedEventsJob"]
    # WHEN its docker command is built
    command = docker_command(job, ENDPOINT, ROOT, Path("/state/glue-docker"))
    # THEN docker runs a throwaway container on the host's network (the stack is on 127.0.0.1)
    image = command.index(IMAGE)
    assert command[:3] == ["docker", "run", "--rm"]
    assert option_values(command[:image], "--network") == ["host"]
    # AND the image's entry is spark-submit, with the code bundle as its Python files
    assert command[image + 1] == "spark-submit"
    assert option_values(command, "--py-files") == [f"{WORKSPACE}/_glue/{BUNDLE_NAME}"]
    assert IMAGE == "public.ecr.aws/glue/aws-glue-libs:5"


def test_the_jobs_folder_and_the_bundle_are_mounted_read_only(
    jobs: dict[str, LocalGlueJob],
) -> None:
    # GIVEN a job and the folder its code bundle is built into
    bundle_dir = Path("/state/glue-docker")
    # WHEN the docker command is built
    command = docker_command(jobs["RawToCuratedEventsJob"], ENDPOINT, ROOT, bundle_dir)
    # THEN glue_jobs/ and the bundle folder are the two mounts, both read-only, before the image
    mounts = option_values(command[: command.index(IMAGE)], "-v")
    assert mounts == [
        f"{ROOT}/glue_jobs:{WORKSPACE}/glue_jobs:ro",
        f"{bundle_dir}:{WORKSPACE}/_glue:ro",
    ]


def test_the_container_gets_the_stacks_aws_environment(jobs: dict[str, LocalGlueJob]) -> None:
    # GIVEN the environment that points AWS code at the stack's endpoint
    environment = client_environment(ENDPOINT)
    # WHEN the docker command is built
    command = docker_command(jobs["RawToCuratedEventsJob"], ENDPOINT, ROOT, Path("/b"))
    # THEN every variable of it is passed to the container, in order, before the image
    variables = option_values(command[: command.index(IMAGE)], "-e")
    assert variables == [f"{name}={value}" for name, value in environment.items()]
    assert f"AWS_ENDPOINT_URL={ENDPOINT}" in variables


def test_spark_reads_and_writes_s3_on_the_local_endpoint(jobs: dict[str, LocalGlueJob]) -> None:
    # GIVEN the raw events job
    command = docker_command(jobs["RawToCuratedEventsJob"], ENDPOINT, ROOT, Path("/b"))
    # WHEN the spark-submit settings are read
    settings = option_values(command[: command.index("--py-files")], "--conf")
    # THEN every s3a setting of the local Spark session is there as a Hadoop setting
    for key, value in s3a_settings(ENDPOINT).items():
        assert f"spark.hadoop.{key}={value}" in settings
    assert "spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem" in settings
    # AND a job without --enable-glue-datacatalog gets no catalog client
    assert not any("metastore.client.factory" in setting for setting in settings)


def test_a_catalog_job_gets_the_glue_catalog_client_on_the_local_endpoint(
    jobs: dict[str, LocalGlueJob],
) -> None:
    # GIVEN the schema inference job, which enables the Glue Data Catalog
    job = jobs["InferSchemasJob"]
    assert job.uses_catalog
    # WHEN its docker command is built
    settings = option_values(docker_command(job, ENDPOINT, ROOT, Path("/b")), "--conf")
    # THEN Spark SQL uses Hive with the Glue catalog client, pointed at the endpoint
    assert "spark.sql.catalogImplementation=hive" in settings
    assert f"spark.hadoop.aws.glue.endpoint={ENDPOINT}" in settings
    assert any(s.endswith("AWSGlueDataCatalogHiveClientFactory") for s in settings)


def test_another_image_can_be_given(jobs: dict[str, LocalGlueJob]) -> None:
    # GIVEN another tag of the image WHEN the command is built with it
    image = "public.ecr.aws/glue/aws-glue-libs:5-amd64"
    command = docker_command(jobs["RawToCuratedEventsJob"], ENDPOINT, ROOT, Path("/b"), image)
    # THEN it runs that image with spark-submit, and the default image is not there
    assert command[command.index(image) + 1] == "spark-submit"
    assert IMAGE not in command


def test_a_job_is_found_by_logical_id_or_by_name(jobs: dict[str, LocalGlueJob]) -> None:
    # GIVEN the template's jobs
    # WHEN one is looked up by its logical id and by its physical name
    by_id = find_job(jobs, "AggregatedToCuratedSessionsJob")
    by_name = find_job(jobs, "clickstream-aggregated-to-curated-sessions")
    # THEN both give the same job
    assert by_id == by_name == jobs["AggregatedToCuratedSessionsJob"]


def test_an_unknown_job_lists_the_valid_names(jobs: dict[str, LocalGlueJob]) -> None:
    # GIVEN a name that is no job of the template
    # WHEN it is looked up
    with pytest.raises(StackError) as caught:
        find_job(jobs, "RawToCurated")
    # THEN the error names every job, by logical id and by name
    message = str(caught.value)
    assert "no Glue job 'RawToCurated'" in message
    for job in jobs.values():
        assert f"{job.logical_id} ({job.name})" in message


def test_a_script_outside_glue_jobs_is_refused(tmp_path: Path) -> None:
    # GIVEN a job whose script is not under glue_jobs/, so not in the mounted folder
    job = LocalGlueJob("OtherJob", "other", tmp_path / "scripts" / "other.py", {})
    # WHEN its path in the container is asked for THEN it is refused with the reason
    with pytest.raises(StackError, match="is not under glue_jobs/"):
        container_script(job, tmp_path)


def test_no_docker_command_is_reported_in_one_line() -> None:
    # GIVEN no docker on PATH
    runner = FakeRunner()
    # WHEN Docker is required
    with pytest.raises(DockerUnavailable) as caught:
        require_docker(lambda name: None, runner)
    # THEN the reason says so, and nothing was run
    assert str(caught.value) == (
        "Docker is not available (no docker command on PATH): glue-docker needs a Docker engine"
    )
    assert runner.commands == []


def test_a_docker_command_without_an_engine_is_reported_with_dockers_reason() -> None:
    # GIVEN a docker command whose `docker info` cannot reach an engine
    runner = FakeRunner(
        returncode=1,
        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
        " Is the docker daemon running?\n",
    )
    # WHEN Docker is required
    with pytest.raises(DockerUnavailable) as caught:
        require_docker(lambda name: "/usr/bin/docker", runner)
    # THEN the one-line reason quotes docker's first line
    assert str(caught.value) == (
        "Docker is not available (docker info: Cannot connect to the Docker daemon at"
        " unix:///var/run/docker.sock. Is the docker daemon running?): glue-docker needs a"
        " Docker engine"
    )
    assert runner.commands[0][:2] == ["docker", "info"]


def test_an_answering_engine_is_enough() -> None:
    # GIVEN docker on PATH and an engine that answers `docker info`
    runner = FakeRunner(returncode=0)
    # WHEN Docker is required THEN nothing is raised, after one `docker info`
    require_docker(lambda name: "/usr/bin/docker", runner)
    assert [command[:2] for command in runner.commands] == [["docker", "info"]]


def test_dry_run_prints_the_command_without_docker_or_a_stack(
    jobs: dict[str, LocalGlueJob],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN no docker on PATH, no running stack, and an explicit endpoint
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CLICKSTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLICKSTREAM_ROOT", str(ROOT))
    # WHEN the command is asked for with --dry-run
    code = main(["glue-docker", "RawToCuratedEventsJob", "--endpoint", ENDPOINT, "--dry-run"])
    # THEN it prints the command, shell-quoted, with placeholders for the role's temporary
    # credentials, and succeeds without building anything
    bundle_dir = tmp_path / "home" / "glue-docker"
    expected = docker_command(
        jobs["RawToCuratedEventsJob"], ENDPOINT, ROOT, bundle_dir, credentials=ROLE_PLACEHOLDER
    )
    assert code == 0
    assert capsys.readouterr().out == shlex.join(expected) + "\n"
    assert not bundle_dir.exists()


def test_without_docker_the_command_prints_one_error_line_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no docker on PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CLICKSTREAM_HOME", str(tmp_path / "home"))
    # WHEN a job is to be run in the container
    code = main(["glue-docker", "RawToCuratedEventsJob"])
    # THEN one clear line says why, and the exit code is not zero
    captured = capsys.readouterr()
    assert code != 0
    assert captured.err == NO_DOCKER_LINE + "\n"
    assert captured.out == ""


def test_the_bundle_is_built_where_spark_submit_finds_it(tmp_path: Path) -> None:
    # GIVEN the folder mounted as the container's _glue/
    bundle_dir = tmp_path / "glue-docker"
    # WHEN the bundle is built into it
    output = build_job_bundle(ROOT, bundle_dir)
    # THEN it is the file --py-files names, with both packages the jobs import
    assert output == bundle_dir / BUNDLE_NAME
    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
    assert {"clickstream_glue/runtime.py", "clickstream/core/events.py"} <= names
