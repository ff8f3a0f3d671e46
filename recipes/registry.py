"""Every SVIT recipe as a named set of parameters: a plain dict, ``RECIPES``, keyed like ``CONFIGS``.

``mix-665k`` is no entry here: svit ships it as a recipe file (``recipe_file.SHIPPED``).

Sizes are for the full SVIT pool (about 3.0M samples). A pool smaller than :data:`SCALE_BELOW` samples
(the bundled sample, a slice) is not SVIT: there, default sizes scale down by the pool ratio
``pool samples / REFERENCE_POOL_SAMPLES`` so that every recipe still builds; ``--size`` overrides both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from svit_data.errors import ConfigError, SvitError
from svit_data.recipes.diversity import ROUNDS
from svit_data.recipes.methods import ALL, BALANCE, CORE, DIVERSITY, METHODS, RANDOM
from svit_data.recipes.strata import CANDIDATES, TASK_MIXES

METHOD_NAMES = tuple(METHODS)
LLAVA_INSTRUCT_SIZE = 157_712  # LLaVA-Instruct-150K as it appears in LLaVA-v1.5-mix-665K
REFERENCE_POOL_SAMPLES = 3_000_000  # SVIT: about 3.0M samples (DESIGN.md §3)
SCALE_BELOW = 1_000_000


@dataclass(frozen=True)
class RecipeSpec:
    name: str = field(metadata={"help": "config name (a key of svit_data.configs.CONFIGS)"})
    method: str = field(metadata={"help": f"selection: one of {', '.join(METHOD_NAMES)}"})
    help: str = field(metadata={"help": "what the recipe is for, one sentence"})
    size: int | None = field(
        default=None, metadata={"help": "samples to select on the full SVIT pool (None: every candidate)"}
    )
    decay: float = field(
        default=1.0,
        metadata={
            "help": "diversity: exponent of the per-concept diminishing returns, the k-th sample of a "
            "concept adds w_c * k^-decay (1: harmonic, about log(1 + k); near 0: none; large: set cover)"
        },
    )
    rounds: int = field(
        default=ROUNDS,
        metadata={
            "help": "diversity: rounds of the batched greedy, one sparse mat-vec each (more: closer to the "
            "exact greedy, which is rounds >= the largest task quota; slower)"
        },
    )
    target_yes_share: float = field(
        default=0.5, metadata={"help": "balance: yes / (yes + no) to reach (0.5 = 1:1)"}
    )
    tolerance: float = field(default=0.02, metadata={"help": "balance: allowed distance from the target"})
    task_mix: str = field(
        default=CANDIDATES,
        metadata={
            "help": "diversity, balance, core: 'candidates' keeps the candidates' task mix (per-task "
            "quotas by largest-remainder apportionment of the size, filled by diversity and balance "
            "within each task); 'free' selects without quotas (long detail descriptions then dominate "
            "diversity)"
        },
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"{self.name}: unknown method {self.method!r}; known: {', '.join(METHOD_NAMES)}"
            )
        if self.size is not None and self.size < 1:
            raise ConfigError(f"{self.name}: size must be >= 1, got {self.size}")
        if self.rounds < 1:
            raise ConfigError(f"{self.name}: rounds must be >= 1, got {self.rounds}")
        if not self.decay > 0:
            raise ConfigError(f"{self.name}: decay must be > 0, got {self.decay}")
        if not 0 < self.target_yes_share < 1:
            raise ConfigError(f"{self.name}: target_yes_share must be in (0, 1), got {self.target_yes_share}")
        if self.task_mix not in TASK_MIXES:
            raise ConfigError(
                f"{self.name}: task_mix must be one of {', '.join(TASK_MIXES)}, got {self.task_mix!r}"
            )
        if not 0 <= self.tolerance < 0.5:
            raise ConfigError(f"{self.name}: tolerance must be in [0, 0.5), got {self.tolerance}")

    def parameters(self) -> dict[str, Any]:
        """The parameters that matter for this method (written into the manifest)."""
        keep = {"method", "size", *METHODS[self.method].parameters}
        return {k: v for k, v in asdict(self).items() if k in keep}


RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        RecipeSpec(
            "core-150k",
            CORE,
            "The paper's core set: the diversity order, then yes/no balance, at the size of LLaVA-Instruct-150K, "
            "keeping the candidates' task mix.",
            size=LLAVA_INSTRUCT_SIZE,
        ),
        RecipeSpec(
            "svit-80k", RANDOM, "80K samples uniformly at random (the ablation baseline).", size=80_000
        ),
        RecipeSpec(
            "svit-80k-d",
            DIVERSITY,
            "80K samples chosen greedily for concept coverage with diminishing returns.",
            size=80_000,
        ),
        RecipeSpec("svit-80k-b", BALANCE, "80K random samples, balanced to a 1:1 yes:no ratio.", size=80_000),
        RecipeSpec("svit-train", ALL, "Every sample whose image is not in the held-out test list."),
    )
}


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
