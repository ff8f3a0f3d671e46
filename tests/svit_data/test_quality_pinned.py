"""The flags are the contract: the same pools get the same flags, signals and repaired texts as when
issue 14 landed. Speed work on the quality gate must leave these fingerprints unchanged; a deliberate
change of a rule updates them in the same commit, with the reason.

Fingerprint of a pool: per reason code, how many samples carry it, and one sha256 over every sample in
pool order (id, flags including ``near_duplicate``, the three signals, every turn's speaker and text).
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from collections import Counter
from pathlib import Path

import pytest
from test_quality_ingest import broken_records, write

from svit_data.pool import open_pool

ROOT = Path(__file__).resolve().parents[2]


def fingerprint(pool) -> tuple[dict[str, int], str]:
    columns = ["id", "flags", "answer_words", "qa_pairs", "boxes", "conversations"]
    digest = hashlib.sha256()
    counts: Counter = Counter()
    for batch in pool.iter_batches(columns):
        for row in batch.to_pylist():
            counts.update(row["flags"])
            turns = "\x1e".join(f"{t['from']}\x1f{t['value']}" for t in row["conversations"])
            digest.update(
                f"{row['id']}\x1d{','.join(row['flags'])}\x1d{row['answer_words']},{row['qa_pairs']},"
                f"{row['boxes']}\x1d{turns}\x1c".encode()
            )
    return dict(sorted(counts.items())), digest.hexdigest()


def scale_slice(folder: Path) -> Path:
    """150 images of ``benchmarks/make_scale_pool.py``, with problems sprinkled in deterministically."""
    spec = importlib.util.spec_from_file_location("make_scale_pool", ROOT / "benchmarks/make_scale_pool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_pool(folder, 150, 0)
    return folder


def perturbed(folder: Path) -> Path:
    """The scale slice with a few hundred realistic problems: error replies, boxes, leaks, templates."""
    import json

    from svit_data.tasks import TASK_FILES

    rng = random.Random(14)
    edits = [
        lambda v: "It seems like your message is empty. Could you please provide more information?",
        lambda v: "I'm sorry, but I cannot see the image. " + v,
        lambda v: " ",
        lambda v: "According to the given information, " + v,
        lambda v: v + " The bounding box coordinates confirm it.",
        lambda v: v + " The dog is at [0.1, 0.2, 0.3, 0.5].",
        lambda v: v.replace("<ed>", "", 1),
        lambda v: v.replace("[0.", "[1.4", 1),
        lambda v: v + " The <st>cat<ed> [0.6, 0.2, 0.4, 0.5] sleeps.",
        lambda v: v + " The <st>cat<ed> [0.1, 0.2, 1.0004, 0.5] sleeps.",
        lambda v: v + " The <st>cat<ed> [0.1, 0.2, 0.5] sleeps.",
        lambda v: v + " [0.1, 0.2, 0.3, 0.4]",
        lambda v: v.upper(),
    ]
    template = None
    for name in TASK_FILES.values():
        path = folder / name
        records = json.loads(path.read_text())
        for record in records:
            for conversation in record["conversations"]:
                content = conversation["content"]
                for turn in content:
                    if rng.random() < 0.03:
                        turn["value"] = rng.choice(edits)(turn["value"])
                if rng.random() < 0.02 and len(content) > 2:
                    content[2:4] = [dict(content[0]), dict(content[1])]
                if rng.random() < 0.01:
                    content[0]["from"] = "gpt"
                if rng.random() < 0.01 and len(content) > 1:
                    template = template or content[1]["value"]
                    words = template.split()
                    words[rng.randrange(len(words))] = "changed"
                    content[1]["value"] = " ".join(words)
        path.write_text(json.dumps(records))
    return folder


EXPECTED: dict[str, tuple[dict[str, int], str]] = {
    "sample": (
        {"duplicate_qa": 1042, "near_duplicate": 611},
        "c6b47e6e52364b96c30cc1779559caf8e28d0d37859ec8abb51e589ec5304243",
    ),
    "broken": (
        {
            "box_out_of_range": 1,
            "box_repaired": 1,
            "duplicate_qa": 1,
            "empty_answer": 1,
            "error_reply": 1,
            "leaked_coordinates": 1,
            "malformed_box": 1,
            "near_duplicate": 1,
            "off_quota": 1,
            "source_mention": 1,
            "turn_order": 1,
        },
        "2a320b9409a9b461bd5526de8fb84847e88c327660df7c1d211d4c319e891e09",
    ),
    "scale": (
        {"duplicate_qa": 104, "near_duplicate": 405},
        "da923798ff2d1065f4b49b1f462f274e8ff66993d5430e6ab4b0ff41b89ac448",
    ),
    "scale_perturbed": (
        {
            "box_out_of_range": 3,
            "box_repaired": 13,
            "duplicate_qa": 100,
            "empty_answer": 10,
            "error_reply": 28,
            "leaked_coordinates": 87,
            "malformed_box": 17,
            "near_duplicate": 395,
            # 42 -> 31: box words count in answers only, so the 11 questions that got "The bounding box
            # coordinates confirm it." appended are no longer source_mention (grounding questions ask
            # for boxes; svit_data.quality.text.BOX_WORDS)
            "source_mention": 31,
            "turn_order": 8,
        },
        "06ce8b26bd185b72f388a59dcc082e686ba2bf4118db46596b95c8d34d11b49f",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sample", "broken", "scale", "scale_perturbed"])
def test_flags_signals_and_repairs_are_unchanged(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    if name == "sample":
        source = "sample"
    elif name == "broken":
        source = str(write(tmp_path / "src", broken_records()[0]))
    elif name == "scale":
        source = str(scale_slice(tmp_path / "src"))
    else:
        source = str(perturbed(scale_slice(tmp_path / "src")))
    got = fingerprint(open_pool(source, progress=False))
    assert got == EXPECTED[name]
