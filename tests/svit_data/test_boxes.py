"""Boxes: SVIT referring text, the original 0-1 frame, VG/COCO pixel boxes and the padded-square frame."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from svit_data.boxes import (
    check_box,
    format_box,
    format_number,
    format_ref,
    from_square,
    iou,
    normalize_xywh,
    parse_box,
    parse_refs,
    rewrite_boxes,
    strip_markers,
    to_square,
)
from svit_data.errors import BoxError

unit = st.floats(0, 1, allow_nan=False)
three_decimals = st.integers(0, 1000).map(lambda k: k / 1000)
sizes = st.integers(1, 4000)


@st.composite
def boxes(draw, values=three_decimals):
    x1, x2 = sorted((draw(values), draw(values)))
    y1, y2 = sorted((draw(values), draw(values)))
    return (x1, y1, x2, y2)


names = (
    st.text(st.characters(blacklist_characters="<>[]", blacklist_categories=("Cs",)), min_size=1)
    .map(str.strip)
    .filter(bool)
)


def test_parse_refs_reads_the_svit_example():
    text = "There are <st>men<ed> [0.12, 0.3, 0.25, 0.9], [0.5, 0.31, 0.62, 0.88] near the <st>bus<ed> [0.1, 0.1, 0.9, 0.6]."
    refs = parse_refs(text)
    assert [r.name for r in refs] == ["men", "bus"]
    assert refs[0].boxes == ((0.12, 0.3, 0.25, 0.9), (0.5, 0.31, 0.62, 0.88))
    assert refs[1].boxes == ((0.1, 0.1, 0.9, 0.6),)
    assert text[refs[1].start : refs[1].end] == "<st>bus<ed> [0.1, 0.1, 0.9, 0.6]"
    assert strip_markers(text).startswith("There are men [0.12")


def test_a_ref_without_boxes_has_none():
    (ref,) = parse_refs("the <st>sky<ed> is blue")
    assert ref.name == "sky" and ref.boxes == ()


@given(names, st.lists(boxes(), min_size=0, max_size=4))
def test_format_then_parse_round_trips(name, box_list):
    (ref,) = parse_refs(f"Look: {format_ref(name, box_list)}. Done.")
    assert ref.name == name
    assert ref.boxes == tuple(box_list)


@given(boxes(unit))
def test_formatting_rounds_to_three_decimals(box):
    parsed = parse_box(format_box(box))
    assert parsed == tuple(round(v, 3) for v in box)
    assert all(len(p.split(".")[-1]) <= 3 for p in format_box(box)[1:-1].split(", "))


def test_format_number_never_writes_negative_zero():
    assert format_number(-0.0) == "0.0"
    assert format_number(-0.0001) == "0.0"
    assert format_number(0.1235) in ("0.123", "0.124")


@pytest.mark.parametrize(
    "box, reason",
    [
        ((0.1, 0.2, 1.2, 0.4), "0-1"),
        ((-0.1, 0.2, 0.3, 0.4), "0-1"),
        ((0.5, 0.2, 0.3, 0.4), "reversed"),
        ((0.1, 0.5, 0.3, 0.4), "reversed"),
        ((0.1, 0.2, 0.3), "4 values"),
        ((0.1, math.nan, 0.3, 0.4), "finite"),
        ((0.1, 0.2, math.inf, 0.4), "finite"),
    ],
)
def test_check_box_rejects(box, reason):
    with pytest.raises(BoxError, match=reason):
        check_box(box)


@given(boxes(unit))
def test_degenerate_and_valid_boxes_pass(box):
    assert check_box(box) == box
    assert check_box((box[0], box[1], box[0], box[1])) == (box[0], box[1], box[0], box[1])


def test_parse_refs_strict_rejects_bad_boxes_and_lenient_keeps_them():
    text = "<st>dog<ed> [0.6, 0.1, 0.2, 0.5]"
    with pytest.raises(BoxError, match="reversed"):
        parse_refs(text)
    assert parse_refs(text, strict=False)[0].boxes == ((0.6, 0.1, 0.2, 0.5),)
    with pytest.raises(BoxError, match="0-1"):
        parse_refs("<st>dog<ed> [0.1, 0.1, 1.5, 0.5]")


@pytest.mark.parametrize("text", ["[0.1, 0.2, 0.3]", "0.1, 0.2, 0.3, 0.4", "[a, b, c, d]", ""])
def test_parse_box_rejects_non_boxes(text):
    with pytest.raises(BoxError):
        parse_box(text)


def test_parse_box_accepts_spacing_and_integers():
    assert parse_box(" [ 0 ,0.5,1 , 1.0 ] ") == (0.0, 0.5, 1.0, 1.0)


# --- VG / COCO pixel boxes -> original frame ------------------------------------------------------


def test_normalize_xywh_values():
    assert normalize_xywh(64, 48, 320, 240, 640, 480) == (0.1, 0.1, 0.6, 0.6)
    assert normalize_xywh(0, 0, 640, 480, 640, 480) == (0.0, 0.0, 1.0, 1.0)
    # VG boxes can poke out of the image: clipped to the frame.
    assert normalize_xywh(-10, 470, 700, 30, 640, 480) == (0.0, 0.979, 1.0, 1.0)
    # A degenerate (zero-size) box stays a valid point box.
    assert normalize_xywh(320, 240, 0, 0, 640, 480) == (0.5, 0.5, 0.5, 0.5)


@given(
    st.floats(-50, 5000),
    st.floats(-50, 5000),
    st.floats(0, 5000),
    st.floats(0, 5000),
    sizes,
    sizes,
)
def test_normalize_xywh_is_always_a_valid_box(x, y, w, h, width, height):
    box = normalize_xywh(x, y, w, h, width, height)
    assert check_box(box) == box
    assert all(round(v, 3) == v for v in box)


def test_normalize_xywh_rejects_negative_sizes():
    with pytest.raises(BoxError):
        normalize_xywh(0, 0, -1, 5, 10, 10)
    with pytest.raises(BoxError):
        normalize_xywh(0, 0, 1, 5, 0, 10)


def test_real_vg_objects_normalize_inside_their_images(shared_fixtures):
    vg = shared_fixtures / "visual_genome"
    sizes_by_id = {
        i["image_id"]: (i["width"], i["height"]) for i in json.loads((vg / "image_data.json").read_text())
    }
    count = 0
    for image in json.loads((vg / "objects.json").read_text()):
        width, height = sizes_by_id[image["image_id"]]
        for obj in image["objects"]:
            box = normalize_xywh(obj["x"], obj["y"], obj["w"], obj["h"], width, height)
            assert check_box(box) == box
            if obj["x"] + obj["w"] <= width and obj["y"] + obj["h"] <= height:
                assert abs(box[0] * width - obj["x"]) <= 0.0005 * width + 1e-9
                assert abs(box[3] * height - (obj["y"] + obj["h"])) <= 0.0005 * height + 1e-9
            count += 1
    assert count > 500


def test_real_coco_boxes_normalize_inside_their_images(shared_fixtures):
    coco = json.loads((shared_fixtures / "coco" / "instances_val2017.sample.json").read_text())
    images = {i["id"]: (i["width"], i["height"]) for i in coco["images"]}
    checked = 0
    for ann in coco["annotations"]:
        if ann["image_id"] not in images:
            continue  # the slice keeps the first 100 of each list: many annotations point elsewhere
        width, height = images[ann["image_id"]]
        box = normalize_xywh(*ann["bbox"], width, height)
        assert check_box(box) == box
        assert box[2] - box[0] == pytest.approx(ann["bbox"][2] / width, abs=0.0011)
        checked += 1
    assert checked > 0


# --- original frame <-> padded-square frame (DESIGN.md §5) --------------------------------------------


def test_to_square_worked_examples():
    # 640x480 landscape: y shifts by (640 - 480) // 2 = 80 pixels, everything divides by 640.
    # pixels 64, 96, 320, 288 -> 64, 176, 320, 368 -> /640
    assert to_square((0.1, 0.2, 0.5, 0.6), 640, 480) == (0.1, 0.275, 0.5, 0.575)
    # 300x500 portrait: x shifts by 100; round(0.333 * 300) = 100 -> 200 / 500 = 0.4
    assert to_square((0.333, 0.0, 1.0, 1.0), 300, 500) == (0.4, 0.0, 0.8, 1.0)
    # odd difference: (501 - 200) // 2 = 150
    assert to_square((0.0, 0.0, 1.0, 1.0), 501, 200) == (0.0, round(150 / 501, 3), 1.0, round(350 / 501, 3))
    # a square image keeps 3-decimal boxes when the pixels are exact
    assert to_square((0.125, 0.25, 0.5, 1.0), 1000, 1000) == (0.125, 0.25, 0.5, 1.0)


@given(boxes(three_decimals), sizes, sizes)
def test_to_square_stays_in_bounds_and_keeps_order(box, width, height):
    square = to_square(box, width, height)
    assert check_box(square) == square
    assert all(round(v, 3) == v for v in square)
    long_side = max(width, height)
    # the image occupies the centred band of the square; boxes never leave it
    band_x = ((long_side - width) // 2 if width < height else 0) / long_side
    band_y = ((long_side - height) // 2 if height < width else 0) / long_side
    assert square[0] >= round(band_x, 3) - 1e-9 and square[1] >= round(band_y, 3) - 1e-9


@given(boxes(three_decimals), sizes, sizes)
def test_square_round_trip_is_within_rounding(box, width, height):
    back = from_square(to_square(box, width, height), width, height)
    long_side = max(width, height)
    tol_x = (0.5 + 0.0005 * long_side) / width + 0.0005 + 1e-9
    tol_y = (0.5 + 0.0005 * long_side) / height + 0.0005 + 1e-9
    for v, w, tol in zip(back, box, (tol_x, tol_y, tol_x, tol_y), strict=True):
        assert abs(v - w) <= tol


@given(boxes(three_decimals), st.integers(100, 4000), st.integers(100, 4000))
def test_square_round_trip_is_exact_enough_for_real_image_sizes(box, width, height):
    assume(max(width, height) <= 2 * min(width, height))
    back = from_square(to_square(box, width, height), width, height)
    assert max(abs(a - b) for a, b in zip(back, box, strict=True)) <= 0.0155


def test_from_square_clips_padding_to_the_image():
    # a box in the top padding band of a landscape image maps to the image's top edge
    assert from_square((0.0, 0.0, 1.0, 0.1), 640, 480) == (0.0, 0.0, 1.0, 0.0)


def test_to_square_rejects_invalid_input():
    with pytest.raises(BoxError):
        to_square((0.5, 0.1, 0.2, 0.2), 10, 10)
    with pytest.raises(BoxError):
        to_square((0.1, 0.1, 0.2, 0.2), 0, 10)


def test_rewrite_boxes_changes_only_boxes_after_markers():
    text = "Box [0.5, 0.5, 0.6, 0.6] stays; <st>cat<ed> [0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1] moves."
    out = rewrite_boxes(text, lambda b: to_square(b, 640, 480))
    assert (
        out
        == "Box [0.5, 0.5, 0.6, 0.6] stays; <st>cat<ed> [0.1, 0.275, 0.5, 0.575], [0.0, 0.125, 1.0, 0.875] moves."
    )


@given(st.lists(boxes(three_decimals), min_size=1, max_size=3), names)
def test_rewrite_with_identity_keeps_parsed_boxes(box_list, name):
    text = f"A {format_ref(name, box_list)} B"
    assert rewrite_boxes(text, lambda b: b) == text


def test_iou():
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert iou((0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(0.0625 / 0.4375)
    assert iou((0.2, 0.2, 0.2, 0.2), (0.2, 0.2, 0.2, 0.2)) == 0.0
