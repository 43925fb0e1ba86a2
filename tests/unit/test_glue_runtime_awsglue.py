"""The jobs' Glue branch: ``awsglue`` present, as on AWS Glue and in the Glue 5.0 image.

Fake ``awsglue.context``, ``awsglue.job`` and ``awsglue.utils`` modules implement exactly what the
code calls (``GlueContext(sc).spark_session``, ``Job(glue_context).init(name, args)`` and
``.commit()``, ``getResolvedOptions(argv, names)``) and record the calls; ``SparkContext`` is a
stand-in too, so no JVM starts. The job scripts run with their incremental run and curated tables
stubbed: those build Spark columns, which need a real SparkContext.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pyspark.context import SparkContext

from clickstream_glue.args import resolve_options
from clickstream_glue.runtime import JobContext, start_job

ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "clickstream-raw-to-curated-events"
FAKE_SPARK_CONTEXT = object()


class FakeRuntimeConfig:
    """``SparkSession.conf``: the settings made on it."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


class FakeSparkSession:
    """The session a ``GlueContext`` holds."""

    def __init__(self) -> None:
        self.conf = FakeRuntimeConfig()


class FakeGlue:
    """Fake ``awsglue`` modules that record every call the jobs make to them."""

    def __init__(self) -> None:
        self.contexts: list[Any] = []
        self.inits: list[tuple[str, dict[str, str]]] = []
        self.commits = 0
        self.resolved: list[tuple[list[str], list[str]]] = []

    def modules(self) -> dict[str, ModuleType]:
        """``awsglue`` and its three submodules, bound to this recorder."""
        glue = self

        class GlueContext:
            def __init__(self, spark_context: Any) -> None:
                self.spark_context = spark_context
                self.spark_session = FakeSparkSession()
                glue.contexts.append(self)

        class Job:
            def __init__(self, glue_context: GlueContext) -> None:
                self.glue_context = glue_context

            def init(self, job_name: str, args: dict[str, str]) -> None:
                glue.inits.append((job_name, dict(args)))

            def commit(self) -> None:
                glue.commits += 1

        def getResolvedOptions(args: Sequence[str], options: Sequence[str]) -> dict[str, Any]:
            """Parses like awsglue's: Glue's run ids are always optional arguments of its own,
            so asking for one again is an argparse conflict, as on Glue."""
            glue.resolved.append((list(args), list(options)))
            parser = argparse.ArgumentParser()
            for reserved in ("--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION"):
                parser.add_argument(reserved, required=False)
            for option in options:
                parser.add_argument("--" + option, required=True)
            parsed, _ = parser.parse_known_args(list(args)[1:])
            return vars(parsed)

        package = ModuleType("awsglue")
        context = ModuleType("awsglue.context")
        context.GlueContext = GlueContext  # type: ignore[attr-defined]
        job = ModuleType("awsglue.job")
        job.Job = Job  # type: ignore[attr-defined]
        utils = ModuleType("awsglue.utils")
        utils.getResolvedOptions = getResolvedOptions  # type: ignore[attr-defined]
        package.context, package.job, package.utils = context, job, utils  # type: ignore[attr-defined]
        return {
            "awsglue": package,
            "awsglue.context": context,
            "awsglue.job": job,
            "awsglue.utils": utils,
        }


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> FakeGlue:
    """``awsglue`` importable (the fakes), and a SparkContext that starts no JVM."""
    fake = FakeGlue()
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(
        SparkContext, "getOrCreate", classmethod(lambda cls, conf=None: FAKE_SPARK_CONTEXT)
    )
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return fake


def stub_incremental_run(
    monkeypatch: pytest.MonkeyPatch, run: Callable[..., dict[str, Any]]
) -> None:
    """``clickstream_glue.incremental.run_incremental`` is ``run``; the curated tables are names."""
    incremental = ModuleType("clickstream_glue.incremental")
    incremental.run_incremental = run  # type: ignore[attr-defined]
    tables = ModuleType("clickstream_glue.tables")
    for name in ("EVENTS", "MINUTE_SESSIONS", "GAP_SESSIONS"):
        setattr(tables, name, name)
    monkeypatch.setitem(sys.modules, "clickstream_glue.incremental", incremental)
    monkeypatch.setitem(sys.modules, "clickstream_glue.tables", tables)


def glue_argv(*job_arguments: str) -> list[str]:
    """``sys.argv`` of a Glue run: the script, Glue's own arguments and the job's."""
    return [
        "raw_to_curated_events.py",
        "--JOB_ID",
        "j_0123",
        "--JOB_RUN_ID",
        "jr_4567",
        "--JOB_NAME",
        JOB_NAME,
        "--job-bookmark-option",
        "job-bookmark-disable",
        *job_arguments,
    ]


def load_job_script(name: str) -> ModuleType:
    """A job script of ``glue_jobs/`` loaded as a module (its ``main`` not run)."""
    spec = importlib.util.spec_from_file_location(f"glue_job_{name}", ROOT / "glue_jobs" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_start_job_inits_a_glue_job_and_uses_the_glue_contexts_session(glue: FakeGlue) -> None:
    # GIVEN awsglue is there, and the options of a Glue run
    options = {
        "source_bucket": "raw",
        "curated_bucket": "curated",
        "JOB_NAME": JOB_NAME,
        "JOB_RUN_ID": "jr_4567",
    }
    # WHEN the job starts
    job = start_job("raw_to_curated_events", options)
    # THEN a GlueContext wraps the SparkContext, and Job.init got the run's name and arguments
    (context,) = glue.contexts
    assert context.spark_context is FAKE_SPARK_CONTEXT
    assert glue.inits == [(JOB_NAME, options)]
    # AND the job's session is the GlueContext's, with the jobs' write settings on it
    assert job.spark is context.spark_session
    assert job.spark.conf.values == {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
    # AND the run id ends with Glue's run id, and the stores are the two buckets
    assert job.run_id.endswith("-jr_4567")
    assert (job.source.bucket, job.curated.bucket) == ("raw", "curated")
    # AND nothing is committed until the job says so
    assert glue.commits == 0
    job.commit()
    assert glue.commits == 1


def test_start_job_names_the_glue_job_itself_without_a_job_name(glue: FakeGlue) -> None:
    # GIVEN options without JOB_NAME
    # WHEN the job starts THEN Job.init gets the job's own name
    start_job("raw_to_curated_events", {"source_bucket": "raw", "curated_bucket": "curated"})
    assert [name for name, _ in glue.inits] == ["raw_to_curated_events"]


def test_a_run_without_a_glue_run_id_still_gets_a_unique_run_id(glue: FakeGlue) -> None:
    # GIVEN the options of a run with no --JOB_RUN_ID (the default is empty), as in the container
    options = {"source_bucket": "raw", "curated_bucket": "curated", "JOB_RUN_ID": ""}
    # WHEN the job starts twice
    first = start_job("raw_to_curated_events", options)
    second = start_job("raw_to_curated_events", options)
    # THEN each run id ends with its own random suffix, not with an empty one
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{8}", first.run_id)
    assert first.run_id != second.run_id


def test_get_resolved_options_receives_the_required_names(glue: FakeGlue) -> None:
    # GIVEN the command line of a Glue run
    argv = glue_argv("--source_bucket", "raw", "--curated_bucket", "curated")
    # WHEN the job's options are resolved, with optional names that Glue passes
    options = resolve_options(argv, ["source_bucket", "curated_bucket"], {"JOB_NAME": "x"})
    # THEN getResolvedOptions got the whole command line and exactly the names asked for
    assert glue.resolved == [(argv, ["source_bucket", "curated_bucket", "JOB_NAME"])]
    assert options == {"source_bucket": "raw", "curated_bucket": "curated", "JOB_NAME": JOB_NAME}


def test_glues_run_id_is_read_without_asking_getresolvedoptions_for_it(glue: FakeGlue) -> None:
    # GIVEN a Glue command line with --JOB_RUN_ID, and a job that wants it (default empty)
    argv = glue_argv("--source_bucket", "raw")
    # WHEN the options are resolved
    options = resolve_options(argv, ["source_bucket"], {"JOB_RUN_ID": ""})
    # THEN the run id comes from getResolvedOptions' own parse (asking for it is a conflict)
    assert options == {"source_bucket": "raw", "JOB_RUN_ID": "jr_4567"}
    assert glue.resolved[0][1] == ["source_bucket"]


def test_a_job_commits_after_a_successful_run(
    glue: FakeGlue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the raw events job on Glue, whose incremental run succeeds
    script = load_job_script("raw_to_curated_events.py")
    runs: list[JobContext] = []

    sources: list[Any] = []

    def succeed(job: JobContext, job_name: str, prefixes: Any, *_: Any) -> dict[str, Any]:
        runs.append(job)
        sources.append(prefixes)
        assert glue.commits == 0
        return {"job": "raw_to_curated_events", "tables": {}}

    stub_incremental_run(monkeypatch, succeed)
    # WHEN its main runs with the command line Glue gives it
    report = script.main(glue_argv("--source_bucket", "raw", "--curated_bucket", "curated"))
    # THEN the Glue job was initialised with its name and options, ran once, and committed once
    ((name, arguments),) = glue.inits
    assert name == JOB_NAME
    assert arguments["JOB_RUN_ID"] == "jr_4567"
    assert arguments["source_bucket"] == "raw"
    assert glue.resolved[0][1] == ["source_bucket", "curated_bucket", "JOB_NAME"]
    assert runs[0].spark is glue.contexts[0].spark_session
    assert sources == [[("rawdata/", "EVENTS")]]
    assert report == {"job": "raw_to_curated_events", "tables": {}}
    assert glue.commits == 1


def test_a_failed_run_is_not_committed(glue: FakeGlue, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the sessions job on Glue, whose incremental run fails
    script = load_job_script("aggregated_to_curated_sessions.py")

    def fail(*_: Any) -> dict[str, Any]:
        raise RuntimeError("S3 is down")

    stub_incremental_run(monkeypatch, fail)
    # WHEN its main runs
    with pytest.raises(RuntimeError, match="S3 is down"):
        script.main(glue_argv("--source_bucket", "raw", "--curated_bucket", "curated"))
    # THEN the Glue job was initialised but never committed
    assert len(glue.inits) == 1
    assert glue.commits == 0


@pytest.mark.parametrize(
    "script", ["raw_to_curated_events.py", "aggregated_to_curated_sessions.py", "infer_schemas.py"]
)
def test_a_job_script_loads_before_any_spark_context_exists(
    script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no SparkContext, as when Glue or spark-submit starts the script
    monkeypatch.setattr(SparkContext, "_active_spark_context", None)
    # WHEN the script is loaded
    module = load_job_script(script)
    # THEN its imports needed no Spark, and its main is there to create the context
    assert callable(module.main)
