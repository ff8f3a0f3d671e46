"""``--source hf://datasets/OWNER/NAME``: the released SVIT files downloaded from a (gated) Hub repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_helpers import run
from hub_server import HubServer

from svit_data.folder import read_state
from svit_data.sample import sample_dir
from svit_data.tasks import TASK_FILES


def released_files() -> dict[str, bytes]:
    """The bundled sample's task files laid out like the released repo (``data/<task>.json``)."""
    folder = sample_dir()
    files = {f"data/{name}": (folder / name).read_bytes() for name in TASK_FILES.values()}
    files["data/image_data.json"] = (folder / "image_data.json").read_bytes()
    files["README.md"] = b"---\nlicense: cc-by-4.0\n---\n# SVIT\n"
    return files


def build(env: dict, out: Path, repo: str = "BAAI/SVIT"):
    return run(["build", "full", "--source", f"hf://datasets/{repo}", "--out", str(out), "--quiet"], env)


def test_build_from_a_gated_hub_repo_with_access(hub: HubServer, hub_env: dict, tmp_path: Path):
    hub.state.add_repo("BAAI/SVIT", released_files(), gated=True, granted=True)
    result = build(hub_env, tmp_path / "svit")
    assert result.returncode == 0, result.stderr[-2000:]
    config = read_state(tmp_path / "svit").configs["full"]
    local = run(
        ["build", "full", "--source", str(sample_dir()), "--out", str(tmp_path / "local"), "--quiet"], hub_env
    )
    assert local.returncode == 0, local.stderr[-2000:]
    expected = read_state(tmp_path / "local").configs["full"]
    assert {s: v.num_examples for s, v in config.splits.items()} == {
        s: v.num_examples for s, v in expected.splits.items()
    }
    assert config.source == "hf://datasets/BAAI/SVIT"
    downloads = [path for method, path in hub.state.requests if method == "GET" and "/resolve/" in path]
    assert any(path.endswith("data/conversation.json") for path in downloads)


@pytest.mark.parametrize(("granted", "token"), [(False, True), (False, False)])
def test_refused_access_to_a_gated_repo_is_one_sentence(hub, hub_env, tmp_path, granted, token):
    hub.state.add_repo("BAAI/SVIT", released_files(), gated=True, granted=granted)
    env = dict(hub_env) if token else {k: v for k, v in hub_env.items() if k != "HF_TOKEN"}
    result = build(env, tmp_path / "svit")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "access to the gated dataset BAAI/SVIT was refused" in last
    assert "Traceback" not in result.stderr and not (tmp_path / "svit").exists()


def test_a_missing_repo_and_a_repo_without_task_files(hub, hub_env, tmp_path):
    missing = build(hub_env, tmp_path / "a", repo="BAAI/nothing")
    assert missing.returncode == 2 and "BAAI/nothing was not found" in missing.stderr
    hub.state.add_repo("BAAI/empty", {"README.md": b"# empty\n"})
    empty = build(hub_env, tmp_path / "b", repo="BAAI/empty")
    assert empty.returncode == 2 and "has none of the SVIT task files" in empty.stderr


def test_an_unreachable_hub_is_one_sentence(hub_env, tmp_path):
    env = {**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2"}
    result = build(env, tmp_path / "svit")
    assert result.returncode == 2
    assert "cannot reach the Hub to download BAAI/SVIT" in result.stderr.strip().splitlines()[-1]
