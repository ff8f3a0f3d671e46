"""svit-recipe generate: Visual Genome + COCO annotations -> any OpenAI-compatible LLM -> SVIT records.

Flags come from the fields of ``GenerateJob``, ``GenerateConfig`` (with its ``SerializerConfig`` and
``ValidationConfig``) and ``ClientConfig``; the work is ``svit_data.builders.generate``.
"""

from __future__ import annotations

import argparse
import sys

from svit_data.cli.client_flags import add_client_arguments, client_config
from svit_data.cli.dataclass_args import add_dataclass_arguments, from_args
from svit_data.errors import InputError

HELP = "generate SVIT data from Visual Genome/COCO annotations with any OpenAI-compatible model"
EXIT_BUDGET = 3
# GenerateConfig.context.max_tokens would collide with the reply's --max-tokens
NAMES = {"context.max_tokens": "--context-tokens"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from svit_data.builders.generate import GenerateJob
    from svit_data.builders.pipeline import GenerateConfig

    add_dataclass_arguments(parser.add_argument_group("inputs and outputs"), GenerateJob)
    add_dataclass_arguments(
        parser.add_argument_group("generation"),
        GenerateConfig,
        names=NAMES,
        skip={"shard_index", "shard_count"},
    )
    add_client_arguments(parser.add_argument_group("API client"))
    parser.add_argument(
        "--shard", default=None, help="i/N: process only images with image_id %% N == i (default: 0/1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar; log warnings only")


def _shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/N, got {text!r}") from None
    if not 0 <= index < count:
        raise InputError(f"--shard i/N needs 0 <= i < N, got {text!r}")
    return index, count


def run(args: argparse.Namespace) -> int:
    from svit_data.builders.generate import GenerateJob, generate, plan
    from svit_data.builders.pipeline import GenerateConfig

    shard_index, shard_count = _shard(args.shard)
    try:
        job = from_args(GenerateJob, args)
        config = from_args(GenerateConfig, args, shard_index=shard_index, shard_count=shard_count)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    client = client_config(args, key_optional=job.dry_run)
    if job.dry_run:
        _print_plan(plan(job, config))
        return 0
    summary = generate(job, config, client, progress=not args.quiet)
    records = sum(summary["records"].values())
    sys.stderr.write(
        f"wrote {records} records and {summary['rejections']} rejections to {job.out} "
        f"(sent {summary.get('sent', 0)}, cached {summary.get('cached', 0)}, "
        f"spent ${summary['spent_usd']:.4f})\n"
    )
    if summary["stopped"]:
        sys.stderr.write(f"{summary['stopped']}\n")
        return EXIT_BUDGET
    return 0


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
    if plan["image_tokens"] or plan["images_unavailable"]:
        skipped = ", ".join(f"{n} {reason}" for reason, n in plan["images_unavailable"].items()) or "none"
        out.write(
            f"image tokens (rule estimate, included above): {plan['image_tokens']}; "
            f"records skipped for their image: {skipped}\n"
        )
    out.write(
        f"estimated cost: ${plan['cost_online_usd']:.2f} online, ${plan['cost_batch_usd']:.2f} with --batch\n"
    )
    if plan.get("selection"):
        sel, every = plan["selection"], plan["all_images"]
        out.write(
            f"--select {sel['n']} of {sel['of']} images: ${plan['cost_online_usd']:.2f} online vs "
            f"${every['cost_online_usd']:.2f} for all ({every['requests']} requests)\n"
            f"  concept coverage {sel['selected']['coverage']:.3f} vs {sel['random']['coverage']:.3f} for a random "
            f"{sel['n']}; entropy {sel['selected']['entropy_bits']:.3f} vs {sel['random']['entropy_bits']:.3f} bits "
            f"(vocabulary {sel['vocabulary']}, {sel['concepts']} concepts, seed {sel['seed']})\n"
        )
    if not plan["price_known"]:
        out.write(
            "no built-in price for this model: pass --price-input and --price-output (USD per 1M tokens)\n"
        )
