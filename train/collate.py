"""Batching: right-padding, the images of a mixed batch stacked in sample order, skips counted.

LLaVA's model scatters image features into the `<image>` positions of the whole batch in order, so a
batch may mix image and text-only samples: `pixel_values` holds only the images that exist. A batch
whose samples were all skipped becomes one fully masked dummy row, so every rank still runs the same
number of forward/backward passes (a missing pass would hang DDP).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from svit_data.train.encode import IGNORE


def collate(items: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    skipped = Counter(item["skip"] for item in items if "skip" in item)
    kept = [item for item in items if "skip" not in item]
    if not kept:
        kept = [{"input_ids": torch.tensor([pad_id]), "labels": torch.tensor([IGNORE]), "pixel_values": None}]
    width = max(len(item["input_ids"]) for item in kept)
    input_ids = torch.full((len(kept), width), pad_id, dtype=torch.long)
    labels = torch.full((len(kept), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(kept), width), dtype=torch.long)
    for row, item in enumerate(kept):
        n = len(item["input_ids"])
        input_ids[row, :n] = item["input_ids"]
        labels[row, :n] = item["labels"]
        attention_mask[row, :n] = 1
    images = [item["pixel_values"] for item in kept if item["pixel_values"] is not None]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "pixel_values": torch.stack(images) if images else None,
        "skipped": skipped,
        "truncated": sum(bool(item.get("truncated")) for item in kept),
        "n_samples": sum("skip" not in item for item in items),
    }


def label_tokens(batch: dict[str, Any]) -> int:
    """Tokens that carry loss after the causal shift (labels[:, 1:])."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def stand_in(micro: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace fully skipped micro-batches by a loss-free copy of a real one from the same step.

    The copy has every label masked, so it adds nothing to the loss, but it runs the same modules
    (the projector too), so every rank still does a forward and backward that DDP can reduce.
    """
    real = next((b for b in micro if b["n_samples"] > 0), None)
    if real is None:
        return micro
    masked = {
        **real,
        "labels": torch.full_like(real["labels"], IGNORE),
        "skipped": Counter(),
        "n_samples": 0,
        "truncated": 0,
        "attention_mask": real["attention_mask"],
    }
    return [b if b["n_samples"] > 0 else {**masked, "skipped": b["skipped"]} for b in micro]
