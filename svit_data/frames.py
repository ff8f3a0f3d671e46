"""Box frames: the coordinate systems boxes in sample texts are written in, and conversions between them.

| frame | a box ``[x1, y1, x2, y2]`` is | used by |
|---|---|---|
| ``original`` | corners / image width and height, 0-1 | SVIT's released JSON |
| ``square`` | corners / the long side after padding the image to a centred square, 0-1 | LLaVA-1.5 data, SVIT's LLaVA files |
| ``pixels`` | corners in pixels of the image | many detection-style sets |
| ``k1000`` | corners / width and height x 1000, integers 0-1000 | Qwen-VL style grounding |

Every conversion goes through the original frame. All but ``original <-> k1000`` need the image size;
without it the conversion is refused with a located error. SVIT texts carry boxes after
``<st>..<ed>`` markers; third-party texts carry bare ``[x1, y1, x2, y2]`` lists, all of which are
taken as boxes when frames differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from svit_data.boxes import BOX_RE, Box, check_box, format_box, from_square, rewrite_boxes, to_square
from svit_data.errors import BoxError, InputError
from svit_data.tasks import ORIGINAL_FRAME

ORIGINAL, SQUARE, PIXELS, K1000 = ORIGINAL_FRAME, "square", "pixels", "k1000"
FRAMES: tuple[str, ...] = (ORIGINAL, SQUARE, PIXELS, K1000)
SIZE_FREE = frozenset({ORIGINAL, K1000})  # frames that convert to each other without the image size


def check_frame(frame: str) -> str:
    if frame not in FRAMES:
        raise InputError(f"unknown box frame {frame!r}; known: {', '.join(FRAMES)}")
    return frame


def _to_original(box: Sequence[float], frame: str, width: int | None, height: int | None) -> Box:
    if frame == ORIGINAL:
        return check_box(box)
    if frame == K1000:
        return check_box([round(v / 1000, 3) for v in box])
    assert width and height
    if frame == SQUARE:
        return from_square(box, width, height)
    x1, y1, x2, y2 = box
    return check_box(
        [round(x1 / width, 3), round(y1 / height, 3), round(x2 / width, 3), round(y2 / height, 3)]
    )


def _from_original(box: Box, frame: str, width: int | None, height: int | None) -> Box:
    if frame == ORIGINAL:
        return box
    if frame == K1000:
        return tuple(round(v * 1000) for v in box)  # type: ignore[return-value]
    assert width and height
    if frame == SQUARE:
        return to_square(box, width, height)
    x1, y1, x2, y2 = box
    return (round(x1 * width), round(y1 * height), round(x2 * width), round(y2 * height))


def box_converter(source: str, target: str, width: int | None, height: int | None) -> Callable[[Box], Box]:
    """``box -> box`` from frame ``source`` to frame ``target``; raises :class:`BoxError` without a needed size."""
    check_frame(source), check_frame(target)
    if not {source, target} <= SIZE_FREE and not (width and height):
        raise BoxError(
            f"boxes cannot move from the {source} frame to the {target} frame without the image size"
        )
    return lambda box: _from_original(_to_original(box, source, width, height), target, width, height)


def _format(box: Sequence[float]) -> str:
    if all(float(v).is_integer() for v in box) and any(abs(v) > 1 for v in box):
        return "[" + ", ".join(str(int(v)) for v in box) + "]"
    return format_box(box)


def convert_text(text: str, convert: Callable[[Box], Box], *, markers: bool) -> str:
    """``text`` with its boxes converted: those after ``<st>..<ed>`` (``markers``) or every bare box list."""
    if markers:
        return rewrite_boxes(text, convert)
    return BOX_RE.sub(lambda m: _format(convert(tuple(float(g) for g in m.groups()))), text)


def has_boxes(text: str) -> bool:
    return BOX_RE.search(text) is not None


def convert_row_texts(
    row: dict, target: str, *, markers: bool, record: str | None = None
) -> list[dict[str, str]]:
    """The row's turns with boxes moved from ``row['box_frame']`` to ``target``; a located error when the
    image size is needed and unknown, or a box is not valid in its frame."""
    source = row.get("box_frame") or ORIGINAL
    turns = [{"from": t["from"], "value": t["value"]} for t in row["conversations"]]
    if source == target or not any(has_boxes(t["value"]) for t in turns):
        return turns
    width, height = row.get("width"), row.get("height")
    if not {source, target} <= SIZE_FREE and not (width and height):
        raise InputError(
            f"the image size is unknown, so boxes cannot move from the {source} frame to the {target} frame "
            "(give image sizes, or keep the source's frame)",
            record=record or row.get("id"),
            field="width",
        )
    convert = box_converter(source, target, width, height)
    for t, turn in enumerate(turns):
        try:
            turn["value"] = convert_text(turn["value"], convert, markers=markers)
        except BoxError as error:
            raise InputError(
                str(error), record=record or row.get("id"), field=f"conversations[{t}].value"
            ) from None
    return turns
