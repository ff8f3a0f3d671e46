"""The dataset folder: every config loads (and streams) exactly the rows written; builds are atomic;
rebuilds are never served stale by the datasets cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Features, Image, load_dataset

from svit_data import splits
from svit_data.cli import main
from svit_data.errors import SvitError
from svit_data.folder import STATE_FILE, DatasetFolder, SplitWriter, config_files, read_state
from svit_data.materialize import ConfigRows
from svit_data.schema import FEATURES

SUBSETS = {
    "full": None,
    "conversation": "conversation",
    "complex-reasoning": "complex_reasoning",
    "referring-qa": "referring_qa",
    "detail-description": "detail_description",
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def card_yaml(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


def written_rows(folder: Path, config: str, split: str) -> list[dict]:
    return pq.read_table(config_files(folder, config)[split]).to_pylist()


def without_images(rows):
    return [{k: v for k, v in r.items() if k != "image"} for r in rows]


def test_layout_card_and_state(sample_folder, sample_pool):
    state = read_state(sample_folder)
    assert set(state.configs) == set(SUBSETS)
    for config in SUBSETS:
        for split in ("train", "test"):
            (shard,) = config_files(sample_folder, config)[split]
            assert shard.parent == sample_folder / "data" / config
            assert shard.name.startswith(f"{split}-00000-of-00001-") and shard.suffix == ".parquet"
    meta = card_yaml(sample_folder)
    assert {c["config_name"] for c in meta["configs"]} == set(SUBSETS)
    (default,) = [c for c in meta["configs"] if c.get("default")]
    assert default["config_name"] == "full"
    conversation = next(c for c in meta["configs"] if c["config_name"] == "conversation")
    assert conversation["data_files"] == [
        {"split": "test", "path": "data/conversation/test-*.parquet"},
        {"split": "train", "path": "data/conversation/train-*.parquet"},
    ]
    for info in meta["dataset_info"]:
        splits = {s["name"]: s["num_examples"] for s in info["splits"]}
        config = info["config_name"]
        assert splits == {
            s: pq.ParquetFile(f[0]).metadata.num_rows for s, f in config_files(sample_folder, config).items()
        }
        assert {f["name"] for f in info["features"]} >= {"id", "image", "conversations", "image_id"}
    assert (
        sum(state.configs["full"].splits[s].num_examples for s in ("train", "test")) == sample_pool.num_rows
    )


def test_rows_are_the_pool_rows_with_images_embedded(sample_folder, sample_pool):
    pool = sample_pool.table(list(FEATURES))  # the sample columns, flags included (not the signals)
    tests = splits.test_image_ids()
    for config, task in SUBSETS.items():
        expected = pool if task is None else pool.filter(pc.equal(pool["task"], task))
        train = written_rows(sample_folder, config, "train")
        test = written_rows(sample_folder, config, "test")
        assert all(r["image_id"] in tests for r in test) and not any(r["image_id"] in tests for r in train)
        got = sorted(without_images(train + test), key=lambda r: r["id"])
        assert got == sorted(without_images(expected.to_pylist()), key=lambda r: r["id"])
        for row in (train + test)[:: max(1, len(train) // 50)]:
            assert row["image"]["bytes"] == (sample_pool.images_root / row["image_file"]).read_bytes()


@pytest.mark.parametrize("config", list(SUBSETS))
def test_load_dataset_and_streaming_return_exactly_the_rows_written(sample_folder, config, tmp_path):
    for split in ("train", "test"):
        expected = written_rows(sample_folder, config, split)
        loaded = load_dataset(str(sample_folder), config, split=split, cache_dir=str(tmp_path / "hf"))
        loaded = loaded.cast_column("image", Image(decode=False))
        assert loaded.num_rows == len(expected)
        assert loaded.column_names == list(FEATURES)  # declared order, not the state file's sorted keys
        assert loaded.to_list() == expected
        streamed = load_dataset(str(sample_folder), config, split=split, streaming=True)
        streamed = streamed.cast_column("image", Image(decode=False))
        assert list(streamed) == expected
        assert list(streamed.features) == list(FEATURES)


def test_images_decode_as_pictures(sample_folder, tmp_path):
    dataset = load_dataset(str(sample_folder), "detail-description", split="test", cache_dir=str(tmp_path))
    row = dataset[0]
    assert row["image"].size == (row["width"], row["height"])


def build(out: Path, *configs: str, source: str = "sample") -> int:
    return main(["build", *configs, "--source", source, "--out", str(out), "--quiet"])


@pytest.fixture
def built(tmp_path) -> Path:
    out = tmp_path / "svit"
    assert build(out, "conversation", "detail-description") == 0
    return out


def test_a_build_failing_mid_write_leaves_the_previous_folder_byte_identical(built, monkeypatch):
    before = snapshot(built)
    calls = []
    real_write = SplitWriter.write

    def failing_write(self, table):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk full")
        real_write(self, table)

    monkeypatch.setattr(SplitWriter, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        build(built, "referring-qa", "conversation")
    assert snapshot(built) == before
    assert sorted(p.name for p in built.parent.iterdir()) == ["svit"]  # no staging folder left behind


def test_a_build_failing_at_the_card_leaves_the_previous_folder_byte_identical(built, monkeypatch):
    before = snapshot(built)

    def broken_card(state):
        raise RuntimeError("template error")

    monkeypatch.setattr("svit_data.cards.render_card", broken_card)
    with pytest.raises(RuntimeError, match="template error"):
        build(built, "referring-qa")  # the state would change: it must not leak into the live folder
    assert snapshot(built) == before
    assert sorted(p.name for p in built.parent.iterdir()) == ["svit"]


def test_a_rebuild_adds_configs_and_keeps_the_others(built, tmp_path):
    before = snapshot(built)
    assert build(built, "referring-qa") == 0
    after = snapshot(built)
    assert set(read_state(built).configs) == {"conversation", "detail-description", "referring-qa"}
    kept = [k for k in before if k.startswith("data/conversation/")]
    assert kept and all(after[k] == before[k] for k in kept)
    assert (
        load_dataset(str(built), "conversation", split="train", cache_dir=str(tmp_path / "hf")).num_rows > 0
    )


def test_rebuild_after_a_source_change_is_not_served_stale(tmp_path):
    from svit_data.sample import sample_dir

    source = tmp_path / "source"
    shutil.copytree(sample_dir(), source)
    out, cache = tmp_path / "svit", str(tmp_path / "hf")
    assert build(out, "detail-description", source=str(source)) == 0
    first = load_dataset(str(out), "detail-description", split="train", cache_dir=cache)
    old_text = first[0]["conversations"][1]["value"]
    records = json.loads((source / "detail_description.json").read_text(encoding="utf-8"))
    (changed,) = [r for r in records if r["conversations"][0]["content"][1]["value"] == old_text]
    changed["conversations"][0]["content"][1]["value"] = "A rewritten description."
    (source / "detail_description.json").write_text(json.dumps(records))
    assert build(out, "detail-description", source=str(source)) == 0
    second = load_dataset(str(out), "detail-description", split="train", cache_dir=cache)
    assert second[0]["id"] == first[0]["id"]
    assert second[0]["conversations"][1]["value"] == "A rewritten description."
    assert second.num_rows == first.num_rows


def test_output_that_svit_did_not_build_is_refused(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SvitError, match="did not build"):
        DatasetFolder(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(SvitError, match="not a folder"):
        DatasetFolder(tmp_path / "file")
    with pytest.raises(SvitError, match="cannot write"):
        DatasetFolder(tmp_path / "file" / "svit")


def test_a_folder_left_aside_by_a_killed_build_is_restored(built):
    before = snapshot(built)
    aside = built.with_name(f".{built.name}.old-99999")
    built.rename(aside)  # a build killed between its two renames
    with DatasetFolder(built) as folder:
        folder.abort()
    assert snapshot(built) == before and not aside.exists()


def test_a_later_build_removes_the_staging_folders_of_killed_builds(built, caplog):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now the pid of no process: a build killed with SIGKILL
    stale = [
        built.with_name(f".{built.name}.building-{child.pid}"),  # the staging name of older versions
        built.with_name(f".{built.name}.tmp-{child.pid}-0123abcd"),
    ]
    for folder in stale:
        shutil.copytree(built, folder)
    with caplog.at_level("WARNING", logger="svit_data.atomic"):
        assert build(built, "conversation") == 0
    assert sorted(p.name for p in built.parent.iterdir()) == [built.name]
    (record,) = [r for r in caplog.records if r.name == "svit_data.atomic"]
    assert all(folder.name in record.getMessage() for folder in stale)


def test_a_folder_swap_refused_by_the_system_exits_2_and_keeps_the_old_folder(built, capsys, monkeypatch):
    before = snapshot(built)

    def refuse(stage, out, **_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("svit_data.folder.swap_in", refuse)
    assert build(built, "conversation") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"svit-recipe build: error: cannot replace the output folder {built} (Permission denied); "
        "it was left as it was"
    ]
    assert snapshot(built) == before
    assert sorted(p.name for p in built.parent.iterdir()) == [built.name]


def test_empty_config_is_an_error(tmp_path):
    from svit_data.schema import FEATURES

    with pytest.raises(SvitError, match="no rows"), DatasetFolder(tmp_path / "svit") as folder:
        rows = ConfigRows("empty", "", FEATURES, {"train": []}, kind="subset")
        folder.write_config(rows, source="sample")
    assert list(tmp_path.iterdir()) == []


def test_read_state_and_config_files_errors(built, tmp_path):
    with pytest.raises(SvitError, match=STATE_FILE):
        read_state(tmp_path)
    with pytest.raises(SvitError, match="not built"):
        config_files(built, "referring-qa")


def test_parquet_metadata_uses_types_that_older_datasets_readers_know(sample_folder):
    """No datasets>=4-only "List" type in the shards: lists of structs as [struct], lists of values as
    Sequence, decoding to exactly the declared features with today's reader."""
    shard = next((sample_folder / "data" / "full").glob("train-*.parquet"))
    encoded = json.loads(pq.read_schema(shard).metadata[b"huggingface"])["info"]["features"]
    assert '"List"' not in json.dumps(encoded)
    assert isinstance(encoded["conversations"], list) and set(encoded["conversations"][0]) == {
        "from",
        "value",
    }
    assert encoded["provenance"]["source_ids"]["_type"] == "Sequence"
    assert Features.from_dict(encoded) == FEATURES
