"""The training loop: :func:`setup` builds a :class:`Run`, :func:`train_step` does one optimizer step,
:func:`checkpoint_due` says when to save; :func:`_train` strings them together, readable top to bottom.

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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from svit_data.errors import SvitError
from svit_data.train import distributed as D
from svit_data.train.checkpoint import load_checkpoint, save_checkpoint, save_run
from svit_data.train.collate import collate, label_tokens, stand_in
from svit_data.train.config import TrainConfig, read_checkpoint_state
from svit_data.train.data import estimate_lengths, open_dataset, require_images
from svit_data.train.dataset import TrainDataset
from svit_data.train.encode import IGNORE
from svit_data.train.model import build_fresh, load_pretrained
from svit_data.train.precision import oom_advice, plan_for
from svit_data.train.sampler import StepSampler, total_steps
from svit_data.train.stages import enable_checkpointing, param_groups, prepare

if TYPE_CHECKING:
    from transformers import ProcessorMixin

log = logging.getLogger(__name__)


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' ``get_cosine_schedule_with_warmup``, but warmup step ``s`` has ``(s + 1) / warmup``
    where transformers has ``s / warmup``: its first step runs at lr 0, which would make a short run (or
    a 1-step warmup) waste its first update. Equal from the end of warmup on (tests/train/test_schedule.py).
    """

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
    if env.device.type == "cuda" and config.precision != "fp32":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build(config: TrainConfig, dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, ProcessorMixin]:
    quant = None
    if config.quantize:
        from svit_data.train.quantize import bnb_config

        quant, dtype = bnb_config(torch.bfloat16), torch.bfloat16
    if config.vision is not None:
        return build_fresh(
            config.vision,
            config.llm,
            gguf_file=config.llm_gguf_file,
            chat_template=config.chat_template,
            seed=config.seed,
            dtype=dtype,
            quantization_config=quant,
        )
    return load_pretrained(config.init_from, dtype=dtype, quantization_config=quant)


def train(config: TrainConfig) -> dict:
    """Run one stage; returns a summary (per-step losses, skips) that is also written to the run folder."""
    env = D.setup(config)
    try:
        return _train(config, env)
    except torch.OutOfMemoryError:
        raise SvitError(oom_advice(config)) from None
    finally:
        D.teardown()


@dataclass
class Run:
    """What :func:`setup` prepares for the loop: the wrapped model, its optimizer, the batches, the steps."""

    model: torch.nn.Module
    processor: ProcessorMixin
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loader: torch.utils.data.DataLoader
    accum: int  # micro-batches per optimizer step and rank
    total: int  # steps of the whole schedule
    start: int
    end: int
    params: list[torch.nn.Parameter]  # the trained ones, for gradient clipping
    skipped: Counter = field(default_factory=Counter)


@dataclass
class StepResult:
    loss: float  # mean token loss over the global batch
    tokens: int  # attended tokens over all ranks
    samples: int
    truncated: int  # samples cut to max_length on this rank
    seconds: float


def _train(config: TrainConfig, env: D.Env) -> dict:
    out = Path(config.out)
    run = setup(config, env)
    losses, truncated = [], 0
    batches = iter(run.loader)
    log_file = (out / "log.jsonl").open("a") if env.is_main else None
    bar = tqdm(total=run.end, initial=run.start, disable=not env.is_main, desc=config.stage)
    run.model.train()
    for step in range(run.start, run.end):
        result = train_step(run, [next(batches) for _ in range(run.accum)], config, env)
        losses.append(result.loss)
        truncated += result.truncated
        record = {
            "step": step + 1,
            "loss": result.loss,
            "lr": run.scheduler.get_last_lr()[-1],
            "tokens_per_s": result.tokens / result.seconds,
            "samples_per_s": result.samples / result.seconds,
            "skipped": sum(run.skipped.values()),
        }
        bar.update(1)
        bar.set_postfix(loss=f"{result.loss:.4f}", lr=f"{record['lr']:.2e}")
        if log_file and (step + 1) % config.log_every == 0:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            log.info(
                "step %(step)d loss %(loss).4f lr %(lr).3e tok/s %(tokens_per_s).0f samples/s %(samples_per_s).1f",
                record,
            )
        if checkpoint_due(step + 1, run, config):
            save_checkpoint(
                out / f"checkpoint-{step + 1}",
                model=run.model,
                optimizer=run.optimizer,
                scheduler=run.scheduler,
                step=step + 1,
                config=config,
                env=env,
                skipped=run.skipped,
            )
    bar.close()
    if log_file:
        log_file.close()
    if run.skipped:
        log.warning("skipped %d samples: %s", sum(run.skipped.values()), dict(run.skipped))
    summary = {
        "steps": run.end,
        "total_steps": run.total,
        "start": run.start,
        "losses": losses,
        "skipped": dict(run.skipped),
        "truncated_on_rank0": truncated,
    }
    save_run(out, model=run.model, processor=run.processor, config=config, env=env, summary=summary)
    return summary


def setup(config: TrainConfig, env: D.Env) -> Run:
    """Check, build and restore everything a stage needs, cheapest checks first."""
    out = Path(config.out)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "train_config.yaml")
        log.info("resolved config:\n%s", json.dumps(config.to_dict(), indent=1))
    if config.resume:  # refuse a mismatched checkpoint before spending minutes loading models
        read_checkpoint_state(config.resume, config)
    ds = open_dataset(
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
    model = prepare(model, config, env.device.type)
    if (
        config.gradient_checkpointing
        if config.gradient_checkpointing is not None
        else env.device.type == "cuda"
    ):
        enable_checkpointing(model)
    model = D.wrap(model, env, plan_for(config, env.device.type).autocast)
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
    return Run(
        model=model,
        processor=processor,
        optimizer=optimizer,
        scheduler=scheduler,
        loader=loader,
        accum=sampler.accum,
        params=[p for p in model.parameters() if p.requires_grad],
        total=total,
        start=start,
        end=end,
        skipped=skipped,
    )


def train_step(run: Run, micro: list[dict], config: TrainConfig, env: D.Env) -> StepResult:
    """One optimizer step over this rank's micro-batches; the loss is normalized by the global label count."""
    t0 = time.perf_counter()
    micro = stand_in(micro)
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
        with D.grad_sync(run.model, sync=i == len(micro) - 1):
            with autocast(env, config):
                logits = run.model(
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
        torch.nn.utils.clip_grad_norm_(run.params, config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    loss = D.all_sum([loss_sum], env)[0] / max(n_label, 1)
    for counts in D.gather_objects(sum((b["skipped"] for b in micro), Counter()), env):
        run.skipped.update(counts)
    return StepResult(
        loss=loss,
        tokens=n_tokens,
        samples=n_samples,
        truncated=sum(b["truncated"] for b in micro),
        seconds=time.perf_counter() - t0,
    )


def checkpoint_due(done: int, run: Run, config: TrainConfig) -> bool:
    """Every ``save_every`` steps, and at a ``max_steps`` stop short of the schedule (the final run
    folder is written anyway at the end of the schedule)."""
    last = done == run.end
    periodic = bool(config.save_every) and done % config.save_every == 0 and not last
    return periodic or (last and run.end < run.total)
