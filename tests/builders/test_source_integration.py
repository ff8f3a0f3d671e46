"""A generate output folder is a core ``--source``: build it and load it with ``datasets``."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from builders_helpers import read_records, run_library
from scripted import answer, task_of

from svit_data.builders.annotations import VisualGenome
from svit_data.builders.serializer import SerializerConfig
from svit_data.builders.sources import AnnotationSource
from svit_data.builders.tokens import TokenCounter
from svit_data.cli import main
from svit_data.pool import find_task_files
from svit_data.tasks import COMPLEX_REASONING, PER_QA_TASKS, TASKS

ERROR_REPLY = "It seems like your message is empty. Could you provide the details?"
REJECTED_IMAGE = 3


def _context_of(vg: Path, image_id: int) -> str:
    source = AnnotationSource(VisualGenome(vg))
    image = next(i for i in source.images() if i.image_id == image_id)
    return source.context(image, TokenCounter(), SerializerConfig()).text


def _expected_rows(out: Path) -> dict[str, dict]:
    """``id -> (image_id, turns, provenance, width, height)`` of every generated sample."""
    rows = {}
    for task in TASKS:
        for record in read_records(out, task):
            n = 0
            for c, conversation in enumerate(record["conversations"]):
                turns = conversation["content"]
                chunks = (
                    [turns[i : i + 2] for i in range(0, len(turns), 2)] if task in PER_QA_TASKS else [turns]
                )
                for chunk in chunks:
                    rows[f"{task}/{record['image_id']}/{n}"] = {
                        "image_id": record["image_id"],
                        "task": task,
                        "conversation_index": c,
                        "conversations": chunk,
                        "width": record["width"],
                        "height": record["height"],
                        "provenance": record["provenance"],
                    }
                    n += 1
    return rows


def test_generated_folder_builds_and_loads(small_vg, tmp_path, fake_server, svit_cache):
    rejected_context = _context_of(small_vg, REJECTED_IMAGE)

    def replies(body: dict) -> str:
        context = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if task_of(body) == COMPLEX_REASONING and context == rejected_context:
            return ERROR_REPLY
        return answer(body)

    out = tmp_path / "generated"
    with fake_server(answer=replies) as (_, url):
        run_library(small_vg, out, url, tasks=TASKS, chunk_size=4)
    rejections = [json.loads(line) for line in (out / "rejections.jsonl").read_text().splitlines()]
    assert [(r["image_id"], r["task"], r["reason"]) for r in rejections] == [
        (REJECTED_IMAGE, COMPLEX_REASONING, "error_reply")
    ]
    # the files next to the shards are never taken for task files
    assert {p.name for p in out.iterdir()} >= {
        "rejections.jsonl",
        "summary.json",
        "cache.sqlite",
        "generate_config.json",
    }
    # nor is a temporary file left by a killed run
    (out / "conversation" / ".shard-000of001-00000.jsonl.tmp999").write_text("{broken")
    found = find_task_files(out)
    assert set(found) == set(TASKS)
    assert all(p.parent == out / t and p.name.startswith("shard-") for t, ps in found.items() for p in ps)
    assert len(found["conversation"]) == 2  # 6 images in chunks of 4

    dataset_dir = tmp_path / "dataset"
    code = main(["build", "full", "referring-qa", "--source", str(out), "--out", str(dataset_dir), "--quiet"])
    assert code == 0
    full = datasets.load_dataset(str(dataset_dir), "full", cache_dir=str(tmp_path / "hf"))["train"]
    expected = _expected_rows(out)
    got = {row["id"]: row for row in full}
    assert sorted(got) == sorted(expected)
    assert not any(i.startswith(f"{COMPLEX_REASONING}/{REJECTED_IMAGE}/") for i in got)
    assert sum(i.startswith(f"{COMPLEX_REASONING}/") for i in got) == 5 * 15
    for sample_id, want in expected.items():
        row = got[sample_id]
        assert {k: row[k] for k in want} == want, sample_id
    first = got["referring_qa/1/0"]
    assert first["provenance"]["model"] == "gpt-4o" and first["provenance"]["cost_usd"] > 0
    assert (
        first["provenance"]["prompt_hash"]
        == json.loads((out / "generate_config.json").read_text())["prompt_hashes"]["referring_qa"]
    )
    assert (first["width"], first["height"], first["image_file"]) == (800, 600, "1.jpg")
    referring = datasets.load_dataset(str(dataset_dir), "referring-qa", cache_dir=str(tmp_path / "hf"))
    assert sorted(referring["train"]["id"]) == sorted(i for i in expected if i.startswith("referring_qa/"))
