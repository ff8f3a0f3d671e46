"""Image overlap across sources: SVIT's VG ids meet COCO file names through image_data.json's coco_id."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from svit_data.cli import main
from svit_data.folder import read_state
from svit_data.image_overlap import file_key, image_overlap
from svit_data.sample import sample_dir
from svit_data.sources import SourceSpec, open_sources


def llava(path: Path, images: list[str]) -> Path:
    records = [
        {
            "id": str(n),
            "image": image,
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is shown here?"},
                {"from": "gpt", "value": "A picture."},
            ],
        }
        for n, image in enumerate(images)
    ]
    path.write_text(json.dumps(records))
    return path


def test_file_keys():
    links = {123456: 77}
    assert file_key("coco/train2017/000000123456.jpg", links) == ("vg", 77)
    assert file_key("COCO_val2014_000000123456.jpg", {}) == ("coco", 123456)
    assert file_key("vg/VG_100K_2/15.jpg", links) == ("vg", 15)
    assert file_key("gqa/images/2354786.jpg", links) == ("vg", 2354786)
    assert file_key("ScienceQA/5/Image.png", links) == ("file", "scienceqa/5/image.png")
    assert file_key("15.jpg", links) == ("vg", 15)


def test_shared_images_per_pair_of_sources(tmp_path, svit_cache):
    """The sample's images with made-up COCO ids; a LLaVA source naming two of them by COCO file name, one
    by VG path, one by GQA path, plus images of its own; a second source sharing only the latter."""
    data = json.loads((sample_dir() / "image_data.json").read_text())
    vg = [d["image_id"] for d in data[:4]]
    coco = {vg[0]: 500001, vg[1]: 500002}
    for item in data:
        item["coco_id"] = coco.get(item["image_id"])
    image_data = tmp_path / "image_data.json"
    image_data.write_text(json.dumps(data))
    inst = llava(
        tmp_path / "inst.json",
        [
            "coco/train2017/000000500001.jpg",
            "coco/train2017/000000500002.jpg",
            "coco/train2017/000000500002.jpg",  # the same image twice counts once
            f"vg/VG_100K/{vg[2]}.jpg",
            f"gqa/images/{vg[3]}.jpg",
            "coco/train2017/000000999999.jpg",
            "ocr_vqa/images/abc.jpg",
        ],
    )
    other = llava(
        tmp_path / "other.json", ["coco/train2017/000000999999.jpg", "OCR_VQA/images/ABC.jpg", "x.png"]
    )
    specs = [SourceSpec("svit", "sample"), SourceSpec("inst", str(inst)), SourceSpec("other", str(other))]
    pool = open_sources(specs, progress=False)
    sample_images = len(pc.unique(pool.table(["image_id"])["image_id"].drop_null()))
    assert set(vg) <= set(pool.table(["image_id"])["image_id"].to_pylist())
    overlap = image_overlap(pool, {c: v for v, c in coco.items()}, image_data)
    assert overlap["images"] == {"svit": sample_images, "inst": 6, "other": 3}
    assert overlap["shared"] == [["svit", "inst", 4], ["svit", "other", 0], ["inst", "other", 2]]
    assert image_overlap(pool)["shared"][0] == ["svit", "inst", 2]  # without links: the VG/GQA names only
    import svit_data.image_overlap as module

    with pytest.MonkeyPatch.context() as patch:  # cached per pool and links: not read again
        patch.setattr(module, "source_images", lambda *a: pytest.fail("image names read again"))
        assert image_overlap(pool, {c: v for v, c in coco.items()}, image_data) == overlap
        assert image_overlap(pool)["shared"][0] == ["svit", "inst", 2]
    assert image_overlap(open_sources(specs[:1], progress=False)) is None

    out = tmp_path / "svit"
    sources = [a for s in specs for a in ("--source", f"{s.name}={s.path}")]
    assert (
        main(["build", "full", *sources, "--image-data", str(image_data), "--out", str(out), "--quiet"]) == 0
    )
    assert read_state(out).configs["full"].image_overlap == {**overlap, "image_data": "image_data.json"}
    card = (out / "README.md").read_text()
    assert (
        f"| svit | {sample_images:,} | inst | 6 | 4 |" in card
        and "through `image_data.json` (2 COCO ids)" in card
    )
    # without --image-data: the image_data.json beside the sample's task files (no coco_id there)
    assert main(["build", "full", *sources, "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    plain = read_state(tmp_path / "plain").configs["full"].image_overlap
    assert plain["coco_links"] == 0 and plain["shared"][0] == ["svit", "inst", 2]


def test_real_vg_image_data_and_llava_records(tmp_path, svit_cache, shared_fixtures):
    """Real files: VG's image_data.json (urls under VG_100K_2, coco_id null) and ScienceQA's LLaVA records,
    whose images are all called image.png in folders of their own."""
    from svit_data.builders.probe_sources import read_coco_links

    image_data = shared_fixtures / "visual_genome" / "image_data.json"
    records = json.loads((shared_fixtures / "llava" / "scienceqa_llava_format.sample.json").read_text())
    images = {r["image"].lower() for r in records if r.get("image")}
    science = tmp_path / "science.json"
    science.write_text(json.dumps(records))
    urls = [d["url"].split("/", 5)[-1] for d in json.loads(image_data.read_text())[:3]]  # VG_100K_2/1.jpg
    vg = llava(tmp_path / "vg.json", [*urls, "5/image.png"])
    pool = open_sources([SourceSpec("science", str(science)), SourceSpec("vg", str(vg))], progress=False)
    links = read_coco_links(image_data)[0]
    overlap = image_overlap(pool, links, image_data)
    assert overlap["coco_links"] == 0 and overlap["images"] == {"science": len(images), "vg": 4}
    assert overlap["shared"] == [["science", "vg", 1]]
    assert {file_key(u, links) for u in urls} == {("vg", 1), ("vg", 2), ("vg", 3)}
