"""The config registry: every subset and every recipe is a named config of one dataset folder.

A plain dict. Subsets are slices of the pool by task, declared here; recipe configs are derived from
``svit_data.recipe_specs.RECIPES`` (their selections are computed by ``svit_data.recipes``). The dataset card's
``configs:`` block is rendered from what was built, using these descriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svit_data.errors import SvitError
from svit_data.recipe_specs import LLAVA_SCHEMA, RECIPES, SVIT_SCHEMA  # noqa: F401  (re-exported)
from svit_data.tasks import COMPLEX_REASONING, CONVERSATION, DETAIL_DESCRIPTION, REFERRING_QA, TASKS

SUBSET, RECIPE = "subset", "recipe"
# A config name is a folder name under data/ and a YAML key: no separators, no leading dot.
CONFIG_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ConfigSpec:
    name: str
    description: str
    kind: str = SUBSET
    tasks: tuple[str, ...] = ()
    schema: str = SVIT_SCHEMA


SUBSETS: dict[str, ConfigSpec] = {
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
    )
}
# Recipe configs are derived from RECIPES: a recipe is declared once, in svit_data/recipe_specs.py.
CONFIGS: dict[str, ConfigSpec] = {
    **SUBSETS,
    **{name: ConfigSpec(name, r.description, kind=RECIPE, schema=r.schema) for name, r in RECIPES.items()},
}


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
