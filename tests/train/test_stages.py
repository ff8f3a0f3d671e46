"""Stage 1 and stage 2 (full, LoRA) on a tiny random LLaVA: what changes, what stays, loss falls."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from svit_data.train.config import TrainConfig
from svit_data.train.loop import train
from svit_data.train.model import build_fresh


def cfg(tmp_path, name, **kw) -> TrainConfig:
    base = dict(global_batch=8, micro_batch=4, num_workers=0, save_every=0, warmup_ratio=0.0, seed=0)
    base.update(kw)
    return TrainConfig(out=str(tmp_path / name), **base)


def weights(folder) -> dict[str, torch.Tensor]:
    """The state dict as transformers loads it (the file on disk uses LLaVA's legacy key names)."""
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(folder).state_dict()


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory, tiny_parts, llava_parquet):
    tmp = tmp_path_factory.mktemp("s1")
    config = cfg(tmp, "s1", stage="stage1", data=llava_parquet, **tiny_parts, lr=1e-2, projector_lr=1e-2)
    summary = train(config)
    return tmp / "s1", summary


def test_stage1_changes_only_projector(stage1_run, tiny_parts):
    folder, summary = stage1_run
    assert summary["steps"] == 3 and len(summary["losses"]) == 3  # 24 image samples / 8; text-only left out
    model, _ = build_fresh(tiny_parts["vision"], tiny_parts["llm"], seed=0)
    before = {k: v for k, v in model.state_dict().items()}
    after = weights(folder)
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all("multi_modal_projector" in k for k in changed)
    assert {k for k in before if "multi_modal_projector" in k} <= changed | {k for k in before if "bias" in k}
    assert (folder / "train_config.yaml").exists() and (folder / "tokenizer_config.json").exists()
    assert json.loads((folder / "train_summary.json").read_text())["losses"] == summary["losses"]


def test_stage2_lora_changes_only_adapters_and_projector(stage1_run, tmp_path, llava_parquet):
    s1, _ = stage1_run
    config = cfg(
        tmp_path,
        "s2",
        stage="stage2",
        init_from=str(s1),
        data=llava_parquet,
        lora=True,
        lora_r=4,
        lora_alpha=8,
        lr=1e-2,
        projector_lr=1e-2,
        max_steps=2,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(config)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    adapter = load_file(tmp_path / "s2" / "adapter" / "adapter_model.safetensors")
    assert any("lora_A" in k for k in adapter) and any("multi_modal_projector" in k for k in adapter)
    assert all("lora_" in k or "multi_modal_projector" in k for k in adapter)
    # merged weights: LM linears and projector moved, vision tower and embeddings untouched
    before, after = weights(s1), weights(tmp_path / "s2")
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert any("multi_modal_projector" in k for k in changed)
    assert any("language_model" in k and "proj" in k for k in changed)
    assert not any("vision_tower" in k or "embed_tokens" in k or "lm_head" in k for k in changed)


def test_loss_falls_on_repeated_batch(stage1_run, tmp_path, llava_parquet):
    s1, _ = stage1_run
    config = cfg(
        tmp_path,
        "rep",
        stage="stage2",
        init_from=str(s1),
        data=llava_parquet,
        global_batch=32,
        micro_batch=16,
        epochs=20,
        lr=1e-2,
        projector_lr=1e-2,
    )
    summary = train(config)
    losses = summary["losses"]
    assert len(losses) == 20  # one global batch = the whole data, seen 20 times
    assert losses[-1] < 0.7 * losses[0]
    assert all(b < a for a, b in zip(losses[:5], losses[1:6], strict=True))
