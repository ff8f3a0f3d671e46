"""``generate(job, config, client)``: assemble the generator from its inputs and run it (online or Batch API).

The command ``svit-recipe generate`` is a thin layer over this module: its flags are generated from
:class:`GenerateJob`, :class:`~svit_data.builders.pipeline.GenerateConfig` and
:class:`~svit_data.builders.openai_client.ClientConfig`. :func:`plan` is the dry run: it reads the
inputs and an existing response cache, and writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svit_data.builders.annotations import VisualGenome
from svit_data.builders.cache import ResponseCache
from svit_data.builders.coco import load_captions, load_instances
from svit_data.builders.cost import Budget, BudgetExhausted, price_for
from svit_data.builders.openai_client import ClientConfig
from svit_data.builders.output import OutputLayout, write_atomic
from svit_data.builders.pipeline import GenerateConfig, Generator
from svit_data.builders.prompt_loader import load_prompts
from svit_data.builders.sources import AnnotationSource
from svit_data.builders.tokens import TokenCounter
from svit_data.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateJob:
    """What to read, where to write, and how to pay: everything of a run that is not the model's settings."""

    vg: str = field(
        metadata={
            "help": "Visual Genome v1.4 folder (image_data.json, objects.json, region_descriptions.json; "
            "attributes.json and relationships.json are used when present)"
        }
    )
    out: str = field(metadata={"help": "output folder: <task>/shard-*.jsonl, rejections.jsonl, summary.json"})
    coco_captions: tuple[str, ...] = field(
        default=(), metadata={"help": "COCO captions JSON, joined on VG coco_id (repeatable)"}
    )
    coco_instances: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "COCO instances JSON (instances_*.json): category + box per object, joined on VG "
            "coco_id (repeatable)"
        },
    )
    prompts: str | None = field(
        default=None,
        metadata={
            "help": "own prompt folder: one subfolder per task (our layout or LLaVA's), or SVIT's released "
            "layout (prompts/<task>.txt, optional data/questions.txt)"
        },
    )
    image_ids: str | None = field(
        default=None, metadata={"help": "file with VG image ids to process, one per line"}
    )
    cache: str | None = field(
        default=None, metadata={"help": "SQLite response cache (default: OUT/cache.sqlite)"}
    )
    dry_run: bool = field(
        default=False,
        metadata={"help": "print requests, exact input tokens and estimated cost; send nothing"},
    )
    batch: bool = field(
        default=False, metadata={"help": "use the OpenAI Batch API (half price; resumable across restarts)"}
    )
    poll_interval: float = field(default=30.0, metadata={"help": "seconds between Batch API status polls"})
    max_cost: float | None = field(
        default=None, metadata={"help": "hard cap in USD: stop before spending more (exit code 3)"}
    )
    price_input: float | None = field(
        default=None, metadata={"help": "USD per 1M input tokens (overrides the built-in price)"}
    )
    price_output: float | None = field(
        default=None, metadata={"help": "USD per 1M output tokens (overrides the built-in price)"}
    )

    @property
    def cache_path(self) -> Path:
        return Path(self.cache or Path(self.out) / "cache.sqlite")


def read_image_ids(path: str | None) -> set[int] | None:
    if path is None:
        return None
    try:
        return {int(line) for line in Path(path).read_text().split() if line.strip()}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read image ids: {exc}", file=path) from exc


@contextmanager
def _generator(
    job: GenerateJob, config: GenerateConfig, client: ClientConfig | None, progress: bool
) -> Iterator[tuple[Generator, dict[str, Any], ResponseCache | None]]:
    """The assembled generator, the resolved config it logs and writes, and the open cache (closed after)."""
    out = Path(job.out)
    if not job.dry_run:  # a dry run writes nothing: no folder, no index, no cache
        out.mkdir(parents=True, exist_ok=True)
    vg = VisualGenome(job.vg, index_dir=out / ".index", write_index=not job.dry_run)
    instances, captions = {}, {}
    if job.coco_instances or job.coco_captions:  # keep only the COCO images VG links to: bounded memory
        coco_ids = {image.coco_id for image in vg.images() if image.coco_id is not None}
        if job.coco_instances:
            instances = load_instances(list(job.coco_instances), keep=coco_ids)
        if job.coco_captions:
            captions = load_captions(list(job.coco_captions), keep=coco_ids)
    prompts = load_prompts(config.tasks, job.prompts)
    price = price_for(config.model, job.price_input, job.price_output)
    if job.dry_run:  # read the answers a previous run paid for, if any, without creating anything
        cache = ResponseCache(job.cache_path, read_only=True) if job.cache_path.is_file() else None
    else:
        cache = ResponseCache(job.cache_path)
    resolved = {
        **config.to_dict(),
        "vg": job.vg,
        "vg_optional_files": list(vg.present),
        "coco_captions": list(job.coco_captions),
        "coco_instances": list(job.coco_instances),
        "prompts": job.prompts,
        "prompt_hashes": {t: p.hash for t, p in prompts.items()},
        "base_url": list(client.base_url) if client else None,
        "batch": job.batch,
        "price_per_m": [price.input_per_m, price.output_per_m],
    }
    log.info("generate config: %s", json.dumps(resolved))
    generator = Generator(
        config,
        AnnotationSource(vg, captions, instances),
        prompts,
        TokenCounter(config.model),
        price,
        out=str(out),
        cache=cache,
        budget=Budget(job.max_cost, price, batch=job.batch),
        progress=progress,
        image_ids=read_image_ids(job.image_ids),
    )
    try:
        yield generator, resolved, cache
    finally:
        if cache is not None:
            cache.close()


def plan(job: GenerateJob, config: GenerateConfig) -> dict[str, Any]:
    """The dry run: requests, exact input tokens, estimated output tokens and cost; writes and sends nothing."""
    with _generator(dataclasses.replace(job, dry_run=True), config, None, False) as (generator, _, _):
        return generator.plan()


def generate(
    job: GenerateJob, config: GenerateConfig, client: ClientConfig, *, progress: bool = False
) -> dict[str, Any]:
    """Run the generation and return its summary (also written to ``OUT/summary*.json``).

    ``summary["stopped"]`` says why the run stopped early (the ``max_cost`` cap); a fatal endpoint
    error raises :class:`~svit_data.builders.llm.LLMFatalError`.
    """
    if job.dry_run:
        raise ValueError("generate() sends requests; call plan() for a dry run")
    if job.batch and len(client.base_url) > 1:
        raise InputError("--batch sends to one endpoint: give a single --base-url")
    if job.batch:  # a batch has no second round trip in which to re-ask
        config = dataclasses.replace(config, reask=0)
    layout = OutputLayout(job.out, config.shard_index, config.shard_count)
    with _generator(job, config, client, progress) as (generator, resolved, cache):
        write_atomic(layout.config, json.dumps(resolved, indent=2) + "\n")
        if not generator.price.known:
            log.warning(
                "no price known for model %r: costs count as $0 (set --price-input/--price-output)",
                config.model,
            )
        if job.batch:
            summary = asyncio.run(_run_batch(generator, job, client, cache))
        else:
            summary = asyncio.run(_run_online(generator, client, cache))
    write_atomic(layout.summary, json.dumps(summary, indent=2) + "\n")
    return summary


async def _run_online(generator: Generator, client: ClientConfig, cache: ResponseCache | None) -> dict:
    from svit_data.builders.endpoints import make_chat

    llm = make_chat(client, cache=cache, counter=generator.counter)
    generator.llm = llm
    try:
        return await generator.run()
    finally:
        await llm.aclose()


async def _run_batch(
    generator: Generator, job: GenerateJob, client: ClientConfig, cache: ResponseCache | None
) -> dict:
    from svit_data.builders.batch import BatchRunner, CacheOnly

    runner = BatchRunner(
        client,
        cache,
        Path(job.out) / "batches",
        budget=generator.budget,
        counter=generator.counter,
        poll_interval=job.poll_interval,
    )
    stopped = None
    try:
        try:
            await runner.submit(request for _, _, request in generator.requests())
        except BudgetExhausted as exc:
            stopped = str(exc)
        await runner.collect()
    finally:
        await runner.aclose()
    generator.llm = CacheOnly(cache)
    summary = await generator.run()
    summary["batch"] = dict(runner.stats)
    summary["spent_usd"] = round(generator.budget.spent, 6)
    summary["stopped"] = summary["stopped"] or stopped
    return summary
