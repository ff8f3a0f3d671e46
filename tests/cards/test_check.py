"""``svit-recipe check``: a good folder passes; each kind of breakage is found and named."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from svit_data import viewer
from svit_data.cli import main
from svit_data.viewer import inspect_parquet, split_count_problems


def check(folder: Path, capsys) -> tuple[int, str]:
    code = main(["check", str(folder)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_built_folder_passes(folder: Path, capsys):
    code, out = check(folder, capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == [
        "config",
        "split",
        "rows",
        "files",
        "viewer",
        "load",
        "schema",
        "stream",
        "images",
        "status",
    ]
    assert sum(line.startswith(("full ", "detail-description ")) for line in lines) == 4
    assert all(line.split()[-1] == "ok" for line in lines[1:5])
    assert lines[-1] == "4 splits checked in 2 configs: all ok"


def test_stray_and_missing_files_fail(folder: Path, capsys):
    shard = next((folder / "data" / "full").glob("test-*.parquet"))
    (folder / "data" / "full" / "test-00009-of-00009-stale.parquet").write_bytes(shard.read_bytes())
    code, out = check(folder, capsys)
    assert code == 1 and "is not part of the build" in out
    (folder / "data" / "full" / "test-00009-of-00009-stale.parquet").unlink()
    shard.unlink()
    code, out = check(folder, capsys)
    assert code == 1 and f"data/full/{shard.name} is missing" in out


def test_card_counts_that_disagree_fail(folder: Path, capsys):
    card = folder / "README.md"
    card.write_text(card.read_text().replace("default: true", "default: false"))
    code, out = check(folder, capsys)
    assert code == 1 and "exactly one config must be the default" in out
    fails = sum(line.startswith("FAIL ") for line in out.splitlines())
    assert out.splitlines()[-1] == f"4 splits checked in 2 configs: {fails} problems" and fails > 1


def test_report_counts_read_as_english():
    from svit_data.cli.check import counted

    assert [counted(n, "problem") for n in (0, 1, 2)] == ["0 problems", "1 problem", "2 problems"]
    assert counted(1, "config") == "1 config" and counted(5920, "split") == "5,920 splits"


def test_check_removes_the_staging_folders_of_killed_builds(folder: Path, capsys, caplog):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process id that no process has: the build that used it was killed
    stale = folder.with_name(f".{folder.name}.building-{child.pid}")
    (stale / "data").mkdir(parents=True)
    with caplog.at_level("WARNING", logger="svit_data.atomic"):
        code, out = check(folder, capsys)
    assert code == 0, out
    assert not stale.exists()
    assert [r.getMessage() for r in caplog.records if r.name == "svit_data.atomic"] == [
        f"removed 1 leftover of killed runs beside {folder.resolve()}: {stale.name}"
    ]


def test_a_hand_edited_card_body_fails(folder: Path, capsys):
    card = folder / "README.md"
    text = card.read_text()
    line = text[: text.index("## Splits")].count("\n") + 1
    card.write_text(text.replace("## Splits", "## Splits (edited by hand)"))
    code, out = check(folder, capsys)
    assert code == 1 and f"line {line} of the card differs from the one the build state renders" in out


def test_an_undecodable_image_fails(folder: Path, capsys):
    shard = next((folder / "data" / "detail-description").glob("test-*.parquet"))
    table = pq.read_table(shard)
    images = table["image"].to_pylist()
    images[0] = {"bytes": b"not an image", "path": images[0]["path"]}
    table = table.set_column(
        table.schema.get_field_index("image"), "image", pa.array(images, table["image"].type)
    )
    pq.write_table(table, shard, write_page_index=True)
    code, out = check(folder, capsys)
    assert code == 1 and "row 0: its image does not decode" in out


def test_bad_input_is_exit_2(tmp_path: Path, folder: Path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "not a dataset folder built by svit" in capsys.readouterr().err
    card = folder / "README.md"
    card.write_text(card.read_text().replace("configs:\n", "configs: {\n", 1))
    assert main(["check", str(folder)]) == 2
    assert "YAML header is broken" in capsys.readouterr().err


def test_viewer_limits(tmp_path: Path, monkeypatch):
    from svit_data.folder import _parquet_schema
    from svit_data.schema import FEATURES

    rows = [
        {"id": f"conversation/{i}/0", "image": {"bytes": None, "path": f"{i}.jpg"}, "conversations": []}
        for i in range(50)
    ]
    table = pa.Table.from_pylist(rows).cast(
        pa.schema(
            [_parquet_schema(FEATURES).field(n) for n in ("id", "image", "conversations")]
        ).with_metadata(_parquet_schema(FEATURES).metadata)
    )
    path = tmp_path / "train-00000-of-00001-x.parquet"
    pq.write_table(table, path, row_group_size=50, write_page_index=False)
    monkeypatch.setattr(viewer, "MAX_ROW_GROUP_BYTES", 100)
    report = inspect_parquet(path)
    text = " ".join(report.problems)
    assert "row group holds" in text and "without a page index" in text
    assert "50 images are stored as paths only" in text
    pq.write_table(pa.table({"a": [1]}), path)
    assert "declares no features" in " ".join(inspect_parquet(path).problems)
    assert split_count_problems("c", [f"s{i}" for i in range(31)])[0].startswith("config 'c' has 31 splits")
    assert "contains a dash" in split_count_problems("c", ["train-a"])[0]
