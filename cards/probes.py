"""The card's probe and decontamination section: construction rules, counts, fallbacks, exclusions."""

from __future__ import annotations

from svit_data.state import BuildState, ConfigState, ProbeState

COUNT_LABELS = (
    ("annotated_test_images", "annotated test images"),
    ("eligible_images", "eligible images"),
    ("images", "probe images"),
    ("questions", "questions"),
    ("yes", "yes"),
    ("no", "no"),
    ("fallbacks", "random fallbacks"),
)


def _probe_lines(name: str, probe: ProbeState) -> list[str]:
    params = ", ".join(f"{k}={v}" for k, v in sorted(probe.parameters.items()))
    files = ", ".join(probe.annotation_files) or "regenerated from svit's code"
    lines = [f"### `{name}`", "", probe.rules, ""]
    lines += [f"Parameters: {params}. Annotations: {files}.", ""]
    lines += ["| " + " | ".join(label for _, label in COUNT_LABELS) + " |"]
    lines += ["|" + "---:|" * len(COUNT_LABELS)]
    lines += ["| " + " | ".join(f"{probe.counts.get(key, 0):,}" for key, _ in COUNT_LABELS) + " |", ""]
    return lines


def _exclusion_lines(configs: dict[str, ConfigState]) -> list[str]:
    rows = [(n, c.exclusion) for n, c in sorted(configs.items()) if c.exclusion is not None]
    if not rows:
        return []
    lines = [
        "Images named by an exclude list (`svit-recipe build --exclude-images`) were left out of the train "
        "splits below:",
        "",
        "| config | samples removed | why | images in the list (matched to Visual Genome) |",
        "|---|---:|---|---:|",
    ]
    for name, e in rows:
        removed, why = e.samples_removed, e.reason
        if e.before_selection is not None:  # a recipe: left out of its candidates, so it keeps its size
            removed += e.before_selection
            why += f"; {e.before_selection:,} of them left the candidates before selection"
        lines.append(f"| `{name}` | {removed:,} | {why} | {e.listed:,} ({e.images:,}) |")
    return [*lines, ""]


def probes(state: BuildState) -> str:
    """Rules and counts of each probe config, the decontamination rule, and any exclusions."""
    configs = state.configs
    built = {n: c.probe for n, c in sorted(configs.items()) if c.probe is not None}
    lines: list[str] = []
    for name, probe in built.items():
        lines += _probe_lines(name, probe)
    if built:
        images = {i for probe in built.values() for i in probe.images}
        lines += [
            f"The probe configs use {len(images):,} images, all from SVIT's test image list. No train split "
            "of any config holds one of them: the build checks it and refuses to write the folder otherwise.",
            "",
        ]
    else:
        lines += ["No probe config was built into this copy.", ""]
    lines += _exclusion_lines(configs)
    return "\n".join(lines).rstrip()
