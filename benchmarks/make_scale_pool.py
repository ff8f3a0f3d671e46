"""Write a synthetic pool at SVIT scale in the SVIT original format (one JSON array per task file).

Scale (DESIGN.md §3): 108,077 images; per image 3 conversations of about 5 QA, about 15 complex
reasoning QA, about 10 referring QA and 1 detail description, so about 3.0M samples and 4.2M QA.
Text comes from the bundled sample's generator (``svit_data.sample.generate_records``); answers are
then lengthened with more true sentences about the same scene to about GPT-4's lengths in SVIT
(conversation ~40 words, complex reasoning ~110, referring ~30, description ~180), so the files
weigh about what the released ones do. Deterministic; streamed to disk (memory stays flat); each
file is written to a temporary name and renamed when complete.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale            # full scale, ~2.5 GB
    python benchmarks/make_scale_pool.py --out /tmp/svit-small --images 2000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from svit_data.atomic import atomic_open, write_text
from svit_data.sample import VG_IMAGES, Thing, _position, generate_records
from svit_data.tasks import TASK_FILES, TASKS

# Target mean answer length in words per task (rough GPT-4 lengths in the released SVIT files).
ANSWER_WORDS = {
    "conversation": 40,
    "complex_reasoning": 110,
    "referring_qa": 30,
    "detail_description": 180,
}


def lengthen(answer: str, things: list[Thing], scene: str, words: int, rng: random.Random) -> str:
    """``answer`` followed by sentences about the scene until it has about ``words`` words."""
    target = max(1, round(rng.gauss(words, words / 4)))
    parts = [answer]
    count = len(answer.split())
    k = rng.randrange(len(things))
    while count < target:
        thing = things[k % len(things)]
        sentence = (
            f"The {thing.label} can be seen {_position(thing)}, which fits the {scene} setting."
            if k % 2
            else f"Next to it, the {scene} also shows the {thing.name}, painted {thing.color}."
        )
        parts.append(sentence)
        count += len(sentence.split())
        k += 1
    return " ".join(parts)


def write_pool(out: Path, num_images: int, seed: int) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    counts = {"images": 0, "samples": 0, "qa": 0}
    sizes = []
    with ExitStack() as stack:  # every task file is renamed into place only if all were written
        handles = {task: stack.enter_context(atomic_open(out / TASK_FILES[task])) for task in TASKS}
        for handle in handles.values():
            handle.write("[")
        for i, (image_id, width, height, scene, things, records) in enumerate(
            generate_records(num_images, seed)
        ):
            sizes.append({"image_id": image_id, "width": width, "height": height})
            for task in TASKS:
                record = records[task]
                for conversation in record["conversations"]:
                    for turn in conversation["content"]:
                        if turn["from"] == "gpt":
                            turn["value"] = lengthen(turn["value"], things, scene, ANSWER_WORDS[task], rng)
                    qa = len(conversation["content"]) // 2
                    counts["qa"] += qa
                    counts["samples"] += qa if task in ("complex_reasoning", "referring_qa") else 1
                handles[task].write(",\n" if i else "\n")
                handles[task].write(json.dumps(record, ensure_ascii=False))
            counts["images"] += 1
            if counts["images"] % 10_000 == 0:
                print(f"{counts['images']:,} images", file=sys.stderr, flush=True)
        for handle in handles.values():
            handle.write("\n]\n")
    write_text(out / "image_data.json", json.dumps(sizes))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", required=True, help="folder to write the task files and image_data.json into"
    )
    parser.add_argument(
        "--images", type=int, default=VG_IMAGES, help=f"number of images (default: {VG_IMAGES:,})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    start = time.perf_counter()
    counts = write_pool(Path(args.out), args.images, args.seed)
    size = sum((Path(args.out) / name).stat().st_size for name in TASK_FILES.values())
    print(
        f"wrote {counts['images']:,} images, {counts['samples']:,} samples, {counts['qa']:,} QA, "
        f"{size / 1e9:.2f} GB of JSON to {args.out} in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
