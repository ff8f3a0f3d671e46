"""Save -> load gives identical logits; a resumed run continues the uninterrupted loss curve."""

from __future__ import annotations

import pytest
import torch

from svit_data.errors import InputError
from svit_data.train.checkpoint import save_run
from svit_data.train.collate import collate
from svit_data.train.config import TrainConfig
from svit_data.train.data import open_dataset
from svit_data.train.dataset import TrainDataset
from svit_data.train.distributed import Env
from svit_data.train.generate import load_run
from svit_data.train.loop import train
from svit_data.train.model import build_fresh
from svit_data.train.stages import prepare

CPU = Env(rank=0, world=1, local_rank=0, device=torch.device("cpu"), fsdp=False)


def batch_for(model, processor, parquet):
    ds = TrainDataset(
        open_dataset(parquet),
        processor,
        image_token_id=model.config.image_token_index,
        image_seq_length=model.config.image_seq_length,
        max_length=512,
    )
    b = collate([ds[i] for i in range(6)], processor.tokenizer.pad_token_id)
    return {k: b[k] for k in ("input_ids", "attention_mask", "pixel_values")}


@torch.no_grad()
def logits(model, batch):
    return model.eval()(**batch).logits


@pytest.mark.parametrize("lora", [False, True])
def test_save_load_identical_logits(tmp_path, tiny_parts, llava_parquet, lora):
    model, processor = build_fresh(tiny_parts["vision"], tiny_parts["llm"])
    config = TrainConfig(
        stage="stage2",
        lora=lora,
        lora_r=4,
        lora_alpha=8,
        out=str(tmp_path / "run"),
        data=llava_parquet,
        **tiny_parts,
        save_merged=True,
    )
    model = prepare(model, config)
    torch.manual_seed(1)
    with torch.no_grad():  # stand-in for training: move every trainable weight
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    batch = batch_for(model, processor, llava_parquet)
    expected = logits(model, batch)
    save_run(tmp_path / "run", model=model, processor=processor, config=config, env=CPU, summary={})
    loaded, loaded_processor = load_run(str(tmp_path / "run"))
    torch.testing.assert_close(logits(loaded, batch), expected, rtol=1e-5, atol=1e-5)
    assert loaded_processor.tokenizer.chat_template == processor.tokenizer.chat_template
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists() == lora


def test_resume_equals_uninterrupted(tmp_path, tiny_parts, llava_parquet):
    common = dict(
        stage="stage2",
        data=llava_parquet,
        **tiny_parts,
        lora=True,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.2,
        global_batch=8,
        micro_batch=4,
        epochs=1.5,
        num_workers=0,
        save_every=0,
        lr=5e-3,
        projector_lr=1e-3,
    )
    full = train(TrainConfig(out=str(tmp_path / "a"), **common))
    assert full["steps"] == 6  # 32 samples / 8 per step * 1.5 epochs
    first = train(TrainConfig(out=str(tmp_path / "b"), max_steps=3, **common))
    assert (tmp_path / "b" / "checkpoint-3" / "trainable.safetensors").exists()
    assert first["losses"] == full["losses"][:3]
    rest = train(TrainConfig(out=str(tmp_path / "b"), resume=str(tmp_path / "b" / "checkpoint-3"), **common))
    assert rest["start"] == 3 and len(rest["losses"]) == 3
    torch.testing.assert_close(
        torch.tensor(rest["losses"]), torch.tensor(full["losses"][3:]), rtol=1e-6, atol=1e-6
    )
    a, _ = load_run(str(tmp_path / "a"))
    b, _ = load_run(str(tmp_path / "b"))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-6, msg=name)

    # a checkpoint only resumes the run that wrote it
    other = dict(common, lora_r=8)
    with pytest.raises(InputError, match="lora_r"):
        train(TrainConfig(out=str(tmp_path / "c"), resume=str(tmp_path / "b" / "checkpoint-3"), **other))
    with pytest.raises(InputError, match="not a svit-train checkpoint"):
        train(TrainConfig(out=str(tmp_path / "c"), resume=str(tmp_path / "a"), **common))
