"""COCO captions and instances through pycocotools, keyed by COCO image id, in bounded memory.

Visual Genome images that come from COCO carry ``coco_id``; their COCO captions and instances join the
context. Caption annotations that point at images missing from the file's ``images`` list are kept (the
caption is still the image's caption) and counted in the log, never a crash. An instance needs its image's
size (its box is normalized by the COCO image's width and height, a frame that does not depend on the
resolution VG serves), so instances of such images are skipped and counted; so are crowd annotations
(``iscrowd``: one box around many things) and empty boxes.

``COCO(path)`` would ``json.load`` the whole file (instances_train2017.json is ~450 MB, mostly segmentation
polygons, several GB once decoded). Instead the file's ``images`` and ``annotations`` arrays are streamed
one element at a time and only the images in ``keep`` (the VG images' coco ids) and their annotations are
kept, without ``segmentation``, which nothing here reads; pycocotools then indexes that small dict, so the
code below still uses its API (``anns``, ``imgs``, ``cats``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Collection
from pathlib import Path

from svit_data.boxes import normalize_xywh
from svit_data.builders._deps import require
from svit_data.builders.annotations import Annotation
from svit_data.errors import BoxError, InputError
from svit_data.formats.jsonstream import iter_json_object_arrays

log = logging.getLogger(__name__)

CAPTION_KEYS = ("images", "annotations")
INSTANCE_KEYS = ("images", "annotations", "categories")
# the field of each array's elements that holds the COCO image id the join is on
_IMAGE_ID = {"images": "id", "annotations": "image_id"}
_DROPPED = ("segmentation",)  # most of an instances file; only boxes are used


def _load(path: str | Path, keys: Collection[str], keep: set[int] | None):  # -> pycocotools.coco.COCO
    """A ``COCO`` object of the file's ``keys`` arrays, restricted to the images in ``keep`` (all if None)."""
    path = Path(path)
    if not path.exists():
        raise InputError("COCO annotation file not found", file=str(path))
    coco_module = require("pycocotools.coco")
    dataset: dict[str, list[dict]] = {key: [] for key in keys}
    index: Counter[str] = Counter()
    for key, item in iter_json_object_arrays(path, keys):
        record = index[key]
        index[key] += 1
        if not isinstance(item, dict):
            raise InputError(f"expected an object in '{key}'", file=str(path), record=record, field=key)
        id_field = _IMAGE_ID.get(key)
        if keep is not None and id_field is not None:
            image_id = item.get(id_field)
            if not isinstance(image_id, (int, float, str)) or isinstance(image_id, bool):
                raise InputError(
                    f"expected an image id, got {image_id!r}", file=str(path), record=record, field=id_field
                )
            if image_id not in keep:
                continue
        for name in _DROPPED:
            item.pop(name, None)
        dataset[key].append(item)
    coco = coco_module.COCO()
    coco.dataset = dataset
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise InputError(f"not a COCO annotation file ({exc!r})", file=str(path)) from exc
    return coco


def load_captions(paths: list[str | Path], keep: set[int] | None = None) -> dict[int, list[str]]:
    """``coco_id -> captions`` (file order, whitespace collapsed, duplicates dropped) of the images in ``keep``."""
    captions: dict[int, list[str]] = defaultdict(list)
    for path in paths:
        coco = _load(path, CAPTION_KEYS, keep)
        orphans = 0
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            if "caption" not in ann or "image_id" not in ann:
                raise InputError(
                    "caption annotation without 'caption'/'image_id'",
                    file=str(path),
                    record=ann_id,
                    field="caption",
                )
            text = " ".join(str(ann["caption"]).split())
            image_id = int(ann["image_id"])
            orphans += image_id not in coco.imgs
            if text and text not in captions[image_id]:
                captions[image_id].append(text)
        if orphans:
            log.warning(
                "%s: %d caption annotations point at images missing from its 'images' list", path, orphans
            )
    return dict(captions)


def load_instances(paths: list[str | Path], keep: set[int] | None = None) -> dict[int, list[Annotation]]:
    """``coco_id -> instances`` (kind ``"instance"``, text = category name, box in the 0-1 frame)."""
    instances: dict[int, list[Annotation]] = defaultdict(list)
    for path in paths:
        coco = _load(path, INSTANCE_KEYS, keep)
        skipped: Counter[str] = Counter()
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            image_id = ann.get("image_id")
            category = coco.cats.get(ann.get("category_id"), {}).get("name")
            bbox = ann.get("bbox")
            if not category or not isinstance(bbox, list) or len(bbox) != 4:
                raise InputError(
                    "instance annotation without a known 'category_id' and a 4-number 'bbox'",
                    file=str(path),
                    record=ann_id,
                    field="bbox" if category else "category_id",
                )
            image = coco.imgs.get(image_id)
            if image is None:
                skipped["image missing from 'images'"] += 1
                continue
            if ann.get("iscrowd"):
                skipped["crowd"] += 1
                continue
            try:
                box = normalize_xywh(*bbox, image["width"], image["height"])
            except (BoxError, KeyError, TypeError) as exc:
                raise InputError(f"bad box or image size ({exc})", file=str(path), record=ann_id) from exc
            if box[2] <= box[0] or box[3] <= box[1]:
                skipped["empty box"] += 1
                continue
            instances[int(image_id)].append(Annotation("instance", int(ann_id), str(category), box))
        if skipped:
            log.info("%s: skipped instances: %s", path, dict(skipped))
    return dict(instances)
