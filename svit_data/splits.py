"""Train/test split: images in SVIT's ``data/test_image_ids.txt`` form the ``test`` split.

The SVIT repo ships that list without saying what it is for; treating it as held-out test images is
our inference, stated in the dataset card. Split names have no dashes (a Hub rule).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

TRAIN, TEST = "train", "test"
SPLITS: tuple[str, ...] = (TRAIN, TEST)


@cache
def test_image_ids() -> frozenset[int]:
    text = resources.files("svit_data.package_data").joinpath("test_image_ids.txt").read_text()
    return frozenset(int(line) for line in text.split())


def split_of(image_id: int) -> str:
    return TEST if image_id in test_image_ids() else TRAIN
