"""COCO captions (and optionally instance categories) through pycocotools, keyed by COCO image id.

Visual Genome images that come from COCO carry ``coco_id``; their COCO captions join the context.
Annotations that point at images missing from the file's ``images`` list are kept (the caption is
still the image's caption) and counted in the log, never a crash.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import defaultdict
from pathlib import Path

from svit_data.builders._deps import require

from svit_data.errors import InputError

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
