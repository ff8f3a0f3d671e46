"""``svit-recipe push`` against the loopback Hub, then ``load_dataset`` through the same endpoint."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hub_helpers import CLI, HERE, run
from hub_server import TOKEN, HubServer

from svit_data.folder import read_state

REPO = "ORG/svit"


def local_files(folder: Path) -> dict[str, bytes]:
    files = {
        "README.md": (folder / "README.md").read_bytes(),
        "svit_build.json": (folder / "svit_build.json").read_bytes(),
    }
    for path in (folder / "data").rglob("*.parquet"):
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def push(folder: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return run(["push", str(folder), "--repo-id", REPO, *extra], env)


def rows(path: str, env: dict, configs: list[str]) -> dict:
    result = run([str(HERE / "load_rows.py"), path, *configs], env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_push_then_load_dataset_returns_the_same_rows(hub: HubServer, hub_env: dict, built: Path):
    result = push(built, hub_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "committed" in result.stdout
    remote = hub.state.files(REPO)
    assert {p: b for p, b in remote.items() if p != ".gitattributes"} == local_files(built)
    configs = sorted(read_state(built).configs)
    remote_rows = rows(REPO, hub_env, configs)
    assert remote_rows == rows(str(built), hub_env, configs)
    splits = [split for config in remote_rows.values() for split in config.values()]
    assert splits and all(s["rows"] > 0 and s["streamed_digest"] == s["digest"] for s in splits)
    assert TOKEN not in result.stdout + result.stderr
    written = [p for root in (built, Path(hub_env["HF_HOME"])) for p in root.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def _rebuild_conversation_smaller(folder: Path, env: dict, tmp_path: Path) -> None:
    """Rebuild only ``conversation`` from a source with fewer records; ``full`` stays as it was."""
    from svit_data.sample import sample_dir

    source = tmp_path / "smaller"
    shutil.copytree(sample_dir(), source)
    records = json.loads((source / "conversation.json").read_text())
    (source / "conversation.json").write_text(json.dumps(records[:50]))
    result = run(["build", "conversation", "--source", str(source), "--out", str(folder), "--quiet"], env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_second_push_replaces_changed_files_and_keeps_the_rest(hub, hub_env, built, tmp_path):
    assert push(built, hub_env).returncode == 0
    before = hub.state.files(REPO)
    puts_before = len(hub.state.lfs_puts)
    _rebuild_conversation_smaller(built, hub_env, tmp_path)
    result = push(built, hub_env)
    assert result.returncode == 0, result.stderr[-2000:]
    after = hub.state.files(REPO)
    assert {p: b for p, b in after.items() if p != ".gitattributes"} == local_files(built)
    full = [p for p in before if p.startswith("data/full/")]
    assert full and all(after[p] == before[p] for p in full)
    old_conversation = {p for p in before if p.startswith("data/conversation/")}
    assert old_conversation and not old_conversation & set(after)
    new_shards = [p for p in after if p.startswith("data/conversation/")]
    assert len(hub.state.lfs_puts) - puts_before == len(new_shards)  # only the changed shards travel
    assert f"delete  {sorted(old_conversation)[0]}" in result.stdout
    assert rows(REPO, hub_env, ["conversation"]) == rows(str(built), hub_env, ["conversation"])
    again = push(built, hub_env)
    assert again.returncode == 0 and "nothing to push" in again.stdout


def test_dry_run_lists_the_plan_and_uploads_nothing(hub, hub_env, built):
    result = push(built, hub_env, "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "add     README.md" in result.stdout and "dry run" in result.stdout
    assert "(new repo)" in result.stdout
    assert REPO not in hub.state.repos and not hub.state.lfs_puts


def test_create_pr_leaves_main_alone(hub, hub_env, built, tmp_path):
    assert push(built, hub_env).returncode == 0
    main_before = hub.state.files(REPO)
    _rebuild_conversation_smaller(built, hub_env, tmp_path)
    planned = push(built, hub_env, "--create-pr", "--dry-run")
    assert "delete  data/conversation/" in planned.stdout and REPO in planned.stdout
    result = push(built, hub_env, "--create-pr")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "opened pull request" in result.stdout
    assert hub.state.files(REPO) == main_before
    pr = hub.state.files(REPO, "refs/pr/1")
    assert {p: b for p, b in pr.items() if p != ".gitattributes"} == local_files(built)


def test_revision_pushes_to_a_new_branch(hub, hub_env, built):
    assert push(built, hub_env).returncode == 0
    result = push(built, hub_env, "--revision", "v2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert hub.state.files(REPO, "v2") == hub.state.files(REPO)


def test_private_creates_a_private_repo(hub, hub_env, built):
    assert push(built, hub_env, "--private").returncode == 0
    assert hub.state.repos[REPO].private


def test_interrupted_upload_resumes_where_it_stopped(hub, hub_env, built):
    shards = [p for p in local_files(built) if p.endswith(".parquet")]
    hub.state.stall_puts_after = 2
    process = subprocess.Popen(
        [*CLI, "push", str(built), "--repo-id", REPO],
        env=hub_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert hub.state.stalled.wait(timeout=120), "the upload never reached the stalled PUT"
        deadline = time.monotonic() + 30  # the PUTs admitted before the stall may still be finishing
        while len(hub.state.lfs_puts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    hub.state.stall_puts_after = None
    hub.state.release.set()
    uploaded_first = list(hub.state.lfs_puts)
    assert len(uploaded_first) == 2 and len(hub.state.files(REPO)) == 1  # objects stored, nothing committed
    result = push(built, hub_env)
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = hub.state.lfs_puts[len(uploaded_first) :]
    assert sorted(resumed + uploaded_first) == sorted(set(resumed + uploaded_first))  # nothing sent twice
    assert len(resumed) == len(shards) - 2
    assert {p: b for p, b in hub.state.files(REPO).items() if p != ".gitattributes"} == local_files(built)


@pytest.mark.parametrize(
    ("route", "status", "code", "expected"),
    [
        ("preupload", 401, None, "refused the token for dataset ORG/svit (401 Unauthorized)"),
        ("create", 403, None, "may not write to dataset ORG/svit (403 Forbidden)"),
        ("commit", 404, "RepoNotFound", "dataset ORG/svit was not found on the Hub (404 Not Found)"),
    ],
)
def test_hub_refusals_give_one_clear_sentence(hub, hub_env, built, route, status, code, expected):
    hub.state.fail[route] = (status, code)
    result = push(built, hub_env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("svit-recipe push: error: ") and expected in lines[-1]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_a_wrong_token_is_a_401_sentence(hub, hub_env, built):
    result = push(built, {**hub_env, "HF_TOKEN": "hf_wrong"})
    assert result.returncode == 2
    assert "401 Unauthorized" in result.stderr.strip().splitlines()[-1]
    assert "hf_wrong" not in result.stdout + result.stderr
