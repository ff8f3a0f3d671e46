"""svit-recipe export: the files each format writes (values, not just exit codes), and its errors."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq

from svit_data.cli import main
from svit_data.folder import config_files
from svit_data.formats.llava import REFERRING_INSTRUCTIONS
from svit_data.sample import sample_dir
from svit_data.tasks import TASK_FILES

BOX = re.compile(r"\[([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+)\]")


def rows_of(folder, config: str, split: str = "train") -> list[dict]:
    files = config_files(folder, config)[split]
    return [
        r
        for f in files
        for r in pq.read_table(f, columns=["id", "conversations", "width", "height"]).to_pylist()
    ]


def export(folder, config: str, out, *extra: str) -> int:
    return main(["export", config, "--dir", str(folder), "--out", str(out), *extra])


def square(box: list[float], width: int, height: int) -> list[float]:
    """DESIGN.md §5 written out again, independently of svit_data.boxes."""
    long_side = max(width, height)
    dx, dy = (long_side - width) // 2, (long_side - height) // 2
    px = [
        round(box[0] * width) + dx,
        round(box[1] * height) + dy,
        round(box[2] * width) + dx,
        round(box[3] * height) + dy,
    ]
    return [round(v / long_side, 3) for v in px]


def test_svit_export_of_the_full_pool_reproduces_the_released_files(sample_folder, tmp_path, capsys):
    out = tmp_path / "svit_json"
    assert export(sample_folder, "full", out, "--format", "svit", "--split", "all") == 0
    splits = ", ".join(sorted(config_files(sample_folder, "full")))
    assert (
        capsys.readouterr().out.strip()
        == f"wrote {4 * 240:,} image records of full (splits {splits}) to {out}"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(TASK_FILES.values())
    for name in TASK_FILES.values():
        assert json.loads((out / name).read_text()) == json.loads((sample_dir() / name).read_text()), name


def test_svit_export_replaces_an_older_export_and_keeps_out_of_other_folders(sample_folder, tmp_path, capsys):
    out = tmp_path / "svit_json"
    assert export(sample_folder, "full", out, "--format", "svit", "--with-image-info") == 0
    first = json.loads((out / TASK_FILES["conversation"]).read_text())[0]
    assert {"width", "height", "image_file"} <= set(first)
    assert export(sample_folder, "referring-qa", out, "--format", "svit") == 0
    assert [p.name for p in out.iterdir()] == [TASK_FILES["referring_qa"]]  # no stale task files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svit_json"]  # no staging folder left
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert export(sample_folder, "conversation", out, "--format", "svit") == 2
    assert "notes.txt" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_creates_parent_folders_and_names_the_split(sample_folder, tmp_path, capsys):
    out = tmp_path / "not" / "yet" / "there.jsonl"
    assert export(sample_folder, "referring-qa", out, "--format", "messages") == 0
    rows = len(rows_of(sample_folder, "referring-qa"))
    assert capsys.readouterr().out.strip() == f"wrote {rows:,} records of referring-qa (split train) to {out}"
    assert len(out.read_text().splitlines()) == rows
    assert [p.name for p in out.parent.iterdir()] == ["there.jsonl"]  # no temporary file left


def test_llava_export_of_referring_qa_follows_design_5(sample_folder, tmp_path):
    out = tmp_path / "rq.json"
    assert export(sample_folder, "referring-qa", out, "--seed", "3") == 0
    records = json.loads(out.read_text())
    rows = {r["id"]: r for r in rows_of(sample_folder, "referring-qa")}
    assert [r["id"] for r in records] == list(rows)
    boxes = 0
    for record in records:
        row = rows[record["id"]]
        human, gpt = record["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<image>\n") and human["value"].count("<image>") == 1
        question, instruction = human["value"][len("<image>\n") :].rsplit("\n", 1)
        assert instruction in REFERRING_INSTRUCTIONS
        for turn, text in zip(row["conversations"], (question, gpt["value"]), strict=True):
            assert "<st>" not in text and "<ed>" not in text
            original = [[float(v) for v in m] for m in BOX.findall(turn["value"])]
            moved = [[float(v) for v in m] for m in BOX.findall(text)]
            assert moved == [square(b, row["width"], row["height"]) for b in original]
            boxes += len(original)
    assert boxes > len(records)  # the sample's answers do carry boxes
    assert len({r["conversations"][0]["value"].rsplit("\n", 1)[1] for r in records}) == 3


def test_llava_export_is_seeded(sample_folder, tmp_path):
    paths = [tmp_path / f"{n}.json" for n in ("a", "b", "c")]
    for path, seed in zip(paths, ("0", "0", "1"), strict=True):
        assert export(sample_folder, "referring-qa", path, "--seed", seed) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_llava_export_original_frame_keeps_the_boxes(sample_folder, tmp_path):
    out = tmp_path / "rq.json"
    assert export(sample_folder, "referring-qa", out, "--box-frame", "original", "--image-prefix", "vg/") == 0
    record = json.loads(out.read_text())[0]
    row = rows_of(sample_folder, "referring-qa")[0]
    assert record["image"].startswith("vg/")
    assert BOX.findall(record["conversations"][1]["value"]) == BOX.findall(row["conversations"][1]["value"])


def test_messages_export_has_one_line_per_row(sample_folder, tmp_path):
    out = tmp_path / "conv.jsonl"
    assert export(sample_folder, "conversation", out, "--format", "messages", "--split", "test") == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows = rows_of(sample_folder, "conversation", "test")
    assert len(lines) == len(rows) > 0
    first, row = lines[0], rows[0]
    assert [m["role"] for m in first["messages"]] == [
        "user" if t["from"] == "user" else "assistant" for t in row["conversations"]
    ]
    assert first["messages"][0]["content"][0] == {"type": "image"}
    texts = [[p["text"] for p in m["content"] if p["type"] == "text"] for m in first["messages"]]
    assert texts == [[t["value"]] for t in row["conversations"]]
    assert first["id"] == row["id"]


def test_unknown_split_exits_2(sample_folder, tmp_path, capsys):
    assert export(sample_folder, "conversation", tmp_path / "x.json", "--split", "validation") == 2
    assert "has no split 'validation'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
