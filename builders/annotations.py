"""Visual Genome v1.4 annotations, streamed and indexed by byte offset so memory stays bounded.

``image_data.json`` is streamed in file order. ``objects.json``, ``region_descriptions.json`` and the
optional ``attributes.json`` and ``relationships.json`` (used when present in the folder) are scanned once
into an ``image_id -> (offset, length)`` index (a few MB for all 108K images, optionally persisted next to
the output); each image's entry is then read with one ``seek``, so memory does not grow with the files.

Attributes are keyed by object id in ``attributes.json``, which keeps VG's unmerged duplicates: an object
of ``objects.json`` takes the attributes of its own id and of its ``merged_object_ids`` (first three
distinct words, its own first; a word equal to the object's name is left out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from svit_data.atomic import write_text
from svit_data.boxes import Box, normalize_xywh
from svit_data.errors import BoxError, InputError
from svit_data.formats.jsonstream import iter_json_array, iter_json_array_spans, read_span

log = logging.getLogger(__name__)

IMAGE_DATA = "image_data.json"
OBJECTS = "objects.json"
REGIONS = "region_descriptions.json"
ATTRIBUTES = "attributes.json"
RELATIONSHIPS = "relationships.json"
REQUIRED = (IMAGE_DATA, OBJECTS, REGIONS)
OPTIONAL = (ATTRIBUTES, RELATIONSHIPS)
MAX_ATTRIBUTES = 3


@dataclass(frozen=True)
class ImageMeta:
    image_id: int
    width: int
    height: int
    coco_id: int | None = None
    url: str = ""

    @property
    def image_file(self) -> str:
        return self.url.rsplit("/", 1)[-1] if self.url else f"{self.image_id}.jpg"


@dataclass(frozen=True)
class Annotation:
    """One object or region of an image, box in the original 0-1 frame."""

    kind: str  # "object" | "region"
    id: int
    text: str  # object name or region phrase
    box: Box
    merged_ids: tuple[int, ...] = field(default=())
    attributes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Relation:
    """``subject predicate object`` from ``relationships.json``; both ends carry their own box."""

    id: int
    subject: Annotation
    predicate: str
    object: Annotation
    merged_ids: tuple[int, ...] = field(default=())


def _int_field(item: dict, name: str, file: str, record: int | str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number, got {value!r}", file=file, record=record, field=name)
    return int(value)


class VisualGenome:
    """Random access to one VG image's objects and regions; see the module docstring."""

    def __init__(self, root: str | Path, *, index_dir: str | Path | None = None, write_index: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError("Visual Genome directory not found", file=str(self.root))
        missing = [name for name in REQUIRED if not (self.root / name).exists()]
        if missing:
            raise InputError(f"missing Visual Genome file(s): {', '.join(missing)}", file=str(self.root))
        self.index_dir = Path(index_dir) if index_dir else None
        self.write_index = write_index  # False: use a persisted index if there is one, never write one
        self.present = tuple(name for name in OPTIONAL if (self.root / name).exists())
        self._indexes: dict[str, dict[int, tuple[int, int]]] = {}
        self.skipped_boxes = 0

    def images(self) -> Iterator[ImageMeta]:
        path = self.root / IMAGE_DATA
        for index, item in enumerate(iter_json_array(path)):
            if not isinstance(item, dict):
                raise InputError("expected an object", file=str(path), record=index)
            image_id = _int_field(item, "image_id" if "image_id" in item else "id", str(path), index)
            width, height = (_int_field(item, k, str(path), index) for k in ("width", "height"))
            if width <= 0 or height <= 0:
                raise InputError(
                    f"image size must be positive, got {width}x{height}",
                    file=str(path),
                    record=index,
                    field="width",
                )
            coco_id = item.get("coco_id")
            yield ImageMeta(image_id, width, height, int(coco_id) if coco_id else None, item.get("url") or "")

    def _index(self, name: str) -> dict[int, tuple[int, int]]:
        if name in self._indexes:
            return self._indexes[name]
        path = self.root / name
        stat = path.stat()
        cached = (
            self.index_dir / f"{name}.{stat.st_size}.{stat.st_mtime_ns}.idx.json" if self.index_dir else None
        )
        if cached is not None and cached.exists():
            index = {int(k): tuple(v) for k, v in json.loads(cached.read_text()).items()}
        else:
            log.info("indexing %s", path)
            index = {}
            for record, (item, offset, length) in enumerate(iter_json_array_spans(path)):
                if not isinstance(item, dict):
                    raise InputError("expected an object", file=str(path), record=record)
                key = "image_id" if "image_id" in item else "id"
                index[_int_field(item, key, str(path), record)] = (offset, length)
            if cached is not None and self.write_index:
                cached.parent.mkdir(parents=True, exist_ok=True)
                write_text(cached, json.dumps(index))
        self._indexes[name] = index
        return index

    def _entry(self, name: str, image_id: int) -> dict | None:
        span = self._index(name).get(image_id)
        return read_span(self.root / name, *span) if span else None

    def _box(self, item: dict, image: ImageMeta, file: str, record: str) -> Box | None:
        try:
            x, y = _int_field(item, "x", file, record), _int_field(item, "y", file, record)
            w = _int_field(item, "w" if "w" in item else "width", file, record)
            h = _int_field(item, "h" if "h" in item else "height", file, record)
            box = normalize_xywh(x, y, w, h, image.width, image.height)
        except BoxError as exc:
            log.debug("%s: %s: skipped box: %s", file, record, exc)
            self.skipped_boxes += 1
            return None
        if box[2] <= box[0] or box[3] <= box[1]:
            self.skipped_boxes += 1
            return None
        return box

    def objects(self, image: ImageMeta) -> list[Annotation]:
        entry = self._entry(OBJECTS, image.image_id)
        if entry is None:
            return []
        attributes = self._attributes(image)
        file, out = str(self.root / OBJECTS), []
        for obj in entry.get("objects") or []:
            record = f"image {image.image_id} object {obj.get('object_id')}"
            names = obj.get("names") or ([obj["name"]] if obj.get("name") else [])
            name = str(names[0]).strip() if names else ""
            box = self._box(obj, image, file, record)
            if not name or box is None:
                continue
            object_id = _int_field(obj, "object_id", file, record)
            merged = tuple(int(i) for i in obj.get("merged_object_ids") or ())
            words = dict.fromkeys(w for i in (object_id, *merged) for w in attributes.get(i, ()))
            words.pop(name.lower(), None)
            out.append(Annotation("object", object_id, name, box, merged, tuple(words)[:MAX_ATTRIBUTES]))
        return out

    def _attributes(self, image: ImageMeta) -> dict[int, tuple[str, ...]]:
        if ATTRIBUTES not in self.present:
            return {}
        entry = self._entry(ATTRIBUTES, image.image_id) or {}
        out: dict[int, tuple[str, ...]] = {}
        for obj in entry.get("attributes") or []:
            words = tuple(
                dict.fromkeys(" ".join(str(a).lower().split()) for a in obj.get("attributes") or ())
            )
            words = tuple(w for w in words if w)
            if words and "object_id" in obj:
                out[int(obj["object_id"])] = words[:MAX_ATTRIBUTES]
        return out

    def _end(self, item: object, image: ImageMeta, file: str, record: str) -> Annotation | None:
        """One end (subject or object) of a relationship, or None when it has no name or a bad box."""
        if not isinstance(item, dict):
            raise InputError("expected an object", file=file, record=record)
        names = item.get("names") or ([item["name"]] if item.get("name") else [])
        name = " ".join(str(names[0]).split()) if names else ""
        box = self._box(item, image, file, record)
        if not name or box is None:
            return None
        return Annotation("object", _int_field(item, "object_id", file, record), name, box)

    def relationships(self, image: ImageMeta) -> list[Relation]:
        """The image's relationships; empty when ``relationships.json`` is not in the folder."""
        if RELATIONSHIPS not in self.present:
            return []
        entry = self._entry(RELATIONSHIPS, image.image_id) or {}
        file, out = str(self.root / RELATIONSHIPS), []
        for rel in entry.get("relationships") or []:
            record = f"image {image.image_id} relationship {rel.get('relationship_id')}"
            predicate = " ".join(str(rel.get("predicate") or "").lower().split())
            subject = self._end(rel.get("subject"), image, file, f"{record} subject")
            obj = self._end(rel.get("object"), image, file, f"{record} object")
            if predicate and subject is not None and obj is not None:
                relationship_id = _int_field(rel, "relationship_id", file, record)
                out.append(Relation(relationship_id, subject, predicate, obj))
        return out

    def regions(self, image: ImageMeta) -> list[Annotation]:
        entry = self._entry(REGIONS, image.image_id)
        if entry is None:
            return []
        file, out = str(self.root / REGIONS), []
        for region in entry.get("regions") or []:
            record = f"image {image.image_id} region {region.get('region_id')}"
            phrase = " ".join(str(region.get("phrase") or "").split())
            box = self._box(region, image, file, record)
            if phrase and box is not None:
                out.append(Annotation("region", _int_field(region, "region_id", file, record), phrase, box))
        return out
