"""Trainer throughput at LLaVA-1.5-7B shapes: stage 2 full, LoRA and QLoRA steps on one GPU, in bf16.

The model is built from configs, with random weights (no download): CLIP ViT-L/14-336 (24 layers, width
1024, 576 patches + CLS) and a Llama-2-7B-shaped LM (32 layers, width 4096, MLP 11008, vocab 32000), joined
by LLaVA's 2-layer projector. Each mode goes through the trainer's own memory plan (`stages.prepare`:
bf16 frozen parts, fp32 trained parts, bf16 autocast, QLoRA's NF4 load) with gradient checkpointing on,
as `svit-train` runs on CUDA. QLoRA loads the random model back from a bf16 copy written under --work,
through `model.load_pretrained` with the NF4 config.

Per mode: the largest micro batch that fits (doubling from 1 until out of memory, or --max-micro), then
--steps timed steps after --warmup, each one forward/backward/AdamW step on a full micro batch of
--seq-len tokens (576 image tokens + text). Reported: tokens/s, samples/s, peak GPU memory, the share of
step time spent waiting on the DataLoader (2 workers building synthetic batches; the real per-sample
pipeline is measured by bench_train_data.py), and MFU.

MFU = model FLOPs per second / peak bf16 FLOP/s (H200 dense: 989 TFLOP/s, --peak-tflops). Model FLOPs per
sample, with N = LM matmul parameters (decoder linears + LM head), s = --seq-len, L/d = LM layers/width:
  LM:        c * N * s + 12 * L * d * s * s, with c = 6 for full (forward 2, activation grads 2, weight
             grads 2) and c = 4 for LoRA/QLoRA (frozen weights get no weight gradient; adapter FLOPs, under
             5%, are not counted); the attention term is PaLM's (fwd + bwd, no causal halving)
  vision:    2 * N_vis * 577 + 4 * L_v * d_v * 577^2 (frozen, forward only)
  projector: 6 * N_proj * 576
Recomputation by gradient checkpointing is not counted (that would be hardware FLOPs utilisation).

Anchor: LLaVA-1.5-7B fine-tuning took about 10 h on 8 A100-40G for 665K samples: about 2.3 samples/s per
A100. `--tiny` runs the same code on toy shapes on CPU in fp32 (a test does this); its numbers mean nothing.

    python benchmarks/bench_train_gpu.py --modes full lora qlora --steps 5 --json /tmp/bench.json
    python benchmarks/bench_train_gpu.py --tiny --json /tmp/tiny.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from svit_data.train.config import TrainConfig
from svit_data.train.loop import token_loss_sum
from svit_data.train.precision import plan_for
from svit_data.train.stages import enable_checkpointing, param_groups, prepare

log = logging.getLogger("bench_train_gpu")

ANCHOR_SAMPLES_PER_S = 665_000 / (10 * 3600 * 8)  # about 2.3 per A100-40G
MODES = {"full": {"lora": False}, "lora": {"lora": True}, "qlora": {"lora": True, "quantize": "4bit"}}


def shapes(tiny: bool) -> tuple[dict, dict]:
    if tiny:
        vision = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        text = dict(
            vocab_size=300,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=256,
        )
        return vision, text
    vision = dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
    )
    text = dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
    )
    return vision, text


def llava_config(tiny: bool):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    v, t = shapes(tiny)
    vc, tc = CLIPVisionConfig(**v), LlamaConfig(**t, tie_word_embeddings=False)
    patches = (vc.image_size // vc.patch_size) ** 2
    return LlavaConfig(
        vision_config=vc.to_dict(),
        text_config=tc.to_dict(),
        image_token_index=t["vocab_size"] - 1,
        image_seq_length=patches,
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )


def model_flops_per_sample(config, mode: str, seq: int) -> float:
    v, t = config.vision_config, config.text_config
    d, L, ff, vocab = t.hidden_size, t.num_hidden_layers, t.intermediate_size, t.vocab_size
    kv = d * t.num_key_value_heads // t.num_attention_heads
    n_lm = L * (2 * d * d + 2 * d * kv + 3 * d * ff) + d * vocab
    c = 6 if mode == "full" else 4
    lm = c * n_lm * seq + 12 * L * d * seq * seq
    vt = (v.image_size // v.patch_size) ** 2 + 1
    n_vis = v.num_hidden_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    vision = 2 * n_vis * vt + 4 * v.num_hidden_layers * v.hidden_size * vt * vt
    projector = 6 * (v.hidden_size * d + d * d) * (vt - 1)
    return lm + vision + projector


class Synthetic(torch.utils.data.Dataset):
    """Fixed-length samples: BOS, the image tokens, random text; labels on the text."""

    def __init__(self, config, seq: int, n: int) -> None:
        self.config, self.seq, self.n = config, seq, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        c, img = self.config, self.config.image_seq_length
        ids = torch.randint(2, c.text_config.vocab_size - 1, (self.seq,), generator=g)
        ids[0], ids[1 : 1 + img] = 1, c.image_token_index
        labels = ids.clone()
        labels[: 1 + img] = -100
        size = c.vision_config.image_size
        return {"input_ids": ids, "labels": labels, "pixel_values": torch.randn(3, size, size, generator=g)}


def build(config, mode: str, device: str, precision: str, work: Path):
    """The random model, prepared by the trainer's own memory plan for this mode."""
    from transformers import LlavaForConditionalGeneration

    train_config = TrainConfig(
        stage="stage2", init_from=str(work), precision=precision, lora_r=128, lora_alpha=256, **MODES[mode]
    )
    if mode == "qlora":
        from svit_data.train.quantize import bnb_config

        saved = work / "bf16-copy"
        if not (saved / "config.json").exists():
            with torch.device(device):
                LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16).save_pretrained(
                    saved
                )
        model = load_quantized(saved, bnb_config(torch.bfloat16))
    else:
        with torch.device(device):
            model = LlavaForConditionalGeneration._from_config(
                config, dtype=plan_for(train_config, device).llm
            )
    model = prepare(model, train_config, device).to(device)
    enable_checkpointing(model)
    return model, train_config


def load_quantized(path: Path, quant):
    """QLoRA's NF4 load of the saved random model, as model.load_pretrained does it (no processor needed)."""
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(
        path, dtype=torch.bfloat16, quantization_config=quant
    )


def step(model, optimizer, batch, device: str, autocast: torch.dtype | None) -> None:
    ctx = torch.autocast(device, dtype=autocast) if autocast else torch.autocast(device, enabled=False)
    with ctx:
        logits = model(
            input_ids=batch["input_ids"].to(device), pixel_values=batch["pixel_values"].to(device)
        ).logits
    labels = batch["labels"].to(device)
    (token_loss_sum(logits, labels) / (labels != -100).sum()).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def fits(model, optimizer, config, mb: int, seq: int, device: str, autocast) -> bool:
    batch = torch.utils.data.default_collate([Synthetic(config, seq, mb)[i] for i in range(mb)])
    try:
        step(model, optimizer, batch, device, autocast)
        sync(device)
        return True
    except torch.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        return False
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()


def bench_mode(config, mode: str, args, device: str, work: Path) -> dict:
    if mode == "qlora" and device != "cuda":
        return {"mode": mode, "skipped": "QLoRA needs CUDA and bitsandbytes"}
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model, train_config = build(config, mode, device, args.precision, work)
    autocast = plan_for(train_config, device).autocast
    optimizer = torch.optim.AdamW(param_groups(model, train_config), fused=device == "cuda")
    model.train()
    mb, largest = args.micro_batch, None
    if mb is None:
        mb = 1
        while mb <= args.max_micro and fits(model, optimizer, config, mb, args.seq_len, device, autocast):
            largest, mb = mb, mb * 2
        if largest is None:
            return {"mode": mode, "skipped": "a micro batch of 1 does not fit"}
        mb = largest
    loader = torch.utils.data.DataLoader(
        Synthetic(config, args.seq_len, mb * (args.warmup + args.steps)),
        batch_size=mb,
        num_workers=args.workers,
        pin_memory=device == "cuda",
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    batches, wait, times = iter(loader), 0.0, []
    for i in range(args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        step(model, optimizer, batch, device, autocast)
        sync(device)
        if i >= args.warmup:
            wait += t1 - t0
            times.append(time.perf_counter() - t0)
    seconds = sum(times)
    samples = mb * args.steps
    flops = model_flops_per_sample(config, mode, args.seq_len) * samples / seconds
    result = {
        "mode": mode,
        "micro_batch": mb,
        "largest_micro_batch": largest,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "samples_per_s": samples / seconds,
        "tokens_per_s": samples * args.seq_len / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "loader_wait_share": wait / seconds,
        "model_tflops_per_s": flops / 1e12,
        "mfu": flops / (args.peak_tflops * 1e12),
        "vs_anchor": samples / seconds / ANCHOR_SAMPLES_PER_S,
    }
    del model, optimizer
    return result


def summary_line(r: dict) -> str:
    if "skipped" in r:
        return f"{r['mode']:6} skipped: {r['skipped']}"
    mem = f"{r['peak_memory_gib']:.1f} GiB" if r["peak_memory_gib"] is not None else "-"
    return (
        f"{r['mode']:6} mb {r['micro_batch']:3d}  {r['tokens_per_s']:9.0f} tok/s  {r['samples_per_s']:7.2f} "
        f"samples/s ({r['vs_anchor']:.1f}x anchor)  peak {mem}  loader wait {100 * r['loader_wait_share']:.1f}%"
        f"  MFU {100 * r['mfu']:.1f}%"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--modes", nargs="+", choices=list(MODES), default=list(MODES), help="stage 2 modes to time"
    )
    p.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sample, image tokens included")
    p.add_argument("--micro-batch", type=int, help="fixed micro batch (default: the largest that fits)")
    p.add_argument("--max-micro", type=int, default=64, help="stop the micro-batch search here")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    p.add_argument("--precision", default="auto", help="the trainer's precision setting")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak, for MFU")
    p.add_argument("--work", help="folder for QLoRA's bf16 copy of the random model (default: a temp folder)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--tiny", action="store_true", help="toy shapes on CPU, fp32: checks the code, not the speed"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.tiny:
        sys.stderr.write("bench_train_gpu: no CUDA GPU; use --tiny to check the code on CPU\n")
        return 2
    if args.tiny:
        args.seq_len, args.max_micro = min(args.seq_len, 64), min(args.max_micro, 2)
    config = llava_config(args.tiny)
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "shapes": "tiny" if args.tiny else "7B",
        "peak_tflops": args.peak_tflops,
        "results": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for mode in args.modes:  # each mode is printed and saved as it finishes: a time limit keeps the rest
            r = bench_mode(config, mode, args, device, work)
            report["results"].append(r)
            print(summary_line(r), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
