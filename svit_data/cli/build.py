"""``svit-recipe build``: ingest a source and write configs into a dataset folder, atomically."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from svit_data.builders.output import generation_selections
from svit_data.builders.probes import ProbeParams
from svit_data.cli.probe_args import lazy_probe_source
from svit_data.configs import CONFIGS, PROBE, RECIPE, check_custom_name, get_config
from svit_data.decontam import Exclusion, check_decontaminated
from svit_data.errors import SvitError
from svit_data.folder import DatasetFolder
from svit_data.formats.sources import SOURCE_FORMATS
from svit_data.frames import FRAMES
from svit_data.ingest_sidecar import BatchSidecar
from svit_data.materialize import ConfigRows, subset_rows
from svit_data.pool import Pool
from svit_data.sources import SourceSpec, open_sources, parse_source
from svit_data.splits import TEST, TRAIN

if TYPE_CHECKING:
    from svit_data.builders.probe_sources import ProbeSource

HELP = "build configs (subsets and recipes) from a SVIT source into a dataset folder"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "configs", nargs="*", metavar="CONFIG", help=f"configs to build: {', '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--recipe",
        metavar="FILE",
        help="build one config from a YAML recipe file (sources, per-source selection, cap, seed, balance; "
        "see the README) under --name, instead of named configs",
    )
    parser.add_argument(
        "--source",
        action="append",
        metavar="[NAME=]PATH",
        help="repeatable; 'sample' (bundled synthetic pool, the default), a folder of SVIT task files or "
        "generated shards, hf://datasets/OWNER/NAME, or a LLaVA / ShareGPT / messages / the_cauldron file "
        "or folder (.json, .jsonl, .parquet); NAME (default: the file stem, 'svit' for SVIT data) fills "
        "the pool's source column",
    )
    parser.add_argument(
        "--format",
        choices=tuple(SOURCE_FORMATS),
        help="read every non-SVIT source in this format (default: detected from its first record)",
    )
    parser.add_argument(
        "--box-frame",
        choices=FRAMES,
        help="frame of the boxes in non-SVIT sources (default per format: llava, sharegpt and messages "
        "'square', cauldron 'original'; SVIT data is always 'original')",
    )
    parser.add_argument("--out", default="svit", help="dataset folder to write (default: ./svit)")
    parser.add_argument(
        "--images", help="folder holding the images as <image_id>.<ext>; their bytes are embedded"
    )
    parser.add_argument(
        "--image-data",
        help="Visual Genome image_data.json giving image sizes (for box frames) and COCO ids (coco_id: "
        "the card's image overlap across sources then matches COCO file names to VG images)",
    )
    parser.add_argument(
        "--size", type=int, help="recipes: number of samples to select (default: the recipe's)"
    )
    parser.add_argument("--seed", type=int, help="recipes: random seed (default: 0)")
    parser.add_argument("--concepts", help="recipes: concept vocabulary JSON (default: the bundled one)")
    parser.add_argument(
        "--task-mix",
        choices=("candidates", "sources", "free"),
        help="diversity/balance recipes: 'candidates' keeps the train candidates' task mix (per-task quotas), "
        "'sources' their source mix (per-source quotas), 'free' selects without quotas (default: the "
        "recipe's, candidates)",
    )
    parser.add_argument(
        "--source-cap",
        type=int,
        metavar="N",
        help="recipes: at most N train candidates per source (a seeded random N of bigger sources)",
    )
    parser.add_argument("--name", help="recipes: write the result under this config name instead")
    parser.add_argument(
        "--ids",
        metavar="FILE",
        help="recipes: rebuild the config from this sorted id list instead of selecting, e.g. a dataset "
        "folder's data/CONFIG/ids.txt.gz (plain text, one id a line, also works)",
    )
    parser.add_argument(
        "--llava-mix",
        help="mix-665k, or a recipe file with llava_mix: the LLaVA-v1.5-mix-665K JSON file to rebuild",
    )
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
    parser.add_argument(
        "--coco-instances",
        nargs="+",
        metavar="FILE",
        help="pope-* configs: COCO instances files (e.g. instances_train2014.json instances_val2014.json); "
        "probes come from the VG test images with a coco_id in --image-data (default: the bundled sample's "
        "shapes, with --source sample)",
    )
    parser.add_argument(
        "--probe-images",
        type=int,
        help=f"pope-* configs: images drawn, {2 * ProbeParams.positives} questions each "
        f"(default: {ProbeParams.num_images}, or all eligible images when fewer)",
    )
    parser.add_argument(
        "--exclude-images",
        metavar="FILE",
        help="drop these images from every train split: one VG id, 'coco:ID' or COCO file name per line "
        "(COCO ids need --image-data); the card reports how many samples left",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars; log warnings only")


def config_rows(
    name: str,
    pool: Callable[[], Pool],
    args: argparse.Namespace,
    probes: Callable[[], ProbeSource],
    exclude_images: set[int] | None = None,
) -> ConfigRows:
    spec = get_config(name)
    if spec.kind == PROBE:
        from svit_data.cli.probe_args import probe_config_rows

        return probe_config_rows(name, probes, args)
    if spec.kind != RECIPE:
        recipe_flags = (
            ("--name", args.name),
            ("--size", args.size),
            ("--task-mix", args.task_mix),
            ("--ids", args.ids),
            ("--where", args.where or None),
            ("--include-flagged", args.include_flagged or None),
            ("--source-cap", args.source_cap),
        )
        for flag, value in recipe_flags:
            if value is not None:
                raise SvitError(
                    f"{flag} applies to recipes only; {name} is a subset of the pool, built whole"
                )
        return subset_rows(pool(), spec)
    try:
        from svit_data.recipes import build_recipe
    except ImportError as error:
        raise SvitError(
            f"recipe {name!r} cannot be built: the recipe engine is not available ({error})"
        ) from None
    return build_recipe(
        name,
        pool(),
        size=args.size,
        seed=args.seed if args.seed is not None else 0,
        concepts=args.concepts,
        task_mix=args.task_mix,
        out_name=args.name,
        llava_mix=args.llava_mix,
        include_flagged=args.include_flagged,
        where=tuple(args.where),
        progress=not args.quiet,
        ids_file=args.ids,
        exclude_images=exclude_images,
        source_cap=args.source_cap,
    )


def source_specs(args: argparse.Namespace) -> list[SourceSpec]:
    return [
        parse_source(text, format=args.format, box_frame=args.box_frame) for text in args.source or ["sample"]
    ]


def matching_sidecar(concepts: str | None) -> BatchSidecar | None:
    """Concept matching during ingest for the vocabulary the recipes will use (a source ingested now
    then needs no separate matching pass), or None without the recipe engine."""
    try:
        from svit_data.recipes.match_at_ingest import MatchAtIngest
        from svit_data.recipes.vocabulary import load_vocabulary
    except ImportError:
        return None
    return MatchAtIngest(load_vocabulary(concepts))


def lazy_pool(args: argparse.Namespace) -> Callable[[], Pool]:
    """The pool, opened on first use: probe configs alone never ingest a source. When a recipe is built,
    ingest matches concepts as it goes (:func:`matching_sidecar`)."""
    opened: list[Pool] = []

    def pool() -> Pool:
        if not opened:
            specs = source_specs(args)
            recipes = any(get_config(name).kind == RECIPE for name in args.configs)
            opened.append(
                open_sources(
                    specs,
                    images=args.images,
                    image_data=args.image_data,
                    progress=not args.quiet,
                    repair=args.repair,
                    strict=args.strict,
                    sidecar=matching_sidecar(args.concepts) if recipes else None,
                )
            )
            p = opened[0]
            counts = ", ".join(f"{t} {n:,}" for t, n in {**p.counts, **p.source_counts}.items())
            log.info("pool %s: %s samples (%s)", p.fingerprint, f"{p.num_rows:,}", counts)
        return opened[0]

    return pool


def overlap_of(pool: Pool, args: argparse.Namespace) -> dict | None:
    """The card's image overlap across the pool's sources (computed once per build)."""
    if not hasattr(args, "_overlap"):
        from svit_data.builders.probe_sources import read_coco_links
        from svit_data.image_overlap import image_data_beside, image_overlap

        image_data = args.image_data or image_data_beside(pool)
        links = read_coco_links(image_data)[0] if image_data and len(pool.source_counts) > 1 else None
        args._overlap = image_overlap(pool, links, image_data)
    return args._overlap


def exclusion_of(args: argparse.Namespace) -> Exclusion | None:
    if not args.exclude_images:
        return None
    from svit_data.builders.probe_sources import read_coco_links
    from svit_data.decontam import read_exclude_list

    coco_to_vg = read_coco_links(args.image_data)[0] if args.image_data else None
    excluded = read_exclude_list(args.exclude_images, coco_to_vg)
    log.info(
        "exclude list %s: %s entries, %s Visual Genome images (%s COCO ids without one)",
        excluded.file,
        f"{excluded.listed:,}",
        f"{len(excluded.vg_ids):,}",
        f"{excluded.unmatched_coco:,}",
    )
    return Exclusion(excluded)


def recipe_file_flags_given(args: argparse.Namespace) -> list[str]:
    """The build flags given that a recipe file decides itself (sizes, seed, caps, filters)."""
    given = {
        "--size": args.size is not None,
        "--seed": args.seed is not None,
        "--concepts": args.concepts is not None,
        "--task-mix": args.task_mix is not None,
        "--ids": args.ids is not None,
        "--where": bool(args.where),
        "--include-flagged": bool(args.include_flagged),
        "--source-cap": args.source_cap is not None,
        "--exclude-images": bool(args.exclude_images),
    }
    return [flag for flag, was_given in given.items() if was_given]


def run_recipe_file(args: argparse.Namespace) -> int:
    """``build --recipe FILE --name NAME``: one config from a recipe file, its sources named in the file."""
    from svit_data.cards import render_card
    from svit_data.recipes.recipe_file import read_recipe_file, with_overrides
    from svit_data.recipes.recipe_file_build import build_recipe_file, source_specs

    if args.configs or args.source:
        raise SvitError("--recipe builds one config from the file's sources: give no CONFIG and no --source")
    for flag in recipe_file_flags_given(args)[:1]:
        raise SvitError(
            f"{flag} does not apply to --recipe: the recipe file sets every selection (sizes, seed, "
            "per-source caps); edit the file"
        )
    recipe = with_overrides(read_recipe_file(args.recipe), llava_mix=args.llava_mix)
    name = check_custom_name(args.name or args.recipe.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    pool = open_sources(
        source_specs(recipe),
        images=args.images,
        image_data=args.image_data,
        progress=not args.quiet,
        repair=args.repair,
        strict=args.strict,
        sidecar=matching_sidecar(recipe.concepts),
    )
    with DatasetFolder(args.out) as folder:
        rows = build_recipe_file(recipe, name, pool, progress=not args.quiet)
        counts = folder.write_config(
            rows, source=" + ".join(f"{n}={s['path']}" for n, s in recipe.sources.items())
        )
        folder.state.configs[name].pool_quality = pool.quality
        folder.state.configs[name].image_overlap = overlap_of(pool, args)
        log.info("config %s: %s", name, ", ".join(f"{s} {n:,}" for s, n in counts.items()))
        check_decontaminated(folder.stage, folder.state)
        out = folder.commit(render_card)
    print(f"wrote {name} to {out}")
    print(f"load it with: {load_line(out, name)}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.recipe:
        return run_recipe_file(args)
    if not args.configs:
        raise SvitError("give the configs to build, or --recipe FILE")
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
    exclusion = exclusion_of(args)
    pool = lazy_pool(args)
    probes = lazy_probe_source(args)
    from svit_data.cards import render_card

    written, splits = [], []
    with DatasetFolder(args.out) as folder:
        for name in args.configs:
            rows = config_rows(name, pool, args, probes, exclusion and exclusion.excluded.vg_ids)
            if exclusion:
                rows.splits = exclusion.apply(rows.name, rows.splits)
            source = rows.probe.source if rows.probe else " + ".join(args.source or ["sample"])
            counts = folder.write_config(rows, source=source)
            if rows.kind != PROBE:
                folder.state.configs[rows.name].pool_quality = pool().quality  # the card's Quality section
                folder.state.configs[rows.name].image_overlap = overlap_of(pool(), args)
                # generated sources made with --select: the card names the selection (ids file, hash)
                folder.state.configs[rows.name].generation = generation_selections(
                    spec.path for spec in source_specs(args) if spec.is_svit
                )
            if exclusion:  # its counts are known once the rows were written
                before = rows.recipe.manifest.counts.get("excluded_candidates") if rows.recipe else None
                folder.state.configs[rows.name].exclusion = exclusion.state(rows.name, before)
            log.info("config %s: %s", rows.name, ", ".join(f"{s} {n:,}" for s, n in counts.items()))
            written.append(rows.name)
            splits.append(TEST if rows.kind == PROBE else TRAIN)
        checked = check_decontaminated(folder.stage, folder.state)
        if checked:
            log.info("no train split holds any of the %s probe images", f"{checked:,}")
        out = folder.commit(render_card)
    print(f"wrote {', '.join(written)} to {out}")
    print(f"load it with: {load_line(out, written[0], split=splits[0])}")
    return 0


def load_line(out: Path, config: str, cwd: Path | None = None, split: str = TRAIN) -> str:
    """The ``load_dataset`` call that loads ``config`` from ``out``.

    ``load_dataset("svit", ...)`` finds a folder named ``svit`` in the working directory (else it asks
    the Hub), so only ``./svit`` in the cwd may be named that way; any other folder is named by path.
    """
    cwd = (cwd or Path.cwd()).resolve()
    target = "svit" if out == cwd / "svit" else str(out)
    return f"load_dataset({target!r}, {config!r}, split={split!r})"
