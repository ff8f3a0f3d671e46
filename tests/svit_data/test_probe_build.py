"""``svit-recipe build pope-*`` and ``--exclude-images``: configs, card, decontamination, one-line errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svit_data import splits
from svit_data.cli import main
from svit_data.decontam import ExcludeList, Exclusion, check_decontaminated, image_of_file, read_exclude_list
from svit_data.errors import InputError, SvitError
from svit_data.folder import config_files, read_state
from svit_data.formats.llava import llava_features
from svit_data.pool import open_pool
from svit_data.quality import is_excluding

POPE = ["pope-random", "pope-popular", "pope-adversarial"]
COLUMNS = [
    "id",
    "image_id",
    "coco_id",
    "question",
    "answer",
    "object",
    "sampler",
    "fallback",
    "image",
    "image_file",
]


def _rows(folder: Path, config: str, split: str) -> list[dict]:
    return pq.read_table(config_files(folder, config)[split]).to_pylist()


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory, svit_cache) -> Path:
    out = tmp_path_factory.mktemp("probes") / "svit"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVIT_CACHE", str(svit_cache))
        assert main(["build", *POPE, "svit-80k", "conversation", "--out", str(out), "--quiet"]) == 0
    return out


def test_probe_configs_load_with_datasets(probe_folder, tmp_path):
    from datasets import load_dataset

    from svit_data.sample import generate_records

    drawn = {i: {t.name for t in things} for i, _, _, _, things, _ in generate_records(240)}
    for config in POPE:
        data = load_dataset(str(probe_folder), config, split="test", cache_dir=str(tmp_path))
        assert data.column_names == COLUMNS
        assert len(data) == 132  # 22 of the sample's 24 test images have 3 or more distinct things
        assert Counter(data["answer"]) == {"yes": 66, "no": 66}
        assert set(data["sampler"]) == {config.removeprefix("pope-")}
        assert set(data["image_id"]) <= splits.test_image_ids()
        for row in data.select(range(12)):
            assert row["image"].size[0] > 0 and row["image_file"] == f"{row['image_id']}.png"
            assert (row["object"] in drawn[row["image_id"]]) == (row["answer"] == "yes")
            assert row["id"].startswith(f"{config}/{row['image_id']}/")


def test_card_shows_rules_counts_and_decontamination(probe_folder):
    card = (probe_folder / "README.md").read_text()
    assert "## Probes and decontamination" in card
    assert card.count("| 24 | 22 | 22 | 132 | 66 | 66 |") == 3
    assert "adversarial sampler: the first in the order of how many probe images hold it together" in card
    assert "No train split of any config holds one of them" in card
    state = read_state(probe_folder)
    assert state.configs["pope-random"].kind == "probe"
    assert state.configs["pope-random"].source == "sample"


def test_rebuild_is_byte_identical(probe_folder, tmp_path):
    out = tmp_path / "again"
    assert main(["build", *POPE, "--out", str(out), "--quiet"]) == 0
    for config in POPE:
        assert read_state(out).configs[config].splits == read_state(probe_folder).configs[config].splits


def test_no_train_split_holds_a_probe_image(probe_folder):
    state = read_state(probe_folder)
    assert check_decontaminated(probe_folder, state) == 22
    train_images = {
        r["image_id"] for c in ("svit-80k", "conversation") for r in _rows(probe_folder, c, "train")
    }
    assert not train_images & set(state.configs["pope-random"].probe.images)
    # the check fails when a probe claims an image that a train split holds
    state.configs["pope-random"].probe.images.append(sorted(train_images)[0])
    with pytest.raises(SvitError, match=r"config 'conversation': its train split holds probe image"):
        check_decontaminated(probe_folder, state)


def _coco_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """Four VG test images linked to COCO ids 11-14 with 3-4 categories each, and one train image."""
    tests = sorted(splits.test_image_ids())[:4]
    cats = ["apple", "bus", "cat", "dog", "elephant", "hot dog", "oven", "person", "umbrella", "zebra"]
    objects = {11: [0, 1, 2], 12: [1, 2, 3, 7], 13: [2, 3, 8], 14: [4, 5, 6], 15: [0, 1, 2]}
    annotations = [
        {"id": 100 * coco + k, "image_id": coco, "category_id": c + 1, "bbox": [0, 0, 5, 5]}
        for coco, categories in objects.items()
        for k, c in enumerate(categories)
    ]
    instances = tmp_path / "instances_val2014.json"
    instances.write_text(
        json.dumps(
            {
                "images": [],
                "annotations": annotations,
                "categories": [{"id": k + 1, "name": n} for k, n in enumerate(cats)],
            }
        )
    )
    links = [*zip(tests, (11, 12, 13, 14), strict=True), (2, 15)]  # VG 2 is a train image
    image_data = tmp_path / "image_data.json"
    image_data.write_text(
        json.dumps([{"image_id": vg, "coco_id": c, "width": 9, "height": 9, "url": ""} for vg, c in links])
    )
    return instances, image_data


def test_coco_probes_from_the_cli(tmp_path, capsys):
    instances, image_data = _coco_inputs(tmp_path)
    out = tmp_path / "svit"
    args = ["build", "pope-adversarial", "--out", str(out), "--coco-instances", str(instances)]
    assert main([*args, "--image-data", str(image_data), "--quiet"]) == 0
    rows = _rows(out, "pope-adversarial", "test")
    assert len(rows) == 24 and {r["coco_id"] for r in rows} == {11, 12, 13, 14}
    by_coco = {
        11: {"apple", "bus", "cat"},
        12: {"bus", "cat", "dog", "person"},
        13: {"cat", "dog", "umbrella"},
    }
    by_coco[14] = {"elephant", "hot dog", "oven"}
    for row in rows:
        assert (row["object"] in by_coco[row["coco_id"]]) == (row["answer"] == "yes")
    questions = {r["question"] for r in rows}
    assert (
        "Is there a hot dog in the image?" in questions and "Is there an elephant in the image?" in questions
    )
    state = read_state(out).configs["pope-adversarial"]
    assert state.source == "coco-instances" and state.probe.counts["vocabulary"] == 10
    assert state.pool_fingerprint is None  # probes alone never ingest a pool
    # errors: no --image-data; a non-sample source without COCO files
    assert main([*args, "--quiet"]) == 2
    assert "--coco-instances needs --image-data" in capsys.readouterr().err
    assert main(["build", "pope-random", "--source", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "pope configs need an exhaustively annotated source" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_exclude_list_formats(tmp_path):
    path = tmp_path / "exclude.txt"
    path.write_text(
        "# benchmark images\n2345\nvg:77\n\ncoco:11\nval2014/COCO_val2014_000000000012.jpg\n"
        '000000000013.jpg\n{"question_id": 1, "image": "COCO_val2014_000000000099.jpg", "text": "x"}\n'
    )
    got = read_exclude_list(path, {11: 501, 12: 502, 13: 503})
    assert got.vg_ids == {2345, 77, 501, 502, 503} and got.listed == 6 and got.unmatched_coco == 1
    with pytest.raises(SvitError, match="give --image-data"):
        read_exclude_list(path)
    path.write_text("2345\nimage.jpg\n")
    with pytest.raises(InputError, match=r"exclude.txt: record line 2: cannot read 'image.jpg'"):
        read_exclude_list(path)


def test_exclude_images_leave_every_train_split(probe_folder, tmp_path, capsys):
    before = {c: _rows(probe_folder, c, "train") for c in ("svit-80k", "conversation")}
    images = sorted({r["image_id"] for r in before["svit-80k"]})[:3]
    listing = tmp_path / "exclude.txt"
    listing.write_text("\n".join(map(str, images)) + "\n")
    out = tmp_path / "svit"
    argv = ["build", "svit-80k", "svit-train", "conversation", "pope-random", "--out", str(out), "--quiet"]
    assert main([*argv, "--exclude-images", str(listing)]) == 0
    state = read_state(out).configs
    # a subset loses the rows of those images
    rows = before["conversation"]
    removed = [r for r in rows if r["image_id"] in images]
    assert removed and _rows(out, "conversation", "train") == [r for r in rows if r["image_id"] not in images]
    assert state["conversation"].exclusion.samples_removed == len(removed)
    assert "exclude.txt" in state["conversation"].exclusion.reason
    # a recipe never sees them: it selects its full size from the other train samples
    recipe = _rows(out, "svit-80k", "train")
    assert len(recipe) == len(before["svit-80k"]) and not {r["image_id"] for r in recipe} & set(images)
    pool_images = open_pool("sample", progress=False).table(["image_id"])["image_id"].to_pylist()
    counts = state["svit-80k"].recipe.manifest.counts
    assert counts["excluded_candidates"] == sum(i in images for i in pool_images)  # train images, every task
    assert state["svit-80k"].exclusion.samples_removed == 0
    assert state["svit-80k"].exclusion.before_selection == counts["excluded_candidates"]
    assert "exclude_images_sha256" in state["svit-80k"].recipe.manifest.parameters
    # every train sample but those images, each counted once
    train = state["svit-train"]
    assert train.exclusion.samples_removed == 0
    train_samples = sum(i not in splits.test_image_ids() for i in pool_images)
    # ... and but the samples the quality gate flags (svit_data.quality), counted once with the images
    pool_rows = open_pool("sample", progress=False).table(["image_id", "flags"]).to_pylist()
    flagged_only = sum(
        r["image_id"] not in splits.test_image_ids()
        and r["image_id"] not in images
        and is_excluding(r["flags"])
        for r in pool_rows
    )
    assert train.splits["train"].num_examples == train_samples - counts["excluded_candidates"] - flagged_only
    assert _rows(out, "conversation", "test") == _rows(probe_folder, "conversation", "test")
    assert state["pope-random"].exclusion is None
    card = (out / "README.md").read_text()
    assert f"| `conversation` | {len(removed):,} | its image is in the exclude list exclude.txt" in card
    assert f"{counts['excluded_candidates']:,} of them left the candidates before selection" in card
    listing.write_text("COCO_val2014_000000000012.jpg\n")
    assert main([*argv, "--exclude-images", str(listing)]) == 2
    assert "give --image-data" in capsys.readouterr().err


def test_image_files_name_coco_and_vg_images():
    assert image_of_file("coco/train2017/000000000012.jpg") == ("coco", 12)
    assert image_of_file("COCO_val2014_000000310196.jpg") == ("coco", 310196)
    assert image_of_file("vg/VG_100K_2/2345.jpg") == ("vg", 2345)
    assert image_of_file("gqa/images/2345.jpg") == ("vg", 2345)
    assert image_of_file("2345.jpg") == ("vg", 2345)
    assert image_of_file("ocr_vqa/images/2345.jpg") is None  # not a VG image
    assert image_of_file("textvqa/train_images/ab12.jpg") is None


def test_llava_rows_leave_by_image_file():
    files = [
        "coco/train2017/000000000012.jpg",
        "vg/VG_100K/2345.jpg",
        "gqa/images/2345.jpg",
        "ocr_vqa/images/2345.jpg",
        None,
        "COCO_val2014_000000000013.jpg",
    ]
    rows = [
        {"id": str(k), "image_file": f, "conversations": [], "source": "mix"} for k, f in enumerate(files)
    ]
    table = pa.Table.from_pylist(rows, schema=llava_features().arrow_schema)
    exclusion = Exclusion(ExcludeList("x.txt", "0" * 64, listed=2, vg_ids={2345}, coco_ids={12}))
    (kept,) = exclusion.apply("mix-665k", {"train": [table]})["train"]
    assert kept["id"].to_pylist() == ["3", "4", "5"]
    assert exclusion.state("mix-665k").samples_removed == 3


def test_probe_configs_do_not_export_as_training_data(probe_folder, tmp_path, capsys):
    argv = ["export", "pope-random", "--dir", str(probe_folder), "--split", "test", "--format", "llava"]
    assert main([*argv, "--out", str(tmp_path / "x.json")]) == 2
    assert "holds evaluation probes, not training conversations" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_probe_images_sets_the_size(tmp_path, capsys):
    out = tmp_path / "svit"
    assert (
        main(["build", "pope-popular", "--out", str(out), "--probe-images", "5", "--seed", "3", "--quiet"])
        == 0
    )
    rows = _rows(out, "pope-popular", "test")
    assert len(rows) == 30 and len({r["image_id"] for r in rows}) == 5
    assert read_state(out).configs["pope-popular"].probe.parameters == {
        "num_images": 5,
        "positives": 3,
        "min_objects": 3,
        "seed": 3,
    }
    assert main(["build", "pope-popular", "--out", str(out), "--probe-images", "0"]) == 2
    assert "--probe-images must be at least 1" in capsys.readouterr().err


def test_check_reports_a_contaminated_folder(probe_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "svit"
    shutil.copytree(probe_folder, folder)
    assert main(["check", str(folder)]) == 0
    state = json.loads((folder / "svit_build.json").read_text())
    train_image = _rows(folder, "svit-80k", "train")[0]["image_id"]
    state["configs"]["pope-random"]["probe"]["images"].append(train_image)
    (folder / "svit_build.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert main(["check", str(folder)]) == 1
    assert f"its train split holds probe image {train_image}" in capsys.readouterr().out


def test_coco_probes_embed_images_found_in_subfolders(tmp_path):
    from PIL import Image

    instances, image_data = _coco_inputs(tmp_path)
    vg_ids = sorted(splits.test_image_ids())[:4]
    for k, vg in enumerate(vg_ids[:3]):  # the fourth image is missing: its rows keep a path only
        folder = tmp_path / "images" / ("VG_100K" if k % 2 else "VG_100K_2")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (9, 9), (k * 40, 0, 0)).save(folder / f"{vg}.jpg")
    out = tmp_path / "svit"
    argv = ["build", "pope-random", "--out", str(out), "--coco-instances", str(instances)]
    assert (
        main([*argv, "--image-data", str(image_data), "--images", str(tmp_path / "images"), "--quiet"]) == 0
    )
    rows = _rows(out, "pope-random", "test")
    for row in rows:
        if row["image_id"] == vg_ids[3]:
            assert row["image"] is None and row["image_file"] == f"{vg_ids[3]}.jpg"
        else:
            assert row["image"]["bytes"][:2] == b"\xff\xd8"  # JPEG bytes embedded
            assert row["image_file"].endswith(
                f"VG_100K{'' if vg_ids.index(row['image_id']) % 2 else '_2'}/{row['image_id']}.jpg"
            )
