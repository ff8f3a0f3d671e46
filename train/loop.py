"""The training loop: one function, readable top to bottom.

Loss is the sum of token losses divided by the number of label tokens in the whole global batch
(summed over micro-batches and ranks), so gradient accumulation and any number of ranks give the
same update as one big batch, and 1 process agrees with K processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from svit_data.train import distributed as D
from svit_data.train.checkpoint import load_checkpoint, save_checkpoint, save_run
from svit_data.train.collate import collate, label_tokens, stand_in
from svit_data.train.config import TrainConfig
from svit_data.train.data import estimate_lengths, open_dataset, require_images
from svit_data.train.dataset import TrainDataset
from svit_data.train.encode import IGNORE
from svit_data.train.model import build_fresh, load_pretrained
from svit_data.train.sampler import StepSampler, total_steps
from svit_data.train.stages import param_groups, prepare
from tqdm import tqdm

if TYPE_CHECKING:
    from transformers import ProcessorMixin

log = logging.getLogger(__name__)


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over labelled positions, in fp32."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE, reduction="sum"
    )


def autocast(env: D.Env, config: TrainConfig) -> contextlib.AbstractContextManager:
    if env.device.type == "cuda" and config.precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build(config: TrainConfig) -> tuple[torch.nn.Module, ProcessorMixin]:
    if config.vision is not None:
        return build_fresh(
            config.vision,
            config.llm,
            gguf_file=config.llm_gguf_file,
            chat_template=config.chat_template,
            seed=config.seed,
        )
    return load_pretrained(config.init_from)


def train(config: TrainConfig) -> dict:
    """Run one stage; returns a summary (per-step losses, skips) that is also written to the run folder."""
    env = D.setup(config)
    try:
        return _train(config, env)
    finally:
        D.teardown()


def _train(config: TrainConfig, env: D.Env) -> dict:
    out = Path(config.out)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "train_config.yaml")
        log.info("resolved config:\n%s", json.dumps(config.to_dict(), indent=1))
    if config.resume:
        _check_resume_early(config)
    ds = open_dataset(  # cheap checks first
        config.data, data_dir=config.data_dir, split=config.split, include_flagged=config.include_flagged
    )
    seed_everything(config.seed)
    model, processor = build(config)
    image_token_id, seq_len = model.config.image_token_index, model.config.image_seq_length
    lengths, images = estimate_lengths(ds, seq_len)
    if config.stage == "stage1":  # text-only samples cannot train the projector
        require_images(images, config.data)
        keep = [i for i, img in enumerate(images) if img]
        if len(keep) < len(ds):
            log.info("stage 1: leaving out %d text-only samples", len(ds) - len(keep))
            ds, lengths, images = ds.select(keep), [lengths[i] for i in keep], [True] * len(keep)
    model = prepare(model, config)
    if (
        config.gradient_checkpointing
        if config.gradient_checkpointing is not None
        else env.device.type == "cuda"
    ):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = D.wrap(model, env)
    optimizer = torch.optim.AdamW(param_groups(model, config), weight_decay=config.weight_decay)
    total = total_steps(len(ds), config.global_batch, config.epochs)
    scheduler = cosine_with_warmup(optimizer, math.ceil(config.warmup_ratio * total), total)
    start, skipped = 0, Counter()
    if config.resume:
        start, skipped = load_checkpoint(
            config.resume, model=model, optimizer=optimizer, scheduler=scheduler, config=config, env=env
        )
    end = min(total, config.max_steps) if config.max_steps else total
    sampler = StepSampler(
        lengths,
        images,
        global_batch=config.global_batch,
        micro_batch=config.micro_batch,
        seed=config.seed,
        rank=env.rank,
        world=env.world,
        start=start,
        end=end,
        group=config.group_by_modality_length,
    )
    dataset = TrainDataset(
        ds,
        processor,
        image_token_id=image_token_id,
        image_seq_length=seq_len,
        max_length=config.max_length,
        image_root=config.image_root,
        seed=config.seed,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=partial(collate, pad_id=processor.tokenizer.pad_token_id),
        generator=torch.Generator().manual_seed(config.seed),  # keeps the global RNG (dropout) resumable
    )
    log.info(
        "%d samples, %d steps (%d to run), %d micro-batches/step/rank",
        len(ds),
        total,
        end - start,
        sampler.accum,
    )

    losses, truncated = [], 0
    params = [p for p in model.parameters() if p.requires_grad]
    batches = iter(loader)
    log_file = (out / "log.jsonl").open("a") if env.is_main else None
    bar = tqdm(total=end, initial=start, disable=not env.is_main, desc=config.stage)
    model.train()
    for step in range(start, end):
        t0 = time.perf_counter()
        micro = stand_in([next(batches) for _ in range(sampler.accum)])
        n_label, n_tokens, n_samples = D.all_sum(
            [
                sum(label_tokens(b) for b in micro),
                sum(int(b["attention_mask"].sum()) for b in micro),
                sum(b["n_samples"] for b in micro),
            ],
            env,
        )
        loss_sum = 0.0
        for i, batch in enumerate(micro):
            with D.grad_sync(model, sync=i == len(micro) - 1):
                with autocast(env, config):
                    logits = model(
                        input_ids=batch["input_ids"].to(env.device),
                        attention_mask=batch["attention_mask"].to(env.device),
                        pixel_values=None
                        if batch["pixel_values"] is None
                        else batch["pixel_values"].to(env.device),
                    ).logits
                s = token_loss_sum(logits, batch["labels"].to(env.device))
                if s.requires_grad:  # False only when nothing trainable was reached (no image in stage 1)
                    (s * env.world / max(n_label, 1)).backward()
            loss_sum += float(s.detach())
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = D.all_sum([loss_sum], env)[0] / max(n_label, 1)
        losses.append(loss)
        for counts in D.gather_objects(sum((b["skipped"] for b in micro), Counter()), env):
            skipped.update(counts)
        truncated += sum(b["truncated"] for b in micro)
        seconds = time.perf_counter() - t0
        record = {
            "step": step + 1,
            "loss": loss,
            "lr": scheduler.get_last_lr()[-1],
            "tokens_per_s": n_tokens / seconds,
            "samples_per_s": n_samples / seconds,
            "skipped": sum(skipped.values()),
        }
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{record['lr']:.2e}")
        if log_file and (step + 1) % config.log_every == 0:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            log.info(
                "step %(step)d loss %(loss).4f lr %(lr).3e tok/s %(tokens_per_s).0f samples/s %(samples_per_s).1f",
                record,
            )
        last = step + 1 == end
        if (config.save_every and (step + 1) % config.save_every == 0 and not last) or (last and end < total):
            save_checkpoint(
                out / f"checkpoint-{step + 1}",
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                step=step + 1,
                config=config,
                env=env,
                skipped=skipped,
            )
    bar.close()
    if log_file:
        log_file.close()
    if skipped:
        log.warning("skipped %d samples: %s", sum(skipped.values()), dict(skipped))
    summary = {
        "steps": end,
        "total_steps": total,
        "start": start,
        "losses": losses,
        "skipped": dict(skipped),
        "truncated_on_rank0": truncated,
    }
    save_run(out, model=model, processor=processor, config=config, env=env, summary=summary)
    return summary


def _check_resume_early(config: TrainConfig) -> None:
    """Refuse a mismatched checkpoint before spending minutes loading models."""
    from svit_data.train.config import check_resume_compatible

    from svit_data.errors import InputError

    state = Path(config.resume) / "state.json"
    if not state.exists():
        raise InputError("not a svit-train checkpoint: missing state.json", file=config.resume)
    check_resume_compatible(json.loads(state.read_text())["config"], config, config.resume)
