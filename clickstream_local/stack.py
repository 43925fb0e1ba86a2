"""Start, stop, inspect and drain the local stack.

State lives under one folder, ``.local/`` at the repository root (``CLICKSTREAM_HOME`` moves it):

- ``stack.json``: ports, process ids and parameters of the running stack;
- ``logs/moto.log``, ``logs/daemon.log`` and ``logs/glue.log``: the servers' and Glue jobs' logs;
  ``logs/iam-audit.json``: every authorization decision of the local endpoint, saved by ``down``;
- ``metastore/``: the Hive metastore (embedded Derby) the local Glue catalog lives in;
- ``opensearch/data/``: the search node's indices, saved by ``down`` and restored by ``up``. The
  node itself works in a folder of its own outside this one (``clickstream_local.opensearch``),
  removed when the stack stops;
- ``results/``: saved query results (``clickstream query``);
- ``stacks/<region>/<name>/``: the DuckDB cache, results and report of a deployed stack the
  read commands read (``clickstream --stack NAME``); no other state is kept for it;
- ``s3/<bucket>/<key>``: the lake. Moto keeps S3 in memory, so ``local down`` (and every
  ``drain``) snapshots every bucket the template declares to this folder, and ``local up``
  restores it. Streams, queues and tables start empty on each ``up``, like a fresh deployment.

The daemon also runs the template's EVENT-triggered Glue workflows on new lake objects
(``clickstream_local.glue_trigger``); ``CLICKSTREAM_GLUE_TRIGGERS=manual`` leaves them to
``clickstream curate``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clickstream_local.aws import SEARCH_PREFIX, iam_audit, local_client, register_search_domain
from clickstream_local.cfn import DEFAULT_STACK_NAME, Template, load_template_document
from clickstream_local.moto_server import (
    free_port,
    process_alive,
    start_moto,
    stop_process,
    wait_until_ready,
)
from clickstream_local.opensearch import (
    new_node_folder,
    remove_node_folder,
    restore_indices,
    save_indices,
    start_opensearch,
)
from clickstream_local.provision import ProvisionedResource, Provisioner

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The repository holding ``template.yaml`` (``CLICKSTREAM_ROOT`` overrides)."""
    return Path(os.environ.get("CLICKSTREAM_ROOT", PROJECT_ROOT))


def state_home() -> Path:
    """The local state folder (``CLICKSTREAM_HOME``, default ``<root>/.local``)."""
    return Path(os.environ.get("CLICKSTREAM_HOME", project_root() / ".local"))


class StackError(RuntimeError):
    """A local-stack operation failed; the message is one line for the user."""


@dataclass
class StackState:
    """What ``local up`` started, saved to ``stack.json``."""

    endpoint_url: str
    moto_pid: int
    daemon_pid: int
    control_url: str
    stack_name: str = DEFAULT_STACK_NAME
    template_path: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    opensearch_pid: int | None = None
    opensearch_url: str | None = None
    opensearch_folder: str | None = None

    def local_environment(self) -> dict[str, str]:
        """Function environment values that differ locally: the endpoints of local services.

        Applied to every function that declares the variable in the template. A search domain is
        reached through the local AWS endpoint, which authorizes each SigV4-signed request
        against the caller's role and the domain's access policy before the local node gets it.
        """
        domains = self.template().resources("AWS::OpenSearchService::Domain")
        if self.opensearch_url is None or not domains:
            return {}
        return {"OPENSEARCH_URL": f"{self.endpoint_url}{SEARCH_PREFIX}{domains[0].physical_id}"}

    def pids(self) -> list[int]:
        """Every process this stack started."""
        return [pid for pid in (self.daemon_pid, self.moto_pid, self.opensearch_pid) if pid]

    def template(self) -> Template:
        """The template this stack was provisioned from."""
        return Template.load(
            Path(self.template_path),
            stack_name=self.stack_name,
            parameter_overrides=self.parameters,
        )

    def client(self, service: str) -> Any:
        """A boto3 client for this stack's endpoint."""
        return local_client(service, self.endpoint_url)

    # The read side's stack interface (clickstream_analytics.stack.Stack).
    def physical_id(self, logical_id: str) -> str:
        """The physical id the template gives ``logical_id`` in this stack."""
        return self.template().physical_id(logical_id)

    def has_resource(self, logical_id: str) -> bool:
        """Whether the template declares ``logical_id``."""
        return logical_id in self.template().document["Resources"]

    def parameter(self, name: str) -> str:
        """The template parameter's value in this stack (its override, else its default)."""
        return self.template().parameters[name]

    def sql_folder(self) -> Path:
        """The ``sql/`` folder beside the template."""
        return Path(self.template_path).parent / "sql"

    def search_client(self) -> Any | None:
        """A client for the local OpenSearch node (no authentication), when the stack runs one."""
        if self.opensearch_url is None:
            return None
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[self.opensearch_url], timeout=60)


class LocalStack:
    """Operations on the stack whose state lives in ``home``."""

    def __init__(self, home: Path | None = None, root: Path | None = None) -> None:
        self.home = home or state_home()
        self.root = root or project_root()
        self.state_file = self.home / "stack.json"
        self.logs = self.home / "logs"
        self.snapshot_dir = self.home / "s3"
        self.search_snapshot_dir = self.home / "opensearch"

    # ------------------------------------------------------------------ state
    def load(self) -> StackState | None:
        """The saved state, or ``None`` when no stack was started."""
        if not self.state_file.exists():
            return None
        return StackState(**json.loads(self.state_file.read_text()))

    def running(self) -> StackState:
        """The state of a live stack, or a :class:`StackError` saying how to start one."""
        state = self.load()
        if state is None or not all(process_alive(pid) for pid in state.pids()):
            raise StackError("the local stack is not running: start it with `clickstream local up`")
        return state

    # ------------------------------------------------------------------ up / down
    def up(
        self,
        parameters: Mapping[str, str] | None = None,
        *,
        template_path: Path | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        progress: Callable[[str], None] = lambda _: None,
    ) -> tuple[StackState, list[ProvisionedResource]]:
        """Start moto, provision the template, restore the lake, start the daemon."""
        existing = self.load()
        if existing is not None:
            if all(process_alive(pid) for pid in existing.pids()):
                raise StackError(
                    f"the local stack is already running at {existing.endpoint_url} "
                    "(stop it with `clickstream local down`)"
                )
            self._kill(existing)
        template_path = (template_path or self.root / "template.yaml").resolve()
        parameters = local_parameters(template_path, parameters or {})
        template = Template.load(
            template_path, stack_name=stack_name, parameter_overrides=parameters
        )
        self.logs.mkdir(parents=True, exist_ok=True)
        progress("starting moto server")
        moto, endpoint = start_moto(self.logs / "moto.log")
        state = StackState(
            endpoint_url=endpoint,
            moto_pid=moto.pid,
            daemon_pid=0,
            control_url="",
            stack_name=stack_name,
            template_path=str(template_path),
            parameters=dict(parameters or {}),
            started_at=time.time(),
        )
        try:
            progress(f"provisioning {template_path.name} on {endpoint}")
            provisioned = Provisioner(template, endpoint).provision()
            restored = self.restore_snapshot(template, endpoint)
            if restored:
                progress(f"restored {restored} lake objects from {self.snapshot_dir}")
            if template.resources("AWS::OpenSearchService::Domain"):
                progress("starting OpenSearch (the first run fetches it from Maven Central)")
                folder = new_node_folder()
                state.opensearch_folder = str(folder)
                restore_indices(self.search_snapshot_dir, folder)
                node = start_opensearch(self.logs / "opensearch.log", folder=folder)
                state.opensearch_pid, state.opensearch_url = node.pid, node.url
                for domain in template.resources("AWS::OpenSearchService::Domain"):
                    register_search_domain(
                        endpoint,
                        domain.physical_id,
                        node.url,
                        domain.properties.get("AccessPolicies", {}),
                    )
            progress("starting event-source runner and Firehose emulation")
            state.daemon_pid, state.control_url = self._start_daemon(
                template_path,
                stack_name,
                parameters,
                endpoint,
                state.local_environment(),
                state.opensearch_url,
            )
        except BaseException:
            self._kill(state, keep_indices=False)  # the saved indices stay as they were
            raise
        self.state_file.write_text(json.dumps(asdict(state), indent=2))
        return state, provisioned

    def _start_daemon(
        self,
        template_path: Path,
        stack_name: str,
        parameters: Mapping[str, str] | None,
        endpoint: str,
        local_environment: Mapping[str, str],
        search_url: str | None,
    ) -> tuple[int, str]:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "clickstream_local.daemon",
            "--template",
            str(template_path),
            "--root",
            str(template_path.parent),
            "--endpoint",
            endpoint,
            "--port",
            str(port),
            "--stack-name",
            stack_name,
            "--parameters",
            json.dumps(dict(parameters or {})),
            "--local-environment",
            json.dumps(dict(local_environment)),
            *(["--search-url", search_url] if search_url else []),
            "--fault-rate",
            os.environ.get("CLICKSTREAM_FAULT_RATE", "0"),
            "--glue-home",
            str(self.home),
        ]
        if os.environ.get("CLICKSTREAM_GLUE_TRIGGERS", "on") == "manual":
            command.append("--glue-manual")
        with (self.logs / "daemon.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        control_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(f"{control_url}/status", timeout=120, process=process)
        except Exception as error:
            stop_process(process.pid)
            raise StackError(
                f"the stack daemon did not start ({error}); see {self.logs}/daemon.log"
            ) from None
        return process.pid, control_url

    def restart_daemon(self) -> StackState:
        """Kill the daemon (SIGKILL, as a crash would) and start a new one on the same stack.

        The new runner reads every shard from its starting position again: consumers see
        records they already applied, which their checkpoints must skip.
        """
        state = self.running()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.daemon_pid, signal.SIGKILL)
        _wait_exit(state.daemon_pid, 30)
        state.daemon_pid, state.control_url = self._start_daemon(
            Path(state.template_path),
            state.stack_name,
            state.parameters,
            state.endpoint_url,
            state.local_environment(),
            state.opensearch_url,
        )
        self.state_file.write_text(json.dumps(asdict(state), indent=2))
        return state

    def down(self, *, keep_lake: bool = True) -> bool:
        """Flush and stop the daemon, snapshot the lake, stop moto. False if nothing ran."""
        state = self.load()
        if state is None:
            return False
        if process_alive(state.daemon_pid):
            with contextlib.suppress(OSError):
                _post(f"{state.control_url}/shutdown", timeout=120)
            _wait_exit(state.daemon_pid, 60)
        if process_alive(state.moto_pid):
            with contextlib.suppress(OSError):
                self.save_iam_audit(state)
            if keep_lake:
                self.save_snapshot(state)
        self._kill(state)
        self.state_file.unlink(missing_ok=True)
        return True

    def _kill(self, state: StackState, *, keep_indices: bool = True) -> None:
        """Stop every process of ``state``; save the search node's indices, remove its folder."""
        for pid in state.pids():
            stop_process(pid, timeout=30)
        if state.opensearch_folder is not None:
            folder = Path(state.opensearch_folder)
            if keep_indices:
                save_indices(folder, self.search_snapshot_dir)
            remove_node_folder(folder)

    def save_iam_audit(self, state: StackState) -> Path:
        """Write the endpoint's authorization decisions to ``logs/iam-audit.json``."""
        path = self.logs / "iam-audit.json"
        path.write_text(json.dumps(iam_audit(state.endpoint_url), indent=1))
        return path

    # ------------------------------------------------------------------ lake persistence
    def save_snapshot(self, state: StackState) -> int:
        """Copy every template bucket's objects to ``s3/``; returns the object count.

        A bucket the template declares but the stack lacks (the template gained it after ``up``)
        holds nothing to copy.
        """
        s3 = state.client("s3")
        staging = self.home / "s3.staging"
        shutil.rmtree(staging, ignore_errors=True)
        count = 0
        existing = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
        for bucket in _template_buckets(state.template()):
            if bucket not in existing:
                continue
            for key in _list_keys(s3, bucket):
                target = staging / bucket / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                count += 1
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        staging.mkdir(parents=True, exist_ok=True)
        staging.rename(self.snapshot_dir)
        return count

    def restore_snapshot(self, template: Template, endpoint: str) -> int:
        """Upload the snapshot back into the template's buckets; returns the object count."""
        if not self.snapshot_dir.is_dir():
            return 0
        s3 = local_client("s3", endpoint)
        count = 0
        for bucket in _template_buckets(template):
            folder = self.snapshot_dir / bucket
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                s3.put_object(
                    Bucket=bucket, Key=path.relative_to(folder).as_posix(), Body=path.read_bytes()
                )
                count += 1
        return count

    # ------------------------------------------------------------------ status and drain
    def run_glue(self, timeout: float = 3600) -> list[dict[str, Any]]:
        """Run every EVENT-triggered Glue workflow on its pending objects now; the job reports."""
        try:
            answer = _post(f"{self.running().control_url}/glue/run", timeout=timeout)
        except urllib.error.HTTPError as error:
            reason = json.loads(error.read() or b"{}").get("error", error.reason)
            raise StackError(f"Glue run failed: {reason} (see {self.logs / 'glue.log'})") from None
        return [report for run in answer["runs"] for report in run["reports"]]

    def services_status(self) -> dict[str, Any]:
        """The daemon's counters."""
        return _get(f"{self.running().control_url}/status")

    def drain(
        self,
        timeout: float = 300.0,
        progress: Callable[[dict[str, Any]], None] = lambda _: None,
    ) -> dict[str, Any]:
        """Wait until every consumer has read everything put so far, then flush Firehose.

        Done when each poller and delivery stream has made a read that started after this call,
        found nothing new (MillisBehindLatest 0) and had nothing pending. Then every buffer is
        written, and the lake is snapshotted to disk.
        """
        state = self.running()
        started = time.time()
        deadline = time.monotonic() + timeout
        while True:
            status = _get(f"{state.control_url}/status")
            progress(status)
            lagging = [
                f"{p['function']}/{p['shard_id']}"
                for p in status["pollers"]
                if p["caught_up_at"] < started or p["pending"]
            ] + [d["name"] for d in status["deliveries"] if d["caught_up_at"] < started]
            if not lagging:
                break
            if time.monotonic() > deadline:
                raise StackError(
                    f"drain timed out after {timeout:.0f}s waiting for {', '.join(lagging)}"
                )
            time.sleep(0.2)
        flushed = _post(f"{state.control_url}/flush")
        self.save_snapshot(state)
        final = _get(f"{state.control_url}/status")
        final["flushed"] = flushed["written"]
        final["drain_seconds"] = round(time.time() - started, 2)
        return final


LOCAL_PARAMETER_DEFAULTS = {"GeneratorScheduleEnabled": "false"}
"""Parameters that default differently locally: traffic comes from `generate`/`replay` there."""


def local_parameters(template_path: Path, parameters: Mapping[str, str]) -> dict[str, str]:
    """The local defaults the template declares, overridden by ``parameters``."""
    declared = load_template_document(template_path).get("Parameters", {})
    defaults = {k: v for k, v in LOCAL_PARAMETER_DEFAULTS.items() if k in declared}
    return {**defaults, **parameters}


def _template_buckets(template: Template) -> list[str]:
    return [resource.physical_id for resource in template.resources("AWS::S3::Bucket")]


def _list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def _get(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _post(url: str, timeout: float = 60) -> Any:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
