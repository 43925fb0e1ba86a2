"""Build the SAM application and check each Lambda package's zipped size against its budget.

    python tools/package_sizes.py [--build-dir DIR] [--skip-build]

Runs ``sam build --cached`` (no container: ``python3.11`` must be on ``PATH``; this interpreter's
folder is put first), then zips every function and layer folder of the built template the way
``sam deploy`` does for upload (deflate, default level) and prints resource, unzipped bytes,
zipped bytes and budget. Exits 1 when a package is over its budget.

Budgets (zipped; Lambda allows 50 MB zipped, 250 MB unzipped with the layers):

- 1 MiB for each function and the domain layer, which zip to about 1 KB (a handler) and 70 KB
  (the domain package): room to grow, none for a heavy dependency;
- 3 MiB for the search indexer: opensearch-py 2.x and requests with their dependencies zip to
  about 1.3 MB; opensearch-py 3.x (grpcio, protobuf) zips to about 9 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / ".aws-sam" / "build"
MIB = 1024 * 1024
DEFAULT_BUDGET = 1 * MIB
BUDGETS: Mapping[str, int] = {"SearchIndexerFunction": 3 * MIB}
PACKAGE_PROPERTIES: Mapping[str, str] = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass(frozen=True)
class PackageSize:
    """One function's or layer's package: its folder's bytes and its zip's bytes."""

    resource: str
    unzipped: int
    zipped: int
    budget: int

    @property
    def over_budget(self) -> bool:
        return self.zipped > self.budget


def package_files(folder: Path) -> list[tuple[str, Path]]:
    """``(name in the zip, file)`` of every file under ``folder``, links followed, sorted."""
    files: list[tuple[str, Path]] = []
    for root, _, names in os.walk(folder, followlinks=True):
        for name in names:
            path = Path(root) / name
            files.append((path.relative_to(folder).as_posix(), path))
    return sorted(files)


def folder_sizes(folder: Path) -> tuple[int, int]:
    """``(unzipped, zipped)`` bytes of ``folder``, zipped as ``sam deploy`` zips it."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    unzipped = 0
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in package_files(folder):
                data = path.read_bytes()
                unzipped += len(data)
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = path.stat().st_mode << 16
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        zipped = handle.tell()
    return unzipped, zipped


def package_folders(template: Mapping[str, Any], build_dir: Path) -> dict[str, Path]:
    """Each zip function's and layer's folder, by logical id, from a built template."""
    folders: dict[str, Path] = {}
    for name, resource in template.get("Resources", {}).items():
        key = PACKAGE_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key is None or properties.get("PackageType") == "Image":
            continue
        location = properties.get(key)
        if isinstance(location, str) and not location.startswith("s3://"):
            folders[name] = (build_dir / location).resolve()
    return dict(sorted(folders.items()))


def measure(folders: Mapping[str, Path], budgets: Mapping[str, int] = BUDGETS) -> list[PackageSize]:
    """The size of each package, with its budget (``DEFAULT_BUDGET`` unless named)."""
    sizes = []
    for resource, folder in folders.items():
        unzipped, zipped = folder_sizes(folder)
        budget = budgets.get(resource, DEFAULT_BUDGET)
        sizes.append(PackageSize(resource, unzipped, zipped, budget))
    return sizes


def report(sizes: Iterable[PackageSize]) -> str:
    """A table: resource, unzipped bytes, zipped bytes, budget, and a mark when over it."""
    lines = [f"{'resource':<26} {'unzipped':>12} {'zipped':>12} {'budget':>12}"]
    for size in sizes:
        mark = "  OVER BUDGET" if size.over_budget else ""
        lines.append(
            f"{size.resource:<26} {size.unzipped:>12,} {size.zipped:>12,} {size.budget:>12,}{mark}"
        )
    return "\n".join(lines)


def sam_build(build_dir: Path) -> None:
    """``sam build --cached`` into ``build_dir``, with this interpreter's folder first on PATH."""
    bin_dir = Path(sys.executable).parent
    sam = shutil.which("sam", path=str(bin_dir)) or shutil.which("sam")
    if sam is None:
        raise FileNotFoundError("sam is not installed (make setup installs aws-sam-cli)")
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    environment.setdefault("SAM_CLI_TELEMETRY", "0")
    command = [sam, "build", "--build-dir", str(build_dir), "--cached", "--no-use-container"]
    subprocess.run(command, cwd=ROOT, env=environment, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Build, measure, print the table; 1 if a package is over its budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="sam build's output")
    parser.add_argument("--skip-build", action="store_true", help="measure the existing build")
    args = parser.parse_args(argv)

    build_dir = args.build_dir.resolve()
    if not args.skip_build:
        sam_build(build_dir)
    template = yaml.safe_load((build_dir / "template.yaml").read_text())
    sizes = measure(package_folders(template, build_dir))
    print(report(sizes))
    over = [size.resource for size in sizes if size.over_budget]
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
