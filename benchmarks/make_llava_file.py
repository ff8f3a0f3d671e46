"""A LLaVA-format JSON file at LLaVA-v1.5-mix-665K scale, for the sources ingest benchmark.

Deterministic (seeded) synthetic records shaped like mix-665K's parts: LLaVA-Instruct-style multi-turn
conversations about COCO images, VQAv2/GQA-style runs of short QA ("Answer the question using a single
word or phrase."), OCR-VQA and TextVQA records, VG region QA with square-frame boxes, and text-only
ShareGPT conversations (no ``image`` key). 665,298 records, about 1 GB by default.

    python benchmarks/make_llava_file.py --out /tmp/llava_mix665k.json [--records 665298]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = (
    "the a man woman dog cat bus car street table plate pizza kitchen sky tree building sign red blue "
    "green white black two three small large wooden old standing sitting holding next to near on in "
    "front behind people group background sunny water grass field train station window road traffic"
).split()
SHORT = "Answer the question using a single word or phrase."
PARTS = (  # (kind, share of records)
    ("instruct", 0.24),
    ("vqa", 0.38),
    ("ocr", 0.12),
    ("vg", 0.16),
    ("text", 0.10),
)


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def record(rng: random.Random, n: int) -> dict:
    kind = rng.choices([k for k, _ in PARTS], weights=[w for _, w in PARTS])[0]
    coco = f"{rng.randint(1, 581_000):012d}"
    if kind == "text":
        turns = []
        for _ in range(rng.randint(1, 4)):
            turns += [
                {"from": "human", "value": " ".join(sentence(rng, 6, 20) for _ in range(rng.randint(1, 3)))},
                {"from": "gpt", "value": " ".join(sentence(rng, 8, 25) for _ in range(rng.randint(2, 9)))},
            ]
        return {"id": f"sharegpt-{n}", "conversations": turns}
    if kind == "instruct":
        image, pairs = (
            f"coco/train2017/{coco}.jpg",
            [
                (sentence(rng, 6, 14), " ".join(sentence(rng, 8, 22) for _ in range(rng.randint(2, 8))))
                for _ in range(rng.randint(1, 5))
            ],
        )
    elif kind == "vqa":
        image = rng.choice((f"coco/train2017/{coco}.jpg", f"gqa/images/{rng.randint(1, 2_400_000)}.jpg"))
        pairs = [
            (f"{sentence(rng, 4, 9)[:-1]}?\n{SHORT}", rng.choice(WORDS)) for _ in range(rng.randint(3, 12))
        ]
    elif kind == "ocr":
        image = rng.choice(
            (
                f"ocr_vqa/images/{rng.randint(10**8, 10**9)}.jpg",
                f"textvqa/train_images/{rng.getrandbits(64):016x}.jpg",
            )
        )
        pairs = [(f"{sentence(rng, 4, 8)[:-1]}?", sentence(rng, 1, 6)) for _ in range(rng.randint(2, 6))]
    else:
        image = f"vg/VG_100K/{rng.randint(1, 2_417_000)}.jpg"
        pairs = []
        for _ in range(rng.randint(3, 10)):
            x1, y1 = round(rng.random() * 0.6, 2), round(rng.random() * 0.6, 2)
            box = [x1, y1, round(x1 + rng.random() * 0.4, 2), round(y1 + rng.random() * 0.4, 2)]
            pairs.append(
                (
                    f"Please provide the bounding box coordinate of the region this sentence describes: {sentence(rng, 3, 8)}",
                    str(box),
                )
            )
    turns = []
    for k, (question, answer) in enumerate(pairs):
        question = f"<image>\n{question}" if k == 0 else question
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return {"id": coco if kind == "instruct" else f"{kind}-{n}", "image": image, "conversations": turns}


def write(out: Path, records: int, seed: int = 0) -> int:
    """Write the file (a JSON array, one record a line as json.dump(indent=None) would) and return its size."""
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        for n in range(records):
            handle.write(("," if n else "") + json.dumps(record(rng, n)) + "\n")
        handle.write("]\n")
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--records", type=int, default=665_298, help="records (default: mix-665K's 665,298)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    size = write(Path(args.out), args.records, args.seed)
    print(f"wrote {args.records:,} records, {size / 1e9:.2f} GB, to {args.out}")


if __name__ == "__main__":
    main()
