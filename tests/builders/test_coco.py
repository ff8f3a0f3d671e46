"""COCO captions and instances streamed and joined on VG's coco_id: same answers as pycocotools on the
whole file for the linked images, located errors, and memory that does not grow with the file."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from svit_data.builders.coco import load_captions, load_instances
from svit_data.errors import InputError

CAPTION_SAMPLES = ("captions_val2017.sample.json", "captions_val2014.sample.json")


def _whole_file_captions(path: Path) -> dict[int, list[str]]:
    """What pycocotools gives when it loads the whole file (the behaviour before streaming)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    out: dict[int, list[str]] = {}
    for ann_id in sorted(coco.anns):
        ann = coco.anns[ann_id]
        text = " ".join(ann["caption"].split())
        if text not in out.setdefault(ann["image_id"], []):
            out[ann["image_id"]].append(text)
    return out


@pytest.mark.parametrize("name", CAPTION_SAMPLES)
def test_captions_of_linked_images_match_the_whole_file(shared_fixtures, name):
    path = shared_fixtures / "coco" / name
    whole = _whole_file_captions(path)
    linked = set(sorted(whole)[::2]) | {123456789}  # every other image, and one the file does not have
    assert load_captions([path], keep=linked) == {k: v for k, v in whole.items() if k in linked}
    assert load_captions([path]) == whole
    assert load_captions([path], keep=set()) == {}


def test_instances_of_linked_images_match_the_whole_file(shared_fixtures):
    path = shared_fixtures / "coco" / "instances_val2017.sample.json"
    whole = load_instances([path])
    assert list(whole) == [37777]
    assert load_instances([path], keep={37777, 1}) == whole
    assert load_instances([path], keep={1}) == {}


def _coco_like(path: Path, images: int, annotations_per_image: int, polygon: int) -> None:
    """An instances file of COCO's layout, most of its bytes in segmentation polygons like the real one."""
    with open(path, "w") as handle:
        handle.write('{"info": {"year": 2017}, "licenses": [{"id": 1}], "images": [')
        handle.write(
            ",".join(json.dumps({"id": i, "width": 640, "height": 480}) for i in range(1, images + 1))
        )
        handle.write('], "annotations": [')
        ann_id = 0
        for image_id in range(1, images + 1):
            for k in range(annotations_per_image):
                ann_id += 1
                ann = {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1 + k % 2,
                    "iscrowd": 0,
                    "bbox": [10.5, 20.25, 100.0, 50.0],
                    "area": 5000.0,
                    "segmentation": [[round(0.37 * j, 2) for j in range(polygon)]],
                }
                handle.write(("," if ann_id > 1 else "") + json.dumps(ann))
        handle.write('], "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "potted plant"}]}')


def test_a_generated_file_joins_on_the_kept_ids(tmp_path):
    path = tmp_path / "instances.json"
    _coco_like(path, images=20, annotations_per_image=3, polygon=10)
    instances = load_instances([path], keep={2, 7, 999})
    assert sorted(instances) == [2, 7]
    assert [(a.id, a.text) for a in instances[7]] == [(19, "dog"), (20, "potted plant"), (21, "dog")]
    assert instances[7][0].box == (0.016, 0.042, 0.173, 0.146)


@pytest.mark.parametrize(
    "text, record, field, message",
    [
        ('{"images": [], "annotations": [{"image_id": [1]}]}', 0, "image_id", "expected an image id"),
        ('{"images": [3], "annotations": []}', 0, "images", "expected an object"),
        ('{"images": [], "annotations": [{"image_id": 1}}', 0, "annotations", "expected ',' or ']'"),
        ('{"images": [], "annotations": [{"image_id": 1},]}', 1, "annotations", "malformed JSON"),
        ('{"images": []}', None, "annotations", "no such top-level key"),
    ],
)
def test_malformed_coco_files_name_the_file_record_and_field(tmp_path, text, record, field, message):
    path = tmp_path / "captions.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        load_captions([path], keep={1})
    assert (caught.value.file, caught.value.record, caught.value.field) == (str(path), record, field)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_instances_file(tmp_path):
    """~100 MB of instances, 3 linked images: peak RSS grows by far less than the file (``json.load`` of it
    takes several times its size)."""
    path = tmp_path / "instances.json"
    _coco_like(path, images=5_000, annotations_per_image=10, polygon=300)
    assert path.stat().st_size > 100e6
    code = (
        "import resource, sys\n"
        "import pycocotools.coco\n"
        "from svit_data.builders.coco import load_instances\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"found = load_instances([{str(path)!r}], keep={{1, 2500, 5000}})\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(sum(len(v) for v in found.values()), (after - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    count, grown_mb = map(int, out.split())
    assert count == 30
    assert grown_mb < 40
