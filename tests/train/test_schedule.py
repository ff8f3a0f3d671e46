"""The lr schedule is transformers' cosine-with-warmup, except that warmup starts one step later."""

from __future__ import annotations

import pytest
import torch

from svit_data.train.loop import cosine_with_warmup


def lrs(make, warmup: int, total: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make(optimizer, warmup, total)
    out = []
    for _ in range(total):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (1, 7), (3, 20)])
def test_cosine_with_warmup_equals_transformers_after_the_warmup(warmup, total):
    from transformers import get_cosine_schedule_with_warmup

    ours = lrs(cosine_with_warmup, warmup, total)
    theirs = lrs(get_cosine_schedule_with_warmup, warmup, total)
    assert ours[warmup:] == pytest.approx(theirs[warmup:], abs=1e-12)
    # transformers' first warmup step has lr 0 (an update that does nothing); ours starts at lr/warmup
    assert ours[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert theirs[:warmup] == pytest.approx([s / warmup for s in range(warmup)])
