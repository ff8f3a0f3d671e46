"""One image's annotations as the text the LLM reads, deterministic and within a token budget.

Layout (sections left out when empty)::

    Captions:
    - A man rides a bike down the street.
    Objects:
    - bike (red): [0.1, 0.52, 0.34, 0.9]
    Regions:
    - man riding a red bike: [0.08, 0.3, 0.36, 0.91]

Objects are merged when they share a name (case-insensitive) and their boxes overlap with IoU >= ``merge_iou``
(VG annotates the same thing several times); the first by object id survives and keeps its duplicates'
ids. Regions with the same phrase and IoU >= ``merge_iou`` merge the same way. Order is stable and does not
depend on file order: objects by name then box, regions by box (top to bottom, left to right) then phrase.

Truncation rule, applied when the text exceeds ``max_tokens`` (tiktoken, exact): captions are always kept;
regions are dropped first, smallest box area first (ties: last in order first), then objects by the same
rule, until the text fits. If the captions alone do not fit, the caption text is cut at the token limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from svit_data.builders.annotations import Annotation, ImageMeta
from svit_data.builders.tokens import TokenCounter

from svit_data.boxes import Box, format_box, iou


@dataclass(frozen=True)
class SerializerConfig:
    max_tokens: int = field(default=1800, metadata={"help": "token budget of the context text (tiktoken)"})
    merge_iou: float = field(default=0.7, metadata={"help": "IoU at which same-name objects merge"})
    max_attributes: int = field(default=2, metadata={"help": "attributes shown per object"})

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {self.max_tokens}")
        if not 0.0 < self.merge_iou <= 1.0:
            raise ValueError(f"merge_iou must be in (0, 1], got {self.merge_iou}")


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


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


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


def _object_line(obj: Annotation, max_attributes: int) -> str:
    attributes = obj.attributes[:max_attributes]
    label = f"{obj.text} ({', '.join(attributes)})" if attributes else obj.text
    return f"- {label}: {format_box(obj.box)}"


def _render(
    captions: list[str], objects: list[tuple[Annotation, str]], regions: list[tuple[Annotation, str]]
) -> str:
    parts = []
    if captions:
        parts += ["Captions:", *(f"- {c}" for c in captions)]
    if objects:
        parts += ["Objects:", *(line for _, line in objects)]
    if regions:
        parts += ["Regions:", *(line for _, line in regions)]
    return "\n".join(parts)


def serialize(
    image: ImageMeta,
    captions: list[str],
    objects: list[Annotation],
    regions: list[Annotation],
    counter: TokenCounter,
    config: SerializerConfig = SerializerConfig(),
) -> ImageContext:
    """Build the context text of one image under the token budget (see the module docstring)."""
    objs = sorted(merge_duplicates(objects, config.merge_iou), key=lambda a: (a.text.lower(), a.box, a.id))
    regs = sorted(
        merge_duplicates(regions, config.merge_iou), key=lambda a: (a.box[1], a.box[0], a.text, a.id)
    )
    obj_lines = [(o, _object_line(o, config.max_attributes)) for o in objs]
    reg_lines = [(r, f"- {r.text}: {format_box(r.box)}") for r in regs]
    # drop order: regions (small first, later first on ties), then objects the same way
    drop_order = [("r", i) for i in sorted(range(len(regs)), key=lambda i: (_area(regs[i].box), -i))]
    drop_order += [("o", i) for i in sorted(range(len(objs)), key=lambda i: (_area(objs[i].box), -i))]
    dropped: set[tuple[str, int]] = set()

    def current() -> str:
        return _render(
            captions,
            [x for i, x in enumerate(obj_lines) if ("o", i) not in dropped],
            [x for i, x in enumerate(reg_lines) if ("r", i) not in dropped],
        )

    text = current()
    tokens = counter.count(text)
    if tokens > config.max_tokens:
        # estimate with per-line counts, then confirm exactly and drop more while needed
        cost = {("o", i): counter.count(line) + 1 for i, (_, line) in enumerate(obj_lines)}
        cost.update({("r", i): counter.count(line) + 1 for i, (_, line) in enumerate(reg_lines)})
        excess, cursor = tokens - config.max_tokens, 0
        while excess > 0 and cursor < len(drop_order):
            dropped.add(drop_order[cursor])
            excess -= cost[drop_order[cursor]]
            cursor += 1
        text, tokens = current(), counter.count(current())
        while tokens > config.max_tokens and cursor < len(drop_order):
            dropped.add(drop_order[cursor])
            cursor += 1
            text = current()
            tokens = counter.count(text)
        if tokens > config.max_tokens:  # captions alone are too long
            text = counter.truncate(text, config.max_tokens)
            tokens = counter.count(text)
    kept = [o for i, o in enumerate(objs) if ("o", i) not in dropped] + [
        r for i, r in enumerate(regs) if ("r", i) not in dropped
    ]
    ids = sorted({i for a in kept for i in (a.id, *a.merged_ids)})
    return ImageContext(
        image,
        text,
        tokens,
        tuple(ids),
        tuple(a.box for a in kept),
        tuple(dict.fromkeys(a.text for a in kept if a.kind == "object")),
        len(dropped),
    )
