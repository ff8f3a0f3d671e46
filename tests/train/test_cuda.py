"""The trainer on a real GPU: the memory plan's dtypes on the device, bf16 autocast, QLoRA, FSDP2 on one
rank, flash attention. Marked `cuda`; skipped with the reason where no GPU (or package) is present.
`benchmarks/gpu_check.sh` runs them on a GPU machine."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from svit_data.train.config import TrainConfig
from svit_data.train.loop import train
from svit_data.train.precision import dtype_report
from svit_data.train.stages import prepare

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none is present)"),
]


def cfg(tmp_path, name, **kw) -> TrainConfig:
    base = dict(global_batch=8, micro_batch=4, num_workers=0, save_every=2, warmup_ratio=0.0, max_steps=3)
    base.update(kw)
    return TrainConfig(out=str(tmp_path / name), **base)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, tiny_parts, llava_parquet):
    tmp = tmp_path_factory.mktemp("s1")
    summary = train(cfg(tmp, "s1", stage="stage1", data=llava_parquet, **tiny_parts, lr=1e-2))
    assert all(torch.isfinite(torch.tensor(summary["losses"])))
    return str(tmp / "s1")


@pytest.mark.parametrize(("lora", "precision"), [(True, "auto"), (False, "auto"), (False, "bf16-pure")])
def test_stage2_trains_on_cuda_with_the_planned_dtypes(tmp_path, stage1, llava_parquet, lora, precision):
    from svit_data.train.model import load_pretrained

    c = cfg(
        tmp_path, "s2", stage="stage2", init_from=stage1, data=llava_parquet, lora=lora, precision=precision
    )
    model, _ = load_pretrained(stage1)
    report = dtype_report(prepare(model, c, "cuda").cuda())
    assert report["vision"] == "bfloat16"
    assert report["llm"] == ("float32" if not lora and precision == "auto" else "bfloat16")
    summary = train(c)
    assert len(summary["losses"]) == 3 and all(torch.isfinite(torch.tensor(summary["losses"])))
    assert (tmp_path / "s2" / "config.json").exists()
    assert torch.cuda.max_memory_allocated() > 0


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes is not installed")
def test_qlora_trains_and_saves_a_merged_bf16_copy(tmp_path, stage1, llava_parquet):
    from transformers import LlavaForConditionalGeneration

    c = cfg(tmp_path, "q", stage="stage2", init_from=stage1, data=llava_parquet, lora=True, quantize="4bit")
    summary = train(c)
    assert all(torch.isfinite(torch.tensor(summary["losses"])))
    merged = LlavaForConditionalGeneration.from_pretrained(tmp_path / "q")
    assert {p.dtype for p in merged.parameters()} == {torch.bfloat16}
    assert (tmp_path / "q" / "adapter" / "adapter_config.json").exists()


def test_fsdp2_one_rank_lora_with_mixed_dtypes(tmp_path, stage1, llava_parquet, monkeypatch):
    """bf16 frozen base + fp32 adapters in one FSDP2 group, gathered in bf16, reduced in fp32."""
    from test_distributed import free_port

    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    c = cfg(tmp_path, "f", stage="stage2", init_from=stage1, data=llava_parquet, lora=True, fsdp=True)
    summary = train(c)
    assert len(summary["losses"]) == 3 and all(torch.isfinite(torch.tensor(summary["losses"])))
    assert (tmp_path / "f" / "config.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed")
def test_flash_attention_2_trains(tmp_path, stage1, llava_parquet):
    c = cfg(
        tmp_path,
        "fa",
        stage="stage2",
        init_from=stage1,
        data=llava_parquet,
        lora=True,
        attn="flash_attention_2",
    )
    assert all(torch.isfinite(torch.tensor(train(c)["losses"])))
