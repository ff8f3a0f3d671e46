"""The bundled sample: deterministic, labelled synthetic, all tasks, and images that agree with the boxes."""

from __future__ import annotations

import json
import re
from statistics import mean

import pytest
from PIL import Image

from svit_data import splits
from svit_data.boxes import parse_refs
from svit_data.formats.jsonstream import iter_json_array
from svit_data.sample import COLORS, LABEL, SAMPLE_IMAGES, generate_records, sample_dir, write_sample
from svit_data.tasks import TASK_FILES, TASKS


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    folder = sample_dir()
    return {task: list(iter_json_array(folder / TASK_FILES[task])) for task in TASKS}


@pytest.fixture(scope="module")
def scenes() -> dict[int, tuple]:
    return {image_id: (w, h, things) for image_id, w, h, _, things, _ in generate_records(SAMPLE_IMAGES)}


def test_generation_is_byte_for_byte_deterministic(tmp_path):
    write_sample(tmp_path / "a", num_images=12)
    write_sample(tmp_path / "b", num_images=12)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 12 + len(TASKS) + 2
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    write_sample(tmp_path / "c", num_images=12, seed=1)
    assert (tmp_path / "c" / "referring_qa.json").read_bytes() != (
        tmp_path / "a" / "referring_qa.json"
    ).read_bytes()


def test_the_sample_is_labelled_synthetic():
    folder = sample_dir()
    assert "SYNTHETIC" in LABEL and "not SVIT data" in LABEL
    assert (folder / "README.txt").read_text().strip() == LABEL


def test_every_task_has_a_record_per_image_and_test_ids_are_present(records):
    image_ids = [r["image_id"] for r in records["conversation"]]
    assert len(image_ids) == SAMPLE_IMAGES == len(set(image_ids))
    for task in TASKS:
        assert [r["image_id"] for r in records[task]] == image_ids
    in_test = [i for i in image_ids if i in splits.test_image_ids()]
    assert len(in_test) == round(SAMPLE_IMAGES * 0.1)
    sizes = json.loads((sample_dir() / "image_data.json").read_text())
    assert [s["image_id"] for s in sizes] == image_ids


def test_quotas_and_lengths_look_like_svit(records):
    for record in records["conversation"]:
        assert len(record["conversations"]) == 3
        assert all(4 <= len(c["content"]) // 2 <= 5 for c in record["conversations"])
    assert all(13 <= len(r["conversations"][0]["content"]) // 2 <= 15 for r in records["complex_reasoning"])
    assert all(8 <= len(r["conversations"][0]["content"]) // 2 <= 10 for r in records["referring_qa"])
    assert all(
        len(r["conversations"]) == 1 and len(r["conversations"][0]["content"]) == 2
        for r in records["detail_description"]
    )

    def answer_words(task):
        return mean(
            len(t["value"].split())
            for r in records[task]
            for c in r["conversations"]
            for t in c["content"]
            if t["from"] == "gpt"
        )

    assert 8 <= answer_words("conversation") <= 40
    assert 40 <= answer_words("complex_reasoning") <= 150
    assert 10 <= answer_words("referring_qa") <= 60
    assert 40 <= answer_words("detail_description") <= 250


def test_yes_no_answers_are_present_and_yes_heavy(records):
    answers = [
        t["value"]
        for task in ("conversation", "complex_reasoning")
        for r in records[task]
        for c in r["conversations"]
        for t in c["content"]
        if t["from"] == "gpt"
    ]
    yes = sum(a.startswith("Yes,") for a in answers)
    no = sum(a.startswith("No,") for a in answers)
    assert no > 50 and yes > 1.5 * no


def test_referring_boxes_are_the_boxes_of_named_drawn_things(records, scenes):
    boxes_seen = 0
    for record in records["referring_qa"]:
        _, _, things = scenes[record["image_id"]]
        for turn in record["conversations"][0]["content"]:
            for ref in parse_refs(turn["value"]):
                for box in ref.boxes:
                    matches = [t for t in things if t.box == box]
                    assert matches, (record["image_id"], ref)
                    assert any(ref.name.startswith(t.name) for t in matches)  # the name or its plural
                    boxes_seen += 1
    assert boxes_seen > 1000


def _topmost_at(things, px, py, width, height):
    """The thing drawn last whose shape covers pixel (px, py), as ``draw`` paints them."""
    top = None
    for thing in things:
        x1, y1, x2, y2 = (
            round(thing.box[0] * width),
            round(thing.box[1] * height),
            round(thing.box[2] * width),
            round(thing.box[3] * height),
        )
        if x1 <= px <= x2 and y1 <= py <= y2:
            top = thing
    return top


def test_pixels_at_box_centres_have_the_colour_of_the_thing(scenes):
    folder = sample_dir()
    checked = 0
    for image_id, (width, height, things) in scenes.items():
        image = Image.open(folder / "images" / f"{image_id}.png").convert("RGB")
        assert image.size == (width, height)
        for thing in things:
            px = round((thing.box[0] + thing.box[2]) / 2 * width)
            py = round((thing.box[1] + thing.box[3]) / 2 * height)
            if _topmost_at(things, px, py, width, height) is not thing:
                continue  # hidden under a later shape
            pixel = image.getpixel((px, py))
            if thing.text:  # white sign, black (anti-aliased) letters: a grey between the two
                assert (
                    pixel[0] == pixel[1] == pixel[2] and COLORS["black"][0] <= pixel[0] <= COLORS["white"][0]
                )
            else:
                assert pixel == COLORS[thing.color], (image_id, thing)
            checked += 1
    assert checked > 0.7 * sum(len(t) for _, _, t in scenes.values())


def test_colour_words_in_referring_answers_match_the_pixels(records, scenes):
    folder = sample_dir()
    pattern = re.compile(r"is a (\w+) <st>([^<]+)<ed> \[([^\]]+)\]")
    checked = 0
    for record in records["referring_qa"][:80]:
        width, height, things = scenes[record["image_id"]]
        image = Image.open(folder / "images" / f"{record['image_id']}.png").convert("RGB")
        for turn in record["conversations"][0]["content"]:
            for colour, _, box_text in pattern.findall(turn["value"]):
                box = tuple(float(v) for v in box_text.split(","))
                px, py = round((box[0] + box[2]) / 2 * width), round((box[1] + box[3]) / 2 * height)
                top = _topmost_at(things, px, py, width, height)
                if top is None or top.box != box or top.text:
                    continue
                assert image.getpixel((px, py)) == COLORS[colour]
                checked += 1
    assert checked > 20
