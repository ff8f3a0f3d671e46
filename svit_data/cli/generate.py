"""svit-recipe generate: Visual Genome + COCO annotations -> any OpenAI-compatible LLM -> SVIT records."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from svit_data.errors import InputError
from svit_data.tasks import TASKS

HELP = "generate SVIT data from Visual Genome/COCO annotations with any OpenAI-compatible model"
EXIT_BUDGET = 3
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--vg",
        required=True,
        help="Visual Genome v1.4 folder (image_data.json, objects.json, region_descriptions.json; "
        "attributes.json and relationships.json are used when present)",
    )
    a(
        "--coco-captions",
        action="append",
        default=[],
        metavar="FILE",
        help="COCO captions JSON, joined on VG coco_id (repeatable)",
    )
    a(
        "--coco-instances",
        action="append",
        default=[],
        metavar="FILE",
        help="COCO instances JSON (instances_*.json): category + box per object, joined on VG coco_id "
        "(repeatable)",
    )
    a("--tasks", default=",".join(TASKS), help=f"comma-separated tasks (default: all: {','.join(TASKS)})")
    a("--model", default="gpt-4o", help="model name sent to the API (default: gpt-4o)")
    a("--out", required=True, help="output folder: <task>/shard-*.jsonl, rejections.jsonl, summary.json")
    a(
        "--base-url",
        default=None,
        help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (default: OpenAI)",
    )
    a("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    a(
        "--dry-run",
        action="store_true",
        help="print requests, exact input tokens and estimated cost; send nothing",
    )
    a("--max-cost", type=float, default=None, help="hard cap in USD: stop before spending more (exit code 3)")
    a("--batch", action="store_true", help="use the OpenAI Batch API (half price; resumable across restarts)")
    a("--poll-interval", type=float, default=30.0, help="seconds between Batch API status polls")
    a("--prompts", default=None, help="own prompt folder, one subfolder per task (our layout or LLaVA's)")
    a("--shard", default="0/1", help="i/N: process only images with image_id %% N == i (many machines)")
    a("--limit", type=int, default=None, help="process at most this many images (after --shard)")
    a("--image-ids", default=None, help="file with VG image ids to process, one per line")
    a("--chunk-size", type=int, default=100, help="images per output shard file")
    a("--concurrency", type=int, default=16, help="requests in flight at most")
    a("--rpm", type=float, default=None, help="client-side requests/min limit")
    a("--tpm", type=float, default=None, help="client-side tokens/min limit (input + max tokens)")
    a("--timeout", type=float, default=120.0, help="seconds before one HTTP request times out")
    a("--max-retries", type=int, default=6, help="retries per request after 429/5xx/timeouts")
    a("--max-tokens", type=int, default=2048, help="max output tokens per request")
    a("--temperature", type=float, default=0.7, help="sampling temperature")
    a("--seed", type=int, default=0, help="seed for drawing detail-description questions")
    a("--context-tokens", type=int, default=1800, help="token budget of the per-image context")
    a("--qa-tolerance", type=int, default=2, help="QA pairs a reply may miss or exceed its quota by")
    a("--iou-threshold", type=float, default=0.5, help="min IoU between a referring box and a source box")
    a(
        "--reask",
        type=int,
        default=0,
        help="re-ask a rejected reply this many times with the reason (online mode)",
    )
    a(
        "--price-input",
        type=float,
        default=None,
        help="USD per 1M input tokens (overrides the built-in price)",
    )
    a(
        "--price-output",
        type=float,
        default=None,
        help="USD per 1M output tokens (overrides the built-in price)",
    )
    a("--cache", default=None, help="SQLite response cache (default: OUT/cache.sqlite)")
    a("--quiet", action="store_true", help="no progress bar")


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/N, got {text!r}") from None
    if not 0 <= index < count:
        raise InputError(f"--shard i/N needs 0 <= i < N, got {text!r}")
    return index, count


def _image_ids(path: str | None) -> set[int] | None:
    if path is None:
        return None
    try:
        return {int(line) for line in Path(path).read_text().split() if line.strip()}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read image ids: {exc}", file=path) from exc


def run(args: argparse.Namespace) -> int:
    from svit_data.builders.annotations import VisualGenome
    from svit_data.builders.cache import ResponseCache
    from svit_data.builders.coco import load_captions, load_instances
    from svit_data.builders.cost import Budget, price_for
    from svit_data.builders.openai_client import ClientConfig
    from svit_data.builders.output import OutputLayout, write_atomic
    from svit_data.builders.pipeline import GenerateConfig, Generator
    from svit_data.builders.prompt_loader import load_prompts
    from svit_data.builders.serializer import SerializerConfig
    from svit_data.builders.sources import AnnotationSource
    from svit_data.builders.tokens import TokenCounter
    from svit_data.builders.validators import ValidationConfig

    shard_index, shard_count = _shard(args.shard)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    try:
        config = GenerateConfig(
            tasks=tasks,
            model=args.model,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed,
            shard_index=shard_index,
            shard_count=shard_count,
            chunk_size=args.chunk_size,
            limit=args.limit,
            reask=0 if args.batch else args.reask,
            context=SerializerConfig(max_tokens=args.context_tokens),
            validation=ValidationConfig(qa_tolerance=args.qa_tolerance, iou_threshold=args.iou_threshold),
        )
        client_config = ClientConfig(
            base_url=args.base_url,
            api_key=_api_key(args),
            concurrency=args.concurrency,
            rpm=args.rpm,
            tpm=args.tpm,
            timeout=args.timeout,
            max_retries=args.max_retries,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    out = Path(args.out)
    if not args.dry_run:  # a dry run writes nothing: no folder, no index, no cache
        out.mkdir(parents=True, exist_ok=True)
    vg = VisualGenome(args.vg, index_dir=out / ".index", write_index=not args.dry_run)
    instances, captions = {}, {}
    if args.coco_instances or args.coco_captions:  # keep only the COCO images VG links to: bounded memory
        coco_ids = {image.coco_id for image in vg.images() if image.coco_id is not None}
        if args.coco_instances:
            instances = load_instances(args.coco_instances, keep=coco_ids)
        if args.coco_captions:
            captions = load_captions(args.coco_captions, keep=coco_ids)
    source = AnnotationSource(vg, captions, instances)
    prompts = load_prompts(tasks, args.prompts)
    counter = TokenCounter(args.model)
    price = price_for(args.model, args.price_input, args.price_output)
    cache_path = Path(args.cache or out / "cache.sqlite")
    if args.dry_run:  # read the answers a previous run paid for, if any, without creating anything
        cache = ResponseCache(cache_path, read_only=True) if cache_path.is_file() else None
    else:
        cache = ResponseCache(cache_path)
    resolved = {
        **config.to_dict(),
        "vg": args.vg,
        "vg_optional_files": list(vg.present),
        "coco_captions": args.coco_captions,
        "coco_instances": args.coco_instances,
        "prompts": args.prompts,
        "prompt_hashes": {t: p.hash for t, p in prompts.items()},
        "base_url": args.base_url,
        "batch": args.batch,
        "price_per_m": [price.input_per_m, price.output_per_m],
    }
    log.info("generate config: %s", json.dumps(resolved))
    budget = Budget(args.max_cost, price, batch=args.batch)
    generator = Generator(
        config,
        source,
        prompts,
        counter,
        price,
        out=str(out),
        cache=cache,
        budget=budget,
        progress=not args.quiet,
        image_ids=_image_ids(args.image_ids),
    )
    try:
        if args.dry_run:
            _print_plan(generator.plan())
            return 0
        write_atomic(
            OutputLayout(out, shard_index, shard_count).config, json.dumps(resolved, indent=2) + "\n"
        )
        if not price.known:
            log.warning(
                "no price known for model %r: costs count as $0 (set --price-input/--price-output)",
                args.model,
            )
        if args.batch:
            summary = asyncio.run(_run_batch(generator, client_config, cache, out, budget, counter, args))
        else:
            summary = asyncio.run(_run_online(generator, client_config, cache, counter))
    finally:
        if cache is not None:
            cache.close()
    layout = OutputLayout(out, shard_index, shard_count)
    write_atomic(layout.summary, json.dumps(summary, indent=2) + "\n")
    records = sum(summary["records"].values())
    sys.stderr.write(
        f"wrote {records} records and {summary['rejections']} rejections to {out} "
        f"(sent {summary.get('sent', 0)}, cached {summary.get('cached', 0)}, "
        f"spent ${summary['spent_usd']:.4f})\n"
    )
    if summary["stopped"]:
        sys.stderr.write(f"{summary['stopped']}\n")
        return EXIT_BUDGET
    return 0


def _api_key(args: argparse.Namespace) -> str:
    key = os.environ.get(args.api_key_env)
    if key:
        return key
    if args.base_url or args.dry_run:
        return "EMPTY"  # local OpenAI-compatible servers usually need none
    raise InputError(f"no API key: set the environment variable {args.api_key_env} (or --api-key-env)")


async def _run_online(generator, client_config, cache, counter) -> dict:
    from svit_data.builders.openai_client import OpenAIChat

    llm = OpenAIChat(client_config, cache=cache, counter=counter)
    generator.llm = llm
    try:
        return await generator.run()
    finally:
        await llm.aclose()


async def _run_batch(generator, client_config, cache, out, budget, counter, args) -> dict:
    from svit_data.builders.batch import BatchRunner, CacheOnly
    from svit_data.builders.cost import BudgetExhausted

    runner = BatchRunner(
        client_config,
        cache,
        out / "batches",
        budget=budget,
        counter=counter,
        poll_interval=args.poll_interval,
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
    summary["spent_usd"] = round(budget.spent, 6)
    summary["stopped"] = summary["stopped"] or stopped
    return summary


def _print_plan(plan: dict) -> None:
    out = sys.stdout
    out.write(
        f"model {plan['model']}: {plan['requests']} requests to send ({plan['cached']} already cached"
        + (f", {plan['in_open_batch']} in open batches" if plan["in_open_batch"] else "")
        + ")\n"
    )
    for task, row in plan["per_task"].items():
        out.write(
            f"  {task:20s} {row.get('requests', 0):>8d} requests {row.get('input_tokens', 0):>12d} input tokens "
            f"~{row.get('output_tokens_est', 0):>10d} output tokens\n"
        )
    out.write(
        f"input tokens (exact): {plan['input_tokens']}\noutput tokens (estimate): {plan['output_tokens_est']}\n"
    )
    out.write(
        f"estimated cost: ${plan['cost_online_usd']:.2f} online, ${plan['cost_batch_usd']:.2f} with --batch\n"
    )
    if not plan["price_known"]:
        out.write(
            "no built-in price for this model: pass --price-input and --price-output (USD per 1M tokens)\n"
        )
