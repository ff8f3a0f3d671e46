"""``verify(job, config, client)``: open the pool, judge its samples, save the verdicts (see :mod:`.verify`).

Outputs:

- ``OUT/judgments.jsonl``: this run's verdict per checked sample (``id``, ``task``, ``supported``: true,
  false or null for unclear, ``code`` of the flag, ``reason``, ``model``), sorted by id; ``OUT/verify_summary.json`` (counts per
  task, rate, skipped images, tokens, cost, why it stopped); ``OUT/verify_config.json``; the response cache
  ``OUT/cache.sqlite`` (``--cache`` elsewhere). All written atomically.
- The pool's verdict store (:mod:`svit_data.verified`): ``$SVIT_CACHE/verified/<pool fingerprint>.parquet``,
  from which a later ``build`` over the same ``--source`` adds ``unsupported_by_image`` flags.

A run that stops early (``--max-cost``, every endpoint down) still writes both: every answer received is
in the cache, so a rerun repeats no request. A killed run writes nothing but its cache; the rerun rebuilds
its verdicts from the cache at no cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svit_data.builders.cache import ResponseCache
from svit_data.builders.cost import Budget, price_for
from svit_data.builders.generate import GenerateJob
from svit_data.builders.grounding import SourceBoxes
from svit_data.builders.llm import ImagesRejected
from svit_data.builders.openai_client import ClientConfig
from svit_data.builders.output import write_atomic, write_jsonl
from svit_data.builders.tokens import TokenCounter
from svit_data.builders.verify import Verifier, VerifyConfig, same_field
from svit_data.builders.vision import ImageFinder
from svit_data.errors import SvitError
from svit_data.sources import open_sources, parse_source
from svit_data.verified import save_verdicts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyJob:
    """Which pool, which images, where to write and how to pay."""

    out: str = field(metadata={"help": "output folder: judgments.jsonl, verify_summary.json, cache.sqlite"})
    source: tuple[str, ...] = field(
        default=("sample",),
        metadata={"help": "the pool, as build takes it: sample, a folder, hf://..., NAME=PATH (repeatable)"},
    )
    images: str | None = field(
        default=None,
        metadata={
            "help": "image folder: <image_id>.jpg anywhere below it (default: the source's images/); give "
            "build the same --images so it opens the same pool"
        },
    )
    image_data: str | None = field(
        default=None, metadata={"help": "Visual Genome image_data.json with image sizes (as for build)"}
    )
    vg: str | None = field(
        default=None,
        metadata={
            "help": "Visual Genome folder (image_data.json, objects.json, region_descriptions.json): referring "
            "boxes are also checked against its boxes, as generate checks its own (flag ungrounded_box)"
        },
    )
    # how to pay: as for generate
    cache: str | None = same_field(GenerateJob, "cache")
    dry_run: bool = same_field(GenerateJob, "dry_run")
    max_cost: float | None = same_field(GenerateJob, "max_cost")
    price_input: float | None = same_field(GenerateJob, "price_input")
    price_output: float | None = same_field(GenerateJob, "price_output")

    @property
    def cache_path(self) -> Path:
        return Path(self.cache or Path(self.out) / "cache.sqlite")


def _verifier(job: VerifyJob, config: VerifyConfig, cache: ResponseCache | None, progress: bool) -> Verifier:
    pool = open_sources(
        [parse_source(text) for text in job.source],
        images=job.images,
        image_data=job.image_data,
        progress=progress,
    )
    root = Path(job.images) if job.images else pool.images_root
    if root is None:
        raise SvitError(
            f"no images for source {' + '.join(job.source)}: give --images (the folder holding <image_id>.jpg)"
        )
    price = price_for(config.model, job.price_input, job.price_output)
    grounding = None
    if job.vg:  # the dry run reads a persisted index but never writes one
        grounding = SourceBoxes(job.vg, Path(job.out) / ".index", write_index=not job.dry_run)
    return Verifier(
        config,
        pool,
        ImageFinder(root, config.detail, config.image_tokens),
        TokenCounter(config.model),
        price,
        cache=cache,
        budget=Budget(job.max_cost, price),
        progress=progress,
        grounding=grounding,
    )


def plan(job: VerifyJob, config: VerifyConfig) -> dict[str, Any]:
    """The dry run: reads the pool, the images and an existing response cache; writes and sends nothing."""
    cache = ResponseCache(job.cache_path, read_only=True) if job.cache_path.is_file() else None
    try:
        return _verifier(job, config, cache, False).plan()
    finally:
        if cache is not None:
            cache.close()


def verify(
    job: VerifyJob, config: VerifyConfig, client: ClientConfig, *, progress: bool = False
) -> dict[str, Any]:
    """Judge the pool's samples; returns the summary (see the module docstring for what is written).

    A model that refuses images is an :class:`SvitError` naming it; other fatal endpoint errors (every
    endpoint down, a bad key) raise after the verdicts reached so far are saved.
    """
    if job.dry_run:
        raise ValueError("verify() sends requests; call plan() for a dry run")
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = ResponseCache(job.cache_path)
    try:
        verifier = _verifier(job, config, cache, progress)
        resolved = {
            **config.to_dict(),
            "source": list(job.source),
            "images": str(verifier.finder.root),
            "vg": job.vg,
            "pool": verifier.pool.fingerprint,
            "base_url": list(client.base_url),
            "price_per_m": [verifier.price.input_per_m, verifier.price.output_per_m],
        }
        log.info("verify config: %s", json.dumps(resolved))
        write_atomic(out / "verify_config.json", json.dumps(resolved, indent=2) + "\n")
        if not verifier.price.known:
            log.warning(
                "no price known for model %r: costs count as $0 (set --price-input/--price-output)",
                config.model,
            )
        verdicts, fatal = asyncio.run(_run(verifier, client, cache))
        verdicts.sort(key=lambda v: v["id"])
        write_jsonl(out / "judgments.jsonl", verdicts)
        judged = [v for v in verdicts if v["supported"] is not None]
        if judged:
            save_verdicts(verifier.pool.fingerprint, judged)
        summary = verifier.summary(verdicts)
        if fatal is not None:
            summary["stopped"] = str(fatal)
        write_atomic(out / "verify_summary.json", json.dumps(summary, indent=2) + "\n")
    finally:
        cache.close()
    if isinstance(fatal, ImagesRejected):
        raise SvitError(
            f"model {config.model!r} at {fatal.where} does not take images (HTTP 400: {fatal.reply}), so it "
            "cannot judge them: choose a vision model"
        ) from fatal
    if fatal is not None:
        raise fatal
    return summary


async def _run(
    verifier: Verifier, client: ClientConfig, cache: ResponseCache
) -> tuple[list, BaseException | None]:
    from svit_data.builders.endpoints import make_chat

    llm = make_chat(client, cache=cache, counter=verifier.counter)
    verifier.llm = llm
    try:
        return await verifier.run()
    finally:
        await llm.aclose()
