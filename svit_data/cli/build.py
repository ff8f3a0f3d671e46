"""``svit-recipe build``: ingest a source and write configs into a dataset folder, atomically."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from svit_data.configs import CONFIGS, RECIPE, check_custom_name, get_config
from svit_data.errors import SvitError
from svit_data.folder import DatasetFolder
from svit_data.materialize import ConfigRows, subset_rows
from svit_data.pool import Pool, open_pool

HELP = "build configs (subsets and recipes) from a SVIT source into a dataset folder"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "configs", nargs="+", metavar="CONFIG", help=f"configs to build: {', '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--source",
        default="sample",
        help="'sample' (bundled synthetic pool, default), a folder of SVIT task files or "
        "generated shards, or hf://datasets/OWNER/NAME",
    )
    parser.add_argument("--out", default="svit", help="dataset folder to write (default: ./svit)")
    parser.add_argument(
        "--images", help="folder holding the images as <image_id>.<ext>; their bytes are embedded"
    )
    parser.add_argument(
        "--image-data", help="Visual Genome image_data.json giving image sizes (for box frames)"
    )
    parser.add_argument(
        "--size", type=int, help="recipes: number of samples to select (default: the recipe's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="recipes: random seed (default: 0)")
    parser.add_argument("--concepts", help="recipes: concept vocabulary JSON (default: the bundled one)")
    parser.add_argument(
        "--task-mix",
        choices=("candidates", "free"),
        help="diversity/balance recipes: 'candidates' keeps the train candidates' task mix (per-task quotas), "
        "'free' selects without quotas (default: the recipe's, candidates)",
    )
    parser.add_argument("--name", help="recipes: write the result under this config name instead")
    parser.add_argument(
        "--ids",
        metavar="FILE",
        help="recipes: rebuild the config from this sorted id list instead of selecting, e.g. a dataset "
        "folder's data/CONFIG/ids.txt.gz (plain text, one id a line, also works)",
    )
    parser.add_argument("--llava-mix", help="mix-665k: the LLaVA-v1.5-mix-665K JSON file to rebuild")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="any quality flag is an error (exit 2, naming file, record, field)",
    )
    parser.add_argument(
        "--no-repair",
        dest="repair",
        action="store_false",
        help="keep reversed or slightly out-of-range boxes as written (flagged) instead of repairing them",
    )
    parser.add_argument(
        "--include-flagged", action="store_true", help="recipes: also select samples with a quality flag"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COND",
        help="recipes: keep only samples where SIGNAL OP NUMBER holds, e.g. 'answer_words>=5' (signals: "
        "answer_words, qa_pairs, boxes, concepts; ops: >= <= > < == !=); repeat to combine",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def config_rows(name: str, pool: Pool, args: argparse.Namespace) -> ConfigRows:
    spec = get_config(name)
    if spec.kind != RECIPE:
        if args.where or args.include_flagged:
            raise SvitError("--where and --include-flagged apply to recipes only (subsets keep every sample)")
        return subset_rows(pool, spec)
    try:
        from svit_data.recipes import build_recipe
    except ImportError as error:
        raise SvitError(
            f"recipe {name!r} cannot be built: the recipe engine is not available ({error})"
        ) from None
    return build_recipe(
        name,
        pool,
        size=args.size,
        seed=args.seed,
        concepts=args.concepts,
        task_mix=args.task_mix,
        out_name=args.name,
        llava_mix=args.llava_mix,
        include_flagged=args.include_flagged,
        where=tuple(args.where),
        progress=not args.quiet,
        ids_file=args.ids,
    )


def _check_recipe_flags(args: argparse.Namespace) -> None:
    """Recipe flags never pass silently: an error if only subsets are built, else a notice naming them."""
    flags = [
        flag
        for flag, value in (
            ("--size", args.size),
            ("--task-mix", args.task_mix),
            ("--name", args.name),
            ("--ids", args.ids),
        )
        if value is not None
    ]
    subsets = [name for name in args.configs if get_config(name).kind != RECIPE]
    if not flags or not subsets:
        return
    if len(subsets) == len(args.configs):
        raise SvitError(
            f"{flags[0]} applies to recipes only; {', '.join(subsets)} is a subset of the pool, built whole"
        )
    log.warning("%s apply to recipes only; %s built whole", ", ".join(flags), ", ".join(subsets))


def run(args: argparse.Namespace) -> int:
    for name in args.configs:
        get_config(name)
    if args.name and len(args.configs) != 1:
        raise SvitError("--name needs exactly one config to build")
    if args.ids and len(args.configs) != 1:
        raise SvitError("--ids needs exactly one config to build")
    if args.ids and args.size is not None:
        raise SvitError("--ids and --size exclude each other: the id list fixes the size")
    if args.name:
        check_custom_name(args.name)
    _check_recipe_flags(args)
    pool = open_pool(
        args.source,
        images=args.images,
        image_data=args.image_data,
        progress=not args.quiet,
        repair=args.repair,
        strict=args.strict,
    )
    log.info(
        "pool %s: %s samples (%s)",
        pool.fingerprint,
        f"{pool.num_rows:,}",
        ", ".join(f"{t} {n:,}" for t, n in pool.counts.items()),
    )
    from svit_data.cards import render_card

    written = []
    with DatasetFolder(args.out) as folder:
        for name in args.configs:
            rows = config_rows(name, pool, args)
            counts = folder.write_config(rows, source=args.source)
            folder.state.configs[rows.name].pool_quality = pool.quality  # the card's Quality section
            log.info("config %s: %s", rows.name, ", ".join(f"{s} {n:,}" for s, n in counts.items()))
            written.append(rows.name)
        out = folder.commit(render_card)
    print(f"wrote {', '.join(written)} to {out}")
    print(f"load it with: {load_line(out, written[0])}")
    return 0


def load_line(out: Path, config: str, cwd: Path | None = None) -> str:
    """The ``load_dataset`` call that loads ``config`` from ``out``.

    ``load_dataset("svit", ...)`` finds a folder named ``svit`` in the working directory (else it asks
    the Hub), so only ``./svit`` in the cwd may be named that way; any other folder is named by path.
    """
    cwd = (cwd or Path.cwd()).resolve()
    target = "svit" if out == cwd / "svit" else str(out)
    return f"load_dataset({target!r}, {config!r}, split='train')"
