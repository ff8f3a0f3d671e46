"""The pool: every SVIT sample of a source, ingested once into cached parquet.

A source is ``sample`` (the bundled synthetic pool), a folder with the released task files (or
svit's own generated shards), or ``hf://datasets/OWNER/NAME`` (downloaded with huggingface_hub).
Ingest streams the JSON (bounded memory) into parquet under ``$SVIT_CACHE/pools/<fingerprint>``;
the fingerprint hashes the source files (their digests remembered while a file is unchanged,
:mod:`svit_data.file_digest`), the image-size table, the image index and the quality
settings (repairs on or off), so a changed source is ingested again and an unchanged one never is.

After the files are ingested, one pass over the answers finds near-duplicate long answers across the
pool (:mod:`svit_data.quality.near_duplicates`; the answers' signatures are kept next to the parts for
mixes of this pool, :mod:`svit_data.pool_signatures`); those rows are kept in ``pool.json`` and added to
the ``flags`` column whenever the pool is read. ``pool.json`` also holds the flag counts per task
and reason and three example ids per reason (the card shows them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from svit_data import paths
from svit_data.atomic import staged_folder
from svit_data.errors import InputError, SvitError
from svit_data.file_digest import cached_hash
from svit_data.formats.jsonstream import iter_json_records
from svit_data.ingest import PARALLEL_BYTES, IngestJob, run_jobs
from svit_data.ingest_sidecar import BatchSidecar, finish, pool_parts
from svit_data.pool_quality import quality_summary
from svit_data.pool_signatures import read_signatures
from svit_data.quality.near_duplicates import confirmed_rows
from svit_data.schema import POOL_SCHEMA
from svit_data.tasks import ALL_TASKS_FILE, SVIT_SOURCE, TASK_FILES, TASKS

log = logging.getLogger(__name__)

INGEST_VERSION = "3"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
HUB_PREFIX = "hf://datasets/"


@dataclass
class Pool:
    """An ingested pool: parquet files in ``FEATURES`` (images not embedded) and what made them."""

    root: Path
    files: list[Path]
    fingerprint: str
    counts: dict[str, int]
    images_root: Path | None = None
    source: str = ""
    task_files: dict[str, list[str]] = field(default_factory=dict)
    near_duplicates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted pool rows
    quality: dict = field(default_factory=dict)  # flag counts per task and reason, example ids
    source_counts: dict[str, int] = field(default_factory=dict)  # samples per source name
    formats: dict[str, str] = field(default_factory=dict)  # source name -> format read ("svit", "llava", ...)
    # flags of svit-recipe verify (svit_data.verified): reason code -> sorted pool rows
    verified_flags: dict[str, np.ndarray] = field(default_factory=dict)
    parts: list[Pool] = field(default_factory=list)  # a mixed pool's sources' pools, in pool order

    @property
    def num_rows(self) -> int:
        return sum(self.source_counts.values()) if self.source_counts else sum(self.counts.values())

    def table(self, columns: list[str] | None = None) -> pa.Table:
        return pa.Table.from_batches(list(self.iter_batches(columns)), schema=self._schema(columns))

    def _schema(self, columns: list[str] | None) -> pa.Schema:
        schema = pq.read_schema(self.files[0]) if self.files else POOL_SCHEMA
        return pa.schema([schema.field(c) for c in columns]) if columns is not None else schema

    def iter_batches(
        self, columns: list[str] | None = None, batch_size: int = 65_536, *, pool_flags: bool = True
    ) -> Iterator[pa.RecordBatch]:
        """Batches in pool order; the ``flags`` column includes the pool-wide flags (:meth:`add_pool_flags`)
        unless ``pool_flags`` is False (then only the files' own: :meth:`pool_flags` has the others)."""
        first = 0
        for file in self.files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=batch_size, columns=columns):
                yield self.add_pool_flags(batch, first) if pool_flags else batch
                first += batch.num_rows

    def pool_flags(self) -> list[tuple[str, np.ndarray]]:
        """The pool-wide flags, each a reason code and its sorted pool rows: near-duplicates, and the flags
        of ``svit-recipe verify`` (unsupported by the image, ungrounded boxes)."""
        return [("near_duplicate", self.near_duplicates), *self.verified_flags.items()]

    def add_pool_flags(self, rows: pa.RecordBatch | pa.Table, first: int) -> pa.RecordBatch | pa.Table:
        """``rows`` (pool rows from position ``first`` on) with the pool-wide flags (:meth:`pool_flags`) added."""
        for code, flagged in self.pool_flags():
            rows = _add_flag(rows, flagged, first, code)
        return rows


def _add_flag(batch: pa.RecordBatch, rows: np.ndarray, first: int, code: str) -> pa.RecordBatch:
    if "flags" not in batch.schema.names or not len(rows):
        return batch
    lo, hi = np.searchsorted(rows, [first, first + batch.num_rows])
    if lo == hi:
        return batch
    index = batch.schema.get_field_index("flags")
    flags = batch.column(index)
    flags = flags.combine_chunks() if isinstance(flags, pa.ChunkedArray) else flags
    lengths = pc.list_value_length(flags).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    added = np.zeros(len(flags), np.int64)
    added[rows[lo:hi] - first] = 1
    offsets = np.concatenate([[0], np.cumsum(lengths + added)])
    values = pc.list_flatten(flags)  # each row's codes, then ``code`` where added: one take
    parents = pc.list_parent_indices(flags).to_numpy(zero_copy_only=False).astype(np.int64)
    old = np.concatenate([[0], np.cumsum(lengths)])
    order = np.empty(int(offsets[-1]), np.int64)
    order[offsets[parents] + np.arange(len(values)) - old[parents]] = np.arange(len(values))
    marked = np.flatnonzero(added)
    order[offsets[marked] + lengths[marked]] = len(values) + np.arange(len(marked))
    values = pa.concat_arrays([values, pa.array([code] * len(marked), values.type)]).take(pa.array(order))
    column = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), values, type=batch.schema.field("flags").type
    )
    return batch.set_column(index, "flags", column)


def find_task_files(folder: Path) -> dict[str, list[Path]]:
    """Per task: ``<task>.json`` (also under ``data/``), or JSON Lines shards under ``<task>/``."""
    found: dict[str, list[Path]] = {}
    for task, name in TASK_FILES.items():
        files = [p for p in (folder / name, folder / "data" / name) if p.is_file()]
        files += sorted((folder / task).glob("*.jsonl")) if (folder / task).is_dir() else []
        if files:
            found[task] = files
    if not found:
        if (folder / ALL_TASKS_FILE).is_file() or (folder / "data" / ALL_TASKS_FILE).is_file():
            raise InputError(
                f"only {ALL_TASKS_FILE} was found; its records do not say which task each "
                f"conversation belongs to, so svit reads the per-task files "
                f"({', '.join(TASK_FILES.values())})",
                file=str(folder),
            )
        raise InputError(
            f"no SVIT task files found (expected any of {', '.join(TASK_FILES.values())}, "
            "or <task>/*.jsonl shards)",
            file=str(folder),
        )
    return found


def read_image_sizes(path: Path) -> dict[int, tuple[int, int]]:
    """``image_id -> (width, height)`` from a Visual Genome ``image_data.json``."""
    sizes = {}
    for index, item in enumerate(iter_json_records(path)):
        try:
            sizes[int(item["image_id"])] = (int(item["width"]), int(item["height"]))
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                f"needs integer image_id, width and height ({error})", file=str(path), record=index
            ) from None
    return sizes


def index_images(root: Path) -> dict[int, str]:
    """``image_id -> path relative to root`` for image files named ``<image_id>.<ext>`` anywhere below."""
    index: dict[int, str] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES and stem.isdigit():
                index.setdefault(int(stem), os.path.relpath(os.path.join(dirpath, name), root))
    return index


def fingerprint(
    task_files: dict[str, list[Path]],
    sizes_file: Path | None,
    image_index: dict[int, str],
    quality_key: str = "repair=1",
) -> str:
    named = [(f"{task}/{path.name}", path) for task in sorted(task_files) for path in task_files[task]]
    if sizes_file is not None:
        named.append(("image sizes", sizes_file))
    # hashlib releases the GIL on big buffers: files hash in parallel threads
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:
        digests = list(threads.map(cached_hash, [path for _, path in named]))
    digest = hashlib.sha1(f"svit-pool-v{INGEST_VERSION}-{quality_key}".encode(), usedforsecurity=False)
    for (name, _), file_digest in zip(named, digests, strict=True):
        digest.update(name.encode() + file_digest)
    digest.update(json.dumps(sorted(image_index.items())).encode())
    return digest.hexdigest()[:16]


def resolve_source(source: str) -> Path:
    if source == "sample":
        from svit_data.sample import sample_dir

        return sample_dir()
    if source.startswith(HUB_PREFIX):
        from svit_data.hub_source import download_released

        return download_released(source[len(HUB_PREFIX) :])
    folder = Path(source)
    if not folder.is_dir():
        raise SvitError(
            f"source {source!r} is not a folder (use 'sample', a folder of SVIT task files, "
            "or hf://datasets/OWNER/NAME)"
        )
    return folder


def open_pool(
    source: str = "sample",
    *,
    images: str | Path | None = None,
    image_data: str | Path | None = None,
    progress: bool = True,
    repair: bool = True,
    strict: bool = False,
    name: str = SVIT_SOURCE,
    sidecar: BatchSidecar | None = None,
) -> Pool:
    """Ingest ``source`` once (cached by fingerprint) and return the pool; ``name`` fills its ``source`` column.

    ``repair`` applies the safe box repairs (:mod:`svit_data.quality.referring`); ``strict`` makes any
    flag an :class:`InputError` (located by file, record and field when the source is ingested now).
    ``sidecar`` sees every batch when the source is ingested now (:mod:`svit_data.ingest_sidecar`).
    """
    folder = resolve_source(source)
    task_files = find_task_files(folder)
    sizes_file = Path(image_data) if image_data else folder / "image_data.json"
    if image_data and not sizes_file.is_file():
        raise SvitError(f"image size file {sizes_file} does not exist")
    sizes_file = sizes_file if sizes_file.is_file() else None
    images_root = Path(images) if images else (folder / "images" if (folder / "images").is_dir() else None)
    if images_root is not None and not images_root.is_dir():
        raise SvitError(f"image folder {images_root} does not exist")
    image_index = index_images(images_root) if images_root else {}
    key = fingerprint(task_files, sizes_file, image_index, f"repair={int(repair)}")
    if name != SVIT_SOURCE:
        key = hashlib.sha1(f"{key}:{name}".encode(), usedforsecurity=False).hexdigest()[:16]
    root = paths.cache_dir() / "pools" / key
    meta_path = root / "pool.json"
    parts = None
    if not meta_path.is_file():
        sizes = read_image_sizes(sizes_file) if sizes_file else {}
        parts = _ingest(
            task_files,
            sizes,
            image_index,
            root,
            progress=progress,
            repair=repair,
            strict=strict,
            name=name,
            sidecar=sidecar,
        )
    meta = json.loads(meta_path.read_text())
    quality = meta.get("quality", {})
    if strict and quality.get("flagged"):
        code, ids = next(iter(quality["examples"].items()))
        task = ids[0].split("/")[0]
        raise InputError(
            f"sample {ids[0]} is flagged {code!r} (and {quality['flagged'] - 1:,} more flagged samples); "
            "--strict makes every flag an error",
            file=", ".join(str(p) for p in task_files.get(task, [])) or None,
        )
    pool = Pool(
        root=root,
        files=[root / name for name in meta["files"]],
        fingerprint=key,
        counts=meta["counts"],
        images_root=images_root,
        source=source,
        task_files={t: [str(p) for p in ps] for t, ps in task_files.items()},
        near_duplicates=np.array(meta.get("near_duplicates", []), np.int64),
        quality=quality,
        source_counts={name: sum(meta["counts"].values())},
        formats={name: "svit"},
    )
    finish(sidecar, parts, pool)
    return pool


def _ingest(
    task_files: dict[str, list[Path]],
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
    root: Path,
    *,
    progress: bool,
    repair: bool = True,
    strict: bool = False,
    name: str = SVIT_SOURCE,
    sidecar: BatchSidecar | None = None,
) -> list[tuple[int, Any]]:
    """Ingest every task file into ``root`` (one parquet file each), then rename into place; the
    ``sidecar``'s parts in pool order.

    Big sources are ingested by up to ``os.cpu_count()`` processes, one task file each, largest
    first: decoding JSON is CPU-bound. A task file bigger than a worker's share of the source is
    split into ranges (:func:`file_parts`), so that no worker ends up alone with it.
    """
    with staged_folder(root) as tmp:
        files = [(task, path) for task in TASKS for path in task_files.get(task, [])]
        total = sum(path.stat().st_size for _, path in files)
        cpus = (os.cpu_count() or 1) if total >= PARALLEL_BYTES else 1
        jobs = []
        for number, (task, path) in enumerate(files):
            parts = file_parts(path.stat().st_size, total, cpus)
            for part in range(parts):
                suffix = f"-{part:02d}" if parts > 1 else ""
                jobs.append(
                    IngestJob(
                        task,
                        path,
                        f"{number:03d}-{task}{suffix}",
                        tmp,
                        POOL_SCHEMA,
                        repair=repair,
                        strict=strict,
                        source=name,
                        part=part,
                        parts=parts,
                        sidecar=sidecar,
                    )
                )
        workers = min(len(jobs), cpus)
        with tqdm(total=total, desc="ingest", unit="B", unit_scale=True, disable=not progress) as bar:
            results = run_jobs(jobs, sizes, image_index, workers=workers, progress=bar.update)
        counts: dict[str, int] = {}
        files: list[str] = []
        for job, result in zip(jobs, results, strict=True):
            files += result.names
            if result.count:
                counts[job.task] = counts.get(job.task, 0) + result.count
        if not counts:  # raising here leaves no pool behind: the next try ingests again
            given = ", ".join(str(p) for ps in task_files.values() for p in ps)
            raise SvitError(f"the source holds no samples: {given} contain no records")
        first = np.cumsum([0] + [result.count for result in results])
        sidecar_parts = pool_parts(
            (start, result.sidecar) for result, start in zip(results, first[:-1], strict=True)
        )
        for result in results:
            result.sidecar = []  # in sidecar_parts now
        # each worker wrote its signatures beside its part (kept for mixes: svit_data.mixed_pool)
        near = confirmed_rows([read_signatures([tmp / name for name in files])])
        quality = quality_summary(results, near, [tmp / name for name in files])
        if strict and quality["flagged"]:
            first = next(iter(quality["examples"].items()))
            raise InputError(
                f"sample {first[1][0]} is flagged {first[0]!r}; --strict makes every flag an error"
            )
        meta = {"files": files, "counts": counts, "near_duplicates": near.tolist(), "quality": quality}
        (tmp / "pool.json").write_text(json.dumps(meta, indent=2))
    log.info("ingested %d samples into %s", sum(counts.values()), root)
    return sidecar_parts


def file_parts(size: int, total: int, workers: int) -> int:
    """How many ranges a task file of ``size`` bytes is ingested as, in a source of ``total`` bytes on
    ``workers`` processes: the number of workers' fair shares it spans (1 when it fits in one)."""
    if workers <= 1 or size * workers <= total:
        return 1
    return min(workers, -(-size * workers // total))
