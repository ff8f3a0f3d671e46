"""Every recipe builds on the bundled sample through the CLI and loads with load_dataset."""

import dataclasses
import gzip
import json

import pytest
from datasets import load_dataset

from svit_data import splits
from svit_data.errors import SvitError
from svit_data.folder import read_state
from svit_data.recipes import RECIPES, build_recipe
from svit_data.recipes.manifest import ids_sha256, read_ids

SAMPLE_TRAIN = 5_920
SAMPLE_TRAIN_FLAGGED = 1_312  # train samples of the bundled sample with an excluding quality flag
EXPECTED = {
    "core-150k": 345,
    "svit-80k": 175,
    "svit-80k-d": 175,
    "svit-80k-b": 175,
    "svit-train": SAMPLE_TRAIN - SAMPLE_TRAIN_FLAGGED,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache_root):
    """All svit-schema recipes built once into one folder."""
    import os

    from svit_data.cli import main

    out = tmp_path_factory.mktemp("built") / "svit"
    old = os.environ.get("SVIT_CACHE")
    os.environ["SVIT_CACHE"] = str(cache_root)
    try:
        assert main(["build", *EXPECTED, "--out", str(out), "--quiet"]) == 0
    finally:
        if old is None:
            del os.environ["SVIT_CACHE"]
        else:
            os.environ["SVIT_CACHE"] = old
    return out


@pytest.mark.parametrize("name", list(EXPECTED))
def test_recipe_builds_and_loads(built, name, tmp_path):
    ds = load_dataset(str(built), name, cache_dir=str(tmp_path / "hf"))
    assert list(ds) == ["train"]
    assert ds["train"].num_rows == EXPECTED[name]
    ids = ds["train"]["id"]
    assert len(set(ids)) == len(ids)
    assert not {int(i.split("/")[1]) for i in ids} & splits.test_image_ids()
    assert ds["train"][0]["image"] is not None  # images embedded
    config = read_state(built).configs[name]
    assert config.kind == "recipe" and config.recipe.name == name
    manifest = config.recipe.manifest
    assert manifest.ids_sha256 == ids_sha256(sorted(ids))
    assert manifest.counts["selected"] == EXPECTED[name]
    assert config.pool_fingerprint == manifest.pool_fingerprint
    assert sum(config.recipe.diagnostics.task_mix.values()) == EXPECTED[name]
    assert config.recipe.objective
    if name != "svit-train":  # a scaled build says its real size, not only the full-scale one
        assert f"This build: {EXPECTED[name]:,} samples (scaled: " in config.description
    # the selection contract travels with the data: sorted ids and the manifest beside the parquet
    assert config.recipe.ids_file == f"data/{name}/ids.txt.gz"
    assert read_ids(built / "data" / name) == sorted(ids)
    assert json.loads((built / "data" / name / "manifest.json").read_text()) == dataclasses.asdict(manifest)
    assert not any(flags for flags in ds["train"]["flags"])  # recipes never select a flagged sample
    quality = config.recipe.diagnostics.quality
    assert quality["excluded"] == SAMPLE_TRAIN_FLAGGED == manifest.counts["excluded_by_quality"]
    assert sum(quality["excluded_by_reason"].values()) >= SAMPLE_TRAIN_FLAGGED
    assert manifest.parameters["include_flagged"] is False


def test_balanced_recipes_report_the_ratio_before_and_after(built):
    configs = read_state(built).configs
    for name in ("core-150k", "svit-80k-b"):
        yes_no = configs[name].recipe.diagnostics.yes_no
        assert yes_no.before.yes_share > 0.6
        assert abs(yes_no.after.yes_share - 0.5) <= 0.02
    d = configs["svit-80k-d"].recipe.diagnostics
    r = configs["svit-80k"].recipe.diagnostics
    # with task quotas (the default) the mix is the quotas' exactly; the diversity recipes spread concept
    # mentions more evenly than the diagnostics' random subset (test_selection.py: than five of them)
    for name in ("core-150k", "svit-80k-d", "svit-80k-b"):
        diagnostics = configs[name].recipe.diagnostics
        assert diagnostics.task_mix == diagnostics.task_quotas
        assert configs[name].recipe.manifest.parameters["task_mix"] == "candidates"
    assert d.coverage.selected >= d.coverage.random
    for name in ("core-150k", "svit-80k-d"):
        entropy = configs[name].recipe.diagnostics.entropy
        assert entropy.selected > entropy.random, (name, entropy)
        objective = configs[name].recipe.objective
        assert "F(S) = sum over concepts c of w_c x g(|S ∩ P_c|)" in objective
        assert "batched greedy in 16 rounds" in objective and "Shannon entropy (nats)" in objective
    assert r.yes_no.before == r.yes_no.after and r.task_quotas is None


def test_card_shows_the_recipes(built):
    card = (built / "README.md").read_text()
    for name in EXPECTED:
        assert f"config_name: {name}" in card


def test_two_runs_give_identical_ids(cli, tmp_path, svit_cache):
    for run in ("a", "b"):
        assert cli("build", "core-150k", "--out", tmp_path / run, "--seed", 5, "--quiet") == 0
    a = read_state(tmp_path / "a").configs["core-150k"].recipe.manifest
    b = read_state(tmp_path / "b").configs["core-150k"].recipe.manifest
    assert a == b
    ids = read_ids(svit_cache / "recipes" / "core-150k" / a.ids_sha256[:16])
    assert ids == sorted(ids) and ids_sha256(ids) == a.ids_sha256
    assert cli("build", "core-150k", "--out", tmp_path / "c", "--seed", 6, "--quiet") == 0
    assert read_state(tmp_path / "c").configs["core-150k"].recipe.manifest.ids_sha256 != a.ids_sha256


def test_custom_name_size_seed_and_vocabulary(cli, tmp_path):
    vocab = tmp_path / "concepts.json"
    vocab.write_text(
        '{"name": "mine", "concepts": ["dog", "cat", {"concept": "red", "synonyms": ["crimson"]}]}'
    )
    out = tmp_path / "svit"
    argv = ["build", "core-150k", "--concepts", vocab, "--size", 100, "--seed", 7, "--name", "my-core"]
    assert cli(*argv, "--out", out, "--quiet") == 0
    config = read_state(out).configs["my-core"]
    assert config.recipe.name == "core-150k" and config.recipe.manifest.seed == 7
    assert config.recipe.manifest.parameters["size"] == 100
    assert config.recipe.manifest.parameters["vocabulary"] == "mine"
    assert "Custom build of recipe core-150k" in config.description
    ds = load_dataset(str(out), "my-core", cache_dir=str(tmp_path / "hf"))
    assert ds["train"].num_rows == 100


def test_unknown_recipe_lists_the_known_ones(pool, cli, tmp_path, capsys):
    with pytest.raises(SvitError, match="known recipes: core-150k, svit-80k"):
        build_recipe("core-1m", pool)
    assert cli("build", "core-1m", "--out", tmp_path / "o") == 2
    assert "core-150k" in capsys.readouterr().err


def test_size_larger_than_the_pool(cli, tmp_path, capsys):
    assert cli("build", "svit-80k", "--size", 10_000_000, "--out", tmp_path / "o", "--quiet") == 2
    assert f"larger than the pool: {EXPECTED['svit-train']:,} train samples" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_malformed_vocabulary_is_a_user_error(cli, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"concepts": []}')
    assert cli("build", "svit-80k-d", "--concepts", bad, "--out", tmp_path / "o", "--quiet") == 2
    assert "vocabulary is empty" in capsys.readouterr().err


def test_balance_on_a_pool_without_yes_no_answers_warns(pool, svit_cache, tmp_path, caplog, monkeypatch):
    from svit_data.recipes import build as build_module

    original = build_module.match_pool

    def no_yes_no(*args, **kwargs):
        matched = original(*args, **kwargs)
        matched.yes = matched.yes * 0
        matched.no = matched.no * 0
        return matched

    monkeypatch.setattr(build_module, "match_pool", no_yes_no)
    caplog.set_level("WARNING")
    selection = build_module.select_recipe("svit-80k-b", pool, size=50)
    assert len(selection.ids) == 50
    assert f"no yes/no answers among {EXPECTED['svit-train']:,} candidates" in caplog.text
    assert selection.recipe.diagnostics.balance.reached is False


def test_every_registered_recipe_has_parameters_and_help():
    for name, spec in RECIPES.items():
        assert spec.name == name and spec.help
        assert spec.parameters()["method"] == spec.method


def test_manifest_id_list_is_small(svit_cache, built):
    files = list((svit_cache / "recipes" / "svit-train").glob("*/ids.txt.gz"))
    assert files and len(gzip.decompress(files[0].read_bytes()).split()) == EXPECTED["svit-train"]


def test_stats_prints_the_manifest_and_diagnostics(built, cli, capsys):
    assert cli("stats", "core-150k", "svit-80k-b", "--dir", built) == 0
    out = capsys.readouterr().out
    assert "== core-150k ==" in out and "== svit-80k-b ==" in out
    state = read_state(built).configs["core-150k"]
    assert state.recipe.manifest.ids_sha256[:16] in out
    assert "yes/no after" in out and "(0.500)" in out
    assert "entropy" in out and "random subset" in out
    assert "task quotas complex_reasoning 189, conversation 12, detail_description 16, referring_qa 128" in (
        " ".join(out.split())
    )
    assert "excluded " in out and "pool duplicate_qa" in out and "answer_words" in out
    assert cli("stats", "--dir", built) == 0
    assert out.count("==") < capsys.readouterr().out.count("==") + 4


def test_stats_of_a_config_that_is_not_a_built_recipe(built, cli, tmp_path, capsys):
    assert cli("stats", "svit-80k-x", "--dir", built) == 2
    assert "built recipes: core-150k" in capsys.readouterr().err
    assert cli("stats", "--dir", tmp_path) == 2
    assert "not a dataset folder built by svit" in capsys.readouterr().err


def test_a_config_rebuilds_from_the_folders_id_list_alone(built, cli, tmp_path, capsys):
    ids_file = built / "data" / "svit-80k-b" / "ids.txt.gz"
    out = tmp_path / "again"
    assert cli("build", "svit-80k-b", "--ids", ids_file, "--seed", 3, "--out", out, "--quiet") == 0
    original = read_state(built).configs["svit-80k-b"].recipe
    rebuilt = read_state(out).configs["svit-80k-b"]
    assert rebuilt.recipe.manifest.ids_sha256 == original.manifest.ids_sha256
    assert rebuilt.recipe.manifest.parameters["size_rule"] == "--ids ids.txt.gz"
    assert rebuilt.recipe.objective.startswith("Rebuilt from the id list ids.txt.gz")
    assert rebuilt.recipe.diagnostics.yes_no.after == original.diagnostics.yes_no.after
    a = load_dataset(str(built), "svit-80k-b", cache_dir=str(tmp_path / "hf"))["train"]
    b = load_dataset(str(out), "svit-80k-b", cache_dir=str(tmp_path / "hf"))["train"]
    assert a["id"] == b["id"] and a["conversations"] == b["conversations"]
    # a plain-text list works too, under a custom name
    plain = tmp_path / "ids.txt"
    plain.write_text("\n".join(read_ids(ids_file.parent)[:7]) + "\n")
    assert cli("build", "svit-80k", "--ids", plain, "--name", "seven", "--out", out, "--quiet") == 0
    assert read_state(out).configs["seven"].num_rows() == 7


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["conversation/1/1", "zz-not-in-pool"],
            "2 ids are not train samples of this pool (first: 'conversation/1/1')",
        ),
        (["b", "a"], "line 2: ids must be sorted and unique ('a' after 'b')"),
        ([], "the id list is empty"),
    ],
)
def test_bad_id_lists_are_one_sentence(cli, tmp_path, capsys, lines, message):
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{line}\n" for line in lines))
    assert cli("build", "svit-80k", "--ids", ids, "--out", tmp_path / "svit", "--quiet") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "svit").exists()


def test_the_build_checks_the_selected_ids_against_the_pool(pool, monkeypatch, svit_cache):
    from svit_data.recipes import build as build_module

    seen, check = [], build_module.check_ids
    monkeypatch.setattr(build_module, "check_ids", lambda p, ids: seen.append(list(ids)) or check(p, ids))
    rows = build_recipe("svit-80k", pool, size=9, progress=False)
    assert seen == [rows.ids] and len(rows.ids) == 9
