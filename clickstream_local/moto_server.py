"""Start and stop a moto server on 127.0.0.1, the local stand-in for the AWS APIs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(
    url: str, timeout: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    """Poll ``url`` until it answers HTTP; raise if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with code {process.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
            last_error = f"HTTP {error.code}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s ({last_error})")


def start_moto(log_file: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Launch the local AWS endpoint (:mod:`clickstream_local.moto_app`) in its own process group.

    Returns the process and the endpoint URL.
    """
    port = port or free_port()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "clickstream_local.moto_app", "-H", "127.0.0.1"]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [*command, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{endpoint}/moto-api/", process=process)
    except Exception:
        stop_process(process.pid)
        raise
    return process, endpoint


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (and is not a zombie we own)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(0.05)
