"""POPE-style object probes ("Is there a dog in the image?") built from exhaustive annotations.

The construction follows POPE (Li et al., EMNLP 2023), as pure functions of (annotations, parameters,
seed):

1. An image is eligible when it holds at least ``min_objects`` distinct objects of the vocabulary and at
   least ``positives`` vocabulary objects are absent from it (room for the negatives).
2. ``num_images`` eligible images are drawn with the seed (all of them when there are fewer).
3. Per image, ``positives`` of its objects are drawn (answer "yes"); the same images and positives are
   used by every sampler, so the three configs differ only in their negatives.
4. For each positive, in order, one negative (answer "no"): an object of the vocabulary that is absent
   from the image and not yet asked about that image, taken from the sampler:

   - ``random``: uniform over the remaining vocabulary;
   - ``popular``: the first remaining object in the popularity order (number of probe images holding
     the object, descending, then name);
   - ``adversarial``: the first remaining object in the co-occurrence order of the positive (number of
     probe images holding both, descending, then name; objects that never co-occur are not candidates).

   When the sampler has no candidate left, the negative is drawn as ``random`` draws it, and counted
   as a fallback.

Questions alternate yes, no, yes, no, ... per image, so every set is exactly half yes. The vocabulary
must be annotated exhaustively (an object missing from the annotations may still be in the picture),
which is why negatives never come from open-vocabulary names.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

RANDOM, POPULAR, ADVERSARIAL = "random", "popular", "adversarial"
SAMPLERS: tuple[str, ...] = (RANDOM, POPULAR, ADVERSARIAL)
YES, NO = "yes", "no"
# words whose first letter misleads: a vowel letter said as a consonant, or a silent h
_A_WORDS = ("uni", "use", "usu", "one", "once", "eu", "ewe")
_AN_WORDS = ("hour", "honest", "honor", "honour", "heir")


def article(name: str) -> str:
    """The indefinite article for ``name``: "an apple", "a hot dog", "an umbrella", "a unicorn"."""
    word = name.strip().lower()
    if word.startswith(_AN_WORDS):
        return "an"
    if word.startswith(_A_WORDS):
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def question(name: str) -> str:
    return f"Is there {article(name)} {name} in the image?"


@dataclass(frozen=True)
class ProbeParams:
    """How probes are drawn; every field enters the card."""

    num_images: int = 500  # images drawn (all eligible images when fewer)
    positives: int = 3  # "yes" questions per image, each paired with one "no"
    min_objects: int = 3  # distinct vocabulary objects an image needs to be eligible
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_images < 1 or self.positives < 1:
            raise ValueError("num_images and positives must be at least 1")
        if self.min_objects < self.positives:
            raise ValueError("min_objects must be at least positives (an image needs that many objects)")


@dataclass(frozen=True)
class Probe:
    image_id: int
    index: int  # position of the question within its image, from 0
    object: str
    answer: str  # YES or NO
    fallback: bool = False  # a negative drawn at random because the sampler had no candidate

    @property
    def question(self) -> str:
        return question(self.object)


@dataclass
class ProbeSet:
    """The probes of one sampler and the counts the card reports."""

    sampler: str
    params: ProbeParams
    probes: list[Probe]
    images: list[int]  # probe images, ascending
    annotated_images: int  # images given with annotations
    eligible_images: int
    fallbacks: int
    vocabulary_size: int
    popular_order: list[str] = field(default_factory=list)


def eligible_images(
    objects: Mapping[int, Collection[str]], vocabulary: Collection[str], params: ProbeParams
) -> list[int]:
    """Image ids (ascending) with at least ``min_objects`` distinct vocabulary objects and room for negatives."""
    vocab = set(vocabulary)
    return sorted(
        image_id
        for image_id, names in objects.items()
        if len(present := set(names) & vocab) >= params.min_objects
        and len(vocab) - len(present) >= params.positives
    )


def draw_images(eligible: Sequence[int], params: ProbeParams) -> list[int]:
    """``num_images`` of the eligible images (ascending), drawn with the seed."""
    rng = random.Random(f"pope/images/{params.seed}")
    chosen = rng.sample(sorted(eligible), min(params.num_images, len(eligible)))
    return sorted(chosen)


def draw_positives(image_id: int, present: Collection[str], params: ProbeParams) -> list[str]:
    """The image's "yes" objects, drawn with a generator of (seed, image): the same for every sampler."""
    rng = random.Random(f"pope/positives/{params.seed}/{image_id}")
    return rng.sample(sorted(present), params.positives)


def popularity(objects: Mapping[int, Collection[str]], images: Sequence[int]) -> list[str]:
    """Objects of the probe images by the number of images holding them, descending, then by name."""
    counts = Counter(name for image_id in images for name in set(objects[image_id]))
    return sorted(counts, key=lambda name: (-counts[name], name))


def cooccurrence(objects: Mapping[int, Collection[str]], images: Sequence[int]) -> dict[str, list[str]]:
    """For each object, the objects sharing a probe image with it: most shared images first, then by name."""
    pairs: dict[str, Counter[str]] = {}
    for image_id in images:
        names = set(objects[image_id])
        for a in names:
            pairs.setdefault(a, Counter()).update(b for b in names if b != a)
    return {a: sorted(c, key=lambda b: (-c[b], b)) for a, c in pairs.items()}


def choose_negatives(
    positives: Sequence[str],
    present: Collection[str],
    ranked: Callable[[str], Sequence[str]],
    vocabulary: Sequence[str],
    rng: random.Random,
) -> list[tuple[str, bool]]:
    """One ``(negative, fell_back)`` per positive, in order.

    The negative of a positive is the first name of ``ranked(positive)`` that is neither present nor
    already asked (positives so far and earlier negatives); when there is none, ``rng.choice`` over the
    remaining names of the (sorted) ``vocabulary``, flagged as a fallback.
    """
    asked: set[str] = set()
    chosen = []
    for positive in positives:
        asked.add(positive)
        excluded = set(present) | asked
        negative = next((name for name in ranked(positive) if name not in excluded), None)
        fallback = negative is None
        if negative is None:
            negative = rng.choice([name for name in vocabulary if name not in excluded])
        asked.add(negative)
        chosen.append((negative, fallback))
    return chosen


def build_probes(
    objects: Mapping[int, Collection[str]],
    vocabulary: Collection[str],
    sampler: str,
    params: ProbeParams | None = None,
) -> ProbeSet:
    """The probes of ``sampler`` over ``objects`` (image id -> objects present; see the module docstring).

    Objects outside ``vocabulary`` are ignored: only exhaustively annotated names are asked about.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    params = params or ProbeParams()
    vocab = sorted(set(vocabulary))
    present = {image_id: set(names) & set(vocab) for image_id, names in objects.items()}
    eligible = eligible_images(present, vocab, params)
    images = draw_images(eligible, params)
    popular = popularity(present, images)
    related = cooccurrence(present, images)
    ranked: dict[str, Callable[[str], Sequence[str]]] = {
        RANDOM: lambda positive: (),
        POPULAR: lambda positive: popular,
        ADVERSARIAL: lambda positive: related.get(positive, ()),
    }
    probes: list[Probe] = []
    fallbacks = 0
    for image_id in images:
        rng = random.Random(f"pope/{sampler}/{params.seed}/{image_id}")
        positives = draw_positives(image_id, present[image_id], params)
        negatives = choose_negatives(positives, present[image_id], ranked[sampler], vocab, rng)
        for k, (positive, (negative, drawn_at_random)) in enumerate(zip(positives, negatives, strict=True)):
            fallback = drawn_at_random and sampler != RANDOM  # random's own draws are no fallback
            fallbacks += fallback
            probes.append(Probe(image_id, 2 * k, positive, YES))
            probes.append(Probe(image_id, 2 * k + 1, negative, NO, fallback))
    return ProbeSet(
        sampler=sampler,
        params=params,
        probes=probes,
        images=images,
        annotated_images=len(objects),
        eligible_images=len(eligible),
        fallbacks=fallbacks,
        vocabulary_size=len(vocab),
        popular_order=popular,
    )
