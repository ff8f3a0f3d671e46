"""The named recipes (``RECIPES``, declared once in ``svit_data/recipe_specs.py``) and their sizes.

Sizes are for the full SVIT pool (about 3.0M samples). A pool smaller than :data:`SCALE_BELOW` samples
(the bundled sample, a slice) is not SVIT: there, default sizes scale down by the pool ratio
``pool samples / REFERENCE_POOL_SAMPLES`` so that every recipe still builds; ``--size`` overrides both.
"""

from __future__ import annotations

from svit_data.errors import SvitError
from svit_data.recipe_specs import (  # noqa: F401  (the recipe API: import these from here)
    ALL,
    BALANCE,
    CORE,
    DIVERSITY,
    LLAVA_INSTRUCT_SIZE,
    METHOD_NAMES,
    MIX,
    RANDOM,
    RECIPES,
    RecipeSpec,
)

REFERENCE_POOL_SAMPLES = 3_000_000  # SVIT: about 3.0M samples (DESIGN.md §3)
SCALE_BELOW = 1_000_000


def get_recipe(name: str) -> RecipeSpec:
    try:
        return RECIPES[name]
    except KeyError:
        raise SvitError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}") from None


def resolve_size(spec: RecipeSpec, size: int | None, pool_samples: int, candidates: int) -> tuple[int, str]:
    """The number of samples to select, and the rule that gave it (for the manifest)."""
    if size is not None:
        if size < 1:
            raise SvitError(f"--size must be >= 1, got {size}")
        if size > candidates:
            raise SvitError(
                f"size {size:,} is larger than the pool: {candidates:,} train samples to choose from"
            )
        return size, "--size"
    if spec.size is None:
        return candidates, "every candidate"
    if pool_samples < SCALE_BELOW:
        scaled = max(1, round(spec.size * pool_samples / REFERENCE_POOL_SAMPLES))
        rule = f"scaled: {spec.size:,} x {pool_samples:,} / {REFERENCE_POOL_SAMPLES:,} pool samples"
        return min(scaled, candidates), rule
    if spec.size > candidates:
        raise SvitError(
            f"recipe {spec.name} needs {spec.size:,} samples but the pool has {candidates:,} train "
            "samples; pass a smaller --size"
        )
    return spec.size, "recipe default"
