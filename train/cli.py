"""`svit-train`: the command line over `TrainConfig` (flags are generated from its fields and help text).

    svit-train stage1 --vision openai/clip-vit-large-patch14-336 --llm lmsys/vicuna-7b-v1.5 \
        --data svit:detail-description --out runs/s1
    svit-train stage2 --from runs/s1 --data svit:core-150k --lora --out runs/s2
    svit-train stage2 --config configs/stage2_lora.yaml lr=1e-4 epochs=2
    svit-train stage2 --resume runs/s2/checkpoint-1200     # the run's own config, continued
    svit-train ask runs/s2 --image cat.jpg "What is on the table?"

Precedence: field defaults < stage defaults < resumed run's config < --config YAML < flags < key=value.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import MISSING, Field, fields
from pathlib import Path

from svit_data.configs import PROBE_CONFIGS
from svit_data.errors import SvitError
from svit_data.train.config import (
    STAGE_DEFAULTS,
    TrainConfig,
    field_type,
    load_yaml,
    parse_overrides,
    read_checkpoint_state,
    resolve,
)

FLAG_NAMES = {"init_from": "--from"}


def default_text(f: Field) -> str:
    """`` (default: X)`` for the help; per stage where the stage sets it; nothing for an unset `None`
    (the help text says what happens then)."""
    per_stage = [
        f"{stage}{' --lora' if lora else ''} {values[f.name]:g}"
        for (stage, lora), values in STAGE_DEFAULTS.items()
        if f.name in values
    ]
    if per_stage:
        return f" (default: {', '.join(per_stage)})"
    if f.default is MISSING or f.default is None:
        return ""
    return f" (default: {f.default})"


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        if f.name == "stage":
            continue
        flag = FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        kind = field_type(f)
        help_text = f.metadata["help"] + default_text(f)
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=None, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svit-train", description="LLaVA-style two-stage training on svit configs"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for stage, text in (
        ("stage1", "train the projector on image-caption data"),
        ("stage2", "train projector + LLM (full or --lora) on instruction data"),
    ):
        p = sub.add_parser(stage, help=text)
        p.add_argument("--config", help="YAML file of TrainConfig fields")
        add_config_flags(p)
        p.add_argument(
            "overrides", nargs="*", help="key=value overrides, applied last (e.g. lr=1e-4 epochs=2)"
        )
    ask = sub.add_parser("ask", help="answer one question about one image with a trained run")
    ask.add_argument("run", help="run folder or LLaVA checkpoint")
    ask.add_argument("question", help="the question to ask, in quotes")
    ask.add_argument("--image", help="image file (omit for a text-only question)")
    ask.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit")
    return parser


def run_stage(args: argparse.Namespace) -> int:
    from svit_data.train.loop import train

    flags = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "stage"}
    yaml_layer = load_yaml(args.config) if args.config else {}
    overrides = parse_overrides(args.overrides)
    resume = overrides.get("resume") or flags["resume"] or yaml_layer.get("resume")
    saved = resumed_config(resume) if resume else {}
    config = resolve(saved, yaml_layer, flags, overrides, {"stage": args.command})
    for name, flag in (("data", "--data"), ("out", "--out")):
        if not getattr(config, name):
            raise SvitError(f"{flag} is required (or give it in --config or as {name}=...)")
    check_training_data(config.data)
    summary = train(config)
    logging.getLogger(__name__).info(
        "done: %d steps, final loss %.4f",
        summary["steps"],
        summary["losses"][-1] if summary["losses"] else float("nan"),
    )
    return 0


def check_training_data(data: str) -> None:
    """Probe configs (``pope-*``) are evaluation data: training on them would teach the test images."""
    config = data.rpartition(":")[2] if ":" in data and not Path(data).exists() else None
    if config in PROBE_CONFIGS:
        raise SvitError(
            f"--data {data} is a probe config, evaluation data for svit-eval, and training on it would "
            "leak its test images into the model; train on a subset or recipe such as svit:core-150k"
        )


def resumed_config(checkpoint: str) -> dict:
    """`--resume DIR` alone continues a run: its saved config is the lowest layer."""
    saved = read_checkpoint_state(checkpoint)["config"]
    return {k: v for k, v in saved.items() if k not in ("resume", "max_steps")}


def run_ask(args: argparse.Namespace) -> int:
    from svit_data.train.generate import ask, load_run
    from svit_data.train.images import open_image

    image = None
    if args.image:  # before the model loads: a bad path should not cost a minute of loading
        try:
            image = open_image(Path(args.image).read_bytes(), None, None, args.image)
        except FileNotFoundError:
            raise SvitError(f"--image {args.image} does not exist") from None
        except (OSError, ValueError):
            raise SvitError(f"--image {args.image} does not decode as an image") from None
    model, processor = load_run(args.run)
    sys.stdout.write(
        ask(model, processor, args.question, image=image, max_new_tokens=args.max_new_tokens) + "\n"
    )
    return 0


COMMANDS = {"stage1": run_stage, "stage2": run_stage, "ask": run_ask}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # key=value may also sit between flags
    bad = [x for x in extra if x.startswith("-") or "=" not in x]
    if bad or (extra and args.command == "ask"):
        parser.error(f"unrecognized arguments: {' '.join(bad or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_command("svit-train", COMMANDS, args)


def run_command(prog: str, commands: dict, args: argparse.Namespace) -> int:
    """Run one subcommand of a torch-backed CLI: a missing extra or a user error is one line and exit 2."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        sys.stderr.write(f"{prog} needs the training dependencies: pip install svit[train]\n")
        return 2
    try:
        return commands[args.command](args)
    except SvitError as e:
        sys.stderr.write(f"{prog}: error: {e}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
