"""svit-recipe verify: a vision model judges whether each QA pair of a pool is supported by its image.

Flags come from the fields of ``VerifyJob``, ``VerifyConfig`` and ``ClientConfig``; the work is
``svit_data.builders.verify_run``. Unsupported samples become ``unsupported_by_image`` flags of the pool.
"""

from __future__ import annotations

import argparse
import sys

from svit_data.cli.client_flags import add_client_arguments, client_config
from svit_data.cli.dataclass_args import add_dataclass_arguments, from_args
from svit_data.cli.generate import EXIT_BUDGET
from svit_data.errors import InputError

HELP = "judge with a vision model whether each QA pair of a pool is supported by its image (adds flags)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from svit_data.builders.verify import VerifyConfig
    from svit_data.builders.verify_run import VerifyJob

    add_dataclass_arguments(parser.add_argument_group("inputs and outputs"), VerifyJob)
    add_dataclass_arguments(parser.add_argument_group("judge"), VerifyConfig)
    add_client_arguments(parser.add_argument_group("API client"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar; log warnings only")


def run(args: argparse.Namespace) -> int:
    from svit_data.builders.verify import VerifyConfig
    from svit_data.builders.verify_run import VerifyJob, plan, verify

    try:
        job = from_args(VerifyJob, args)
        config = from_args(VerifyConfig, args)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    client = client_config(args, key_optional=job.dry_run)
    if job.dry_run:
        _print_plan(plan(job, config))
        return 0
    summary = verify(job, config, client, progress=not args.quiet)
    rate = summary["unsupported_rate"]
    sys.stderr.write(
        f"judged {summary['judged']} samples of pool {summary['pool']}: {summary['unsupported']} unsupported"
        + (f" ({rate:.1%})" if rate is not None else "")
        + f", {summary['unclear']} unclear, {summary['ungrounded']} with ungrounded boxes; skipped {sum(summary['skipped'].values())} "
        f"(sent {summary.get('sent', 0)}, cached {summary.get('cached', 0)}, spent ${summary['spent_usd']:.4f}); "
        f"wrote {job.out}\n"
    )
    if summary["stopped"]:
        sys.stderr.write(f"{summary['stopped']}\n")
        return EXIT_BUDGET
    return 0


def _print_plan(plan: dict) -> None:
    out = sys.stdout
    out.write(
        f"model {plan['model']}, pool {plan['pool']}: {plan['samples']} samples, {plan['requests']} requests "
        f"to send at most ({plan['cached']} already cached)\n"
    )
    for task, row in plan["per_task"].items():
        out.write(
            f"  {task:20s} {row.get('samples', 0):>8d} samples {row.get('requests', 0):>8d} requests "
            f"{row.get('input_tokens', 0):>12d} input tokens\n"
        )
    if plan["ungrounded"]:
        out.write(
            f"samples with a box that matches no source box (flagged, not sent): {plan['ungrounded']}\n"
        )
    skipped = ", ".join(f"{n} {reason}" for reason, n in plan["skipped"].items()) or "none"
    out.write(
        f"input tokens: {plan['input_tokens']} (images by the rule: {plan['image_tokens']}); "
        f"output tokens (estimate): {plan['output_tokens_est']}\nsamples skipped: {skipped}\n"
        f"estimated cost: ${plan['cost_online_usd']:.2f} (a sample stops at its first unsupported pair)\n"
    )
    if not plan["price_known"]:
        out.write(
            "no built-in price for this model: pass --price-input and --price-output (USD per 1M tokens)\n"
        )
