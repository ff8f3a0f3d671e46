"""`svit-eval`: run a model on probe configs, compare two evals, export an lmms-eval task.

svit-eval run runs/s2 --data svit:pope-adversarial --data svit:pope-popular --out evals/s2
svit-eval compare evals/random evals/balanced
svit-eval lmms-eval-task pope-adversarial --dir svit --out lmms_tasks/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from svit_data.train import pope_metrics
from svit_data.train.cli import run_command
from svit_data.train.evaluate import POPE_PROMPT, EvalConfig


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Flags from EvalConfig's fields (the default and help live on the field)."""
    for f in fields(EvalConfig):
        help_text = f.metadata["help"]
        if f.name == "model":
            parser.add_argument("model", help=help_text)
            continue
        flag = "--dir" if f.name == "data_dir" else "--" + f.name.replace("_", "-")
        kind = {"int": int, "int | None": int}.get(str(f.type), str)
        if f.name == "data":
            parser.add_argument(flag, dest=f.name, action="append", required=True, help=help_text)
        elif f.default is MISSING:
            parser.add_argument(flag, dest=f.name, required=True, help=help_text)
        else:
            parser.add_argument(
                flag, dest=f.name, type=kind, default=f.default, help=f"{help_text} (default: {f.default!r})"
            )


def ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['low']:.3f}-{m['high']:.3f}]"


def metrics_table(result: dict) -> str:
    head = f"{'config':<18} {'rule':<7} " + " ".join(f"{m:<21}" for m in pope_metrics.METRICS)
    lines = [head + f" {'n':>5} {'unparsed':>8}"]
    for name, entry in result["configs"].items():
        for rule, m in entry["rules"].items():
            cells = " ".join(f"{ci(m[k]):<21}" for k in pope_metrics.METRICS)
            lines.append(f"{name:<18} {rule:<7} {cells} {m['n']:>5} {m['unparsed']:>8}")
    return "\n".join(lines)


def compare_report(result: dict, a: str, b: str) -> str:
    lines = [f"A = {a}", f"B = {b}"]
    for config, rules in result.items():
        for rule, c in rules.items():
            cells = "  ".join(
                f"{k} {c[k]['a']:.3f}->{c[k]['b']:.3f} ({c[k]['difference']:+.3f} [{c[k]['low']:+.3f}, {c[k]['high']:+.3f}])"
                for k in pope_metrics.COMPARED
            )
            mc = c["mcnemar"]
            lines.append(f"{config:<18} {rule:<7} n={c['n']}  {cells}  McNemar p={mc['p_value']:.3g}")
        pope = rules["pope"]
        verdicts = [pope_metrics.verdict(k, pope[k]) for k in pope_metrics.COMPARED]
        lines.append(
            f"{config}: " + "; ".join(verdicts) + f" (pope rule; McNemar p={pope['mcnemar']['p_value']:.3g})."
        )
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from svit_data.train.evaluate import run_eval

    config = EvalConfig(**{f.name: getattr(args, f.name) for f in fields(EvalConfig)})
    logging.getLogger(__name__).info("config: %s", config)
    result = run_eval(config)
    sys.stdout.write(metrics_table(result) + "\n")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from svit_data.atomic import write_text
    from svit_data.train.compare import compare_evals

    result = compare_evals(args.a, args.b, seed=args.seed)
    if args.out:
        write_text(Path(args.out), json.dumps({"a": args.a, "b": args.b, "configs": result}, indent=1))
    sys.stdout.write(compare_report(result, args.a, args.b) + "\n")
    return 0


def cmd_lmms_task(args: argparse.Namespace) -> int:
    from svit_data.train.lmms_task import write_task

    paths = write_task(
        args.configs,
        data_dir=args.dir,
        out=args.out,
        image_root=args.image_root,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
    )
    for path in paths:
        sys.stdout.write(f"wrote {path} (task {path.stem})\n")
    return 0


COMMANDS = {"run": cmd_run, "compare": cmd_compare, "lmms-eval-task": cmd_lmms_task}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svit-eval", description="POPE-style probes: run, compare, export")
    sub = parser.add_subparsers(dest="command", required=True)
    add_config_flags(sub.add_parser("run", help="answer probe configs with a model and score the answers"))
    cmp = sub.add_parser("compare", help="compare two evals over the same probes, paired")
    cmp.add_argument("a", help="eval folder A (the baseline)")
    cmp.add_argument("b", help="eval folder B")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap (default: 0)")
    cmp.add_argument("--out", help="also write the comparison as JSON to this file")
    task = sub.add_parser("lmms-eval-task", help="write an lmms-eval task folder for probe configs")
    task.add_argument("configs", nargs="+", help="probe config names, e.g. pope-adversarial")
    task.add_argument(
        "--dir", default="./svit", help="the dataset folder holding the configs (default: ./svit)"
    )
    task.add_argument("--out", required=True, help="task folder to write (give it to --include_path)")
    task.add_argument("--image-root", help="folder for image_file paths when images are not embedded")
    task.add_argument("--prompt", default=POPE_PROMPT, help="question template, as in svit-eval run")
    default = EvalConfig.__dataclass_fields__["max_new_tokens"].default
    task.add_argument(
        "--max-new-tokens", type=int, default=default, help=f"answer length limit (default: {default})"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command("svit-eval", COMMANDS, args)


if __name__ == "__main__":
    raise SystemExit(main())
