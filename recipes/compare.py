"""Compare two built configs: overlap of images and of samples, and their profiles side by side.

An image is keyed by the file name of ``image_file`` (the last path part, lowercased), so the same
picture matches whether it is stored as ``2345.jpg`` (SVIT) or ``vg/VG_100K/2345.jpg`` (a LLaVA file).
A sample is keyed by its image and its normalized first question: lowercased, whitespace folded, the
``<image>`` token and ``<st>``/``<ed>`` markers removed. Text-only samples key by question alone.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from svit_data.recipes.yesno import answer_kind, ratio_report
from svit_data.tasks import GPT, NO_TASK_LABEL, USER

_MARKERS = re.compile(r"<image>|<st>|<ed>")


def image_key(image_file: str | None) -> str | None:
    return image_file.replace("\\", "/").rsplit("/", 1)[-1].lower() if image_file else None


def question_key(turns: list[dict[str, str]]) -> str:
    first = next((t["value"] for t in turns if t["from"] == USER), "")
    return " ".join(_MARKERS.sub(" ", first).lower().split())


@dataclass
class Profile:
    """What one config holds: its image and sample keys, and the numbers shown side by side."""

    rows: int = 0
    images: set[str] = field(default_factory=set)
    samples: set[tuple[str | None, str]] = field(default_factory=set)
    tasks: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    yes: int = 0
    no: int = 0
    answer_words: int = 0


def profile(files: list[Path]) -> Profile:
    """Read a config's parquet files (no images) into a :class:`Profile`."""
    p = Profile()
    for file in files:
        parquet = pq.ParquetFile(file)
        names = parquet.schema_arrow.names
        columns = [c for c in ("image_file", "conversations", "task", "source") if c in names]
        for batch in parquet.iter_batches(columns=columns, batch_size=8192):
            for row in batch.to_pylist():
                p.rows += 1
                image = image_key(row.get("image_file"))
                if image:
                    p.images.add(image)
                turns = row["conversations"]
                p.samples.add((image, question_key(turns)))
                p.tasks[row.get("task") or NO_TASK_LABEL] += 1
                p.sources[row.get("source") or "svit"] += 1
                for turn in turns:
                    if turn["from"] == GPT:
                        p.answer_words += len(turn["value"].split())
                        kind = answer_kind(turn["value"])
                        p.yes += kind == "yes"
                        p.no += kind == "no"
    return p


def _mix(counter: Counter) -> str:
    return ", ".join(f"{k} {n:,}" for k, n in counter.most_common())


def compare(a: Profile, b: Profile) -> list[tuple[str, str, str]]:
    """``(what, A, B)`` rows: sizes, overlaps (each side's share), and the two profiles."""
    shared_images = len(a.images & b.images)
    shared_samples = len(a.samples & b.samples)

    def share(n: int, total: int) -> str:
        return f"{n:,} ({n / total:.1%})" if total else "0"

    ya, yb = ratio_report(a.yes, a.no), ratio_report(b.yes, b.no)
    return [
        ("samples", f"{a.rows:,}", f"{b.rows:,}"),
        ("images", f"{len(a.images):,}", f"{len(b.images):,}"),
        ("shared images", share(shared_images, len(a.images)), share(shared_images, len(b.images))),
        ("shared samples", share(shared_samples, len(a.samples)), share(shared_samples, len(b.samples))),
        (
            "yes share",
            f"{ya['yes_share']:.3f} ({a.yes:,}/{a.no:,})",
            f"{yb['yes_share']:.3f} ({b.yes:,}/{b.no:,})",
        ),
        (
            "answer words/sample",
            f"{a.answer_words / max(a.rows, 1):.1f}",
            f"{b.answer_words / max(b.rows, 1):.1f}",
        ),
        ("task mix", _mix(a.tasks), _mix(b.tasks)),
        ("source mix", _mix(a.sources), _mix(b.sources)),
    ]


def recipe_rows(diagnostics_a: Any, diagnostics_b: Any) -> list[tuple[str, str, str]]:
    """Concept coverage and entropy of two recipe configs (``-`` for a config that is no recipe)."""

    def value(d: Any, what: str) -> str:
        return f"{getattr(d, what).selected:.4f}" if d is not None else "-"

    return [
        ("concept coverage", value(diagnostics_a, "coverage"), value(diagnostics_b, "coverage")),
        ("mention entropy", value(diagnostics_a, "entropy"), value(diagnostics_b, "entropy")),
    ]
