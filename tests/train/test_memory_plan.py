"""The memory plan (dtypes per part, per mode/device/precision), QLoRA and attention refusals, OOM advice,
and the gradient-checkpointing trap, on a tiny random LLaVA on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from svit_data.errors import InputError, SvitError
from svit_data.train.cli import main
from svit_data.train.config import TrainConfig, read_checkpoint_state
from svit_data.train.model import build_fresh
from svit_data.train.precision import MODES, Plan, dtype_report, oom_advice, plan
from svit_data.train.quantize import check_support
from svit_data.train.stages import enable_checkpointing, prepare

F32, BF16 = torch.float32, torch.bfloat16

# (mode, precision) -> (vision, llm, projector, adapters) on CUDA: the README's table.
CUDA_TABLE = {
    ("stage1", "auto"): (BF16, BF16, F32, F32),
    ("lora", "auto"): (BF16, BF16, F32, F32),
    ("full", "auto"): (BF16, F32, F32, F32),
    ("full", "bf16"): (BF16, F32, F32, F32),
    ("full", "bf16-pure"): (BF16, BF16, BF16, BF16),
    ("lora", "bf16-pure"): (BF16, BF16, BF16, BF16),
    ("full", "fp32"): (F32, F32, F32, F32),
    ("lora", "fp32"): (F32, F32, F32, F32),
}


@pytest.mark.parametrize(("mode", "precision"), list(CUDA_TABLE))
def test_cuda_plan_follows_the_table(mode, precision):
    p = plan(mode, "cuda", precision)
    assert (p.vision, p.llm, p.projector, p.adapters) == CUDA_TABLE[(mode, precision)]
    assert p.autocast == (None if precision == "fp32" else BF16)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_cpu_keeps_fp32(mode, precision):
    assert plan(mode, "cpu", precision) == Plan(F32, F32, F32, F32, None)


def test_plan_rejects_unknown_values():
    with pytest.raises(ValueError, match="mode"):
        plan("stage3", "cuda", "auto")
    with pytest.raises(ValueError, match="precision"):
        plan("full", "cuda", "fp16")


def config(tiny_parts, tmp_path, **kw) -> TrainConfig:
    return TrainConfig(out=str(tmp_path / "run"), data="x.json", **tiny_parts, **kw)


# (stage, lora, device, precision) -> expected dtype per part of the prepared tiny model.
PREPARED = [
    ("stage1", False, "cuda", "auto", {"vision": "bfloat16", "llm": "bfloat16", "projector": "float32"}),
    ("stage2", False, "cuda", "auto", {"vision": "bfloat16", "llm": "float32", "projector": "float32"}),
    (
        "stage2",
        True,
        "cuda",
        "auto",
        {"vision": "bfloat16", "llm": "bfloat16", "projector": "float32", "adapters": "float32"},
    ),
    (
        "stage2",
        False,
        "cuda",
        "bf16-pure",
        {"vision": "bfloat16", "llm": "bfloat16", "projector": "bfloat16"},
    ),
    ("stage2", True, "cpu", "auto", {"vision": "float32", "llm": "float32", "projector": "float32"}),
]


@pytest.mark.parametrize(("stage", "lora", "device", "precision", "expected"), PREPARED)
def test_prepared_model_holds_the_planned_dtypes(
    tiny_parts, tmp_path, stage, lora, device, precision, expected
):
    """The CUDA branch is exercised on CPU tensors: prepare() casts by the plan for the device type given."""
    model, _ = build_fresh(tiny_parts["vision"], tiny_parts["llm"])
    c = config(tiny_parts, tmp_path, stage=stage, lora=lora, precision=precision, lora_r=4, lora_alpha=8)
    model = prepare(model, c, device)
    report = dtype_report(model)
    for part, dtypes in expected.items():
        assert report[part] == dtypes, (part, report)
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert trained == ({BF16} if precision == "bf16-pure" else {F32})  # what AdamW updates


def test_attention_implementation_is_applied_and_recorded(tiny_parts, tmp_path):
    model, _ = build_fresh(tiny_parts["vision"], tiny_parts["llm"])
    c = config(tiny_parts, tmp_path, attn="eager")
    prepare(model, c)
    assert model.config.text_config._attn_implementation == "eager"
    assert model.config.vision_config._attn_implementation == "eager"
    c.save(tmp_path / "train_config.yaml")
    assert "attn: eager" in (tmp_path / "train_config.yaml").read_text()
    assert TrainConfig(out="o", data="d", **tiny_parts).attn == "sdpa"


def lora_grads(model, batch) -> dict[str, float]:
    model.train()
    out = model(**batch)
    out.logits.float().sum().backward()
    return {
        n: 0.0 if p.grad is None else float(p.grad.abs().sum())
        for n, p in model.named_parameters()
        if "lora_" in n
    }


def lora_model(tiny_parts, tmp_path):
    model, _ = build_fresh(tiny_parts["vision"], tiny_parts["llm"])
    model = prepare(model, config(tiny_parts, tmp_path, stage="stage2", lora=True, lora_r=4, lora_alpha=8))
    for name, p in model.named_parameters():  # peft starts lora_B at zero: make A's gradient non-zero too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


BATCH = {"input_ids": torch.tensor([[1, 5, 9, 12, 7]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}


def test_checkpointing_with_frozen_embeddings_still_trains_lora(tiny_parts, tmp_path):
    """The input-requires-grad trap: frozen embeddings feed checkpointed layers tensors without grad."""
    model = lora_model(tiny_parts, tmp_path)
    enable_checkpointing(model)
    model.get_base_model().disable_input_require_grads()  # not relying on transformers' hook
    assert not model.get_input_embeddings().weight.requires_grad
    grads = lora_grads(model, BATCH)
    assert grads and all(g > 0 for g in grads.values()), [n for n, g in grads.items() if g == 0][:3]

    # the trap itself: reentrant checkpointing without that hook cuts every LoRA weight off the loss
    model = lora_model(tiny_parts, tmp_path)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.get_base_model().disable_input_require_grads()
    with pytest.raises(RuntimeError, match="does not require grad"):
        lora_grads(model, BATCH)


def test_refusals_without_cuda_or_packages(tiny_parts, tmp_path, monkeypatch):
    c = config(tiny_parts, tmp_path, stage="stage2", lora=True, quantize="4bit")
    with pytest.raises(SvitError, match="--quantize 4bit needs a CUDA GPU"):
        check_support(c, cuda=False)
    monkeypatch.setattr("svit_data.train.quantize.installed", lambda name: False)
    with pytest.raises(SvitError, match="needs bitsandbytes"):
        check_support(c, cuda=True)
    with pytest.raises(SvitError, match="flash-attn package"):
        check_support(config(tiny_parts, tmp_path, attn="flash_attention_2"), cuda=True)
    with pytest.raises(SvitError, match="bf16-pure needs a CUDA GPU"):
        check_support(config(tiny_parts, tmp_path, precision="bf16-pure"), cuda=False)
    with pytest.raises(SvitError, match="add --lora"):
        config(tiny_parts, tmp_path, stage="stage2", quantize="4bit")
    with pytest.raises(SvitError, match="cannot be sharded"):
        config(tiny_parts, tmp_path, stage="stage2", lora=True, quantize="4bit", fsdp=True)
    with pytest.raises(SvitError, match="attn must be one of"):
        config(tiny_parts, tmp_path, attn="flash")


@pytest.mark.parametrize(
    "flags",
    [
        ["stage2", "--lora", "--quantize", "4bit"],
        ["stage2", "--fsdp"],
        ["stage1", "--attn", "flash_attention_2"],
        ["stage1", "precision=bf16-pure"],
    ],
)
def test_cli_refuses_gpu_only_requests_with_exit_2(tiny_parts, llava_parquet, tmp_path, capsys, flags):
    if torch.cuda.is_available():
        pytest.skip("these requests are valid on a CUDA machine")
    out = tmp_path / "run"
    argv = [*flags[:1], "--vision", tiny_parts["vision"], "--llm", tiny_parts["llm"]]
    argv += ["--data", llava_parquet, "--out", str(out), *flags[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("svit-train: error: ") and err.count("\n") == 1
    assert not out.exists()  # refused before anything was written


def test_resume_with_another_precision_or_quantization_is_refused(tiny_parts, tmp_path):
    saved = config(tiny_parts, tmp_path, stage="stage2", lora=True).to_dict()
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"step": 2, "config": saved}))
    for key, value in (("precision", "bf16-pure"), ("quantize", "4bit")):
        current = config(tiny_parts, tmp_path, stage="stage2", lora=True, **{key: value})
        with pytest.raises(InputError, match=f"written with {key}=") as e:
            read_checkpoint_state(str(folder), current)
        assert e.value.field == key


def test_oom_advice_names_what_to_lower(tiny_parts, tmp_path):
    full = oom_advice(config(tiny_parts, tmp_path, stage="stage2", micro_batch=8))
    assert "--micro-batch (now 8" in full and "--max-length (now 2048)" in full and "--lora" in full
    lora = oom_advice(config(tiny_parts, tmp_path, stage="stage2", lora=True, max_length=256))
    assert "--quantize 4bit" in lora and "--max-length" not in lora


def test_out_of_memory_in_a_step_is_one_sentence_and_exit_2(
    tiny_parts, llava_parquet, tmp_path, capsys, monkeypatch
):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("svit_data.train.loop.token_loss_sum", oom)
    out = tmp_path / "run"
    argv = ["stage1", "--vision", tiny_parts["vision"], "--llm", tiny_parts["llm"], "--data", llava_parquet]
    argv += ["--out", str(out), "--num-workers", "0", "--global-batch", "8", "--micro-batch", "4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "out of GPU memory in a training step: lower --micro-batch (now 4" in err
    assert not (out / "config.json").exists() and not list(out.glob("checkpoint-*"))
