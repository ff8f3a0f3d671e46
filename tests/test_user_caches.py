"""The test suite never writes into the user's home: a slice of it runs with a fresh, empty ``HOME``.

Each package contributes a few fast tests that touch a cache (the sample pool and matrix in ``$SVIT_CACHE``,
``load_dataset`` in the datasets cache, tiktoken's files, a child process, the loopback Hub). The slice runs
in a child pytest whose environment names no cache at all, so only ``tests/conftest.py`` can keep it out
of ``HOME``; afterwards ``HOME`` must still be empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SLICE = [
    "tests/svit_data/test_pool.py::test_sample_pool_equals_record_expansion",
    "tests/svit_data/test_folder.py::test_images_decode_as_pictures",
    "tests/svit_data/test_folder.py::test_rebuild_after_a_source_change_is_not_served_stale",
    "tests/recipes/test_matching.py::test_matrix_sees_the_sample_yes_no_mix",
    "tests/recipes/test_build.py::test_two_runs_give_identical_ids",
    "tests/cards/test_card.py::test_yaml_declares_configs_and_sizes_from_the_data",
    "tests/builders/test_inputs.py::test_tokens_offline_and_exact",
    "tests/builders/test_ratelimit.py::test_limiter_keeps_requests_under_tokens_per_minute",
    "tests/hub/test_hub_source.py::test_build_from_a_gated_hub_repo_with_access",
]
TRAIN_SLICE = [  # only where the train extra is installed (the child would skip them anyway)
    "tests/train/test_stages.py::test_stage1_changes_only_projector",
    "tests/train/test_cli.py",
]
# Variables that name a cache or a home-relative folder: the child starts with none of them.
CACHE_VARIABLES = (
    "SVIT_CACHE",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "TIKTOKEN_CACHE_DIR",
    "DATA_GYM_CACHE_DIR",
    "TORCH_HOME",
    "TRITON_CACHE_DIR",
    "PYTEST_ADDOPTS",
)


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.slow
def test_a_slice_of_the_suite_writes_nothing_into_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CACHE_VARIABLES and not k.startswith(("HF_", "HUGGINGFACE"))
    }
    env["HOME"] = str(home)
    tests = list(SLICE)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        tests += TRAIN_SLICE
    except ImportError:
        pass
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
    assert " passed" in child.stdout.splitlines()[-1], child.stdout[-1000:]
    written = _files_under(home)
    assert written == [], f"the suite wrote into HOME: {written[:20]}"
