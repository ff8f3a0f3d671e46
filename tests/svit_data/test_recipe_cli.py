"""svit-recipe build / list through ``svit_data.cli.main``: outputs, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from svit_data.cli import main
from svit_data.configs import CONFIGS
from svit_data.folder import read_state
from svit_data.tasks import TASK_FILES

REQUIRED = ["full", "conversation", "complex-reasoning", "referring-qa", "detail-description"]


def test_list_prints_every_config_with_its_description(capsys, tmp_path):
    assert main(["list", "--dir", str(tmp_path / "none")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CONFIGS)
    for name in REQUIRED:
        (line,) = [line for line in lines if line.split()[0] == name]
        assert CONFIGS[name].description in line and "subset" in line
        assert CONFIGS[name].description.count("\n") == 0


def test_list_says_when_dir_is_not_a_dataset_folder(capsys, tmp_path):
    assert main(["list", "--dir", str(tmp_path / "nope")]) == 0
    captured = capsys.readouterr()
    assert f"note: {tmp_path / 'nope'} does not exist" in captured.err and "full" in captured.out
    assert main(["list", "--dir", str(tmp_path)]) == 0
    assert "is not a dataset folder built by svit" in capsys.readouterr().err


def test_list_shows_built_rows(capsys, sample_folder):
    assert main(["list", "--dir", str(sample_folder)]) == 0
    out = capsys.readouterr().out
    state = read_state(sample_folder)
    n = state.configs["conversation"].splits["train"].num_examples
    (line,) = [line for line in out.splitlines() if line.startswith("conversation ")]
    assert f"train {n:,}" in line
    (line,) = [line for line in out.splitlines() if line.startswith("core-150k ")]
    assert "built" not in line


def test_build_writes_the_requested_configs(tmp_path, capsys):
    out = tmp_path / "svit"
    assert main(["build", "conversation", "referring-qa", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote conversation, referring-qa to {out}" in printed
    assert f"load it with: load_dataset({str(out)!r}, 'conversation', split='train')" in printed
    assert set(read_state(out).configs) == {"conversation", "referring-qa"}
    assert sorted(p.name for p in (out / "data").iterdir()) == ["conversation", "referring-qa"]


@pytest.fixture
def source(tmp_path) -> Path:
    """A writable copy of the bundled sample's task files (no images)."""
    from svit_data.sample import sample_dir

    folder = tmp_path / "source"
    folder.mkdir()
    for name in [*TASK_FILES.values(), "image_data.json"]:
        shutil.copy(sample_dir() / name, folder / name)
    return folder


def corrupt(source: Path, task: str, index: int, change) -> None:
    path = source / TASK_FILES[task]
    records = json.loads(path.read_text())
    change(records[index])
    path.write_text(json.dumps(records))


def set_from(record):
    record["conversations"][0]["content"][2]["from"] = "assistant"


def set_box(value):
    def change(record):
        record["conversations"][0]["content"][1]["value"] = f"The <st>cat<ed> {value} sits."

    return change


BAD_SOURCES = {
    "missing image_id": (
        "conversation",
        3,
        lambda r: r.pop("image_id"),
        ["record 3", "'image_id'", "missing"],
    ),
    "missing conversations": (
        "detail_description",
        5,
        lambda r: r.pop("conversations"),
        ["record 5", "'conversations'", "missing"],
    ),
}


# problems inside an SVIT record: the build goes on and flags the sample (errors only with --strict,
# tests/svit_data/test_quality_ingest.py)
FLAGGED_SOURCES = {
    "unknown from": (
        "complex_reasoning",
        7,
        set_from,
        ["turn_order"],
    ),
    "box outside 0-1": (
        "referring_qa",
        2,
        set_box("[0.1, 0.2, 1.4, 0.5]"),
        ["box_out_of_range"],
    ),
    "box x2 < x1": (
        "referring_qa",
        9,
        set_box("[0.6, 0.2, 0.4, 0.5]"),
        ["box_reversed"],
    ),
}


@pytest.mark.parametrize("case", list(FLAGGED_SOURCES))
def test_record_problems_are_flagged_and_the_build_goes_on(case, source, tmp_path):
    task, index, change, parts = FLAGGED_SOURCES[case]
    corrupt(source, task, index, change)
    out = tmp_path / "svit"
    args = ["build", "full", "--source", str(source), "--out", str(out), "--quiet", "--no-repair"]
    assert main(args) == 0
    from datasets import load_dataset

    image_id = json.loads((source / TASK_FILES[task]).read_text())[index]["image_id"]
    full = load_dataset(str(out), "full", cache_dir=str(tmp_path / "hf"))
    flags = {
        flag
        for split in full.values()
        for row in split
        if row["image_id"] == image_id and row["task"] == task
        for flag in row["flags"]
    }
    assert parts[-1] in flags


def assert_one_line_error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("svit-recipe")]
    assert len(errors) == 1, err
    line = errors[0]
    assert line.startswith("svit-recipe build: error: ") or line.startswith("svit-recipe")
    for part in parts:
        assert part in line, line
    return line


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_records_exit_2_with_one_line_and_no_output(case, source, tmp_path, capsys, svit_cache):
    task, index, change, parts = BAD_SOURCES[case]
    corrupt(source, task, index, change)
    pools_before = set((svit_cache / "pools").glob("*")) if (svit_cache / "pools").exists() else set()
    out = tmp_path / "svit"
    assert main(["build", "full", "--source", str(source), "--out", str(out), "--quiet"]) == 2
    assert_one_line_error(capsys, str(source / TASK_FILES[task]), *parts)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["source"]
    assert set((svit_cache / "pools").glob("*")) == pools_before  # no partial pool either


def test_malformed_json_exits_2(source, tmp_path, capsys):
    path = source / TASK_FILES["conversation"]
    text = path.read_text()
    cut = text.index('{"image_id"', 1000)
    path.write_text(text[:cut] + '{"image_id": 5, "conversations": [}' + text[cut:])
    out = tmp_path / "svit"
    assert main(["build", "conversation", "--source", str(source), "--out", str(out), "--quiet"]) == 2
    line = assert_one_line_error(capsys, str(path), "malformed JSON")
    assert "record " in line
    assert not out.exists()


def test_bad_records_do_not_touch_an_existing_folder(source, tmp_path, capsys):
    out = tmp_path / "svit"
    assert main(["build", "referring-qa", "--source", str(source), "--out", str(out), "--quiet"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    corrupt(source, "referring_qa", 0, lambda r: r.update(image_id="7"))
    assert main(["build", "referring-qa", "--source", str(source), "--out", str(out), "--quiet"]) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_unknown_config_exits_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "svit"
    assert main(["build", "conversation", "core-1m", "--out", str(out), "--quiet"]) == 2
    line = assert_one_line_error(capsys, "unknown config 'core-1m'", "known configs: full")
    assert line.startswith("svit-recipe build: error:")
    assert not out.exists()


def test_unknown_format_exits_2(tmp_path, capsys, sample_folder):
    out = tmp_path / "out.json"
    code = main(
        ["export", "conversation", "--format", "yaml", "--dir", str(sample_folder), "--out", str(out)]
    )
    assert code == 2
    assert_one_line_error(capsys, "yaml")
    assert not out.exists()


def test_unwritable_output_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["build", "conversation", "--out", str(blocker / "svit"), "--quiet"]) == 2
    assert_one_line_error(capsys, str(blocker / "svit"))
    assert main(["build", "conversation", "--out", str(blocker), "--quiet"]) == 2
    assert_one_line_error(capsys, "not a folder")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("..", "not a valid config name"),
        ("../evil", "not a valid config name"),
        ("a b", "not a valid config name"),
        (".hidden", "not a valid config name"),
        ("conversation", "is a registered config"),
        ("core-150k", "is a registered config"),
    ],
)
def test_bad_custom_names_exit_2_before_any_work(name, message, tmp_path, capsys):
    out = tmp_path / "work" / "svit"
    out.parent.mkdir()
    assert main(["build", "core-150k", "--size", "5", "--name", name, "--out", str(out), "--quiet"]) == 2
    assert_one_line_error(capsys, f"--name {name!r}", message)
    assert list(tmp_path.iterdir()) == [out.parent] and list(out.parent.iterdir()) == []


def test_export_under_a_file_exits_2(tmp_path, capsys, sample_folder):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "x.json"
    for fmt in ("llava", "messages"):
        argv = ["export", "conversation", "--format", fmt, "--dir", str(sample_folder), "--out", str(out)]
        assert main(argv) == 2
        assert_one_line_error(capsys, f"cannot create the output folder {blocker}")
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and blocker.read_text() == "not a folder"


def test_source_errors_exit_2(tmp_path, capsys):
    assert main(["build", "full", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert_one_line_error(capsys, "nowhere: does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["build", "full", "--source", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert_one_line_error(capsys, "holds neither SVIT task files")
    (empty / "svit.json").write_text("[]")
    assert main(["build", "full", "--source", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert_one_line_error(capsys, "only svit.json")
    assert not (tmp_path / "o").exists()


def test_unknown_subcommand_is_an_argparse_error():
    with pytest.raises(SystemExit) as caught:
        main(["fly"])
    assert caught.value.code == 2


@pytest.mark.parametrize("flag", [["--size", "10"], ["--task-mix", "free"], ["--name", "mine"]])
def test_recipe_flags_on_a_subset_are_an_error_not_ignored(tmp_path, capsys, flag):
    assert main(["build", "conversation", *flag, "--out", str(tmp_path / "svit"), "--quiet"]) == 2
    assert f"{flag[0]} applies to recipes only" in capsys.readouterr().err
    assert not (tmp_path / "svit").exists()


def test_load_line_names_svit_only_for_svit_in_the_working_directory(tmp_path):
    from svit_data.cli.build import load_line

    assert load_line(tmp_path / "svit", "full", cwd=tmp_path) == "load_dataset('svit', 'full', split='train')"
    other = tmp_path / "data" / "svit"
    assert load_line(other, "full", cwd=tmp_path) == f"load_dataset({str(other)!r}, 'full', split='train')"
