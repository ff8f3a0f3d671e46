"""generate --select N: images chosen by concept coverage before any request (hand-computed examples)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from builders_helpers import read_records, run_library

from svit_data.builders.select import concept_matrix, diagnostics, select_images, select_rows
from svit_data.errors import InputError
from svit_data.recipes.vocabulary import parse_vocabulary

VOCAB = parse_vocabulary(
    {
        "name": "tiny",
        "concepts": [
            {"concept": "dog", "synonyms": ["puppy"]},
            {"concept": "cat"},
            {"concept": "red car"},
            {"concept": "tree"},
        ],
    }
)


def test_concept_matrix_matches_whole_words_forms_and_phrases():
    texts = ["Two dogs chase a cat.", "a puppy", "A red car near trees", "the carpet is red; a car", ""]
    matrix = concept_matrix(texts, VOCAB).toarray()
    assert matrix.tolist() == [
        [1, 1, 0, 0],  # plural dogs -> dog
        [1, 0, 0, 0],  # synonym
        [0, 0, 1, 1],  # two-word phrase, plural tree
        [0, 0, 0, 0],  # "red ... car" not adjacent, "carpet" is not "car"
        [0, 0, 0, 0],
    ]


def test_greedy_picks_by_coverage_with_diminishing_returns():
    # A={dog,cat} B={dog} C={tree} D={dog,cat,tree}: D first (gain 3), then A (1/2 + 1/2) beats B, C (1/2)
    matrix = concept_matrix(["dog cat", "dog", "tree", "dog cat tree"], VOCAB)
    weights = np.ones(4)
    assert select_rows(matrix, weights, 2, seed=0).tolist() == [0, 3]
    assert select_rows(matrix, weights, 1, seed=5).tolist() == [3]
    with pytest.raises(ValueError, match="there are 4 images"):
        select_rows(matrix, weights, 5, seed=0)


def test_diagnostics_by_hand():
    matrix = concept_matrix(["dog cat", "dog", "tree", "dog cat tree"], VOCAB)
    stats = diagnostics(matrix, np.ones(4), np.array([0, 3]))
    # counts dog 2, cat 2, tree 1, red car 0: coverage 3/4; entropy of (.4, .4, .2)
    assert stats["coverage"] == 0.75
    expected = -(2 * 0.4 * math.log2(0.4) + 0.2 * math.log2(0.2))
    assert stats["entropy_bits"] == round(expected, 4)
    assert stats["objective"] == round(1.5 + 1.5 + 1.0, 4)  # H(2) + H(2) + H(1)


def test_select_images_returns_sorted_ids_and_a_record():
    ids = [40, 10, 30, 20]
    chosen, record = select_images(ids, ["dog cat", "dog", "tree", "dog cat tree"], VOCAB, 2, seed=0)
    assert chosen == [20, 40]
    assert record["n"] == 2 and record["of"] == 4 and record["vocabulary_hash"] == VOCAB.hash
    assert record["selected"]["coverage"] >= record["random"]["coverage"]
    again, same = select_images(ids, ["dog cat", "dog", "tree", "dog cat tree"], VOCAB, 2, seed=0)
    assert again == chosen and same["ids_sha256"] == record["ids_sha256"]


def test_generate_select_plans_runs_and_records(small_vg, tmp_path, fake_server):
    out = tmp_path / "out"
    plan = run_library(small_vg, out, None, dry_run=True, select=3, tasks="detail_description")
    assert plan["requests"] == 3 and plan["all_images"]["requests"] == 6
    assert plan["all_images"]["cost_online_usd"] > plan["cost_online_usd"]
    selection = plan["selection"]
    assert selection["n"] == 3 and selection["of"] == 6
    assert set(selection["selected"]) == {"coverage", "entropy_bits", "objective"}
    assert selection["selected"]["objective"] >= selection["random"]["objective"]
    with fake_server() as (fake, url):
        summary = run_library(small_vg, out, url, select=3, tasks="detail_description", timeout=5)
    ids = [int(x) for x in (out / "selected_ids.txt").read_text().split()]
    assert len(ids) == 3 and ids == sorted(ids)
    assert [r["image_id"] for r in read_records(out, "detail_description")] == ids
    assert len(fake.log) == 3
    assert summary["selection"]["ids_file"] == "selected_ids.txt"
    assert summary["selection"]["ids_sha256"] == selection["ids_sha256"]
    assert json.loads((out / "summary.json").read_text())["selection"]["n"] == 3


def test_select_more_than_the_images_is_an_error(small_vg, tmp_path):
    with pytest.raises(InputError, match="--select 7 is more than the 6 images"):
        run_library(small_vg, tmp_path / "out", None, dry_run=True, select=7)


def test_a_card_built_from_selected_generation_names_the_selection(small_vg, tmp_path, fake_server):
    from svit_data.cli import main
    from svit_data.state import read_state_file

    out = tmp_path / "gen"
    with fake_server() as (_, url):
        summary = run_library(small_vg, out, url, select=3, tasks="detail_description", timeout=5)
    dataset = tmp_path / "dataset"
    assert main(["build", "full", "--source", str(out), "--out", str(dataset), "--quiet"]) == 0
    recorded = read_state_file(dataset / "svit_build.json").configs["full"].generation
    assert list(recorded) == ["gen/summary.json"]
    assert recorded["gen/summary.json"].ids_sha256 == summary["selection"]["ids_sha256"]
    provenance = (dataset / "README.md").read_text().split("## Provenance")[1].split("\n## ")[0]
    assert "- `gen/summary.json` (`full`): 3 of 6 images chosen by concept coverage" in provenance
    assert f"ids in `gen/selected_ids.txt`, sha256 `{summary['selection']['ids_sha256']}`" in provenance
    plain = tmp_path / "plain"
    assert main(["build", "full", "--out", str(plain), "--quiet"]) == 0  # the sample: no selection
    assert "generate --select" not in (plain / "README.md").read_text()
