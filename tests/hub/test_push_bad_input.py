"""Bad input to ``svit-recipe push`` is refused with one sentence before anything reaches the Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_helpers import run
from hub_server import HubServer


def refused(result, hub: HubServer, expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("svit-recipe push: error: ") and expected in last
    assert not [r for r in hub.state.requests if r[0] in ("POST", "PUT")]


def test_not_a_built_folder(hub, hub_env, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README.md").write_text("hello")
    result = run(["push", str(tmp_path / "other"), "--repo-id", "ORG/svit"], hub_env)
    refused(result, hub, "is not a dataset folder built by svit")


def test_broken_card_yaml(hub, hub_env, built: Path):
    card = built / "README.md"
    card.write_text(card.read_text().replace("configs:\n", "configs: [\n", 1))
    result = run(["push", str(built), "--repo-id", "ORG/svit"], hub_env)
    refused(result, hub, "the card's YAML header is broken")


def test_card_that_disagrees_with_the_data(hub, hub_env, built: Path):
    card = built / "README.md"
    card.write_text(card.read_text().replace("num_examples: 72", "num_examples: 73", 1))
    result = run(["push", str(built), "--repo-id", "ORG/svit"], hub_env)
    refused(result, hub, "does not match the data")


def test_missing_token(hub, hub_env, built: Path):
    env = {k: v for k, v in hub_env.items() if k != "HF_TOKEN"}
    result = run(["push", str(built), "--repo-id", "ORG/svit"], env)
    refused(result, hub, "no Hugging Face token")
    assert not hub.state.requests


@pytest.mark.parametrize("repo_id", ["svit", "ORG/svit/extra", "ORG/sv it", "ORG/--svit", "ORG/svit.git"])
def test_bad_repo_id(hub, hub_env, built: Path, repo_id):
    result = run(["push", str(built), "--repo-id", repo_id], hub_env)
    refused(result, hub, "--repo-id must look like ORG/NAME")
    assert not hub.state.requests


def test_an_unreachable_hub_is_one_sentence(hub_env, built: Path):
    env = {**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2"}
    result = run(["push", str(built), "--repo-id", "ORG/svit", "--dry-run"], env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("svit-recipe push: error: cannot reach the Hub at http://127.0.0.1:9")
