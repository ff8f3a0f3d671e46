"""The config registry: every subset and every recipe is a named config of one dataset folder.

A plain dict. Subsets are slices of the pool by task; recipes are selections computed by
``svit_data.recipes`` (their parameters live there, under the same name). The dataset card's
``configs:`` block is rendered from what was built, using these descriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svit_data.errors import SvitError
from svit_data.tasks import COMPLEX_REASONING, CONVERSATION, DETAIL_DESCRIPTION, REFERRING_QA, TASKS

SUBSET, RECIPE, PROBE = "subset", "recipe", "probe"
SVIT_SCHEMA, LLAVA_SCHEMA, PROBE_SCHEMA = "svit", "llava", "probe"
# A config name is a folder name under data/ and a YAML key: no separators, no leading dot.
CONFIG_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ConfigSpec:
    name: str
    description: str
    kind: str = SUBSET
    tasks: tuple[str, ...] = ()
    schema: str = SVIT_SCHEMA


CONFIGS: dict[str, ConfigSpec] = {
    spec.name: spec
    for spec in (
        ConfigSpec("full", "The whole SVIT pool: all four tasks.", tasks=TASKS),
        ConfigSpec(
            "conversation", "Multi-turn conversations, 3 per image of about 5 QA each.", tasks=(CONVERSATION,)
        ),
        ConfigSpec(
            "complex-reasoning",
            "Complex reasoning QA with step-by-step answers, one QA per sample.",
            tasks=(COMPLEX_REASONING,),
        ),
        ConfigSpec(
            "referring-qa",
            "Referring QA grounded with <st>object<ed> [x1, y1, x2, y2] boxes, one QA per sample.",
            tasks=(REFERRING_QA,),
        ),
        ConfigSpec("detail-description", "One detailed description per image.", tasks=(DETAIL_DESCRIPTION,)),
        ConfigSpec(
            "core-150k",
            "Core set: concept-diverse then yes/no-balanced selection, the size of LLaVA-Instruct-150K.",
            kind=RECIPE,
        ),
        ConfigSpec("svit-80k", "80K samples drawn uniformly at random (ablation baseline).", kind=RECIPE),
        ConfigSpec("svit-80k-d", "80K samples chosen for concept diversity (ablation).", kind=RECIPE),
        ConfigSpec("svit-80k-b", "80K samples chosen for a balanced yes:no ratio (ablation).", kind=RECIPE),
        ConfigSpec(
            "svit-train", "Every sample whose image is not in the held-out test image list.", kind=RECIPE
        ),
        ConfigSpec(
            "mix-665k",
            "LLaVA-v1.5-mix-665K with its LLaVA-Instruct-150K part replaced by core-150k (LLaVA format).",
            kind=RECIPE,
            schema=LLAVA_SCHEMA,
        ),
    )
}


# Evaluation probes (svit_data.builders.probes): test-split images only, never trained on.
PROBE_CONFIGS: dict[str, ConfigSpec] = {
    f"pope-{sampler}": ConfigSpec(
        f"pope-{sampler}",
        f"POPE-style yes/no object probes on test images, negatives from the {sampler} sampler{note}.",
        kind=PROBE,
        schema=PROBE_SCHEMA,
    )
    for sampler, note in (
        ("random", ""),
        ("popular", " (the most frequent objects)"),
        ("adversarial", " (objects that co-occur most with the positive)"),
    )
}
CONFIGS.update(PROBE_CONFIGS)


def get_config(name: str) -> ConfigSpec:
    try:
        return CONFIGS[name]
    except KeyError:
        raise SvitError(f"unknown config {name!r}; known configs: {', '.join(CONFIGS)}") from None


def check_custom_name(name: str) -> str:
    """A ``--name`` for a custom recipe build: a safe folder name that no registered config uses."""
    if not CONFIG_NAME_RE.fullmatch(name) or ".." in name:
        raise SvitError(
            f"--name {name!r} is not a valid config name: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    if name in CONFIGS:
        raise SvitError(f"--name {name!r} is a registered config; choose a name of your own")
    return name
