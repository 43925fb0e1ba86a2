"""A real OpenSearch node on 127.0.0.1: the official distribution from Maven Central, on Java 17.

``org.opensearch.distribution.integ-test-zip:opensearch:<version>:zip`` is fetched with Maven into
a cache folder (``CLICKSTREAM_CACHE``, default ``~/.cache/clickstream``), unpacked once, and
started single-node with a small heap, bound to loopback, security off (the integ-test
distribution ships no security plugin). OpenSearch refuses to run as root, so under root the
launcher runs it as a system user ``clickstream-search`` that it creates if missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from clickstream_local.moto_server import free_port, stop_process, wait_until_ready

OPENSEARCH_VERSION = "2.19.6"
ARTIFACT = "org.opensearch.distribution.integ-test-zip:opensearch"
SERVICE_USER = "clickstream-search"
DEFAULT_HEAP = "512m"


def cache_dir() -> Path:
    """Where downloaded distributions are kept between runs and clones.

    ``CLICKSTREAM_CACHE``, else ``~/.cache/clickstream``; under root ``/var/cache/clickstream``,
    which the unprivileged service user can read.
    """
    if "CLICKSTREAM_CACHE" in os.environ:
        return Path(os.environ["CLICKSTREAM_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/clickstream")
    return Path.home() / ".cache" / "clickstream"


def java_home() -> Path:
    """A Java 17 runtime: ``OPENSEARCH_JAVA_HOME``, ``JAVA_HOME`` if it is 17, or the system's."""
    for candidate in (os.environ.get("OPENSEARCH_JAVA_HOME"), os.environ.get("JAVA_HOME")):
        if candidate and "17" in Path(candidate).resolve().name:
            return Path(candidate)
    for candidate in sorted(Path("/usr/lib/jvm").glob("*17*")):
        if (candidate / "bin" / "java").exists():
            return candidate
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "no Java runtime found: install OpenJDK 17 (apt-get install openjdk-17-jre)"
        )
    return Path(java).resolve().parent.parent


def fetch_distribution(version: str = OPENSEARCH_VERSION) -> Path:
    """Download (Maven) and unpack the distribution once; returns its home folder."""
    home = cache_dir() / f"opensearch-{version}"
    if (home / "bin" / "opensearch").exists():
        return home
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / f"opensearch-{version}.zip"
    if not archive.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven (mvn) is needed to fetch OpenSearch from Maven Central")
        subprocess.run(
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "dependency:copy",
                f"-Dartifact={ARTIFACT}:{version}:zip",
                f"-DoutputDirectory={downloads}",
                "-Dmdep.overWriteReleases=true",
            ],
            check=True,
            cwd=downloads,
        )
    staging = cache_dir() / f"opensearch-{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(staging)
    (unpacked,) = staging.iterdir()
    for script in (unpacked / "bin").iterdir():
        script.chmod(0o755)
    unpacked.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _service_user() -> str | None:
    """The user to run OpenSearch as: None when not root, else a system user (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
        )
    return SERVICE_USER


def _let_service_user_in(user: str, data_dir: Path, home: Path) -> None:
    """Give the service user its data folder and the distribution, and a path to reach them."""
    subprocess.run(["chown", "-R", user, str(data_dir), str(home)], check=True)
    for folder in (*data_dir.resolve().parents, *home.resolve().parents):
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


def _drop_privileges(user: str | None) -> dict[str, object]:
    """Popen arguments that run as ``user`` with its own group only (no root groups left)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass(frozen=True)
class SearchNode:
    """A running OpenSearch node."""

    pid: int
    url: str
    data_dir: Path

    def stop(self) -> None:
        """Stop the node (its data stays in ``data_dir``)."""
        stop_process(self.pid, timeout=30)


def start_opensearch(
    data_dir: Path,
    log_file: Path,
    *,
    port: int | None = None,
    heap: str = DEFAULT_HEAP,
    timeout: float = 180.0,
) -> SearchNode:
    """Start a single-node OpenSearch on 127.0.0.1 and wait until it answers."""
    home = fetch_distribution()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    user = _service_user()
    if user is not None:
        _let_service_user_in(user, data_dir, home)
    environment = {
        **os.environ,
        "OPENSEARCH_JAVA_HOME": str(java_home()),
        "OPENSEARCH_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
    }
    command = [
        str(home / "bin" / "opensearch"),
        "-E", "discovery.type=single-node",
        "-E", "network.host=127.0.0.1",
        "-E", f"http.port={port}",
        "-E", f"transport.port={free_port()}",
        "-E", f"path.data={data_dir / 'data'}",
        "-E", f"path.logs={logs}",
        "-E", "cluster.routing.allocation.disk.threshold_enabled=false",
        "-E", "action.auto_create_index=true",
    ]  # fmt: skip
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=environment,
            cwd=home,
            **_drop_privileges(user),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            f"{url}/_cluster/health?wait_for_status=yellow&timeout=1s", timeout, process
        )
    except Exception:
        stop_process(process.pid)
        raise
    return SearchNode(pid=process.pid, url=url, data_dir=data_dir)
