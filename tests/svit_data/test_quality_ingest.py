"""The quality gate end to end: a pool with the release's quirks builds, ``full`` keeps and flags every
problem, no recipe config selects one, ``--strict`` stops with a located error, repairs are optional."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datasets import load_dataset

from svit_data import splits
from svit_data.cli import main
from svit_data.folder import read_state
from svit_data.pool import open_pool
from svit_data.tasks import TASK_FILES

OBJECTS = [
    "dog",
    "bicycle",
    "umbrella",
    "kite",
    "bench",
    "truck",
    "giraffe",
    "lamp",
    "clock",
    "boat",
    "horse",
    "vase",
]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "orange"]
WORDS = (
    "morning evening crowded quiet sunny cloudy wooden metal tall short narrow wide old new busy calm market "
    "station harbor garden kitchen street field beach hill bridge window door roof tree fence road river path "
    "table shelf corner wall sign light shadow grass sand snow stone brick glass paper rope basket"
).split()


def qa(q: str, a: str) -> list[dict[str, str]]:
    return [{"from": "user", "value": q}, {"from": "gpt", "value": a}]


def description(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(60)) + "."


def clean_records(image_ids: list[int]) -> dict[str, list[dict]]:
    """SVIT-like records with varied text: none of them should be flagged."""
    rng = random.Random(7)
    records: dict[str, list[dict]] = {task: [] for task in TASK_FILES}
    for image_id in image_ids:
        things = rng.sample(OBJECTS, 6)
        colors = [rng.choice(COLORS) for _ in things]
        asks = [
            ("What color is the {t}?", "The {t} is {c}."),
            ("Is there a {t} in the picture?", "Yes, there is a {c} {t}."),
            ("How many {t}s can be seen?", "One {t} can be seen."),
        ]
        conversations = [
            {
                "content": [
                    turn
                    for t, c in zip(things[:4], colors, strict=False)
                    for turn in qa(q.format(t=t, c=c), a.format(t=t, c=c))
                ]
            }
            for q, a in asks
        ]
        records["conversation"].append({"image_id": image_id, "conversations": conversations})
        content = []
        for k in range(9):
            thing = things[k % len(things)]
            content += qa(
                f"Why might the {thing} be here ({k})?", f"It is likely used by people nearby, reason {k}."
            )
        records["complex_reasoning"].append({"image_id": image_id, "conversations": [{"content": content}]})
        content = []
        for k in range(6):
            x = round(0.1 * (k % 5), 2)
            content += qa(
                f"Where is the <st>{things[k]}<ed>?",
                f"The <st>{things[k]}<ed> [{x}, 0.1, {x + 0.1:.2f}, 0.3] stands in the scene.",
            )
        records["referring_qa"].append({"image_id": image_id, "conversations": [{"content": content}]})
        records["detail_description"].append(
            {
                "image_id": image_id,
                "conversations": [{"content": qa("Describe the image in detail.", description(rng))}],
            }
        )
    return records


def write(folder: Path, records: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for task, items in records.items():
        (folder / TASK_FILES[task]).write_text(json.dumps(items))
    return folder


TRAIN_IDS = [i for i in range(1, 200) if i not in splits.test_image_ids()][:12]
TEMPLATE = (
    "The image shows a lively scene in which several people gather near the old fountain while a street "
    "musician plays a guitar and children chase pigeons across the wide stone square"
)


def broken_records() -> tuple[dict[str, list[dict]], dict[str, set[str]]]:
    """The clean records with one problem per reason code; returns the records and the expected flags per id."""
    records = clean_records(TRAIN_IDS)
    expected: dict[str, set[str]] = {}
    image = TRAIN_IDS

    def turn(task: str, i: int, c: int, t: int, value: str) -> None:
        records[task][i]["conversations"][c]["content"][t]["value"] = value

    # the 21 GPT-4 error replies of the released detail descriptions look like this
    turn(
        "detail_description",
        0,
        0,
        1,
        "It seems like your message is empty. Could you please provide more information?",
    )
    expected[f"detail_description/{image[0]}/0"] = {"error_reply"}
    turn("complex_reasoning", 1, 0, 3, "  ")
    expected[f"complex_reasoning/{image[1]}/1"] = {"empty_answer"}
    turn("complex_reasoning", 2, 0, 5, "Based on the given information, the man is waiting for a bus.")
    expected[f"complex_reasoning/{image[2]}/2"] = {"source_mention"}
    turn("referring_qa", 3, 0, 1, "The <st>dog<ed> [0.1, 0.2, 1.4, 0.5] sleeps.")
    expected[f"referring_qa/{image[3]}/0"] = {"box_out_of_range"}
    turn("referring_qa", 4, 0, 3, "The <st>dog<ed> [0.6, 0.2, 0.4, 0.5] sleeps.")
    expected[f"referring_qa/{image[4]}/1"] = {"box_repaired"}  # kept, repaired, not excluded
    turn("referring_qa", 5, 0, 5, "The <st>dog [0.1, 0.2, 0.3, 0.5] sleeps.")
    expected[f"referring_qa/{image[5]}/2"] = {"malformed_box"}
    turn("conversation", 6, 0, 1, "The dog is at [0.1, 0.2, 0.3, 0.5].")
    expected[f"conversation/{image[6]}/0"] = {"leaked_coordinates"}
    records["referring_qa"][7]["conversations"][0]["content"][2]["from"] = "gpt"
    expected[f"referring_qa/{image[7]}/0"] = {"turn_order"}  # the conversation stays one sample
    records["conversation"][8]["conversations"][1]["content"] = records["conversation"][8]["conversations"][
        1
    ]["content"][:2]
    expected[f"conversation/{image[8]}/1"] = {"off_quota"}
    content = records["complex_reasoning"][9]["conversations"][0]["content"]
    content[2:4] = [dict(content[0]), dict(content[1])]
    expected[f"complex_reasoning/{image[9]}/1"] = {"duplicate_qa"}
    turn("detail_description", 10, 0, 1, TEMPLATE + ".")
    turn("detail_description", 11, 0, 1, TEMPLATE.replace("guitar", "violin") + ".")
    expected[f"detail_description/{image[11]}/0"] = {"near_duplicate"}
    return records, expected


def flags_by_id(folder: Path, config: str, cache: Path) -> dict[str, list[str]]:
    dataset = load_dataset(str(folder), config, cache_dir=str(cache))
    return {row["id"]: row["flags"] for split in dataset.values() for row in split}


def test_clean_records_get_no_flag(tmp_path):
    pool = open_pool(str(write(tmp_path / "src", clean_records(TRAIN_IDS))), progress=False)
    assert pool.quality["flagged"] == 0
    assert not any(pool.table(["flags"])["flags"].to_pylist())


def test_a_pool_with_every_problem_builds_flags_everything_and_recipes_select_none(tmp_path):
    records, expected = broken_records()
    source = write(tmp_path / "src", records)
    out = tmp_path / "svit"
    configs = ["full", "core-150k", "svit-80k", "svit-train"]
    assert main(["build", *configs, "--source", str(source), "--out", str(out), "--quiet"]) == 0
    full = flags_by_id(out, "full", tmp_path / "hf")
    assert {i: set(f) for i, f in full.items() if f} == expected
    # lossless: every turn of the source is in full, the turn_order conversation as one sample
    turns = sum(len(c["content"]) for rs in records.values() for r in rs for c in r["conversations"])
    dataset = load_dataset(str(out), "full", cache_dir=str(tmp_path / "hf-full"))
    assert turns == sum(len(row["conversations"]) for split in dataset.values() for row in split)
    repaired = f"referring_qa/{TRAIN_IDS[4]}/1"
    excluded = {i for i, f in expected.items() if f != {"box_repaired"}}
    state = read_state(out)
    for name in configs[1:]:
        ids = set(flags_by_id(out, name, tmp_path / f"hf-{name}"))
        assert not ids & excluded, name
        quality = state.configs[name].recipe.diagnostics.quality
        assert quality["excluded"] == len(excluded)
        assert set(quality["excluded_by_reason"]) == {c for f in expected.values() for c in f} - {
            "box_repaired"
        }
    assert repaired in flags_by_id(out, "svit-train", tmp_path / "hf-t")
    card = (out / "README.md").read_text()
    assert (
        "## Quality" in card and "`error_reply`" in card and f"`detail_description/{TRAIN_IDS[0]}/0`" in card
    )


def test_strict_stops_with_a_located_error_and_no_output(tmp_path, capsys):
    records = clean_records(TRAIN_IDS)
    records["referring_qa"][3]["conversations"][0]["content"][5]["value"] = (
        "The <st>cat<ed> [0.7, 0.2, 0.4, 0.5]."
    )
    source = write(tmp_path / "src", records)
    out = tmp_path / "svit"
    assert main(["build", "full", "--source", str(source), "--out", str(out), "--quiet", "--strict"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(source / "referring_qa.json") in line and "record 3" in line
    assert "'conversations[0].content[5].value'" in line and "box_repaired" in line
    assert not out.exists()
    assert (
        main(
            [
                "build",
                "full",
                "--source",
                str(source),
                "--out",
                str(out),
                "--quiet",
                "--strict",
                "--no-repair",
            ]
        )
        == 2
    )
    assert "box_reversed" in capsys.readouterr().err
    assert main(["build", "full", "--source", str(source), "--out", str(out), "--quiet"]) == 0


def test_no_repair_keeps_the_text_and_flags_it_as_excluding(tmp_path):
    records = clean_records(TRAIN_IDS)
    bad = "The <st>cat<ed> [0.7, 0.2, 0.4, 0.5]."
    records["referring_qa"][3]["conversations"][0]["content"][5]["value"] = bad
    source = str(write(tmp_path / "src", records))
    repaired, kept = open_pool(source, progress=False), open_pool(source, repair=False, progress=False)
    assert repaired.fingerprint != kept.fingerprint
    sample = f"referring_qa/{TRAIN_IDS[3]}/2"
    rows = {
        p: {r["id"]: r for r in pool.table(["id", "conversations", "flags"]).to_pylist()}[sample]
        for p, pool in (("r", repaired), ("k", kept))
    }
    assert rows["r"]["conversations"][1]["value"] == "The <st>cat<ed> [0.4, 0.2, 0.7, 0.5]." and rows["r"][
        "flags"
    ] == ["box_repaired"]
    assert rows["k"]["conversations"][1]["value"] == bad and rows["k"]["flags"] == ["box_reversed"]


def test_where_filters_on_signals_and_rejects_bad_conditions(tmp_path, capsys):
    source = str(write(tmp_path / "src", clean_records(TRAIN_IDS)))
    out = tmp_path / "svit"
    args = [
        "build",
        "svit-train",
        "--source",
        source,
        "--out",
        str(out),
        "--quiet",
        "--where",
        "answer_words>=10",
    ]
    assert main(args) == 0
    rows = load_dataset(str(out), "svit-train", cache_dir=str(tmp_path / "hf"))["train"]
    assert rows.num_rows and all(
        r["task"] in ("detail_description",)
        or len(" ".join(t["value"] for t in r["conversations"] if t["from"] == "gpt").split()) >= 10
        for r in rows
    )
    quality = read_state(out).configs["svit-train"].recipe.diagnostics.quality
    assert quality["excluded_by_where"]["answer_words>=10"] > 0
    assert main([*args[:-1], "answer_words=>10"]) == 2
    assert "SIGNAL OP NUMBER" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "full", "--strict", "--where"])
