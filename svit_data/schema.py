"""The SVIT sample, declared once as `datasets.Features`, and a typed helper for building rows.

A *sample* is one training conversation about one image. Columns:

- ``id``: stable ``<task>/<image_id>/<n>``; ``n`` counts conversations (conversation, detail
  description) or QA pairs (complex reasoning, referring QA) within the image, from 0.
- ``conversation_index``: position of the source conversation in the released record, so that
  samples regroup into the original file losslessly.
- ``conversations``: turns ``{"from": "user"|"gpt", "value": str}``, text exactly as SVIT wrote it.
- ``image``: embedded image bytes when the images are available, else null (see ``image_file``).
- ``image_file``: file name of the image relative to an image root (``<image_id>.jpg`` for VG).
- ``width``/``height``: image size in pixels when known (needed for the padded-square box frame).
- ``provenance``: filled by the builders (model, prompt hash, request id, source annotation ids,
  tokens, cost); null for the released data.
- ``flags``: reason codes of :mod:`svit_data.quality` found in the sample; empty when clean.
- ``source``: the name of the source the sample came from (``svit`` for SVIT data, else ``--source NAME=``).
- ``source_id``: a third-party record's own id (null for SVIT data); ``images``: its image list when the
  record had several images or wrote them as a list (null otherwise).
- ``box_frame``: the frame of the boxes in the texts: ``original``, ``square``, ``pixels`` or ``k1000``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from datasets import Features, Image, List, Value

from svit_data.tasks import GPT, ORIGINAL_FRAME, PER_QA_TASKS, SPEAKERS, SVIT_SOURCE, USER, check_task

__all__ = [
    "COLUMNS",
    "FEATURES",
    "GPT",
    "POOL_SCHEMA",
    "PROVENANCE_FEATURES",
    "SIGNAL_COLUMNS",
    "SPEAKERS",
    "USER",
    "Sample",
    "default_image_file",
    "parse_sample_id",
    "sample_id",
]

PROVENANCE_FEATURES = {
    "model": Value("string"),
    "prompt_hash": Value("string"),
    "request_id": Value("string"),
    "source_ids": List(Value("int64")),
    "input_tokens": Value("int64"),
    "output_tokens": Value("int64"),
    "cost_usd": Value("float64"),
}

FEATURES = Features(
    {
        "id": Value("string"),
        "image_id": Value("int64"),
        "task": Value("string"),
        "conversation_index": Value("int32"),
        "conversations": List({"from": Value("string"), "value": Value("string")}),
        "image": Image(),
        "image_file": Value("string"),
        "width": Value("int32"),
        "height": Value("int32"),
        "provenance": PROVENANCE_FEATURES,
        "flags": List(Value("string")),
        "source": Value("string"),
        "source_id": Value("string"),
        "images": List(Value("string")),
        "box_frame": Value("string"),
    }
)

COLUMNS: tuple[str, ...] = tuple(FEATURES)

# The pool also stores the complexity signals (svit_data.quality.signals); configs do not carry them.
SIGNAL_COLUMNS: tuple[str, ...] = ("answer_words", "qa_pairs", "boxes")
POOL_SCHEMA = FEATURES.arrow_schema
for _name in SIGNAL_COLUMNS:
    POOL_SCHEMA = POOL_SCHEMA.append(pa.field(_name, pa.int32()))


def sample_id(task: str, image_id: int, n: int) -> str:
    return f"{check_task(task)}/{int(image_id)}/{int(n)}"


def parse_sample_id(value: str) -> tuple[str, int, int]:
    task, image_id, n = value.split("/")
    return check_task(task), int(image_id), int(n)


def default_image_file(image_id: int) -> str:
    return f"{int(image_id)}.jpg"


@dataclass
class Sample:
    """One row of the pool; ``to_row`` gives the dict that matches ``FEATURES``."""

    image_id: int
    task: str
    n: int
    conversation_index: int
    conversations: list[dict[str, str]]
    image_bytes: bytes | None = None
    image_file: str | None = None
    width: int | None = None
    height: int | None = None
    provenance: dict[str, Any] | None = field(default=None)
    flags: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return sample_id(self.task, self.image_id, self.n)

    @property
    def is_per_qa(self) -> bool:
        return self.task in PER_QA_TASKS

    def to_row(self) -> dict[str, Any]:
        image = None
        if self.image_bytes is not None:
            image = {"bytes": self.image_bytes, "path": self.image_file}
        return {
            "id": self.id,
            "image_id": int(self.image_id),
            "task": self.task,
            "conversation_index": int(self.conversation_index),
            "conversations": self.conversations,
            "image": image,
            "image_file": self.image_file or default_image_file(self.image_id),
            "width": self.width,
            "height": self.height,
            "provenance": self.provenance,
            "flags": list(self.flags),
            "source": SVIT_SOURCE,
            "source_id": None,
            "images": None,
            "box_frame": ORIGINAL_FRAME,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Sample:
        task, image_id, n = parse_sample_id(row["id"])
        image = row.get("image")
        image_bytes = image.get("bytes") if isinstance(image, dict) else None
        return cls(
            image_id=image_id,
            task=task,
            n=n,
            conversation_index=row["conversation_index"],
            conversations=[{"from": t["from"], "value": t["value"]} for t in row["conversations"]],
            image_bytes=image_bytes,
            image_file=row.get("image_file"),
            width=row.get("width"),
            height=row.get("height"),
            provenance=row.get("provenance"),
            flags=list(row.get("flags") or []),
        )
