"""Recipe files: parsing with located errors, and a mixed build end to end (load_dataset, manifest, copy)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from svit_data.cli import main
from svit_data.errors import InputError
from svit_data.folder import config_files, read_state
from svit_data.recipes.recipe_file import read_recipe_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MY_MIX = FIXTURES / "recipes" / "my_mix.yaml"


def test_a_recipe_file_parses_into_sources_and_selections():
    recipe = read_recipe_file(MY_MIX)
    assert list(recipe.sources) == ["svit", "inst", "chat"] and recipe.seed == 3 and recipe.cap == 2000
    assert recipe.select["svit"].kind == "core" and recipe.select["svit"].spec.size == 300
    assert recipe.select["svit"].spec.target_yes_share == 0.5
    assert (recipe.select["inst"].kind, recipe.select["inst"].size) == ("first", 3)
    assert recipe.select["chat"].kind == "all"
    assert recipe.sha256 == hashlib.sha256(MY_MIX.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("sources: {a: x.json}\nseeds: 1\n", "(top level)", "unknown key 'seeds'; known: seed, cap"),
        ("sources: {a: x.json}\nselect: {b: all}\n", "select.b", "names no source 'b'; sources: a"),
        (
            "sources: {a: x.json}\nselect: {a: {method: magic}}\n",
            "select.a.method",
            "known: all, first, random",
        ),
        ("sources: {a: x.json}\nselect: {a: {method: core, decay: 1, colour: 2}}\n", "select.a", "'colour'"),
        ("sources: {a: {path: x, format: csv}}\n", "sources.a.format", "unknown format 'csv'"),
        ("sources: {a: x.json}\nselect: {a: {first: 0}}\n", "select.a.first", "positive integer"),
        ("sources: {a: x.json}\nbalance: {size: 5, target_yes_share: 2}\n", "balance", "target_yes_share"),
    ],
)
def test_recipe_file_errors_name_the_file_and_field(tmp_path, text, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_recipe_file(path)
    assert caught.value.file == str(path) and caught.value.field == field and message in str(caught.value)


def test_a_mixed_recipe_file_builds_end_to_end(tmp_path, capsys):
    out = tmp_path / "svit"
    assert main(["build", "--recipe", str(MY_MIX), "--name", "my-mix", "--out", str(out), "--quiet"]) == 0
    train = load_dataset(str(out), "my-mix", split="train", cache_dir=str(tmp_path / "hf"))
    sources = train["source"]
    assert sources.count("inst") == 3 and sources.count("chat") == 2 and sources.count("svit") == 300
    assert [i for i in train["id"] if i.startswith("inst/")] == ["inst/0", "inst/1", "inst/2"]
    state = read_state(out).configs["my-mix"].recipe
    assert state.manifest.parameters["recipe_sha256"] == hashlib.sha256(MY_MIX.read_bytes()).hexdigest()
    assert state.manifest.counts["selected_per_source"] == {"svit": 300, "inst": 3, "chat": 2}
    assert state.recipe_file == "data/my-mix/recipe.yaml"
    assert (out / state.recipe_file).read_bytes() == MY_MIX.read_bytes()
    assert "Recipe file my_mix.yaml" in state.objective
    card = (out / "README.md").read_text()
    assert "| recipe file | `data/my-mix/recipe.yaml` |" in card
    assert "```yaml\ncap: 2000\nseed: 3\nselect:\n  chat: all\n" in card  # the state stores keys sorted
    ids = pq.read_table(config_files(str(out), "my-mix")["train"], columns=["id"])["id"].to_pylist()
    assert sorted(ids) == sorted(train["id"])


def test_recipe_file_cli_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {a: x.json}\nmethod: core\n")
    out = tmp_path / "svit"
    assert main(["build", "--recipe", str(bad), "--name", "m", "--out", str(out), "--quiet"]) == 2
    assert "bad.yaml: field '(top level)': unknown key 'method'" in capsys.readouterr().err
    assert main(["build", "full", "--recipe", str(MY_MIX), "--out", str(out), "--quiet"]) == 2
    assert "give no CONFIG and no --source" in capsys.readouterr().err
    for flag in (["--seed", "0"], ["--size", "10"], ["--where", "answer_words>=5"], ["--include-flagged"]):
        assert (
            main(["build", "--recipe", str(MY_MIX), "--name", "m", *flag, "--out", str(out), "--quiet"]) == 2
        )
        assert f"{flag[0]} does not apply to --recipe: the recipe file sets" in capsys.readouterr().err
    assert not out.exists()


def test_stats_against_reports_overlap_and_profiles(tmp_path, capsys):
    out = tmp_path / "svit"
    assert main(["build", "--recipe", str(MY_MIX), "--name", "my-mix", "--out", str(out), "--quiet"]) == 0
    sources = ["--source", "sample", "--source", f"inst={FIXTURES / 'sources' / 'llava.json'}"]
    assert main(["build", "full", *sources, "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["stats", "my-mix", "--against", "full", "--dir", str(out)]) == 0
    lines = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    # every my-mix sample from svit and inst is in full (train split); chat's 2 samples are not:
    # the shared count is the distinct (image name, question) keys of the non-chat rows (a naive oracle)
    rows = pq.read_table(config_files(str(out), "my-mix")["train"]).to_pylist()
    keys = {
        (
            (r["image_file"] or "").rsplit("/", 1)[-1].lower(),
            " ".join(r["conversations"][0]["value"].lower().split()),
        )
        for r in rows
        if r["source"] != "chat"
    }
    assert lines["shared samples"].split()[2] == f"{len(keys):,}"
    assert "source mix" in lines and "chat 2" in lines["source mix"]
    assert main(["stats", "my-mix", "--against", "nope", "--dir", str(out)]) == 2
