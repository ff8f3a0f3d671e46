"""The card's Quality section: flags per reason and task with example ids, and the complexity signals
of every recipe config next to the pool's."""

from __future__ import annotations

from typing import Any

from svit_data.quality import REASONS
from svit_data.state import BuildState, ConfigState
from svit_data.tasks import TASKS


def _pool_table(quality: dict[str, Any]) -> list[str]:
    per_task = quality.get("per_task") or {}
    codes = [c for c in REASONS if any(c in counts for counts in per_task.values())]
    if not codes:
        return ["No sample of the pool is flagged.", ""]
    tasks = [t for t in TASKS if t in per_task]
    lines = [
        f"{quality.get('flagged', 0):,} samples of the pool carry at least one flag.",
        "",
        "| reason | meaning | excluded from recipes | " + " | ".join(tasks) + " | example ids |",
        "|---|---|---|" + "---:|" * len(tasks) + "---|",
    ]
    for code in codes:
        reason = REASONS[code]
        counts = " | ".join(f"{per_task[t].get(code, 0):,}" for t in tasks)
        examples = ", ".join(f"`{i}`" for i in (quality.get("examples") or {}).get(code, []))
        lines.append(
            f"| `{code}` | {reason.description} | {'yes' if reason.excludes else 'no'} | {counts} | {examples} |"
        )
    return [*lines, ""]


def _verification(quality: dict[str, Any]) -> list[str]:
    """What ``svit-recipe verify`` checked and flagged per task, and the rate."""
    verification = quality.get("verification") or {}
    per_task = verification.get("per_task") or {}
    if not per_task:
        return []
    models = ", ".join(f"`{m}`" for m in verification.get("models", [])) or "none"
    lines = [
        f"`svit-recipe verify` checked these samples: a vision judge ({models}) said whether each QA pair is "
        "supported by the image (`unsupported_by_image`), and referring boxes were matched against the "
        "source annotations where given (`ungrounded_box`).",
        "",
        "| task | checked | unsupported_by_image | ungrounded_box | flagged rate |",
        "|---|---:|---:|---:|---:|",
    ]
    for task in [t for t in TASKS if t in per_task] + sorted(t for t in per_task if t not in TASKS):
        counts = per_task[task]
        checked, bad, boxes = (
            counts.get(k, 0) for k in ("checked", "unsupported_by_image", "ungrounded_box")
        )
        rate = f"{(bad + boxes) / checked:.1%}" if checked else ""
        lines.append(f"| {task} | {checked:,} | {bad:,} | {boxes:,} | {rate} |")
    return [*lines, ""]


def _signals(name: str, config: ConfigState) -> list[str]:
    diagnostics = config.recipe.diagnostics if config.recipe else None
    signals = (diagnostics.signals if diagnostics else None) or {}
    quality = (diagnostics.quality if diagnostics else None) or {}
    lines = [f"### `{name}`", ""]
    excluded = quality.get("excluded_by_reason") or {}
    if quality:
        reasons = ", ".join(f"`{c}` {n:,}" for c, n in excluded.items()) or "none"
        where = ", ".join(f"`{c}` {n:,}" for c, n in (quality.get("excluded_by_where") or {}).items())
        lines += [
            f"Excluded {quality.get('excluded', 0):,} train samples: by reason {reasons}"
            + (f"; by condition {where}" if where else "")
            + " (a sample with several flags counts under each).",
            "",
        ]
    if signals:
        lines += [
            "| signal | selected mean | p10 / p50 / p90 | pool mean | p10 / p50 / p90 |",
            "|---|---:|---|---:|---|",
        ]
        for signal, d in signals.items():
            s, p = d.get("selected") or {}, d.get("pool") or {}

            def q(v: dict[str, float]) -> str:
                return " / ".join(f"{v[k]:g}" for k in ("p10", "p50", "p90") if k in v)

            lines.append(f"| {signal} | {s.get('mean', '')} | {q(s)} | {p.get('mean', '')} | {q(p)} |")
        lines.append("")
    return lines


def _overlap(overlap: dict[str, Any]) -> list[str]:
    """Images per source and the images two sources share (``svit_data.image_overlap``)."""
    images = overlap.get("images") or {}
    linked = (
        f"COCO file names are matched to Visual Genome images through `{overlap['image_data']}` "
        f"({overlap.get('coco_links', 0):,} COCO ids)"
        if overlap.get("image_data")
        else "without Visual Genome's `image_data.json` (build `--image-data`), COCO file names match only "
        "COCO file names, not SVIT's Visual Genome ids"
    )
    lines = [
        "Image overlap across the pool's sources: distinct images per source (SVIT: Visual Genome ids; "
        f"others: image file names, COCO and VG names read as ids); {linked}.",
        "",
        "| source | images | source | images | shared images |",
        "|---|---:|---|---:|---:|",
    ]
    for a, b, shared in overlap.get("shared") or []:
        lines.append(f"| {a} | {images.get(a, 0):,} | {b} | {images.get(b, 0):,} | {shared:,} |")
    return [*lines, ""]


def quality(state: BuildState) -> str:
    configs = state.configs
    pool_quality = next((c.pool_quality for c in configs.values() if c.pool_quality), None)
    lines = [
        "Every sample goes through one set of checks (`svit_data.quality`), for released, third-party and "
        "generated data alike. A check flags a sample (the `flags` column); it never drops one. Subset "
        "configs keep every sample with its flags; recipe configs and `svit-train` leave out samples with "
        "an excluding flag and count them.",
        "",
    ]
    lines += (
        _pool_table(pool_quality) if pool_quality is not None else ["No pool statistics were recorded.", ""]
    )
    overlap = next((c.image_overlap for c in configs.values() if c.image_overlap), None)
    if overlap:
        lines += _overlap(overlap)
    lines += _verification(pool_quality or {})
    recipe_names = [n for n in sorted(configs) if configs[n].recipe is not None]
    if recipe_names:
        lines += [
            "Complexity signals (answer words without boxes and markers, QA pairs, boxes, distinct "
            "vocabulary concepts) of each recipe config next to the whole pool's:",
            "",
        ]
        for name in recipe_names:
            lines += _signals(name, configs[name])
    return "\n".join(lines).rstrip()
