"""Probe sources: COCO instances joined to VG test images (real fixtures, hand-made files), the sample."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from svit_data import splits
from svit_data.builders.probe_sources import (
    coco_source,
    read_coco_categories,
    read_coco_links,
    sample_source,
)
from svit_data.builders.probes import ADVERSARIAL, NO, SAMPLERS, YES, ProbeParams, build_probes
from svit_data.errors import InputError


def _fixture_categories(path: Path) -> dict[int, set[str]]:
    data = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    present = defaultdict(set)
    for ann in data["annotations"]:
        present[ann["image_id"]].add(names[ann["category_id"]])
    return dict(present)


def test_real_coco_instances_give_the_80_categories_and_every_annotated_image(shared_fixtures):
    path = shared_fixtures / "coco" / "instances_val2017.sample.json"
    present, vocabulary = read_coco_categories([path])
    assert len(vocabulary) == 80 and "person" in vocabulary and "hot dog" in vocabulary
    # "first 100 of each list": most annotations point at images missing from 'images'; presence needs no size
    assert present == _fixture_categories(path)
    assert len(present) == 84 and max(len(v) for v in present.values()) == 3


def test_real_vg_image_data_has_no_coco_links(shared_fixtures):
    to_vg, files = read_coco_links(shared_fixtures / "visual_genome" / "image_data.json")
    assert to_vg == {} and files[1] == "1.jpg" and len(files) == 30


def _image_data(tmp_path: Path, links: dict[int, int]) -> Path:
    """A VG image_data.json linking VG ids (keys) to COCO ids (values), plus one unlinked image."""
    items = [
        {"image_id": vg, "coco_id": coco, "width": 640, "height": 480, "url": f"https://x/VG_100K/{vg}.jpg"}
        for vg, coco in links.items()
    ]
    items.append({"image_id": 1, "coco_id": None, "width": 10, "height": 10, "url": ""})
    path = tmp_path / "image_data.json"
    path.write_text(json.dumps(items))
    return path


def test_real_coco_probes_for_linked_test_images(shared_fixtures, tmp_path):
    instances = shared_fixtures / "coco" / "instances_val2017.sample.json"
    expected = _fixture_categories(instances)
    tests = sorted(splits.test_image_ids())
    coco_ids = sorted(expected, key=lambda c: (-len(expected[c]), c))  # the 3-category image first
    links = {tests[k]: coco for k, coco in enumerate(coco_ids[:40])}
    links[2] = coco_ids[41]  # VG 2 is not a test image: never probed
    source = coco_source([instances], _image_data(tmp_path, links))
    assert set(source.objects) == {vg for vg in links if vg != 2}
    for vg, names in source.objects.items():
        assert names == expected[links[vg]] and source.coco_ids[vg] == links[vg]
        assert source.image_files[vg] == f"{vg}.jpg"
    # one fixture image has 3 categories: with POPE's rules it is the only probe image
    probes = build_probes(source.objects, source.vocabulary, ADVERSARIAL, ProbeParams())
    rich = [vg for vg, names in source.objects.items() if len(names) >= 3]
    assert probes.images == rich and len(probes.probes) == 6
    (image,) = rich
    assert {p.object for p in probes.probes if p.answer == YES} == source.objects[image]
    assert not {p.object for p in probes.probes if p.answer == NO} & source.objects[image]
    # looser parameters reach every linked image, still with no negative present in its image
    loose = ProbeParams(num_images=500, positives=1, min_objects=1)
    for sampler in SAMPLERS:
        got = build_probes(source.objects, source.vocabulary, sampler, loose)
        assert len(got.images) == 40 and len(got.probes) == 80
        assert all(p.object not in source.objects[p.image_id] for p in got.probes if p.answer == NO)


def _coco_file(tmp_path: Path, annotations: list[dict], categories: list[dict]) -> Path:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": [], "annotations": annotations, "categories": categories}))
    return path


def test_crowd_annotations_count_as_present_and_several_files_merge(tmp_path):
    cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]
    first = _coco_file(
        tmp_path, [{"image_id": 5, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 1, 1]}], cats
    )
    second = tmp_path / "second.json"
    second.write_text(
        json.dumps(
            {
                "annotations": [{"image_id": 5, "category_id": 3}, {"image_id": 6, "category_id": 3}],
                "categories": [{"id": 3, "name": "apple"}],
            }
        )
    )
    present, vocabulary = read_coco_categories([first, second], keep={5})
    assert present == {5: {"person", "apple"}} and vocabulary == ("apple", "dog", "person")


def test_bad_coco_files_name_file_and_field(tmp_path):
    path = _coco_file(tmp_path, [{"image_id": 5, "category_id": 9}], [{"id": 1, "name": "dog"}])
    with pytest.raises(InputError, match=r"instances.json: field 'category_id': .*category 9"):
        read_coco_categories([path])
    path = _coco_file(tmp_path, [{"category_id": 1}], [{"id": 1, "name": "dog"}])
    with pytest.raises(InputError, match=r"instances.json: record 0: field 'image_id'"):
        read_coco_categories([path])
    path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(InputError, match="categories"):
        read_coco_categories([path])
    with pytest.raises(InputError, match="not found"):
        read_coco_categories([tmp_path / "missing.json"])
    bad = tmp_path / "image_data.json"
    bad.write_text(json.dumps([{"image_id": "x"}]))
    with pytest.raises(InputError, match=r"image_data.json: record 0: field 'image_id'"):
        read_coco_links(bad)


def test_sample_source_is_the_drawn_things_of_test_images():
    from svit_data.sample import SAMPLE_IMAGES, THINGS, generate_records

    source = sample_source()
    drawn = {i: {t.name for t in things} for i, _, _, _, things, _ in generate_records(SAMPLE_IMAGES)}
    assert set(source.objects) == {i for i in drawn if i in splits.test_image_ids()}
    assert len(source.objects) == 24
    assert all(source.objects[i] == drawn[i] for i in source.objects)
    assert set(source.vocabulary) == {*THINGS, "sign"}
    assert source.image_files[next(iter(source.objects))].endswith(".png")
