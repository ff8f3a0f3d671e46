"""Referring boxes of a pool checked against the source annotations (``verify --vg``), as ``generate`` checks
its own: a box is grounded when its IoU with some Visual Genome object or region box of the image reaches
the threshold (:func:`svit_data.builders.validators.grounded_mask`). No request is needed: a sample with an
ungrounded box is flagged ``ungrounded_box`` and not sent to the judge.

Only SVIT samples are checked (a Visual Genome ``image_id``, boxes in the original 0-1 frame); a sample
whose image is not in the annotations is left to the judge.
"""

from __future__ import annotations

from pathlib import Path

from svit_data.boxes import Box, BoxError, format_box, parse_refs
from svit_data.builders.annotations import ImageMeta, VisualGenome
from svit_data.builders.validators import grounded_mask
from svit_data.frames import ORIGINAL

CACHED_IMAGES = 256  # referring samples come grouped by image: a small cache of box lists suffices


class SourceBoxes:
    """Every object and region box of a Visual Genome image, by image id."""

    def __init__(self, vg: str | Path, index_dir: str | Path | None = None, *, write_index: bool = True):
        self.vg = VisualGenome(vg, index_dir=index_dir, write_index=write_index)
        self._images: dict[int, ImageMeta] | None = None
        self._boxes: dict[int, list[Box]] = {}

    def boxes(self, image_id: int) -> list[Box] | None:
        """The image's source boxes; None when the annotations do not hold the image."""
        if self._images is None:
            self._images = {image.image_id: image for image in self.vg.images()}
        image = self._images.get(image_id)
        if image is None:
            return None
        if image_id not in self._boxes:
            if len(self._boxes) >= CACHED_IMAGES:
                self._boxes.clear()
            found = self.vg.objects(image) + self.vg.regions(image)
            self._boxes[image_id] = [annotation.box for annotation in found]
        return self._boxes[image_id]


def ungrounded(source: SourceBoxes, row: dict, pairs: list[tuple[str, str]], threshold: float) -> str | None:
    """Why the sample's first ungrounded box fails ("QA k: box [...] ..."), or None (grounded or not checked)."""
    if row["image_id"] is None or (row["box_frame"] or ORIGINAL) != ORIGINAL:
        return None
    sources = source.boxes(row["image_id"])
    if sources is None:
        return None
    for number, (question, answer) in enumerate(pairs, 1):
        try:
            boxes = [box for ref in parse_refs(question + "\n" + answer) for box in ref.boxes]
        except BoxError:  # an invalid box is flagged at ingest already
            continue
        for box, ok in zip(boxes, grounded_mask(boxes, sources, threshold), strict=True):
            if not ok:
                where = f"QA {number}: " if len(pairs) > 1 else ""
                return f"{where}box {format_box(box)} matches no source box (IoU < {threshold})"
    return None
