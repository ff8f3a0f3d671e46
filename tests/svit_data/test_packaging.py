"""Packaging: the wheel holds one namespace (svit_data) with its package data; importing it stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "README.md", "svit_data", "builders", "recipes", "train", "cards"]


@pytest.fixture(scope="module")
def wheel_build(tmp_path_factory) -> tuple[list[str], str]:
    """File names inside a wheel built from a copy of the sources (the work tree stays clean), and
    what the build printed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        elif path.is_file():
            shutil.copy(path, src / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp / "dist"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp / "dist").glob("svit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist(), result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel_names(wheel_build) -> list[str]:
    return wheel_build[0]


@pytest.mark.slow
def test_the_build_prints_no_setuptools_warnings(wheel_build):
    """Every folder of package data is declared, so setuptools has nothing to warn about."""
    log = wheel_build[1]
    assert "running bdist_wheel" in log  # the backend's output is really in the log (pip -v)
    assert "BuildBackendWarning" not in log and "SetuptoolsDeprecationWarning" not in log


@pytest.mark.slow
def test_wheel_has_only_the_svit_data_namespace(wheel_names):
    top = {name.split("/")[0] for name in wheel_names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and next(iter(dist_info)).startswith("svit-")
    assert top - dist_info == {"svit_data"}
    for generic in ("builders/", "recipes/", "train/", "cards/"):
        assert not any(name.startswith(generic) for name in wheel_names)


@pytest.mark.slow
def test_wheel_has_the_subpackages_and_package_data(wheel_names):
    names = set(wheel_names)
    for module in (
        "svit_data/__init__.py",
        "svit_data/schema.py",
        "svit_data/pool.py",
        "svit_data/ingest.py",
        "svit_data/formats/llava.py",
        "svit_data/cli/__init__.py",
        "svit_data/builders/__init__.py",
        "svit_data/recipes/__init__.py",
        "svit_data/train/__init__.py",
        "svit_data/cards/render.py",
    ):
        assert module in names, module
    assert "svit_data/package_data/test_image_ids.txt" in names
    assert "svit_data/cards/templates/card.md" in names
    assert "svit_data/recipes/data/mix-665k.yaml" in names  # the shipped recipe file
    assert "svit_data/recipes/data/concepts.json" in names
    for task in ("conversation", "complex_reasoning", "referring_qa", "detail_description"):
        assert f"svit_data/builders/prompts/{task}/system_message.txt" in names
        assert f"svit_data/builders/prompts/{task}/user_template.txt" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert entry_points


def test_package_data_is_readable_and_complete():
    from svit_data.splits import split_of, test_image_ids

    ids = test_image_ids()
    assert len(ids) == 10_808
    assert split_of(min(ids)) == "test" and split_of(-1) == "train"


def test_shipped_test_ids_match_the_official_file(shared_fixtures):
    from svit_data.splits import test_image_ids

    official = {int(v) for v in (shared_fixtures / "svit" / "test_image_ids.txt").read_text().split()}
    assert test_image_ids() == official


def test_importing_svit_data_pulls_in_no_heavy_packages():
    code = (
        "import sys, svit_data, svit_data.schema, svit_data.pool, svit_data.cli, svit_data.formats.llava, "
        "svit_data.formats.messages, svit_data.folder, svit_data.materialize\n"
        "heavy = {'torch', 'transformers', 'openai'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ingest_workers_do_not_import_datasets():
    code = "import sys, svit_data.ingest\nassert 'datasets' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
