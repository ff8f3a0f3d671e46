"""``svit-recipe stats``: the manifest and diagnostics of built recipe configs, as a table."""

from __future__ import annotations

import argparse

from svit_data.errors import SvitError
from svit_data.folder import config_files, read_state
from svit_data.state import ConfigState, YesNo

HELP = "show the manifest and diagnostics of built recipe configs as a table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "configs", nargs="*", metavar="CONFIG", help="built recipe configs to show (default: all of them)"
    )
    parser.add_argument("--dir", default="svit", help="dataset folder built by svit-recipe (default: ./svit)")
    parser.add_argument(
        "--against",
        metavar="CONFIG",
        help="compare the one CONFIG given with this built config (any kind): shared images and samples "
        "(image file name + normalized first question) and both profiles side by side",
    )
    parser.add_argument("--against-dir", help="dataset folder of --against (default: --dir)")


def _yes_no(r: YesNo) -> str:
    return f"{r.yes:,} yes / {r.no:,} no ({r.yes_share:.3f})"


def quality_rows(config: ConfigState) -> list[tuple[str, str]]:
    """Excluded samples per reason, signal distributions, and the pool's flags per reason and task."""
    d = config.recipe.diagnostics if config.recipe else None
    rows = []
    if d is not None and d.quality:
        q = d.quality
        reasons = ", ".join(f"{c} {n:,}" for c, n in q["excluded_by_reason"].items()) or "none"
        rows.append(("excluded", f"{q['excluded']:,} train samples (by reason: {reasons})"))
        for condition, n in q.get("excluded_by_where", {}).items():
            rows.append(("excluded where", f"not {condition}: {n:,}"))
    for signal, v in ((d.signals if d is not None else None) or {}).items():
        s, p = v["selected"], v["pool"]
        rows.append(
            (
                signal,
                f"mean {s.get('mean', 0):g}, p50 {s.get('p50', 0):g} (pool: mean {p.get('mean', 0):g}, p50 {p.get('p50', 0):g})",
            )
        )
    pool = config.pool_quality or {}
    examples = pool.get("examples") or {}
    totals: dict[str, list[str]] = {}
    for task, counts in (pool.get("per_task") or {}).items():
        for code, n in counts.items():
            totals.setdefault(code, []).append(f"{task} {n:,}")
    for code, parts in totals.items():
        rows.append((f"pool {code}", f"{', '.join(parts)}; e.g. {', '.join(examples.get(code, []))}"))
    return rows


def table(name: str, config: ConfigState) -> list[str]:
    """The lines shown for one config."""
    recipe = config.recipe
    if recipe is None:
        raise ValueError(f"config {name!r} is not a recipe")
    m, d = recipe.manifest, recipe.diagnostics
    rows = [
        ("recipe", recipe.name or name),
        ("samples", f"{m.counts['selected']:,} of {m.counts['candidates']:,} train samples"),
        ("seed", str(m.seed)),
        ("parameters", ", ".join(f"{k}={v}" for k, v in m.parameters.items())),
        ("pool fingerprint", m.pool_fingerprint),
        ("vocabulary hash", m.vocabulary_hash),
        ("ids sha256", m.ids_sha256[:16] + "..."),
        (
            "concept coverage",
            f"{d.coverage.selected:.4f} (random subset {d.coverage.random:.4f}; share of the "
            "candidates' concepts mentioned at least once)",
        ),
        (
            "mention entropy",
            f"{d.entropy.selected:.4f} (random subset {d.entropy.random:.4f}; nats, of the "
            "concepts' share of sample mentions)",
        ),
        ("yes/no before", _yes_no(d.yes_no.before)),
        ("yes/no after", _yes_no(d.yes_no.after)),
        ("task mix", ", ".join(f"{t} {n:,}" for t, n in d.task_mix.items())),
        ("task quotas", ", ".join(f"{t} {n:,}" for t, n in (d.task_quotas or {}).items()) or "none (free)"),
        ("answer words", " / ".join(f"{k} {v:g}" for k, v in d.answer_length_quantiles.items())),
    ]
    rows += quality_rows(config)
    if d.top_concepts:
        rows.append(("top concepts", ", ".join(d.top_concepts)))
    if d.balance is not None and d.balance.note:
        rows.append(("balance note", d.balance.note))
    if recipe.ids_file:
        rows.append(("selected ids", recipe.ids_file))
    if recipe.mix is not None:
        mix = recipe.mix
        rows.append(
            (
                "mix",
                f"{mix.llava_instruct_found:,} LLaVA-Instruct records (expected "
                f"{mix.llava_instruct_expected:,}) replaced by {mix.replaced_by_core:,} core records; "
                f"{mix.records_in:,} -> {mix.records_out:,} records",
            )
        )
    width = max(len(k) for k, _ in rows)
    return [f"== {name} ==", *(f"  {k.ljust(width)}  {v}" for k, v in rows)]


def run_against(args: argparse.Namespace) -> int:
    from svit_data.recipes.compare import compare, profile, recipe_rows

    if len(args.configs) != 1:
        raise SvitError("--against compares exactly one CONFIG with another")
    sides = [(args.configs[0], args.dir), (args.against, args.against_dir or args.dir)]
    profiles, diagnostics = [], []
    for name, folder in sides:
        configs = read_state(folder).configs
        if name not in configs:
            raise SvitError(f"{name!r} is not built in {folder}; built: {', '.join(configs) or 'none'}")
        files = [f for fs in config_files(folder, name).values() for f in fs]
        profiles.append(profile(files))
        recipe = configs[name].recipe
        diagnostics.append(recipe.diagnostics if recipe is not None else None)
    rows = [("", sides[0][0], sides[1][0]), *compare(*profiles), *recipe_rows(*diagnostics)]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    print("\n".join(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}" for r in rows))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.against:
        return run_against(args)
    configs = read_state(args.dir).configs
    recipes = {n: c for n, c in configs.items() if c.kind == "recipe" and c.recipe is not None}
    names = args.configs or list(recipes)
    for name in names:
        if name not in recipes:
            built = ", ".join(recipes) or "none"
            raise SvitError(f"{name!r} is not a recipe config built in {args.dir}; built recipes: {built}")
    if not names:
        raise SvitError(f"no recipe configs are built in {args.dir}")
    print("\n\n".join("\n".join(table(n, recipes[n])) for n in names))
    return 0
