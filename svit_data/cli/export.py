"""``svit-recipe export``: write a built config in the svit, llava or messages format."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from svit_data.atomic import atomic_open, staged_folder
from svit_data.configs import LLAVA_SCHEMA, PROBE_SCHEMA
from svit_data.errors import SvitError
from svit_data.folder import config_files, read_state
from svit_data.formats import FORMATS
from svit_data.formats.llava import BOX_FRAMES, row_to_llava, to_llava_record
from svit_data.formats.messages import to_messages
from svit_data.formats.svit import EXTRA_KEYS, group_samples, write_json_array
from svit_data.tasks import TASK_FILES

HELP = "export a built config as SVIT original JSON, LLaVA-v1.5 JSON or messages JSON Lines"
COLUMNS_WITHOUT_IMAGE = [
    "id",
    "image_id",
    "task",
    "conversation_index",
    "conversations",
    "image_file",
    "width",
    "height",
    "provenance",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="built config to export (see `svit-recipe list`)")
    parser.add_argument(
        "--format", default="llava", help=f"output format: {', '.join(FORMATS)} (default: llava)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output file (llava: .json; messages: .jsonl); for svit, a folder of <task>.json files",
    )
    parser.add_argument("--dir", default="svit", help="dataset folder to read (default: ./svit)")
    parser.add_argument("--split", default="train", help="split to export, or 'all' (default: train)")
    parser.add_argument(
        "--seed", type=int, default=0, help="llava: seed of the referring-QA instruction choice"
    )
    parser.add_argument(
        "--box-frame",
        default="square",
        choices=BOX_FRAMES,
        help="llava: coordinate frame of boxes (default: square, as LLaVA-v1.5 pads images)",
    )
    parser.add_argument(
        "--image-prefix", default="", help="llava: prefix for image paths, e.g. 'vg/VG_100K/'"
    )
    parser.add_argument(
        "--with-image-info",
        action="store_true",
        help="svit: also write width, height and image_file into each record",
    )


def _rows(files: list[Path]) -> Iterator[dict[str, Any]]:
    for file in files:
        parquet = pq.ParquetFile(file)
        columns = [c for c in parquet.schema_arrow.names if c != "image"]
        for batch in parquet.iter_batches(columns=columns, batch_size=4096):
            yield from batch.to_pylist()


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise SvitError(f"unknown format {args.format!r}; known formats: {', '.join(FORMATS)}")
    by_split = config_files(args.dir, args.config)
    if args.split != "all" and args.split not in by_split:
        raise SvitError(f"config {args.config!r} has no split {args.split!r}; it has: {', '.join(by_split)}")
    files = [f for s, fs in sorted(by_split.items()) if args.split in ("all", s) for f in fs]
    schema = read_state(args.dir).configs[args.config].schema
    if schema == PROBE_SCHEMA:
        raise SvitError(
            f"config {args.config!r} holds evaluation probes, not training conversations: it has no export "
            "format (load it with datasets, or run it with svit-eval)"
        )
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SvitError(f"cannot create the output folder {out.parent}: {error.strerror}") from None
    if schema == LLAVA_SCHEMA:
        if args.format != "llava":
            raise SvitError(f"config {args.config!r} is stored in LLaVA format and exports only as llava")
        count = write_json_array((row_to_llava(r) for r in _rows(files)), out)
    elif args.format == "llava":
        records = (
            to_llava_record(r, seed=args.seed, box_frame=args.box_frame, image_prefix=args.image_prefix)
            for r in _rows(files)
        )
        count = write_json_array(records, out)
    elif args.format == "messages":
        count = _write_lines((to_messages(r) for r in _rows(files)), out)
    else:
        extras = EXTRA_KEYS if args.with_image_info else ("provenance",)
        count = _write_svit(list(_rows(files)), out, extras)
    splits = sorted(by_split) if args.split == "all" else [args.split]
    what = "image records" if args.format == "svit" else "records"
    print(
        f"wrote {count:,} {what} of {args.config} ({'splits' if len(splits) > 1 else 'split'} "
        f"{', '.join(splits)}) to {out}"
    )
    return 0


def _write_lines(records: Iterator[dict[str, Any]], out: Path) -> int:
    count = 0
    try:
        with atomic_open(out) as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    except OSError as error:
        raise SvitError(f"cannot write {out}: {error.strerror}") from None
    return count


def _write_svit(rows: list[dict[str, Any]], out: Path, extras: tuple[str, ...]) -> int:
    """One ``<task>.json`` per task present, records grouped per image in their original order.

    The files are written into a staging folder that then replaces ``out`` as a whole, so a failed
    export leaves ``out`` as it was and a new export never keeps task files of an older one.
    """
    if out.exists():
        if not out.is_dir():
            raise SvitError(f"cannot write the output folder {out}: it exists and is not a folder")
        strangers = sorted(p.name for p in out.iterdir() if p.name not in TASK_FILES.values())
        if strangers:
            raise SvitError(
                f"output folder {out} holds files that are not SVIT task files ({', '.join(strangers[:3])}); "
                "give a new or empty folder"
            )
    count = 0
    try:
        with staged_folder(out) as stage:
            for task, name in TASK_FILES.items():
                task_rows = [r for r in rows if r["task"] == task]
                if task_rows:
                    task_rows.sort(
                        key=lambda r: (r["image_id"], r["conversation_index"], int(r["id"].rsplit("/", 1)[1]))
                    )
                    count += write_json_array(group_samples(task_rows, extras=extras), stage / name)
    except OSError as error:
        raise SvitError(f"cannot write the output folder {out}: {error.strerror}") from None
    return count
