"""The card's prose sections, each a small function of the build state returning Markdown.

Every number in the card comes from the state (counts, task mix, manifests, diagnostics) or is
computed at render time (the box-frame example), so the card cannot drift from the data.
Optional parts of the state (``None``) are skipped: recipes add manifests and diagnostics, subsets do not.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from svit_data.boxes import format_box, to_square
from svit_data.cards.metadata import config_rows, default_config
from svit_data.schema import COLUMNS
from svit_data.state import BuildState, ConfigState, RecipeState
from svit_data.tasks import TASKS

EXAMPLE_BOX = (0.25, 0.1, 0.75, 0.6)
EXAMPLE_SIZE = (640, 480)


def _number(value: Any) -> str:
    """Numbers as a reader wants them (thousands separators, 3 significant decimals); dicts inline."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {_number(v)}" for k, v in value.items()) + ")"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _prose_cell(text: Any) -> str:
    """A table cell of prose: ``<st>`` and the like shown as text rather than read as HTML tags."""
    return _cell(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def task_mix(config: ConfigState) -> dict[str, int] | None:
    """Samples per task: from the recipe diagnostics or the build's counts; None when unknown."""
    mix = (config.recipe.diagnostics.task_mix if config.recipe else None) or config.task_mix
    if mix:
        return {task: int(n) for task, n in mix.items()}
    tasks = config.tasks
    if len(tasks) == 1:
        return {tasks[0]: config_rows(config)}
    return None


def _mix_text(config: ConfigState) -> str:
    mix = task_mix(config)
    if mix is None:
        tasks = config.tasks
        return ", ".join(tasks) if tasks else "n/a"
    total = sum(mix.values()) or 1
    ordered = sorted(mix, key=lambda t: (TASKS.index(t) if t in TASKS else len(TASKS), t))
    return ", ".join(f"{t} {100 * mix[t] / total:.0f}%" for t in ordered if mix[t])


def config_table(state: BuildState) -> str:
    """One row per config: kind, rows per split, task mix, and its one-line description."""
    configs = state.configs
    default = default_config(configs)
    lines = [
        "| config | kind | rows | splits | task mix | description |",
        "|---|---|---:|---|---|---|",
    ]
    for name in sorted(configs):
        config = configs[name]
        splits = ", ".join(f"{s} {_number(v.num_examples)}" for s, v in sorted(config.splits.items()))
        label = f"`{name}`" + (" (default)" if name == default else "")
        kind = config.kind + (" (LLaVA format)" if config.schema == "llava" else "")
        lines.append(
            f"| {label} | {kind} | {_number(config_rows(config))} | {splits} | "
            f"{_cell(_mix_text(config))} | {_prose_cell(config.description)} |"
        )
    return "\n".join(lines)


def _feature_type(feature: Any) -> str:
    if isinstance(feature, dict):
        kind = feature.get("_type")
        if kind == "Value":
            return feature["dtype"]
        if kind == "Image":
            return "image"
        if kind in ("List", "Sequence", "LargeList"):
            return f"list of {_feature_type(feature['feature'])}"
        if kind is None:
            return "{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feature.items()) + "}"
        return kind.lower()
    if isinstance(feature, list) and feature:
        return f"list of {_feature_type(feature[0])}"
    return str(feature)


def schema_table(state: BuildState) -> str:
    """Columns of each distinct schema among the built configs (svit and, if built, llava)."""
    blocks, seen = [], set()
    for name in sorted(state.configs):
        config = state.configs[name]
        schema = config.schema
        if schema in seen:
            continue
        seen.add(schema)
        users = [n for n in sorted(state.configs) if state.configs[n].schema == schema]
        lines = [
            f"**{schema}** schema (configs: {', '.join(f'`{u}`' for u in users)}):",
            "",
            "| column | type |",
            "|---|---|",
        ]
        features = config.features
        order = sorted(features, key=lambda c: (COLUMNS.index(c) if c in COLUMNS else len(COLUMNS), c))
        lines += [f"| `{col}` | {_cell(_feature_type(features[col]))} |" for col in order]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def box_example() -> str:
    """A worked example of the two box frames, computed with the library's own conversion."""
    width, height = EXAMPLE_SIZE
    square = to_square(EXAMPLE_BOX, width, height)
    shift = (max(width, height) - min(width, height)) // 2
    pixels = [round(EXAMPLE_BOX[i] * (width if i % 2 == 0 else height)) for i in range(4)]
    return (
        f"Take a {width}x{height} image and the referring-QA text `<st>dog<ed> {format_box(EXAMPLE_BOX)}` "
        f"(original frame). In pixels the box is `{pixels}`. Padding to a {max(width, height)}x"
        f"{max(width, height)} square adds {shift} pixels above the image, so the y values move down by "
        f"{shift}; dividing every value by {max(width, height)} and rounding to 3 decimals gives "
        f"`{format_box(square)}` (padded-square frame), which is what the LLaVA-format configs contain."
    )


def _yes_no_rows(recipe: RecipeState) -> list[str]:
    """Yes/no answers where balancing acted (before, after) or, without balancing, candidates vs selection."""
    yes_no = recipe.diagnostics.yes_no
    if recipe.diagnostics.balance is not None:
        rows = [("before balancing", yes_no.before), ("after balancing", yes_no.after)]
    else:
        candidates = recipe.manifest.counts.get("candidate_yes_no")
        rows = [("all train candidates", candidates)] if isinstance(candidates, dict) else []
        rows.append(("selection", yes_no.after))
    lines = ["| yes/no answers | yes | no | yes share |", "|---|---:|---:|---:|"]
    for label, v in rows:
        v = v if isinstance(v, dict) else {"yes": v.yes, "no": v.no, "yes_share": v.yes_share}
        lines.append(f"| {label} | {_number(v['yes'])} | {_number(v['no'])} | {_number(v['yes_share'])} |")
    return [*lines, ""]


def _recipe_lines(name: str, config: ConfigState) -> list[str]:
    lines = [f"### `{name}`", ""]
    if config.description:
        lines += [config.description, ""]
    recipe = config.recipe
    if recipe is None:
        return lines
    lines += [f"Objective: {recipe.objective}", ""]
    manifest = recipe.manifest
    rows: list[tuple[str, Any]] = [
        ("pool_fingerprint", manifest.pool_fingerprint),
        ("vocabulary_hash", manifest.vocabulary_hash),
        ("ids_sha256", manifest.ids_sha256),
        ("seed", manifest.seed),
    ]
    file_content = manifest.parameters.get("recipe") if recipe.recipe_file else None
    parameters = {k: v for k, v in manifest.parameters.items() if not (file_content and k == "recipe")}
    if parameters:
        rows.append(("parameters", ", ".join(f"{k}={v}" for k, v in sorted(parameters.items()))))
    if manifest.counts:
        rows.append(("counts", ", ".join(f"{k} {_number(v)}" for k, v in sorted(manifest.counts.items()))))
    if recipe.ids_file:
        rows.append(("selected ids", recipe.ids_file))
    if recipe.recipe_file:
        rows.append(("recipe file", recipe.recipe_file))
    lines += ["| manifest | value |", "|---|---|"]
    lines += [f"| {key} | `{_cell(value)}` |" for key, value in rows]
    lines.append("")
    if file_content:  # the recipe file as built (its parsed content, from the manifest)
        import yaml

        lines += [
            "Recipe file:",
            "",
            "```yaml",
            yaml.safe_dump(file_content, sort_keys=False).rstrip(),
            "```",
            "",
        ]
    d = recipe.diagnostics
    lines += ["| diagnostic | selected | random sample of the same size |", "|---|---:|---:|"]
    for label, value in (("concept coverage", d.coverage), ("concept entropy", d.entropy)):
        lines.append(f"| {label} | {_number(value.selected)} | {_number(value.random)} |")
    lines.append("")
    lines += _yes_no_rows(recipe)
    quantiles = d.answer_length_quantiles
    if quantiles:
        text = ", ".join(f"{k} {_number(quantiles[k])}" for k in ("p10", "p50", "p90") if k in quantiles)
        lines += [f"Answer length (words per sample) quantiles: {text}.", ""]
    return lines


def recipes(state: BuildState) -> str:
    """Manifest hashes and diagnostics of every recipe config, or a note that none was built."""
    names = [n for n in sorted(state.configs) if state.configs[n].kind == "recipe"]
    if not names:
        return "No recipe config was built into this copy; only subsets of the pool are present."
    lines: list[str] = []
    for name in names:
        lines += _recipe_lines(name, state.configs[name])
    return "\n".join(lines).rstrip()


def _source_label(source: str) -> str:
    """Hub and sample sources as given; a local path as its folder name (no home directories in cards)."""
    if source == "sample" or source.startswith("hf://"):
        return source
    return f"local folder {Path(source).name}"


PAPER = (
    "SVIT (Zhao, Wu, He and Huang, [arXiv 2307.04087](https://arxiv.org/abs/2307.04087)) is a large visual "
    "instruction-tuning dataset"
)
SVIT_ORIGIN = (
    ": GPT-4 wrote conversations, complex reasoning questions, referring questions with bounding boxes and "
    "detailed descriptions for Visual Genome images, working only from the images' human annotations "
    "(Visual Genome objects, regions and attributes, and COCO captions). The paper also shows that a "
    "small, well-chosen subset can train as well as the whole set."
)
SAMPLE_WARNING = (
    "**This copy holds svit's SYNTHETIC bundled sample, not SVIT data**: drawn shapes for images and "
    "template text for conversations, made by svit for testing. No text here was written by GPT-4 and no "
    "image comes from Visual Genome, COCO or Flickr."
)
SOME_SAMPLE_WARNING = (
    "**Configs built from the `sample` source ({names}) hold svit's SYNTHETIC bundled sample, not SVIT "
    "data**: drawn shapes and template text made by svit for testing."
)
LICENSES = """- Visual Genome annotations and COCO annotations, from which every text was generated: CC BY 4.0.
- The texts were written by OpenAI's GPT-4; their use is subject to OpenAI's terms of use, including
  the restriction on developing models that compete with OpenAI.
- Images belong to their owners (Visual Genome and COCO draw them from Flickr under their own
  licenses); check them before redistributing image bytes.
- The SVIT release itself is published under CC BY 4.0, the license this card declares."""
SAMPLE_LICENSES = """- The bundled sample is synthetic (drawn shapes, template text) and made by svit; it carries no
  third-party text or images. The card declares CC BY 4.0, the license of the SVIT release it stands in for."""


def _sample_configs(state: BuildState) -> list[str]:
    return [name for name in sorted(state.configs) if state.configs[name].source == "sample"]


def intro(state: BuildState) -> str:
    """The opening: what SVIT is or, for a build of the bundled sample, that this is not SVIT data."""
    sample = _sample_configs(state)
    if sample and len(sample) == len(state.configs):
        return f"{SAMPLE_WARNING}\n\n{PAPER}; this copy only has its shape."
    text = PAPER + SVIT_ORIGIN
    if sample:
        text = SOME_SAMPLE_WARNING.format(names=", ".join(f"`{n}`" for n in sample)) + "\n\n" + text
    return text


def licenses(state: BuildState) -> str:
    """Licenses of what the folder holds: SVIT's sources, or only the synthetic sample's note."""
    sample = _sample_configs(state)
    if sample and len(sample) == len(state.configs):
        return SAMPLE_LICENSES
    return LICENSES + ("\n" + SAMPLE_LICENSES if sample else "")


def provenance(state: BuildState) -> str:
    """Where each config's rows came from: the source and the pool fingerprint."""
    lines = ["| config | source | pool fingerprint |", "|---|---|---|"]
    for name in sorted(state.configs):
        config = state.configs[name]
        source = _source_label(config.source)
        lines.append(f"| `{name}` | `{_cell(source)}` | `{config.pool_fingerprint or 'n/a'}` |")
    selections = _generation_lines(state)
    if selections:
        lines += [
            "",
            "Generated sources whose images were chosen before generating (`generate --select`):",
            "",
        ]
        lines += selections
    return "\n".join(lines)


def _generation_lines(state: BuildState) -> list[str]:
    """One line per generation summary with a ``--select`` record, listing the configs built from it."""
    users: dict[str, list[str]] = {}
    records = {}
    for name in sorted(state.configs):
        for summary, selection in (state.configs[name].generation or {}).items():
            users.setdefault(summary, []).append(name)
            records[summary] = selection
    lines = []
    for summary, s in sorted(records.items()):
        folder = summary.rsplit("/", 1)[0]
        configs = ", ".join(f"`{c}`" for c in users[summary])
        lines.append(
            f"- `{summary}` ({configs}): {s.n:,} of {s.of:,} images chosen by concept coverage of their "
            f"annotation text (seed {s.seed}, vocabulary `{s.vocabulary}` `{s.vocabulary_hash}`, "
            f"{s.concepts:,} concepts); ids in `{folder}/{s.ids_file}`, sha256 `{s.ids_sha256}`; "
            f"coverage {s.selected['coverage']:.3f} and entropy {s.selected['entropy_bits']:.2f} bits "
            f"vs {s.random['coverage']:.3f} and {s.random['entropy_bits']:.2f} for a random {s.n:,}."
        )
    return lines
