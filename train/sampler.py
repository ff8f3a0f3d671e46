"""Which samples form each optimizer step, as a pure function of (lengths, modality, seed, epoch).

Global batches hold one modality where possible (image or text-only, as LLaVA's modality grouping)
and are sorted by length so each micro-batch pads little. Because the order depends only on the seed
and the epoch, the sampler's position is just the step number: resuming at step N replays nothing.
Each rank takes a contiguous share of every global batch, so 1 and K processes see the same global
batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from svit_data.errors import SvitError


def epoch_batches(
    lengths: list[int], images: list[bool], *, global_batch: int, seed: int, epoch: int, group: bool = True
) -> list[list[int]]:
    """The epoch's global batches; the last one is filled up by wrapping around, so all are full."""
    rng = random.Random(f"{seed}/{epoch}")
    pools = [[i for i, img in enumerate(images) if img], [i for i, img in enumerate(images) if not img]]
    if not group:
        pools = [list(range(len(lengths)))]
    batches, leftover = [], []
    for pool in pools:
        rng.shuffle(pool)
        full = len(pool) // global_batch * global_batch
        batches += [pool[i : i + global_batch] for i in range(0, full, global_batch)]
        leftover += pool[full:]
    rng.shuffle(batches)
    if leftover:
        order = leftover + [i for batch in batches for i in batch]
        for j in range(-len(leftover) % global_batch):
            leftover.append(order[j % len(order)])
        batches += [leftover[i : i + global_batch] for i in range(0, len(leftover), global_batch)]
    if group:
        batches = [sorted(b, key=lambda i: -lengths[i]) for b in batches]
    return batches


def steps_per_epoch(n_samples: int, global_batch: int) -> int:
    return max(1, math.ceil(n_samples / global_batch))


def total_steps(n_samples: int, global_batch: int, epochs: float) -> int:
    return max(1, math.ceil(steps_per_epoch(n_samples, global_batch) * epochs))


def accumulation(global_batch: int, world: int, micro_batch: int) -> int:
    if global_batch % world:
        raise SvitError(f"global_batch {global_batch} is not divisible by the {world} ranks")
    return math.ceil(global_batch // world / micro_batch)


class StepSampler:
    """A DataLoader batch_sampler: this rank's micro-batches for steps start..end, in order."""

    def __init__(
        self, lengths, images, *, global_batch, micro_batch, seed, rank, world, start, end, group=True
    ):
        self.lengths, self.images = lengths, images
        self.global_batch, self.micro_batch, self.seed = global_batch, micro_batch, seed
        self.rank, self.world, self.start, self.end, self.group = rank, world, start, end, group
        self.accum = accumulation(global_batch, world, micro_batch)
        self.per_epoch = steps_per_epoch(len(lengths), global_batch)

    def micro_batches(self, batch: list[int]) -> list[list[int]]:
        share = len(batch) // self.world
        mine = batch[self.rank * share : (self.rank + 1) * share]
        out = [mine[i : i + self.micro_batch] for i in range(0, len(mine), self.micro_batch)]
        return out + [[]] * (self.accum - len(out))

    def __iter__(self) -> Iterator[list[int]]:
        cached_epoch, batches = None, []
        for step in range(self.start, self.end):
            epoch = step // self.per_epoch
            if epoch != cached_epoch:
                batches = epoch_batches(
                    self.lengths,
                    self.images,
                    global_batch=self.global_batch,
                    seed=self.seed,
                    epoch=epoch,
                    group=self.group,
                )
                cached_epoch = epoch
            yield from self.micro_batches(batches[step % self.per_epoch])

    def __len__(self) -> int:
        return (self.end - self.start) * self.accum
