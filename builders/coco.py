"""COCO captions and instances through pycocotools, keyed by COCO image id.

Visual Genome images that come from COCO carry ``coco_id``; their COCO captions and instances join the
context. Caption annotations that point at images missing from the file's ``images`` list are kept (the
caption is still the image's caption) and counted in the log, never a crash. An instance needs its image's
size (its box is normalized by the COCO image's width and height, a frame that does not depend on the
resolution VG serves), so instances of such images are skipped and counted; so are crowd annotations
(``iscrowd``: one box around many things) and empty boxes.

pycocotools loads a whole file (instances_train2017.json is ~450 MB, mostly segmentation polygons); only
category name, box and id of the images in ``keep`` (the VG images' coco ids) are kept after that.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

from svit_data.builders._deps import require
from svit_data.builders.annotations import Annotation

from svit_data.boxes import normalize_xywh
from svit_data.errors import BoxError, InputError

log = logging.getLogger(__name__)


def _load(path: str | Path):  # -> pycocotools.coco.COCO
    path = Path(path)
    if not path.exists():
        raise InputError("COCO annotation file not found", file=str(path))
    coco_module = require("pycocotools.coco")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return coco_module.COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed JSON ({exc})", file=str(path)) from exc
    except (KeyError, TypeError, AssertionError) as exc:
        raise InputError(f"not a COCO annotation file ({exc!r})", file=str(path)) from exc


def load_captions(paths: list[str | Path]) -> dict[int, list[str]]:
    """``coco_id -> captions`` (file order, whitespace collapsed, duplicates dropped)."""
    captions: dict[int, list[str]] = defaultdict(list)
    for path in paths:
        coco = _load(path)
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
        coco = _load(path)
        skipped: Counter[str] = Counter()
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            image_id = ann.get("image_id")
            if keep is not None and image_id not in keep:
                continue
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
