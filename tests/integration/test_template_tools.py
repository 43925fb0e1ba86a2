"""template.yaml passes the official tools: cfn-lint, ``sam validate --lint`` and ``sam build``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BIN = Path(sys.executable).parent
TOOL_TIMEOUT_SECONDS = 300


def tool(name: str) -> str:
    """The virtualenv's executable ``name``, installed next to the running interpreter."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN}; run `make setup`"
    return str(path)


def sam_env() -> dict[str, str]:
    """The environment for SAM CLI: no telemetry, a fixed region."""
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command`` and return its combined output; fail the test if it exits non-zero."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output}"
    return output


def test_cfn_lint_passes() -> None:
    # GIVEN the project's template
    # WHEN cfn-lint checks it
    # THEN it reports no error, warning or informational finding
    run([tool("cfn-lint"), str(TEMPLATE)], cwd=ROOT)


def test_sam_validate_lint_passes(tmp_path: Path) -> None:
    # GIVEN the project's template and no AWS account
    # WHEN SAM validates and lints it
    output = run(
        [tool("sam"), "validate", "--lint", "--template-file", str(TEMPLATE)],
        cwd=tmp_path,
        env=sam_env(),
    )
    # THEN it is a valid SAM template
    assert "is a valid SAM Template" in output


@pytest.mark.slow
def test_sam_build_packages_the_generator(tmp_path: Path) -> None:
    # GIVEN the project's template, a Python 3.11 interpreter and an empty build folder
    if shutil.which("python3.11") is None:
        pytest.skip("sam build needs python3.11 on PATH for the functions' python3.11 runtime")
    build_dir = tmp_path / "build"
    # WHEN SAM builds it, outside the repository so no build output lands there
    run(
        [
            tool("sam"),
            "build",
            "--template-file",
            str(TEMPLATE),
            "--build-dir",
            str(build_dir),
            "--base-dir",
            str(ROOT),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=tmp_path,
        env=sam_env(),
    )
    # THEN the generator is built with its handler module, unchanged
    built = build_dir / "GeneratorFunction" / "app.py"
    assert built.is_file()
    assert built.read_bytes() == (ROOT / "functions" / "generator" / "app.py").read_bytes()
    # AND the built template points the function at the built code
    assert (build_dir / "template.yaml").is_file()
    assert "CodeUri: GeneratorFunction" in (build_dir / "template.yaml").read_text()
