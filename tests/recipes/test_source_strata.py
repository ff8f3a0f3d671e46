"""Mixed pools in recipes: strata by source, third-party samples as their own task stratum, per-source caps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from svit_data.cli import main
from svit_data.folder import config_files, read_state
from svit_data.recipes.pool_rows import capped_rows
from svit_data.recipes.strata import SOURCES, strata_of


def test_source_strata_apportion_by_source_counts():
    source = np.array([0, 0, 0, 1, 1, 2, 0, 1])  # 4, 3, 1 candidates
    stratum, quotas = strata_of(np.zeros(8, np.int64), 8, 4, SOURCES, source)
    assert stratum.tolist() == source.tolist()
    assert quotas.tolist() == [2, 2, 0]  # 4*4/8=2, 4*3/8=1.5, 4*1/8=0.5: the tied remainder goes to source 1


def test_a_source_cap_keeps_a_seeded_random_subset_of_each_big_source():
    source = np.array([0] * 10 + [1] * 3)
    eligible = np.ones(13, bool)
    eligible[0] = False  # a held-out row is never counted nor capped
    out = capped_rows(source, eligible, 4, seed=7)
    assert not out[0] and out[10:].sum() == 0  # source 1 is under the cap
    assert (eligible[:10] & ~out[:10]).sum() == 4
    assert out.tolist() == capped_rows(source, eligible, 4, seed=7).tolist()
    assert out.tolist() != capped_rows(source, eligible, 4, seed=8).tolist()


def write_llava(path: Path, n: int) -> Path:
    records = []
    for i in range(n):
        answer = "Yes, there is a dog." if i % 3 else "No, there is no cat in the picture."
        records.append(
            {
                "id": f"r{i}",
                "image": f"img/{i}.jpg",
                "conversations": [
                    {"from": "human", "value": f"<image>\nIs there a dog near the car number {i}?"},
                    {"from": "gpt", "value": answer},
                ],
            }
        )
    path.write_text(json.dumps(records))
    return path


def selected(out: Path, config: str) -> list[dict]:
    files = config_files(str(out), config)["train"]
    return pq.read_table(files, columns=["id", "source", "task"]).to_pylist()


def test_a_mixed_recipe_keeps_the_source_mix_and_caps_sources(tmp_path):
    third = write_llava(tmp_path / "web.json", 600)
    out = tmp_path / "svit"
    args = ["build", "svit-80k-d", "--source", "sample", "--source", str(third), "--out", str(out), "--quiet"]
    assert main([*args, "--size", "300", "--task-mix", "sources"]) == 0
    rows = selected(out, "svit-80k-d")
    state = read_state(out).configs["svit-80k-d"].recipe
    quotas = state.diagnostics.task_quotas
    assert set(quotas) == {"svit", "web"} and sum(quotas.values()) == 300
    assert sum(r["source"] == "web" for r in rows) == quotas["web"] > 0
    # the default task strata: third-party samples are one more stratum, labelled "none"
    assert main([*args, "--size", "300", "--name", "by-task"]) == 0
    by_task = read_state(out).configs["by-task"].recipe.diagnostics.task_quotas
    assert by_task["none"] == sum(r["task"] == "" for r in selected(out, "by-task")) > 0
    # a cap of 100 per source: at most 100 of each, and the manifest says how many were left out
    assert main([*args, "--size", "150", "--source-cap", "100", "--name", "capped"]) == 0
    rows = selected(out, "capped")
    assert sum(r["source"] == "web" for r in rows) <= 100 and sum(r["source"] == "svit" for r in rows) <= 100
    manifest = read_state(out).configs["capped"].recipe.manifest
    assert manifest.parameters["source_cap"] == 100 and manifest.counts["capped_candidates"] > 500
