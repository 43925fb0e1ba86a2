"""A real OpenSearch node on 127.0.0.1: the official distribution from Maven Central, on Java 17.

``org.opensearch.distribution.integ-test-zip:opensearch:<version>:zip`` is fetched with Maven into
a cache folder (``CLICKSTREAM_CACHE``, default ``~/.cache/clickstream``), unpacked once, and
started single-node with a small heap, bound to loopback, security off (the integ-test
distribution ships no security plugin). OpenSearch refuses to run as root, so under root the
launcher runs it as a system user ``clickstream-search`` that it creates if missing.

Each node works in a folder of its own (:func:`new_node_folder`, ``clickstream-search-*`` in the
system's temporary folder): its configuration, data, logs and temporary files. No other process
changes the folder or the path to it (a pytest session resets the mode of its own temporary
folders, which would lock the service user out), no node writes into the distribution in the
cache, and concurrent nodes share nothing. :meth:`SearchNode.stop` removes the folder; the local
stack keeps its indices across ``down``/``up`` with :func:`save_indices` and
:func:`restore_indices`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from clickstream_local.moto_server import free_port, stop_process, wait_until_ready

OPENSEARCH_VERSION = "2.19.6"
ARTIFACT = "org.opensearch.distribution.integ-test-zip:opensearch"
SERVICE_USER = "clickstream-search"
DEFAULT_HEAP = "512m"
NODE_FOLDER_PREFIX = "clickstream-search-"
PORT_ATTEMPTS = 3
"""Starts tried on fresh free ports when another process took the chosen one meanwhile."""


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
    """Download (Maven) and unpack the distribution once; returns its home folder.

    Each caller downloads and unpacks into a staging folder of its own and renames the result
    into place, so two first runs at the same time cannot break each other's copy.
    """
    home = cache_dir() / f"opensearch-{version}"
    if (home / "bin" / "opensearch").exists():
        return home
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"opensearch-{version}.", dir=cache_dir()))
    try:
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
                    f"-DoutputDirectory={staging}",
                    "-Dmdep.overWriteReleases=true",
                ],
                check=True,
                cwd=staging,
            )
            (downloaded,) = staging.glob("*.zip")
            downloaded.replace(archive)
        unpacked = staging / "unpacked"
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(unpacked)
        (distribution,) = unpacked.iterdir()
        for script in (distribution / "bin").iterdir():
            script.chmod(0o755)
        move_into_place(distribution, home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def move_into_place(folder: Path, target: Path) -> None:
    """Rename ``folder`` to ``target``, unless another process put a complete one there first."""
    try:
        folder.rename(target)
    except OSError:
        if not target.is_dir():
            raise


def _service_user() -> str | None:
    """The user to run OpenSearch as: None when not root, else a system user (created once)."""
    if os.geteuid() != 0:
        return None
    if not _user_exists(SERVICE_USER):
        created = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=False,
        )
        if created.returncode != 0 and not _user_exists(SERVICE_USER):  # not a concurrent useradd
            raise RuntimeError(f"useradd {SERVICE_USER} failed with exit code {created.returncode}")
    return SERVICE_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def new_node_folder() -> Path:
    """A new, empty folder for one node, in the system's temporary folder."""
    return Path(tempfile.mkdtemp(prefix=NODE_FOLDER_PREFIX))


def remove_node_folder(folder: Path) -> None:
    """Remove a stopped node's folder and everything in it."""
    shutil.rmtree(folder, ignore_errors=True)


def save_indices(folder: Path, target: Path) -> None:
    """Copy a stopped node's indices (``folder/data``) to ``target/data``, replacing any copy."""
    if not (folder / "data").is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    staging = target / "data.staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder / "data", staging)
    shutil.rmtree(target / "data", ignore_errors=True)
    staging.rename(target / "data")


def restore_indices(source: Path, folder: Path) -> None:
    """Copy indices saved by :func:`save_indices` into a node folder that has none yet."""
    if (source / "data").is_dir():
        shutil.copytree(source / "data", folder / "data")


def _prepare_node_folder(folder: Path, home: Path) -> None:
    """The node's own configuration (a copy of the distribution's), data, logs and temp folders.

    The distribution's ``jvm.options`` names ``logs/`` and ``data`` relative to the working
    folder (the distribution's home): the node's copy names its own, so concurrent nodes never
    write the same GC log or heap dump.
    """
    config = folder / "config"
    if not config.exists():
        shutil.copytree(home / "config", config)
        options = config / "jvm.options"
        options.write_text(node_jvm_options(options.read_text(), folder))
    for name in ("data", "logs", "tmp"):
        (folder / name).mkdir(exist_ok=True)


def node_jvm_options(distribution_options: str, folder: Path) -> str:
    """``jvm.options`` with its paths relative to the working folder moved into ``folder``."""
    return distribution_options.replace("=logs/", f"={folder}/logs/").replace(
        "HeapDumpPath=data", f"HeapDumpPath={folder}/data"
    )


def _let_service_user_in(user: str, folder: Path, home: Path) -> None:
    """Give the service user its node folder and the distribution, and a path to reach them."""
    subprocess.run(["chown", "-R", user, str(folder), str(home)], check=True)
    for parent in (*folder.resolve().parents, *home.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _drop_privileges(user: str | None) -> dict[str, object]:
    """Popen arguments that run as ``user`` with its own group only (no root groups left)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass(frozen=True)
class SearchNode:
    """A running OpenSearch node and the folder it works in."""

    pid: int
    url: str
    folder: Path

    @property
    def port(self) -> int:
        """The HTTP port."""
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, *, keep_folder: bool = False) -> None:
        """Stop the node and remove its folder (``keep_folder`` for a restart on the same data)."""
        stop_process(self.pid, timeout=30)
        if not keep_folder:
            remove_node_folder(self.folder)


def start_opensearch(
    log_file: Path,
    *,
    folder: Path | None = None,
    port: int | None = None,
    heap: str = DEFAULT_HEAP,
    timeout: float = 180.0,
) -> SearchNode:
    """Start a single-node OpenSearch on 127.0.0.1 and wait until it answers.

    ``folder`` is the node folder to work in: a stopped node's, to restart on its data, or one
    from :func:`new_node_folder`; by default a new one, removed again if the start fails.
    Without ``port`` the node gets a free one, and another if that was taken meanwhile.
    """
    home = fetch_distribution()
    own_folder = folder is None
    folder = new_node_folder() if folder is None else folder
    try:
        _prepare_node_folder(folder, home)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        user = _service_user()
        if user is not None:
            _let_service_user_in(user, folder, home)
        attempts, attempt = (1 if port else PORT_ATTEMPTS), 1
        while True:
            started_at = log_file.stat().st_size if log_file.exists() else 0
            try:
                return _run_node(home, folder, log_file, port or free_port(), heap, timeout, user)
            except RuntimeError:
                if attempt == attempts or not _port_was_taken(log_file, started_at):
                    raise
            attempt += 1
    except BaseException:
        if own_folder:
            remove_node_folder(folder)
        raise


def _run_node(
    home: Path, folder: Path, log_file: Path, port: int, heap: str, timeout: float, user: str | None
) -> SearchNode:
    """Launch the node on ``port`` and wait until it answers; stop it if it does not."""
    environment = {
        **os.environ,
        "OPENSEARCH_JAVA_HOME": str(java_home()),
        "OPENSEARCH_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
        "OPENSEARCH_PATH_CONF": str(folder / "config"),
        "OPENSEARCH_TMPDIR": str(folder / "tmp"),
    }
    command = [
        str(home / "bin" / "opensearch"),
        "-E", "discovery.type=single-node",
        "-E", "network.host=127.0.0.1",
        "-E", f"http.port={port}",
        "-E", f"transport.port={free_port()}",
        "-E", f"path.data={folder / 'data'}",
        "-E", f"path.logs={folder / 'logs'}",
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
    return SearchNode(pid=process.pid, url=url, folder=folder)


def _port_was_taken(log_file: Path, offset: int) -> bool:
    """Whether the node's output since ``offset`` says a port it was given was in use."""
    with log_file.open("rb") as log:
        log.seek(offset)
        return b"Address already in use" in log.read()
