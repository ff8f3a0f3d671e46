"""POPE-style probe construction against hand-worked examples (builders/probes.py)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from svit_data.builders.probes import (
    ADVERSARIAL,
    NO,
    POPULAR,
    RANDOM,
    SAMPLERS,
    YES,
    ProbeParams,
    article,
    build_probes,
    choose_negatives,
    cooccurrence,
    eligible_images,
    popularity,
    question,
)

VOCAB = ("apple", "bus", "car", "cat", "dog", "tree", "umbrella")
OBJECTS = {
    1: {"cat", "dog", "car"},
    2: {"cat", "dog", "bus"},
    3: {"cat", "car", "tree"},
    4: {"dog", "giraffe"},  # one vocabulary object: not eligible (giraffe is outside the vocabulary)
}
PARAMS = ProbeParams(num_images=10, positives=3, min_objects=3, seed=0)


class FirstChoice:
    """An rng whose choice is the first candidate: makes fallbacks hand-computable."""

    def choice(self, seq):
        return seq[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("apple", "an apple"),
        ("umbrella", "an umbrella"),
        ("orange", "an orange"),
        ("elephant", "an elephant"),
        ("oven", "an oven"),
        ("airplane", "an airplane"),
        ("hot dog", "a hot dog"),
        ("dog", "a dog"),
        ("unicorn", "a unicorn"),
        ("hour glass", "an hour glass"),
        ("traffic light", "a traffic light"),
    ],
)
def test_articles(name, expected):
    assert f"{article(name)} {name}" == expected
    assert question(name) == f"Is there {expected} in the image?"


def test_eligible_images_need_three_vocabulary_objects_and_room_for_negatives():
    assert eligible_images(OBJECTS, VOCAB, PARAMS) == [1, 2, 3]
    # vocabulary of 5: image 1 holds 3 of them, leaving only 2 absent names for 3 negatives
    assert eligible_images(OBJECTS, ("bus", "car", "cat", "dog", "tree"), PARAMS) == []


def test_popularity_counts_images_then_names():
    # cat in 3 images; car, dog in 2 (car < dog); bus, tree in 1
    assert popularity(OBJECTS, [1, 2, 3]) == ["cat", "car", "dog", "bus", "tree"]


def test_cooccurrence_counts_shared_images_then_names():
    table = cooccurrence(OBJECTS, [1, 2, 3])
    assert table["cat"] == ["car", "dog", "bus", "tree"]  # car 2, dog 2, bus 1, tree 1
    assert table["dog"] == ["cat", "bus", "car"]  # cat 2, bus 1, car 1
    assert table["car"] == ["cat", "dog", "tree"]
    assert table["tree"] == ["car", "cat"]


def test_adversarial_negatives_by_hand():
    related = cooccurrence(OBJECTS, [1, 2, 3])
    present = OBJECTS[1]
    # cat -> bus (car, dog present); dog -> cat present, bus asked, car present: fallback to the first
    # remaining name (apple); car -> cat, dog present -> tree
    got = choose_negatives(["cat", "dog", "car"], present, lambda p: related[p], sorted(VOCAB), FirstChoice())
    assert got == [("bus", False), ("apple", True), ("tree", False)]
    # another order: car -> tree; dog -> bus; cat -> car, dog present, bus and tree asked: fallback apple
    got = choose_negatives(["car", "dog", "cat"], present, lambda p: related[p], sorted(VOCAB), FirstChoice())
    assert got == [("tree", False), ("bus", False), ("apple", True)]


def test_popular_negatives_by_hand():
    popular = popularity(OBJECTS, [1, 2, 3])
    got = choose_negatives(["dog", "cat", "car"], OBJECTS[1], lambda p: popular, sorted(VOCAB), FirstChoice())
    # the popular names absent from image 1 are bus then tree; the third falls back (apple)
    assert got == [("bus", False), ("tree", False), ("apple", True)]


def test_build_popular_matches_the_hand_computed_sets():
    probes = build_probes(OBJECTS, VOCAB, POPULAR, PARAMS)
    assert probes.images == [1, 2, 3]
    assert probes.eligible_images == 3 and probes.annotated_images == 4
    per_image = {i: [p for p in probes.probes if p.image_id == i] for i in probes.images}
    # popular order cat, car, dog, bus, tree: the first two absent ones, then one random fallback
    expected = {1: ["bus", "tree"], 2: ["car", "tree"], 3: ["dog", "bus"]}
    for image_id, rows in per_image.items():
        negatives = [p for p in rows if p.answer == NO]
        assert [p.object for p in negatives[:2]] == expected[image_id]
        assert [p.fallback for p in negatives] == [False, False, True]
        assert negatives[2].object in {"apple", "umbrella"}  # the only names left
        assert {p.object for p in rows if p.answer == YES} == OBJECTS[image_id]
    assert probes.fallbacks == 3


def test_random_never_falls_back_and_covers_the_absent_vocabulary():
    seen = Counter()
    for seed in range(60):
        got = choose_negatives(
            ["cat", "dog", "car"], OBJECTS[1], lambda p: (), sorted(VOCAB), random.Random(seed)
        )
        assert all(name not in OBJECTS[1] for name, _ in got)
        assert len({name for name, _ in got}) == 3
        seen.update(name for name, _ in got)
    assert set(seen) == {"apple", "bus", "tree", "umbrella"}  # every absent name gets drawn
    probes = build_probes(OBJECTS, VOCAB, RANDOM, PARAMS)
    assert probes.fallbacks == 0 and not any(p.fallback for p in probes.probes)


def _big_objects(n: int = 300, seed: int = 7) -> dict[int, set[str]]:
    rng = random.Random(seed)
    names = [f"thing{k}" for k in range(30)] + ["apple", "orange"]
    return {i: set(rng.sample(names, rng.randint(1, 9))) for i in range(n)}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_balance_no_negative_present_and_nothing_asked_twice(sampler):
    objects = _big_objects()
    vocab = sorted({n for names in objects.values() for n in names} | {"zebra"})
    probes = build_probes(objects, vocab, sampler, ProbeParams(num_images=120, seed=3))
    assert len(probes.images) == 120 and len(probes.probes) == 720
    answers = Counter(p.answer for p in probes.probes)
    assert answers[YES] == answers[NO] == 360
    for image_id in probes.images:
        rows = [p for p in probes.probes if p.image_id == image_id]
        assert [p.answer for p in rows] == [YES, NO] * 3
        assert [p.index for p in rows] == list(range(6))
        assert len({p.object for p in rows}) == 6  # nothing asked twice
        assert all(p.object in objects[image_id] for p in rows if p.answer == YES)
        assert all(p.object not in objects[image_id] for p in rows if p.answer == NO)
        assert len(objects[image_id]) >= 3


def test_samplers_share_images_and_positives_and_the_seed_decides():
    objects = _big_objects()
    vocab = sorted({n for names in objects.values() for n in names})
    params = ProbeParams(num_images=50, seed=11)
    sets = {s: build_probes(objects, vocab, s, params) for s in SAMPLERS}
    yes = {s: [(p.image_id, p.object) for p in sets[s].probes if p.answer == YES] for s in SAMPLERS}
    assert yes[RANDOM] == yes[POPULAR] == yes[ADVERSARIAL]
    assert sets[RANDOM].images == sets[ADVERSARIAL].images
    again = build_probes(dict(reversed(list(objects.items()))), list(reversed(vocab)), ADVERSARIAL, params)
    assert again.probes == sets[ADVERSARIAL].probes  # input order does not matter
    other = build_probes(objects, vocab, ADVERSARIAL, ProbeParams(num_images=50, seed=12))
    assert other.images != sets[ADVERSARIAL].images


def test_fewer_eligible_images_than_asked_takes_them_all():
    probes = build_probes(OBJECTS, VOCAB, ADVERSARIAL, ProbeParams(num_images=500))
    assert probes.images == [1, 2, 3] and len(probes.probes) == 18


def test_bad_parameters():
    with pytest.raises(ValueError, match="sampler"):
        build_probes(OBJECTS, VOCAB, "frequent", PARAMS)
    with pytest.raises(ValueError, match="min_objects"):
        ProbeParams(positives=4, min_objects=3)
