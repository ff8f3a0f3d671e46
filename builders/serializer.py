"""One image's annotations as the text the LLM reads, deterministic and within a token budget.

Layout (sections left out when empty; COCO instances and relationships only when given)::

    Captions:
    - A man rides a bike down the street.
    Objects:
    - bike (red, parked): [0.1, 0.52, 0.34, 0.9]
    COCO objects:
    - bicycle: [0.1, 0.51, 0.35, 0.9]
    Regions:
    - man riding a red bike: [0.08, 0.3, 0.36, 0.91]
    Relationships:
    - man [0.08, 0.3, 0.3, 0.8] riding bike [0.1, 0.52, 0.34, 0.9]

Objects (VG, with up to ``max_attributes`` attributes), COCO objects (instances: category name, box
normalized by the COCO image size) and regions are merged when they share a text (case-insensitive) and
their boxes overlap with IoU >= ``merge_iou`` (VG annotates the same thing several times); the first by id
survives and keeps its duplicates' ids and attributes. Relationships merge when subject name, predicate and
object name agree and both boxes overlap that much. Order is stable and does not depend on file order:
objects and COCO objects by name then box, regions by box (top to bottom, left to right) then phrase,
relationships by subject box, then text.

Truncation rule, applied when the text exceeds ``max_tokens`` (tiktoken, exact): captions are never dropped.
Whole sections give way in this order: relationships, then regions, then COCO objects, then VG objects
(VG objects ground the referring answers, so they go last); within a section the smallest box goes first
(a relationship's box is the one enclosing both ends; ties: last in order first), one line at a time, until
the text fits. If the captions alone do not fit, the caption text is cut at the token limit.
``source_ids`` lists the VG ids shown (objects with their merged duplicates, regions, relationships);
COCO annotation ids, another id space, are not in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from svit_data.boxes import Box, format_box, iou
from svit_data.builders.annotations import Annotation, ImageMeta, Relation
from svit_data.builders.tokens import TokenCounter
from svit_data.errors import ConfigError


@dataclass(frozen=True)
class SerializerConfig:
    max_tokens: int = field(default=1800, metadata={"help": "token budget of the context text (tiktoken)"})
    merge_iou: float = field(default=0.7, metadata={"help": "IoU at which same-name objects merge"})
    max_attributes: int = field(default=2, metadata={"help": "attributes shown per object"})

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ConfigError(f"max_tokens must be >= 16, got {self.max_tokens}")
        if not 0.0 < self.merge_iou <= 1.0:
            raise ConfigError(f"merge_iou must be in (0, 1], got {self.merge_iou}")


@dataclass(frozen=True)
class ImageContext:
    """What the LLM is told about one image, plus what validators check its answers against."""

    image: ImageMeta
    text: str
    tokens: int
    source_ids: tuple[int, ...]
    boxes: tuple[Box, ...]  # every box shown, for grounding checks
    names: tuple[str, ...]
    dropped: int  # annotations removed by the budget


# rendering order of the sections, and the order in which the budget drops them
SECTIONS = (
    ("object", "Objects:"),
    ("instance", "COCO objects:"),
    ("region", "Regions:"),
    ("relationship", "Relationships:"),
)
DROP_ORDER = ("relationship", "region", "instance", "object")


@dataclass(frozen=True)
class _Line:
    """One line of a section and what it shows (ids for provenance, boxes and names for grounding)."""

    text: str
    area: float
    ids: tuple[int, ...]
    boxes: tuple[Box, ...]
    names: tuple[str, ...]


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _enclosing(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def merge_duplicates(items: list[Annotation], merge_iou: float) -> list[Annotation]:
    kept: list[Annotation] = []
    by_text: dict[str, list[int]] = {}
    for item in sorted(items, key=lambda a: a.id):
        key = item.text.lower()
        for index in by_text.get(key, ()):
            if iou(kept[index].box, item.box) >= merge_iou:
                other = kept[index]
                merged = tuple(sorted({*other.merged_ids, item.id, *item.merged_ids}))
                attributes = tuple(dict.fromkeys([*other.attributes, *item.attributes]))
                kept[index] = Annotation(other.kind, other.id, other.text, other.box, merged, attributes)
                break
        else:
            by_text.setdefault(key, []).append(len(kept))
            kept.append(item)
    return kept


def merge_relations(relations: Sequence[Relation], merge_iou: float) -> list[Relation]:
    kept: list[Relation] = []
    by_text: dict[tuple[str, str, str], list[int]] = {}
    for rel in sorted(relations, key=lambda r: r.id):
        key = (rel.subject.text.lower(), rel.predicate, rel.object.text.lower())
        for index in by_text.get(key, ()):
            other = kept[index]
            if (
                iou(other.subject.box, rel.subject.box) >= merge_iou
                and iou(other.object.box, rel.object.box) >= merge_iou
            ):
                merged = tuple(sorted({*other.merged_ids, rel.id, *rel.merged_ids}))
                kept[index] = Relation(other.id, other.subject, other.predicate, other.object, merged)
                break
        else:
            by_text.setdefault(key, []).append(len(kept))
            kept.append(rel)
    return kept


def _object_line(obj: Annotation, max_attributes: int) -> _Line:
    attributes = obj.attributes[:max_attributes]
    label = f"{obj.text} ({', '.join(attributes)})" if attributes else obj.text
    ids = (obj.id, *obj.merged_ids) if obj.kind == "object" else ()
    return _Line(f"- {label}: {format_box(obj.box)}", _area(obj.box), ids, (obj.box,), (obj.text,))


def _region_line(region: Annotation) -> _Line:
    ids = (region.id, *region.merged_ids)
    return _Line(f"- {region.text}: {format_box(region.box)}", _area(region.box), ids, (region.box,), ())


def _relation_line(rel: Relation) -> _Line:
    s, o = rel.subject, rel.object
    text = f"- {s.text} {format_box(s.box)} {rel.predicate} {o.text} {format_box(o.box)}"
    ids = (rel.id, *rel.merged_ids)
    return _Line(text, _area(_enclosing(s.box, o.box)), ids, (s.box, o.box), (s.text, o.text))


def _render(captions: Sequence[str], sections: dict[str, list[_Line]], dropped: set[tuple[str, int]]) -> str:
    parts = ["Captions:", *(f"- {c}" for c in captions)] if captions else []
    for kind, title in SECTIONS:
        lines = [line.text for i, line in enumerate(sections[kind]) if (kind, i) not in dropped]
        if lines:
            parts += [title, *lines]
    return "\n".join(parts)


def _sections(
    objects: Sequence[Annotation],
    regions: Sequence[Annotation],
    instances: Sequence[Annotation],
    relationships: Sequence[Relation],
    config: SerializerConfig,
) -> dict[str, list[_Line]]:
    """Every section's lines, merged and in their stable order."""

    def by_name(items: Sequence[Annotation]) -> list[Annotation]:
        merged = merge_duplicates(list(items), config.merge_iou)
        return sorted(merged, key=lambda a: (a.text.lower(), a.box, a.id))

    regs = sorted(
        merge_duplicates(list(regions), config.merge_iou), key=lambda a: (a.box[1], a.box[0], a.text, a.id)
    )
    rels = sorted(
        merge_relations(relationships, config.merge_iou),
        key=lambda r: (r.subject.box[1], r.subject.box[0], r.subject.text, r.predicate, r.object.text, r.id),
    )
    return {
        "object": [_object_line(o, config.max_attributes) for o in by_name(objects)],
        "instance": [_object_line(o, 0) for o in by_name(instances)],
        "region": [_region_line(r) for r in regs],
        "relationship": [_relation_line(r) for r in rels],
    }


def serialize(
    image: ImageMeta,
    captions: list[str],
    objects: list[Annotation],
    regions: list[Annotation],
    counter: TokenCounter,
    config: SerializerConfig = SerializerConfig(),
    *,
    instances: Sequence[Annotation] = (),
    relationships: Sequence[Relation] = (),
) -> ImageContext:
    """Build the context text of one image under the token budget (see the module docstring)."""
    sections = _sections(objects, regions, instances, relationships, config)
    drop_order = [
        (kind, i)
        for kind in DROP_ORDER
        for i in sorted(range(len(sections[kind])), key=lambda i, k=kind: (sections[k][i].area, -i))
    ]
    dropped: set[tuple[str, int]] = set()
    text = _render(captions, sections, dropped)
    tokens = counter.count(text)
    if tokens > config.max_tokens:
        # estimate with per-line counts, then confirm exactly and drop more while needed
        excess, cursor = tokens - config.max_tokens, 0
        while excess > 0 and cursor < len(drop_order):
            kind, i = drop_order[cursor]
            dropped.add((kind, i))
            excess -= counter.count(sections[kind][i].text) + 1
            cursor += 1
        text = _render(captions, sections, dropped)
        tokens = counter.count(text)
        while tokens > config.max_tokens and cursor < len(drop_order):
            dropped.add(drop_order[cursor])
            cursor += 1
            text = _render(captions, sections, dropped)
            tokens = counter.count(text)
        if tokens > config.max_tokens:  # captions alone are too long
            text = counter.truncate(text, config.max_tokens)
            tokens = counter.count(text)
    kept = [line for kind, _ in SECTIONS for i, line in enumerate(sections[kind]) if (kind, i) not in dropped]
    return ImageContext(
        image,
        text,
        tokens,
        tuple(sorted({i for line in kept for i in line.ids})),
        tuple(box for line in kept for box in line.boxes),
        tuple(dict.fromkeys(name for line in kept for name in line.names)),
        len(dropped),
    )
