"""The Lambda package size report: folder sizes, the built template's packages, the budgets."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sizes() -> ModuleType:
    """``tools/package_sizes.py`` (a script, not a package), loaded as a module."""
    path = ROOT / "tools" / "package_sizes.py"
    spec = importlib.util.spec_from_file_location("package_sizes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while it loads
    spec.loader.exec_module(module)
    return module


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_sizes_counts_every_file_and_zips_with_deflate(
    sizes: ModuleType, tmp_path: Path
) -> None:
    # GIVEN a folder with a compressible file in a subfolder and a small one at the top
    write(tmp_path / "pkg" / "big.py", b"x = 1\n" * 10_000)
    write(tmp_path / "app.py", b"print('hi')\n")
    # WHEN it is measured
    unzipped, zipped = sizes.folder_sizes(tmp_path)
    # THEN unzipped is the sum of the files' bytes, and the zip is much smaller (deflate)
    assert unzipped == 60_000 + 12
    assert 0 < zipped < unzipped // 10
    # AND the same entries are what the zip holds
    assert [name for name, _ in sizes.package_files(tmp_path)] == ["app.py", "pkg/big.py"]


def test_folder_sizes_equal_the_zip_sam_deploy_uploads(sizes: ModuleType, tmp_path: Path) -> None:
    # GIVEN a folder, and SAM CLI's own zip function
    utils = pytest.importorskip("samcli.lib.package.utils")
    write(tmp_path / "src" / "app.py", b"def handler(event, context):\n    return event\n" * 50)
    write(tmp_path / "src" / "data" / "blob.bin", random.Random(7).randbytes(4096))
    # WHEN SAM zips it and the report measures it
    archive = Path(utils.make_zip(str(tmp_path / "sam"), str(tmp_path / "src")))
    _, zipped = sizes.folder_sizes(tmp_path / "src")
    # THEN the sizes agree to the byte
    assert zipped == archive.stat().st_size
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == ["app.py", "data/blob.bin"]


def test_folder_sizes_of_a_missing_folder_fail(sizes: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sizes.folder_sizes(tmp_path / "absent")


def test_package_folders_of_a_built_template(sizes: ModuleType, tmp_path: Path) -> None:
    # GIVEN a built template: zip functions, a layer outside the build folder, and others
    template = {
        "Resources": {
            "Zipped": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "Zipped"}},
            "Image": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"PackageType": "Image", "ImageUri": "repo:tag"},
            },
            "Remote": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "s3://bucket/code.zip"},
            },
            "Layer": {
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {"ContentUri": "../../layers/domain"},
            },
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        }
    }
    build_dir = tmp_path / ".aws-sam" / "build"
    # WHEN its packages are listed
    folders = sizes.package_folders(template, build_dir)
    # THEN each zip function and layer maps to its folder, paths relative to the build folder
    assert folders == {
        "Layer": (tmp_path / "layers" / "domain").resolve(),
        "Zipped": (build_dir / "Zipped").resolve(),
    }


def test_budgets_flag_oversized_packages(sizes: ModuleType, tmp_path: Path) -> None:
    # GIVEN two packages, one within its budget and one over it
    write(tmp_path / "small" / "app.py", b"x = 1\n")
    write(tmp_path / "large" / "blob.bin", random.Random(1).randbytes(20_000))
    folders = {"Large": tmp_path / "large", "Small": tmp_path / "small"}
    # WHEN they are measured against a budget of 10,000 bytes for Large
    measured = sizes.measure(folders, {"Large": 10_000})
    # THEN Large is over (random bytes do not compress), Small is within the default budget
    by_name = {size.resource: size for size in measured}
    assert by_name["Large"].over_budget and by_name["Large"].budget == 10_000
    assert not by_name["Small"].over_budget
    assert by_name["Small"].budget == sizes.DEFAULT_BUDGET
    # AND the table names both, marking the one over budget
    table = sizes.report(measured).splitlines()
    assert table[0].split() == ["resource", "unzipped", "zipped", "budget"]
    assert table[1].startswith("Large") and table[1].endswith("OVER BUDGET")
    assert table[2].startswith("Small") and "OVER" not in table[2]


def test_main_measures_an_existing_build_and_fails_over_budget(
    sizes: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an existing build with one function
    build_dir = tmp_path / "build"
    write(build_dir / "Fn" / "app.py", os.urandom(5_000))
    template = {
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "Fn"}}}
    }
    (build_dir / "template.yaml").write_text(yaml.safe_dump(template))
    arguments = ["--skip-build", "--build-dir", str(build_dir)]
    # WHEN it is measured within the default budget, then with a budget below its zip
    within = sizes.main(arguments)
    monkeypatch.setattr(sizes, "DEFAULT_BUDGET", 1_000)
    over = sizes.main(arguments)
    # THEN the first run passes, the second fails and says which package is over
    assert (within, over) == (0, 1)
    assert "over budget: Fn" in capsys.readouterr().err
