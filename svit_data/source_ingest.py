"""Ingest of one third-party source into pool parquet, in one process or, for one large file, in several.

A batch of records at a time is checked, signed (near-duplicate signatures) and written
(:class:`svit_data.source_batches.SourceBatch`). A source that is one JSON array or JSON Lines file of
at least :data:`svit_data.ingest.PARALLEL_BYTES` is split into byte ranges at record boundaries
(:mod:`svit_data.formats.jsonsplit`), one per process (the first range in the calling process, the
others in processes spawned as :func:`svit_data.ingest.run_jobs` does per SVIT task file); each process
finds its own range, reads it with the record indices of the whole file, and writes its own parquet
part. The parent merges what the parts counted in range order,
with their rows numbered on from the earlier parts, and confirms near-duplicates over all of them, so
the pool (rows, ids, flags, counts, examples) is the one a single process writes, in several files.

Errors: a range's first error is the one a single process would meet first within that range, and the
earliest range's error wins: the ranges before a failed one run to their end (one of them may hold an
earlier error), then the processes still running are stopped. So the error is the single process's
error: same file, record index, field.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data.atomic import staged_folder
from svit_data.errors import InputError
from svit_data.formats.jsonsplit import file_range, is_splittable
from svit_data.formats.jsonstream import FileRange
from svit_data.formats.sources import read_source
from svit_data.ingest import EXAMPLES, PARALLEL_BYTES, IngestResult, _stop_workers
from svit_data.ingest_sidecar import BatchSidecar, pool_parts
from svit_data.pool_parquet import part_writer
from svit_data.pool_signatures import read_signatures
from svit_data.quality.near_duplicates import confirmed_rows
from svit_data.source_batches import SourceBatch
from svit_data.tasks import NO_TASK_LABEL

BATCH_ROWS = 20_000
# A spawned process pays about 1 s of CPU for its imports (not ``datasets``: the job carries the pool's
# schema) and about 1 s for compiled-code cache loads before it reads a record; a range of 128 MB takes about 8 s to ingest (LLaVA records), so
# smaller ranges would gain little.
RANGE_MIN_BYTES = 128 << 20


@dataclass(frozen=True)
class SourceJob:
    """What every process of one source's ingest needs: the source, and where its parts go."""

    name: str  # the source's name: ids are <name>/<n>
    path: Path
    format: str
    box_frame: str
    images_root: Path | None
    folder: Path
    schema: pa.Schema  # the pool's (passed, so that spawned processes need not import ``datasets``)
    strict: bool = False
    sidecar: BatchSidecar | None = None  # sees every batch written (:mod:`svit_data.ingest_sidecar`)


@dataclass
class PartResult:
    """What one part wrote: its first record's index in the source, counts and signatures (rows numbered
    from 0 in the part) and the part's rows that carry a flag."""

    first: int
    result: IngestResult
    flagged_rows: list[int] = field(default_factory=list)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (then restored): reading a source allocates millions of
    small acyclic objects (records' dicts and strings) while a batch of them is alive, and each collection
    would walk every live one again (a third of ingest time on a mix-665K-shaped file). Reference counting
    still frees them at once; any cycle made meanwhile waits for the next collection after ingest."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def split_parts(size: int, cpus: int) -> int:
    """How many processes ingest a splittable file of ``size`` bytes on ``cpus`` cores (1: no split)."""
    if size < PARALLEL_BYTES or cpus <= 1:
        return 1
    return max(1, min(cpus, size // RANGE_MIN_BYTES))


def ingest_part(job: SourceJob, name: str, part: FileRange | None = None) -> PartResult:
    """Read the source (or one range of its file) into the parquet file ``job.folder / name`` (not
    written when it holds no record)."""
    first = part.record if part is not None else 0
    result = IngestResult([], 0)
    flagged_rows: list[int] = []
    writer: pq.ParquetWriter | None = None

    def write(batch: SourceBatch) -> None:
        nonlocal writer
        froms, values, offsets = batch.turns()
        checked = batch.check(froms, values, offsets, strict=job.strict)
        start = first + result.count
        ids = [f"{job.name}/{n}" for n in range(start, start + len(batch))]
        table = batch.table(
            job.schema, ids, job.name, job.box_frame, job.images_root, froms, offsets, checked
        )
        writer = writer or part_writer(job.folder / name, job.schema)
        writer.write_table(table)
        if job.sidecar is not None:
            result.sidecar.append((result.count, job.sidecar.batch(table, result.count)))
        flagged_rows.extend(result.count + i for i in checked.flagged)
        conversations = table["conversations"].combine_chunks()
        result.add_batch("", ids, checked.flagged, conversations, checked.scanned)

    try:
        batch = SourceBatch()
        try:
            for file, index, record in read_source(job.path, job.format, part):
                batch.append(file, index, record)
                if len(batch) >= BATCH_ROWS:
                    full, batch = batch, SourceBatch()
                    write(full)
        except Exception:  # a broken record: under strict, an earlier record's flag comes first
            if job.strict and len(batch):
                batch.check(*batch.turns(), strict=True)
            raise
        if len(batch):
            write(batch)
    finally:
        if writer is not None:
            writer.close()
    result.store_signatures(job.folder / name)
    result.names = [name] if result.count else []
    return PartResult(first, result, flagged_rows)


def _ingest_range(job: SourceJob, part: int, parts: int) -> PartResult:
    """Range ``part`` of ``parts`` of the source's file (the process finds the range itself)."""
    with collector_paused():
        found = file_range(job.path, part, parts)
        if found is None:  # no record starts in this range: the ranges before it cover the file
            return PartResult(0, IngestResult([], 0))
        return ingest_part(job, f"part-{part:03d}-source.parquet", found)


def _run_ranges(job: SourceJob, parts: int) -> list[PartResult]:
    """The file's first range in this process (its imports are paid for), every other range in a process
    of its own; the results in range order, or the error of the first range that has one."""
    # spawn, not fork: the parent may hold pyarrow's thread pools, which do not survive a fork
    executor = ProcessPoolExecutor(parts - 1, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [executor.submit(_ingest_range, job, k, parts) for k in range(1, parts)]
        results = [_ingest_range(job, 0, parts)]  # its error, if any, comes first in the file
        pending = set(futures)
        while pending:
            _, pending = wait(pending, return_when=FIRST_EXCEPTION)
            failed = [k for k, future in enumerate(futures) if future.done() and future.exception()]
            if failed:
                wait(futures[: failed[0]])  # an earlier range may hold an earlier error
                first = next(f for f in futures[: failed[0] + 1] if f.exception() is not None)
                raise first.exception()  # type: ignore[misc]
        results += [future.result() for future in futures]
    except BaseException:
        _stop_workers(executor)  # stop the later ranges at once instead of finishing them
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    return [result for result in results if result.result.count]


def _merge(parts: list[PartResult]) -> tuple[IngestResult, list[int]]:
    """The parts' counts as one process would have counted them: rows numbered on from the earlier parts,
    examples (the first ``EXAMPLES`` ids per code) and codes in file order."""
    total = IngestResult([], 0)
    flagged_rows: list[int] = []
    for part in parts:
        result = part.result
        if part.first != total.count:
            raise RuntimeError(
                f"a part starts at record {part.first} but {total.count} records come before it"
            )
        total.names += result.names
        total.sidecar += pool_parts([(total.count, result.sidecar)])
        total.flag_counts.update(result.flag_counts)
        for code, ids in result.examples.items():
            kept = total.examples.setdefault(code, [])
            kept += ids[: EXAMPLES - len(kept)]
        flagged_rows += [total.count + row for row in part.flagged_rows]
        total.count += result.count
    return total, flagged_rows


def ingest_source(job: SourceJob, root: Path) -> list[tuple[int, Any]]:
    """Ingest the source into ``root`` (parquet parts and ``pool.json``), written whole or not at all;
    the ``job.sidecar``'s parts in pool order."""
    single = job.path.is_file() and is_splittable(job.path)
    parts = split_parts(job.path.stat().st_size, os.cpu_count() or 1) if single else 1
    with staged_folder(root) as tmp, collector_paused():
        job = replace(job, folder=tmp)
        if parts > 1:
            result, flagged_rows = _merge(_run_ranges(job, parts))
        else:
            part = ingest_part(job, "part-000-source.parquet")
            result, flagged_rows = part.result, part.flagged_rows
        if result.count == 0:
            raise InputError("holds no records", file=str(job.path))
        # each part's process wrote its signatures beside it (kept for mixes: svit_data.mixed_pool)
        near = confirmed_rows([read_signatures([tmp / name for name in result.names])])
        counts = {code: count for (_, code), count in result.flag_counts.items()}
        examples = dict(result.examples)
        if len(near):
            counts["near_duplicate"] = len(near)
            examples["near_duplicate"] = [f"{job.name}/{row}" for row in near[:EXAMPLES]]
        quality = {
            "flagged": len(np.union1d(np.array(flagged_rows, np.int64), near)),
            "per_task": {NO_TASK_LABEL: counts} if counts else {},
            "examples": examples,
        }
        meta = {
            "files": result.names,
            "rows": result.count,
            "format": job.format,
            "box_frame": job.box_frame,
            "quality": quality,
            "near_duplicates": near.tolist(),
        }
        (tmp / "pool.json").write_text(json.dumps(meta))
    return result.sidecar
