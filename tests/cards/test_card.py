"""The card is rendered from the build state: YAML that datasets reads, prose with every number."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from datasets import Features, load_dataset_builder

from svit_data.cards import parse_card, render_card
from svit_data.cards.metadata import default_config, size_category
from svit_data.cards.sections import EXAMPLE_BOX, EXAMPLE_SIZE
from svit_data.cards.validate import card_problems
from svit_data.errors import SvitError
from svit_data.folder import read_state
from svit_data.schema import FEATURES
from svit_data.state import BuildState, YesNo

RECIPE = {
    "description": "Core set: concept-diverse then yes/no-balanced selection.",
    "schema": "svit",
    "kind": "recipe",
    "recipe": "core-150k",
    "objective": "maximize concept coverage, then balance yes and no answers",
    "features": FEATURES.to_dict(),
    "splits": {
        "train": {"num_examples": 120, "num_bytes": 1000, "files": ["train-00000-of-00001-abc.parquet"]}
    },
    "manifest": {
        "pool_fingerprint": "74d00c6192845bf5",
        "vocabulary_hash": "feedc0ffee",
        "parameters": {"size": 120, "alpha": 0.5},
        "seed": 0,
        "ids_sha256": "0123456789abcdef",
        "counts": {"selected": 120},
    },
    "diagnostics": {
        "coverage": {"selected": 0.8125, "random": 0.5},
        "entropy": {"selected": 4.25, "random": 3.5},
        "yes_no": {
            "before": {"yes": 70, "no": 30, "yes_share": 0.7},
            "after": {"yes": 50, "no": 50, "yes_share": 0.5},
        },
        "task_mix": {"conversation": 30, "referring_qa": 90},
        "answer_length_quantiles": {"p10": 20, "p50": 80, "p90": 300},
        "balance": {"target_yes_share": 0.5, "tolerance": 0.02, "reached": True, "note": ""},
    },
}


def state_of(folder: Path) -> BuildState:
    return read_state(folder)


def typed(configs: dict) -> BuildState:
    """A state given as the previous svit wrote it (an untyped dict, version 1), read as the type."""
    return BuildState.from_json(json.dumps({"configs": configs}))


def test_yaml_declares_configs_and_sizes_from_the_data(folder: Path):
    state = state_of(folder)
    meta = parse_card((folder / "README.md").read_text())
    assert [c["config_name"] for c in meta["configs"]] == ["detail-description", "full"]
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["full"]
    assert meta["license"] == "cc-by-4.0" and meta["pretty_name"].startswith("SVIT")
    rows = state.configs["full"].num_rows()
    assert meta["size_categories"] == [size_category(rows)] == ["1K<n<10K"]
    assert card_problems(meta, state) == []
    builder = load_dataset_builder(str(folder), "full")
    assert builder.info.features == FEATURES
    assert {s: v.num_examples for s, v in builder.info.splits.items()} == {
        s: v.num_examples for s, v in state.configs["full"].splits.items()
    }


def test_prose_has_the_table_schema_box_example_licenses_and_citation(folder: Path):
    text = (folder / "README.md").read_text()
    state = state_of(folder)
    detail = state.configs["detail-description"].num_rows()
    assert f"| `detail-description` | subset | {detail:,} |" in text and "detail_description 100%" in text
    assert "| `full` (default) |" in text
    assert "| `conversations` | list of {from: string, value: string} |" in text
    # by hand: 640x480 -> pixels 160, 48, 480, 288; y shifts by (640 - 480) // 2 = 80; all / 640
    assert (EXAMPLE_BOX, EXAMPLE_SIZE) == ((0.25, 0.1, 0.75, 0.6), (640, 480))
    assert "<st>dog<ed> [0.25, 0.1, 0.75, 0.6]`" in text
    assert "`[0.25, 0.2, 0.75, 0.575]` (padded-square frame)" in text
    assert "CC BY 4.0" in text
    assert "arXiv:2307.04087" in text and "Zhao, Bo and Wu, Boya and He, Muyang and Huang, Tiejun" in text
    # built from the bundled sample: it says so at the top and claims neither GPT-4 texts nor Flickr images
    body = text.split("---\n", 2)[2]
    assert "SYNTHETIC bundled sample, not SVIT data" in body.split("## Configs")[0]
    assert (
        "OpenAI's terms of use" not in text and "GPT-4 wrote" not in text and "from Flickr under" not in text
    )
    assert "No recipe config was built" in text


def test_recipe_manifest_and_diagnostics_are_rendered():
    state = typed({"core-150k": RECIPE})
    text = render_card(state)
    meta = parse_card(text)
    assert meta["configs"][0]["default"] is True and default_config(state.configs) == "core-150k"
    for value in ("feedc0ffee", "0123456789abcdef", "74d00c6192845bf5", "alpha=0.5, size=120"):
        assert value in text
    assert "| concept coverage | 0.812 | 0.5 |" in text or "| concept coverage | 0.813 | 0.5 |" in text
    assert "| before balancing | 70 | 30 | 0.7 |" in text and "| after balancing | 50 | 50 | 0.5 |" in text
    assert "conversation 25%, referring_qa 75%" in text
    assert "Objective: maximize concept coverage" in text
    assert "p50 80" in text


def test_a_recipe_without_diagnostics_still_renders():
    recipe = {
        k: v for k, v in copy.deepcopy(RECIPE).items() if k not in ("diagnostics", "manifest", "objective")
    }
    text = render_card(typed({"svit-80k": recipe}))
    assert "### `svit-80k`" in text and "| diagnostic |" not in text


def test_llava_schema_config_gets_its_own_schema_table():
    llava = Features.from_dict(
        {"id": {"_type": "Value", "dtype": "string"}, "image": {"_type": "Value", "dtype": "string"}}
    )
    mix = {
        "description": "LLaVA mix",
        "schema": "llava",
        "kind": "recipe",
        "features": llava.to_dict(),
        "splits": {"train": {"num_examples": 5, "num_bytes": 10, "files": ["f.parquet"]}},
    }
    text = render_card(typed({"core-150k": RECIPE, "mix-665k": mix}))
    assert "**llava** schema (configs: `mix-665k`)" in text and "recipe (LLaVA format)" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no header", "has no YAML header"),
        ("---\nlicense: x\n", "not closed"),
        ("---\nconfigs: [\n---\n", "YAML header is broken"),
        ("---\n- a\n---\n", "not a mapping"),
    ],
)
def test_broken_cards_are_one_sentence(text, message):
    with pytest.raises(SvitError, match=message):
        parse_card(text)


def test_card_problems_names_drift(folder: Path):
    state = state_of(folder)
    meta = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
    meta["configs"] = [c for c in meta["configs"] if c["config_name"] != "full"]
    meta["dataset_info"][0]["features"] = meta["dataset_info"][0]["features"][:3]
    problems = card_problems(meta, state)
    assert "card: built config 'full' is missing from 'configs'" in problems
    assert "card: features of config 'detail-description' differ from the data" in problems
    assert "card: exactly one config must be the default, found 0" in problems


def test_the_card_is_a_function_of_the_stored_state(folder: Path):
    import numpy as np

    state = state_of(folder)
    recipe = typed({"core-150k": RECIPE}).configs["core-150k"]
    recipe.recipe.diagnostics.yes_no.after = YesNo(yes=50, no=np.int64(50), yes_share=np.float64(0.5))
    in_memory = BuildState({**state.configs, "core-150k": recipe})
    stored = BuildState.from_json(in_memory.to_json())
    assert render_card(in_memory) == render_card(stored)
    assert render_card(state) == (folder / "README.md").read_text()


def test_dataset_info_is_written_and_read_by_the_public_datasets_card_api(folder):
    """dataset_info comes from DatasetInfosDict.to_dataset_card_data (what push_to_hub writes), and
    datasets' own card reader gives back the declared features and split sizes, for two configs and
    for one (which that writer stores as a mapping, not a list)."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    from svit_data.cards.metadata import dataset_info_entries

    meta = parse_card((folder / "README.md").read_text(encoding="utf-8"))
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCardData(dataset_info=meta["dataset_info"]))
    assert sorted(infos) == ["detail-description", "full"]
    for info in infos.values():
        assert info.features == FEATURES and set(info.splits) == {"train", "test"}
    (one,) = dataset_info_entries(typed({"core-150k": RECIPE}).configs)
    assert one["config_name"] == "core-150k"
    assert one["splits"] == [{"name": "train", "num_bytes": 1000, "num_examples": 120}]
    again = DatasetInfosDict.from_dataset_card_data(DatasetCardData(dataset_info=[one]))
    assert again["core-150k"].features == FEATURES


def test_unbalanced_recipe_shows_candidates_and_selection_not_before_and_after():
    recipe = copy.deepcopy(RECIPE)
    del recipe["diagnostics"]["balance"]
    recipe["diagnostics"]["yes_no"]["before"] = recipe["diagnostics"]["yes_no"]["after"]
    recipe["manifest"]["counts"]["candidate_yes_no"] = {"yes": 700, "no": 300, "yes_share": 0.7}
    text = render_card(typed({"svit-80k": recipe}))
    assert "| all train candidates | 700 | 300 | 0.7 |" in text and "| selection | 50 | 50 | 0.5 |" in text
    assert "balancing" not in text.split("### `svit-80k`")[1].split("## Provenance")[0]


def test_recipe_configs_show_their_pool_fingerprint_in_provenance():
    text = render_card(typed({"core-150k": RECIPE}))
    provenance = text.split("## Provenance")[1].split("##")[0]
    assert "| `74d00c6192845bf5` |" in provenance and "n/a" not in provenance


def test_state_round_trips_and_a_renamed_or_missing_key_fails_loudly():
    state = typed({"core-150k": RECIPE})
    assert BuildState.from_json(state.to_json()) == state
    data = json.loads(state.to_json())
    assert data["version"] == 2 and data["configs"]["core-150k"]["recipe"]["name"] == "core-150k"
    renamed = copy.deepcopy(data)
    renamed["configs"]["core-150k"]["recipe"]["diagnostics"]["coverages"] = renamed["configs"]["core-150k"][
        "recipe"
    ]["diagnostics"].pop("coverage")
    with pytest.raises(SvitError, match="unknown field 'coverages'"):
        BuildState.from_json(json.dumps(renamed))
    missing = copy.deepcopy(data)
    del missing["configs"]["core-150k"]["splits"]
    with pytest.raises(SvitError, match=r"field 'splits' is missing; rebuild"):
        BuildState.from_json(json.dumps(missing))
    wrong = copy.deepcopy(data)
    wrong["configs"]["core-150k"]["recipe"]["manifest"]["seed"] = "zero"
    with pytest.raises(SvitError, match=r"Manifest.seed: expected int, found str"):
        BuildState.from_json(json.dumps(wrong))
    newer = {**data, "version": 3}
    with pytest.raises(SvitError, match="newer than this svit reads"):
        BuildState.from_json(json.dumps(newer))


def test_a_folder_built_by_the_previous_version_still_reads(folder: Path):
    """The untyped svit_build.json of the previous version (no version key, recipe keys at the top)."""
    legacy = {"configs": {"core-150k": {**RECIPE, "columns": list(FEATURES), "source": "sample"}}}
    (folder / "svit_build.json").write_text(json.dumps(legacy))
    config = read_state(folder).configs["core-150k"]
    assert config.recipe.manifest.seed == 0 and config.recipe.name == "core-150k"
    assert config.pool_fingerprint == "74d00c6192845bf5"
    assert config.task_mix == {"conversation": 30, "referring_qa": 90}


def test_a_card_of_real_data_names_its_origin_and_licenses():
    text = render_card(typed({"core-150k": RECIPE}))
    assert "GPT-4 wrote conversations" in text and "OpenAI's terms of use" in text
    assert "SYNTHETIC" not in text


def test_config_descriptions_show_markup_as_text():
    recipe = {**RECIPE, "description": "Referring QA grounded with <st>object<ed> boxes."}
    text = render_card(typed({"referring": recipe}))
    assert "grounded with &lt;st&gt;object&lt;ed&gt; boxes. |" in text
