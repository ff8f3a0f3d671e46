"""The card prose of each selection method: the exact rule a recipe applied, with its numbers filled in.

Kept apart from the selection code so that the text a reader sees is edited in one place; the
selectors themselves live in ``selection.py``, their parameters in ``registry.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svit_data.recipes.strata import FREE
from svit_data.tasks import TASKS

if TYPE_CHECKING:
    from svit_data.recipes.registry import RecipeSpec

TASK_MIX: dict[str, str] = {
    "candidates": "Task mix kept (task_mix=candidates): the selection holds quota_t samples of each task t, "
    "quota_t = floor({size} x n_t / N) plus one place for each of the tasks with the largest remainders "
    "({size} x n_t mod N, ties in the order " + ", ".join(TASKS) + ") until the quotas sum to {size}, "
    "where n_t is the number of train samples of task t and N = {candidates} (quotas: {quotas}). ",
    "sources": "Source mix kept (task_mix=sources): the selection holds quota_t samples of each source t, "
    "quota_t = floor({size} x n_t / N) plus one place for each of the sources with the largest remainders "
    "until the quotas sum to {size}, where n_t is the number of train samples of source t and N = "
    "{candidates} (quotas: {quotas}). ",
    FREE: "No task quotas (task_mix=free): every train sample counts as one task t, so quota_t = {size}. ",
}
QUOTA_RULE = {
    "candidates": "subject to |S ∩ task t| = quota_t for every task t",
    "sources": "subject to |S ∩ source t| = quota_t for every source t",
    FREE: "subject to |S| = {size}",
}
DIVERSITY_RULE = (
    "maximize F(S) = sum over concepts c of w_c x g(|S ∩ P_c|), g(k) = sum over j = 1..k of j^-{decay} "
    "(the k-th selected sample mentioning c adds w_c x k^-{decay}: diminishing returns per concept), where "
    "P_c is the set of train samples that mention concept c and w_c its weight, {quota_rule}, by a batched "
    "greedy in {rounds} rounds: each round computes every unselected sample's gain F(S + s) - F(S) = sum over "
    "its concepts c of w_c x (k_c + 1)^-{decay} (k_c: samples of S mentioning c, counted over all tasks) and "
    "each task t takes its ceil(left_t / rounds left) unselected samples of highest gain (left_t: its quota "
    "not yet filled; ties, and samples of zero gain after all others, by a seeded permutation, seed {seed}). "
    "Concepts come from the vocabulary {vocabulary} (hash {vocabulary_hash}); a sample mentions a concept "
    "when a surface form of it occurs in its question or answer text after lowercasing and replacing runs of "
    "characters that are not letters, digits or spaces with a space, with simple plural/singular forms."
)
DIVERSITY_ORDER = (
    "The diversity order is the greedy's picks in the order picked (within a round by gain, descending), then "
    "every other train sample by its gain against the greedy selection (descending, ties by the permutation)."
)
DIAGNOSTICS = (
    " Diagnostics, each next to a random subset of the same size (seed {seed} + 1000003): coverage is the "
    "share of the concepts mentioned by some train sample that the selection mentions at least once; entropy "
    "is the Shannon entropy (nats) of p_c = df_c / sum of df over concepts, df_c the number of selected "
    "samples that mention concept c (the distribution of concept mentions over concepts; unweighted, at most "
    "log of the number of concepts mentioned)."
)
BALANCE_RULE = (
    "take the first quota_t samples of each task in that order; a swap in task t drops its last selected "
    "sample that leans to the over-represented answer and adds its first unselected other sample, so the "
    "quotas hold; the j-th swap of task t comes at j / quota_t (ties in task order), and the first p swaps "
    "are made, p chosen so that yes / (yes + no) over the selection is closest to {target} (tolerance "
    "{tolerance}; ties: fewer swaps). An answer is yes (no) when its first word is 'yes' ('no') followed "
    "by , . ! ; : or the end of the answer."
)
_DIVERSITY = "{task_mix}Concept coverage with diminishing returns: " + DIVERSITY_RULE
_BALANCE = (
    "{task_mix}Yes/no balance by choosing samples, never by editing text: walk the train samples in a "
    "seeded random order (seed {seed}); " + BALANCE_RULE
)
_CORE = (
    "{task_mix}Diversity then balance, at {size} samples. Diversity: "
    + DIVERSITY_RULE
    + " "
    + DIVERSITY_ORDER
    + " Then balance: walk the train samples in the diversity order; "
    + BALANCE_RULE
)
# One objective per selection method (``methods.METHODS`` points at these), each ending in the diagnostics.
RANDOM_OBJECTIVE = (
    "Uniform random selection: the first {size} train samples of a seeded permutation (numpy PCG64, "
    "seed {seed}) of the pool's train samples in pool order." + DIAGNOSTICS
)
DIVERSITY_OBJECTIVE = _DIVERSITY + DIAGNOSTICS
BALANCE_OBJECTIVE = _BALANCE + DIAGNOSTICS
CORE_OBJECTIVE = _CORE + DIAGNOSTICS
ALL_OBJECTIVE = "No selection: every sample whose image is not in SVIT's test image list." + DIAGNOSTICS


def objective(
    template: str,
    spec: RecipeSpec,
    *,
    size: int,
    candidates: int,
    quotas: dict[str, int],
    seed: int,
    vocabulary: str,
    vocabulary_hash: str,
) -> str:
    """The objective ``template`` (its method's) as ``spec`` applied it: one paragraph for the card."""
    mix_rule = TASK_MIX[spec.task_mix].format(
        size=f"{size:,}",
        candidates=f"{candidates:,}",
        quotas=", ".join(f"{t} {q:,}" for t, q in quotas.items()),
    )
    text = template.format(
        task_mix=mix_rule,
        quota_rule=QUOTA_RULE[spec.task_mix].format(size=f"{size:,}"),
        rounds=spec.rounds,
        size=f"{size:,}",
        seed=seed,
        decay=spec.decay,
        target=spec.target_yes_share,
        tolerance=spec.tolerance,
        vocabulary=vocabulary,
        vocabulary_hash=vocabulary_hash,
    )
    return " ".join(text.split())
