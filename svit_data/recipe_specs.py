"""Every named recipe as a set of parameters: a plain dict, ``RECIPES``, from which the recipe configs of
``svit_data.configs.CONFIGS`` are derived (one declaration per recipe).

This is data only (core): the selection methods named here are implemented in ``svit_data.recipes``
(``recipes/methods.py`` holds one record per method). Sizes are for the full SVIT pool (about 3.0M
samples); ``recipes/registry.py`` scales them down on small pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SVIT_SCHEMA = "svit"
LLAVA_SCHEMA = "llava"
RANDOM, DIVERSITY, BALANCE, CORE, ALL, MIX = "random", "diversity", "balance", "core", "all", "mix"
METHOD_NAMES = (RANDOM, DIVERSITY, BALANCE, CORE, ALL, MIX)
CANDIDATES, FREE = "candidates", "free"
TASK_MIXES = (CANDIDATES, FREE)
ROUNDS = 16  # batched greedy rounds: 16 mat-vecs over the SVIT matrix (~45M nonzeros) stay well < 15 s
LLAVA_INSTRUCT_SIZE = 157_712  # LLaVA-Instruct-150K as it appears in LLaVA-v1.5-mix-665K


@dataclass(frozen=True)
class RecipeSpec:
    name: str = field(metadata={"help": "config name (a key of svit_data.configs.CONFIGS)"})
    method: str = field(metadata={"help": f"selection: one of {', '.join(METHOD_NAMES)}"})
    description: str = field(metadata={"help": "what the recipe is, one sentence (the config's description)"})
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
            "help": "diversity, balance, core, mix: 'candidates' keeps the candidates' task mix (per-task "
            "quotas by largest-remainder apportionment of the size, filled by diversity and balance "
            "within each task); 'free' selects without quotas (long detail descriptions then dominate "
            "diversity)"
        },
    )
    image_prefix: str = field(
        default="vg/", metadata={"help": "mix: prefix of SVIT image paths in the LLaVA records"}
    )
    schema: str = field(default=SVIT_SCHEMA, metadata={"help": "schema of the config's rows: svit or llava"})

    def __post_init__(self) -> None:
        if self.method not in METHOD_NAMES:
            raise ValueError(f"{self.name}: unknown method {self.method!r}; known: {', '.join(METHOD_NAMES)}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"{self.name}: size must be >= 1, got {self.size}")
        if self.rounds < 1:
            raise ValueError(f"{self.name}: rounds must be >= 1, got {self.rounds}")
        if not self.decay > 0:
            raise ValueError(f"{self.name}: decay must be > 0, got {self.decay}")
        if not 0 < self.target_yes_share < 1:
            raise ValueError(f"{self.name}: target_yes_share must be in (0, 1), got {self.target_yes_share}")
        if self.task_mix not in TASK_MIXES:
            raise ValueError(
                f"{self.name}: task_mix must be one of {', '.join(TASK_MIXES)}, got {self.task_mix!r}"
            )
        if self.schema not in (SVIT_SCHEMA, LLAVA_SCHEMA):
            raise ValueError(
                f"{self.name}: schema must be {SVIT_SCHEMA} or {LLAVA_SCHEMA}, got {self.schema!r}"
            )
        if not 0 <= self.tolerance < 0.5:
            raise ValueError(f"{self.name}: tolerance must be in [0, 0.5), got {self.tolerance}")


RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        RecipeSpec(
            "core-150k",
            CORE,
            "Core set: concept-diverse then yes/no-balanced selection, the size of LLaVA-Instruct-150K.",
            size=LLAVA_INSTRUCT_SIZE,
        ),
        RecipeSpec(
            "svit-80k", RANDOM, "80K samples drawn uniformly at random (ablation baseline).", size=80_000
        ),
        RecipeSpec(
            "svit-80k-d", DIVERSITY, "80K samples chosen for concept diversity (ablation).", size=80_000
        ),
        RecipeSpec(
            "svit-80k-b", BALANCE, "80K samples chosen for a balanced yes:no ratio (ablation).", size=80_000
        ),
        RecipeSpec("svit-train", ALL, "Every sample whose image is not in the held-out test image list."),
        RecipeSpec(
            "mix-665k",
            MIX,
            "LLaVA-v1.5-mix-665K with its LLaVA-Instruct-150K part replaced by core-150k (LLaVA format).",
            size=LLAVA_INSTRUCT_SIZE,
            schema=LLAVA_SCHEMA,
        ),
    )
}
