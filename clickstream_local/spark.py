"""Local PySpark for the Glue jobs: s3a:// on the moto endpoint, Hive metastore on Derby.

PySpark bundles Hadoop's client jars but not ``hadoop-aws``. :func:`s3a_jars` fetches
``hadoop-aws`` at exactly pyspark's Hadoop version, with the AWS SDK bundle it was built against,
and the HCatalog JSON SerDe at pyspark's Hive version (the JSON SerDe the catalog's tables name,
which Athena reads too), from Maven Central (``clickstream_local/jvm/pom.xml``) into the cache
folder, once.
:func:`local_spark_session` builds a ``local[*]`` session that reads and writes ``s3a://`` on the
local endpoint (path-style, plain HTTP, with the given credentials: a Glue job's role, or the
local administrator's) and, when asked, keeps a Hive
metastore in embedded Derby under a folder of the local state.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from clickstream_local.aws import ADMIN, Credentials
from clickstream_local.opensearch import cache_dir, java_home, move_into_place

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POM = Path(__file__).resolve().parent / "jvm" / "pom.xml"
LOG4J2_TO_FILE = Path(__file__).resolve().parent / "jvm" / "log4j2-to-file.properties"
"""Log4j 2 settings that send the JVM's warnings and errors to ``-Dclickstream.spark.log``."""
ENVIRONMENT_PROVIDER = "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"


def pyspark_hadoop_version() -> str:
    """The Hadoop version of the jars that ship inside the installed pyspark."""
    return _bundled_version(r"hadoop-client-api-(\d+\.\d+\.\d+)\.jar")


def pyspark_hive_version() -> str:
    """The Hive version of the jars that ship inside the installed pyspark."""
    return _bundled_version(r"hive-serde-(\d+\.\d+\.\d+)\.jar")


def _bundled_version(pattern: str) -> str:
    import pyspark

    jars = Path(pyspark.__file__).resolve().parent / "jars"
    for jar in sorted(jars.iterdir()):
        match = re.fullmatch(pattern, jar.name)
        if match:
            return match.group(1)
    raise RuntimeError(f"no jar like {pattern} in {jars}: is pyspark installed completely?")


def s3a_jars(hadoop_version: str | None = None, hive_version: str | None = None) -> list[Path]:
    """``hadoop-aws`` (with its runtime dependencies) and the HCatalog JSON SerDe, fetched once."""
    hadoop = hadoop_version or pyspark_hadoop_version()
    hive = hive_version or pyspark_hive_version()
    folder = cache_dir() / f"spark-jars-hadoop{hadoop}-hive{hive}"
    marker = folder / ".complete"
    if not marker.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven (mvn) is needed to fetch hadoop-aws from Maven Central")
        cache_dir().mkdir(parents=True, exist_ok=True)
        # A staging folder of this process's own, renamed into place complete: two first runs
        # at the same time cannot break each other's copy.
        staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=cache_dir()))
        try:
            subprocess.run(
                [
                    mvn,
                    "--batch-mode",
                    "--quiet",
                    "--file",
                    str(POM),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-Dhadoop.version={hadoop}",
                    f"-Dhive.version={hive}",
                    f"-DoutputDirectory={staging}",
                ],
                check=True,
            )
            (staging / ".complete").touch()
            if not marker.exists():
                shutil.rmtree(folder, ignore_errors=True)  # an incomplete copy of an older run
                move_into_place(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(folder.glob("*.jar"))


def local_spark_session(
    s3_endpoint: str | None = None,
    *,
    metastore_dir: Path | None = None,
    app_name: str = "clickstream-local",
    shuffle_partitions: int = 4,
    driver_memory: str = "4g",
    credentials: Credentials = ADMIN,
    log_file: Path | None = None,
) -> SparkSession:
    """A ``local[*]`` session: s3a:// on ``s3_endpoint``, Hive support with ``metastore_dir``.

    With ``log_file``, the JVM's warnings and errors go to that file and none to the console.
    """
    os.environ.setdefault("JAVA_HOME", str(java_home()))
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, and no warning about it
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if credentials.session_token:
        os.environ.update(credentials.environment())  # the JVM's SDK reads them (s3a_settings)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[*]")
        .appName(app_name)
        .config("spark.jars", ",".join(str(jar) for jar in s3a_jars()))
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    )
    java_options = ["-Duser.timezone=UTC"]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        java_options += [
            f"-Dlog4j2.configurationFile={LOG4J2_TO_FILE}",
            f"-Dclickstream.spark.log={log_file}",
        ]
    if s3_endpoint:
        for key, value in s3a_settings(s3_endpoint, credentials).items():
            builder = builder.config(f"spark.hadoop.{key}", value)
    if metastore_dir is not None:
        metastore_dir.mkdir(parents=True, exist_ok=True)
        derby = metastore_dir / "metastore_db"
        java_options.append(f"-Dderby.system.home={metastore_dir}")
        builder = (
            builder.config("spark.sql.warehouse.dir", str(metastore_dir / "warehouse"))
            .config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={derby};create=true",
            )
            .enableHiveSupport()
        )
    session = builder.config("spark.driver.extraJavaOptions", " ".join(java_options)).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def s3a_settings(endpoint: str, credentials: Credentials = ADMIN) -> dict[str, str]:
    """Hadoop settings that point s3a:// at a local S3 endpoint (moto) over plain HTTP.

    Long-lived keys go in the settings. Temporary ones (a role's) are read from the process's
    ``AWS_*`` environment variables by the AWS SDK: with s3a's ``TemporaryAWSCredentialsProvider``
    a read of several paths at once (Spark checks them on parallel threads) failed with "has no
    credentials", while a read of one path worked.
    """
    if credentials.session_token:
        keys = {"fs.s3a.aws.credentials.provider": ENVIRONMENT_PROVIDER}
    else:
        keys = {
            "fs.s3a.access.key": credentials.access_key_id,
            "fs.s3a.secret.key": credentials.secret_access_key,
            "fs.s3a.aws.credentials.provider": (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            ),
        }
    return {
        "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        **keys,
        "fs.s3a.change.detection.mode": "none",
        "fs.s3a.fast.upload": "true",
        "fs.s3a.committer.name": "file",
        "mapreduce.fileoutputcommitter.algorithm.version": "2",
    }
