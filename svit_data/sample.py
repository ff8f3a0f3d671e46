"""The bundled sample: a small, deterministic, SYNTHETIC pool in the SVIT original format.

It is not SVIT data. Every image is drawn by this module (coloured shapes and signs on a plain
background) and every text is written from templates about exactly those shapes, so boxes in
referring QA match the drawn objects and yes/no answers are true of the image. It has all four tasks,
realistic lengths, a yes-heavy yes/no mix (as GPT-4 data has) and images from SVIT's test id list, so
every config and recipe builds on it. It is generated on first use into ``$SVIT_CACHE/sample-v<N>``
(deterministic: the same bytes on every machine) and reused afterwards.

:func:`generate_records` is also the text generator of the SVIT-scale benchmark pool.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svit_data import paths
from svit_data.atomic import staged_folder
from svit_data.boxes import format_ref
from svit_data.formats.svit import write_json_array
from svit_data.splits import test_image_ids
from svit_data.tasks import (
    COMPLEX_REASONING,
    CONVERSATION,
    DETAIL_DESCRIPTION,
    REFERRING_QA,
    TASK_FILES,
    TASKS,
)

SAMPLE_VERSION = "1"
SAMPLE_IMAGES = 240
SAMPLE_SEED = 2307_04087
VG_IMAGES = 108_077
LABEL = "SYNTHETIC svit sample: drawn shapes and template text, not SVIT data."

COLORS = {
    "red": (200, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "orange": (240, 140, 30),
    "purple": (130, 60, 170),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "brown": (120, 80, 40),
    "gray": (128, 128, 128),
}
THINGS = (
    "dog",
    "cat",
    "car",
    "bus",
    "person",
    "tree",
    "cup",
    "chair",
    "bicycle",
    "umbrella",
    "clock",
    "book",
    "bottle",
    "boat",
    "kite",
    "horse",
    "bench",
    "laptop",
    "bird",
    "traffic light",
)
SCENES = ("street", "park", "kitchen", "living room", "beach", "office", "garden", "parking lot")
SIGN_WORDS = ("STOP", "OPEN", "EXIT", "CAFE", "SALE", "BUS 42", "PARK", "HOTEL")
BACKGROUNDS = {
    "street": (190, 190, 200),
    "park": (170, 210, 160),
    "kitchen": (235, 225, 205),
    "living room": (225, 215, 230),
    "beach": (240, 225, 170),
    "office": (215, 220, 225),
    "garden": (160, 200, 140),
    "parking lot": (175, 175, 175),
}
DESCRIBE = (
    "Describe the following image in detail.",
    "Provide a detailed description of the given image.",
    "Give an elaborate explanation of the image you see.",
    "Share a comprehensive rundown of the presented image.",
    "Explain the various aspects of the image before you.",
    "What is happening in this picture? Describe it thoroughly.",
)


@dataclass
class Thing:
    name: str
    color: str
    box: tuple[float, float, float, float]  # original frame, 3 decimals
    text: str | None = None  # words written on a sign

    @property
    def label(self) -> str:
        return f"{self.color} {self.name}"

    def ref(self) -> str:
        return format_ref(self.name, [self.box])

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def _position(thing: Thing) -> str:
    x, y = thing.center
    horizontal = "on the left side" if x < 0.38 else "on the right side" if x > 0.62 else "in the middle"
    vertical = "near the top" if y < 0.35 else "near the bottom" if y > 0.65 else ""
    return f"{horizontal} of the image" + (f", {vertical}" if vertical else "")


def _relation(a: Thing, b: Thing) -> str:
    dx, dy = a.center[0] - b.center[0], a.center[1] - b.center[1]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def _plural(name: str, count: int) -> str:
    if count == 1:
        return name
    return (
        name[:-1] + "ies"
        if name.endswith("y") and name[-2] not in "aeiou"
        else (name + "es" if name.endswith(("s", "sh", "ch")) else name + "s")
    )


def _scene(rng: random.Random, width: int, height: int) -> tuple[str, list[Thing]]:
    scene = rng.choice(SCENES)
    things = []
    for _ in range(rng.randint(3, 7)):
        w, h = rng.uniform(0.12, 0.4), rng.uniform(0.12, 0.4)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        box = tuple(round(v, 3) for v in (x, y, x + w, y + h))
        things.append(Thing(rng.choice(THINGS), rng.choice(list(COLORS)), box))  # type: ignore[arg-type]
    if rng.random() < 0.5:
        w, h = 0.3, 0.14
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 0.4)
        things.append(
            Thing(
                "sign",
                "white",
                tuple(round(v, 3) for v in (x, y, x + w, y + h)),  # type: ignore[arg-type]
                rng.choice(SIGN_WORDS),
            )
        )
    return scene, things


def draw(scene: str, things: list[Thing], width: int, height: int) -> bytes:
    """PNG of the scene: each thing drawn inside its box, signs with their words."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUNDS[scene])
    pen = ImageDraw.Draw(image)
    for thing in things:
        x1, y1, x2, y2 = (
            round(thing.box[0] * width),
            round(thing.box[1] * height),
            round(thing.box[2] * width),
            round(thing.box[3] * height),
        )
        if thing.text:
            pen.rectangle((x1, y1, x2, y2), fill=COLORS["white"], outline=COLORS["black"])
            pen.text((x1 + 3, y1 + 2), thing.text, fill=COLORS["black"])
        elif thing.name in ("cup", "clock", "bird", "kite", "tree", "umbrella"):
            pen.ellipse((x1, y1, x2, y2), fill=COLORS[thing.color], outline=COLORS["black"])
        else:
            pen.rectangle((x1, y1, x2, y2), fill=COLORS[thing.color], outline=COLORS["black"])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _yes_no(rng: random.Random, things: list[Thing], scene: str) -> tuple[str, str]:
    """A yes/no QA true of the scene; about 70% of them are 'yes', like GPT-4-written data."""
    present = rng.choice(things)
    if rng.random() < 0.7:
        return (
            f"Is there a {present.label} in the image?",
            f"Yes, there is a {present.label} {_position(present)}.",
        )
    names = {t.name for t in things}
    absent = next((n for n in rng.sample(THINGS, len(THINGS)) if n not in names), "giraffe")
    return (
        f"Is there a {absent} in the image?",
        f"No, there is no {absent} in the image. The scene shows a {scene}.",
    )


def _open_qa(rng: random.Random, things: list[Thing], scene: str) -> tuple[str, str]:
    thing = rng.choice(things)
    names = [t.name for t in things]
    kind = rng.randrange(5)
    if kind == 0:
        return f"What color is the {thing.name}?", f"The {thing.name} {_position(thing)} is {thing.color}."
    if kind == 1:
        count = names.count(thing.name)
        return (
            f"How many {_plural(thing.name, 2)} can be seen?",
            f"There {'is' if count == 1 else 'are'} {count} {_plural(thing.name, count)} in the image.",
        )
    if kind == 2:
        return f"Where is the {thing.label} located?", f"The {thing.label} is {_position(thing)}."
    if kind == 3:
        sign = next((t for t in things if t.text), None)
        if sign:
            return "What does the sign say?", f'The sign {_position(sign)} reads "{sign.text}".'
    return (
        "What kind of place does this look like?",
        f"It looks like a {scene}, with {', '.join(t.label for t in things[:3])} in view.",
    )


def _reasoning(rng: random.Random, things: list[Thing], scene: str) -> tuple[str, str]:
    a, b = rng.sample(things, 2)
    question = rng.choice(
        (
            f"Why might the {a.name} be positioned {_relation(a, b)} the {b.name}?",
            f"What can you infer about the {scene} from the objects in the image?",
            f"How could someone in this {scene} make use of the {a.label}?",
        )
    )
    steps = [
        f"First, the image shows a {a.label} {_position(a)} and a {b.label} {_position(b)}.",
        f"Second, the {a.name} is {_relation(a, b)} the {b.name}, which suggests they belong to the same part of the {scene}.",
        f"Third, objects such as {', '.join(t.name for t in things)} are typical of a {scene}.",
        f"Therefore, the arrangement most likely reflects everyday use: the {a.name} is kept where it is convenient, "
        f"and the {b.color} color of the {b.name} makes it easy to spot.",
    ]
    return question, " ".join(steps[: rng.randint(3, 4)])


def _referring(rng: random.Random, things: list[Thing]) -> tuple[str, str]:
    a, b = rng.sample(things, 2)
    kind = rng.randrange(3)
    if kind == 0:
        return (
            f"Where is the {a.label} relative to the {b.label}?",
            f"The {a.ref()} is {_relation(a, b)} the {b.ref()}.",
        )
    if kind == 1:
        same = [t for t in things if t.name == a.name]
        boxes = format_ref(_plural(a.name, len(same)), [t.box for t in same])
        return f"Can you point out every {a.name} in the image?", f"Yes, the image contains {boxes}."
    return (
        f"What is the object {_position(a)}?",
        f"The object {_position(a)} is a {a.color} {a.ref()}, close to the {b.ref()}.",
    )


def _description(rng: random.Random, things: list[Thing], scene: str) -> str:
    parts = [f"The image shows a {scene} scene drawn in simple shapes."]
    for thing in things:
        if thing.text:
            parts.append(f'A white sign {_position(thing)} carries the words "{thing.text}".')
        else:
            parts.append(f"A {thing.label} appears {_position(thing)}.")
    a, b = rng.sample(things, 2)
    parts.append(
        f"The {a.name} is {_relation(a, b)} the {b.name}, and the composition leaves some open space "
        f"around the objects, giving the {scene} a calm and orderly feel."
    )
    return " ".join(parts)


def _qa(rng: random.Random, things: list[Thing], scene: str, n: int, make) -> list[dict[str, str]]:
    turns = []
    for _ in range(n):
        question, answer = make(rng, things, scene)
        turns += [{"from": "user", "value": question}, {"from": "gpt", "value": answer}]
    return turns


def records_for_image(
    image_id: int, rng: random.Random, width: int, height: int
) -> tuple[str, list[Thing], dict[str, dict[str, Any]]]:
    """The scene of one image and its record per task, in the SVIT original format."""
    scene, things = _scene(rng, width, height)
    mix = lambda r, t, s: _yes_no(r, t, s) if r.random() < 0.35 else _open_qa(r, t, s)  # noqa: E731
    conversation = [{"content": _qa(rng, things, scene, rng.choice((4, 5, 5, 5)), mix)} for _ in range(3)]
    reasoning = [
        {
            "content": _qa(
                rng,
                things,
                scene,
                rng.choice((13, 14, 15, 15)),
                lambda r, t, s: _yes_no(r, t, s) if r.random() < 0.15 else _reasoning(r, t, s),
            )
        }
    ]
    referring = [
        {"content": _qa(rng, things, scene, rng.choice((8, 9, 10, 10)), lambda r, t, s: _referring(r, t))}
    ]
    description = [
        {
            "content": [
                {"from": "user", "value": rng.choice(DESCRIBE)},
                {"from": "gpt", "value": _description(rng, things, scene)},
            ]
        }
    ]
    records = {
        CONVERSATION: conversation,
        COMPLEX_REASONING: reasoning,
        REFERRING_QA: referring,
        DETAIL_DESCRIPTION: description,
    }
    return scene, things, {task: {"image_id": image_id, "conversations": c} for task, c in records.items()}


def choose_image_ids(count: int, rng: random.Random, test_share: float = 0.1) -> list[int]:
    tests = sorted(test_image_ids())
    n_test = round(count * test_share)
    chosen = set(rng.sample(tests, n_test))
    while len(chosen) < count:
        candidate = rng.randint(1, VG_IMAGES)
        if candidate not in test_image_ids():
            chosen.add(candidate)
    return sorted(chosen)


def generate_records(
    num_images: int, seed: int = SAMPLE_SEED
) -> Iterator[tuple[int, int, int, str, list[Thing], dict[str, dict[str, Any]]]]:
    """Per image: ``(image_id, width, height, scene, things, records by task)``, deterministic."""
    rng = random.Random(seed)
    for image_id in choose_image_ids(num_images, rng):
        width, height = rng.randint(160, 320), rng.randint(120, 320)
        scene, things, records = records_for_image(image_id, rng, width, height)
        yield image_id, width, height, scene, things, records


def write_sample(folder: Path, num_images: int = SAMPLE_IMAGES, seed: int = SAMPLE_SEED) -> None:
    """Write the sample pool (task files, image_data.json, images/) into ``folder``."""
    (folder / "images").mkdir(parents=True)
    per_task: dict[str, list[dict[str, Any]]] = {task: [] for task in TASKS}
    image_data = []
    for image_id, width, height, scene, things, records in generate_records(num_images, seed):
        (folder / "images" / f"{image_id}.png").write_bytes(draw(scene, things, width, height))
        image_data.append(
            {
                "image_id": image_id,
                "width": width,
                "height": height,
                "coco_id": None,
                "flickr_id": None,
                "url": None,
            }
        )
        for task in TASKS:
            per_task[task].append(records[task])
    for task in TASKS:
        write_json_array(per_task[task], folder / TASK_FILES[task])
    (folder / "image_data.json").write_text(json.dumps(image_data))
    (folder / "README.txt").write_text(LABEL + "\n")


def sample_dir() -> Path:
    """The bundled sample's folder, generated on first use (atomically) and then reused."""
    folder = paths.cache_dir() / f"sample-v{SAMPLE_VERSION}"
    if (folder / "README.txt").is_file():
        return folder
    with staged_folder(folder, keep_existing=True) as tmp:
        write_sample(tmp)
    return folder
