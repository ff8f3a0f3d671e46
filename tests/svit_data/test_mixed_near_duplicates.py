"""Near-duplicates across sources: a third-party answer templating an SVIT one (or its own source's) is
flagged in the mixed pool; the first copy in pool order stays clean."""

from __future__ import annotations

import json
from pathlib import Path

from llava_records import record

from svit_data.quality.near_duplicates import MIN_WORDS
from svit_data.sources import SourceSpec, open_sources


def long_svit_answer(pool) -> tuple[str, str]:
    """The id and first long answer (at least MIN_WORDS + 5 words) of an SVIT sample of the pool."""
    table = pool.table(["id", "conversations", "flags"])
    for sample_id, turns, flags in zip(
        *(table[c].to_pylist() for c in ("id", "conversations", "flags")), strict=True
    ):
        for turn in turns:
            if turn["from"] == "gpt" and len(turn["value"].split()) >= MIN_WORDS + 5 and not flags:
                return sample_id, turn["value"]
    raise AssertionError("the sample pool has no long answer")


def flagged(pool) -> dict[str, list[str]]:
    table = pool.table(["id", "flags"])
    return {i: f for i, f in zip(table["id"].to_pylist(), table["flags"].to_pylist(), strict=True) if f}


def test_a_llava_answer_templating_an_svit_one_is_flagged(tmp_path: Path):
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    svit_id, answer = long_svit_answer(svit)
    words = answer.split()
    templated = " ".join([*words[:-1], "indeed."])  # one word of 30+ changed: Jaccard well above 0.8
    own = "A wide green field stretches under a pale sky " * 4
    records = [
        record(1, "A short and different answer about a red bus parked near the station today."),
        record(2, templated),
        record(3, own.strip()),
        record(4, own.strip().replace("pale", "grey", 1)),
    ]
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(records))
    alone = open_sources([SourceSpec("inst", str(path))], progress=False)
    assert flagged(alone) == {"inst/3": ["near_duplicate"]}  # within the source: the later copy
    assert alone.quality["per_task"]["none"]["near_duplicate"] == 1

    mixed = open_sources([SourceSpec("svit", "sample"), SourceSpec("inst", str(path))], progress=False)
    marks = flagged(mixed)
    assert marks["inst/1"] == ["near_duplicate"] and marks["inst/3"] == ["near_duplicate"]
    assert "inst/0" not in marks and "inst/2" not in marks and svit_id not in marks
    svit_near = {i for i, f in flagged(svit).items() if "near_duplicate" in f}
    assert {i for i, f in marks.items() if "near_duplicate" in f} == svit_near | {"inst/1", "inst/3"}
    assert mixed.quality["per_task"]["none"]["near_duplicate"] == 2
    assert mixed.quality["flagged"] == svit.quality["flagged"] + 2
    again = open_sources([SourceSpec("svit", "sample"), SourceSpec("inst", str(path))], progress=False)
    assert flagged(again) == marks and again.quality == mixed.quality  # from the mix's cache
    # a recipe skips them: svit-train's candidates leave the flagged third-party rows out
    from svit_data.recipes.build import select_recipe

    ids = select_recipe("svit-train", mixed, progress=False).ids
    assert "inst/0" in ids and "inst/1" not in ids and "inst/3" not in ids
