"""Ingest: SVIT task files -> pool parquet, the hot path of ``open_pool``.

A ``.json`` array is read by a compiled reader straight into column arrays (:mod:`svit_data.ingest_fast`);
JSON Lines, and records outside the compiled shape, are decoded by the standard library and appended as
lists (:mod:`svit_data.ingest_columns`). Every batch of
samples goes through the quality checks (:func:`svit_data.quality.batch.check_batch`, the rules of
:func:`svit_data.quality.check_sample` over whole columns): a problem inside a record (a bad box, broken
turn order, an error reply, ...) becomes a reason code in the sample's ``flags`` and ingest goes on;
with ``strict`` the first flag is a located :class:`InputError`. Only a record
that is not an SVIT record (not an object, no integer ``image_id``, turns that are not objects with
string ``from``/``value``) stops ingest, through :func:`svit_data.formats.svit.expand_record`'s
located error. A per-QA conversation whose turns do not alternate stays one sample (flagged
``turn_order``), so nothing is lost. Several task files are ingested by separate processes, and a task
file much larger than the others by several, a range of it each (:mod:`svit_data.formats.jsonsplit`:
ranges start at record boundaries and know how many records come before them, so record indices in
errors stay those of the whole file). This module does not import ``datasets``, so that worker
processes start fast.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data.errors import InputError
from svit_data.formats.jsonsplit import file_range, open_range
from svit_data.formats.jsonstream import iter_json_records
from svit_data.ingest_columns import Batch, Invalid, Part, add_record
from svit_data.ingest_fast import read_fast, size_table
from svit_data.ingest_sidecar import BatchSidecar
from svit_data.pool_parquet import part_writer
from svit_data.pool_signatures import save_part_signatures
from svit_data.quality.batch import BatchCheck, check_batch
from svit_data.quality.near_duplicates import document_signatures
from svit_data.quality.textscan import TurnScan
from svit_data.tasks import ORIGINAL_FRAME, PER_QA_TASKS, SVIT_SOURCE

BATCH_ROWS = 50_000  # samples per parquet row group
PARALLEL_BYTES = 256 << 20  # sources at least this big are ingested by several processes
EXAMPLES = 3  # example sample ids kept per reason code
FIRST_BATCH = (65_536, 131_072, 64 << 20)  # the compiled reader's first arrays: samples, turns, text bytes
COMPILED = True  # read .json arrays with the compiled reader (tests compare both paths)


@dataclass(frozen=True)
class IngestJob:
    """One task file (or range ``part`` of ``parts`` of it) to ingest into ``folder / part-<name>.parquet``
    with the pool's arrow ``schema``."""

    task: str
    path: Path
    name: str
    folder: Path
    schema: pa.Schema
    repair: bool = True
    strict: bool = False
    source: str = SVIT_SOURCE  # the pool's source column
    part: int = 0
    parts: int = 1
    sidecar: BatchSidecar | None = None  # sees every batch written (:mod:`svit_data.ingest_sidecar`)

    def size(self) -> int:
        """About how many bytes of the file this job reads."""
        return self.path.stat().st_size // self.parts


@dataclass
class IngestResult:
    """What one job wrote: file names, rows, and per task+reason flag counts with example ids."""

    names: list[str]
    count: int
    flag_counts: Counter = field(default_factory=Counter)  # (task, code) -> samples
    examples: dict[str, list[str]] = field(default_factory=dict)  # code -> first sample ids
    # near-duplicate signatures of the long answers and their rows in the file, per batch, until
    # :meth:`store_signatures` writes them beside the file (they are not sent back to the parent process)
    documents: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, compare=False, repr=False)
    sidecar: list[tuple[int, Any]] = field(default_factory=list, compare=False, repr=False)  # rows as above

    def add_batch(
        self,
        task: str,
        ids: list[str] | pa.Array,
        flagged: dict[int, list[str]],
        conversations: pa.ListArray,
        scanned: TurnScan | None = None,
    ) -> None:
        """Count a written batch: its samples' flags (``flagged``: batch index -> codes, in order), example
        ids, and its long answers' near-duplicate signatures (rows numbered on from ``count``)."""
        self.documents.append(document_signatures(conversations, self.count, scanned))
        for i, flags in flagged.items():
            for code in flags:
                self.flag_counts[(task, code)] += 1
                examples = self.examples.setdefault(code, [])
                if len(examples) < EXAMPLES:
                    examples.append(ids[i] if isinstance(ids, list) else ids[i].as_py())
        self.count += len(ids)

    def store_signatures(self, part: Path) -> None:
        """Write the signatures beside the parquet file ``part`` (:mod:`svit_data.pool_signatures`), then
        drop them."""
        if self.count:
            save_part_signatures(part, self.documents)
        self.documents = []


def run_jobs(
    jobs: list[IngestJob],
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
    *,
    workers: int = 1,
    progress: Callable[[int], Any] = lambda done_bytes: None,
) -> list[IngestResult]:
    """Ingest every job (in ``workers`` processes when > 1); results in the order of ``jobs``."""
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(ingest_file(job, sizes, image_index))
            progress(job.size())
        return results
    # spawn, not fork: the parent may hold pyarrow's thread pools, which do not survive a fork.
    # A worker that dies (killed, out of memory) breaks the executor: an error, never a hang.
    order = sorted(range(len(jobs)), key=lambda k: -jobs[k].size())
    results: list[IngestResult | None] = [None] * len(jobs)
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(sizes, image_index),
    )
    try:
        futures = {executor.submit(_worker_ingest, jobs[k]): k for k in order}
        for future in as_completed(futures):
            k = futures[future]
            if future.exception() is not None:
                _raise_first_error(jobs, {j: f for f, j in futures.items()}, k)
            results[k] = future.result()
            progress(jobs[k].size())
    except BaseException:
        _stop_workers(executor)  # stop the other files at once instead of finishing them
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    return results  # type: ignore[return-value]


def _raise_first_error(jobs: list[IngestJob], futures: dict, failed: int) -> None:
    """Raise job ``failed``'s error, or that of an earlier range of the same file: the one a single
    process reading the file would have met first (the earlier ranges are waited for)."""
    same = [k for k in range(failed + 1) if jobs[k].path == jobs[failed].path]
    wait([futures[k] for k in same])
    first = next(k for k in same if futures[k].exception() is not None)
    raise futures[first].exception()


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Terminate the executor's worker processes now.

    ``shutdown(cancel_futures=True)`` only cancels jobs that have not started; a worker halfway
    through a multi-GB file would run on for minutes. Python 3.14 adds the public
    ``terminate_workers()``; before it, the executor's private process table ``_processes`` is the only
    handle on its workers. tests/svit_data/test_pool.py (a worker blocked for ever) fails if this
    stops working.
    """
    terminate = getattr(executor, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((executor._processes or {}).values()):
        process.terminate()


_WORKER_TABLES: tuple[dict[int, tuple[int, int]], dict[int, str]] = ({}, {})


def _init_worker(sizes: dict[int, tuple[int, int]], image_index: dict[int, str]) -> None:
    global _WORKER_TABLES
    _WORKER_TABLES = (sizes, image_index)


def _worker_ingest(job: IngestJob) -> IngestResult:
    return ingest_file(job, *_WORKER_TABLES)


def _table(part: Part, task: str, schema: pa.Schema, checked: BatchCheck, source: str) -> pa.Table:
    """The pool table of one checked batch."""
    rows = len(part)
    turn = schema.field("conversations").type.value_type
    conversations = pa.ListArray.from_arrays(
        pa.array(part.turn_offsets, pa.int32()),
        pa.StructArray.from_arrays([part.froms, checked.values], fields=list(turn)),
    )
    provenance_type = schema.field("provenance").type
    provenance = (
        pa.array(part.provenance, provenance_type)
        if part.provenance is not None
        else pa.nulls(rows, provenance_type)
    )
    columns = {
        "id": part.ids,
        "image_id": pa.array(part.image_ids, pa.int64()),
        "task": pa.array([task] * rows, pa.string()),
        "conversation_index": pa.array(part.conversations, pa.int32()),
        "conversations": conversations,
        "image": pa.nulls(rows, schema.field("image").type),
        "image_file": part.image_files,
        "width": part.widths,
        "height": part.heights,
        "provenance": provenance,
        "flags": checked.flags(),
        "source": pa.array([source] * rows, pa.string()),
        "source_id": pa.nulls(rows, pa.string()),
        "images": pa.nulls(rows, schema.field("images").type),
        "box_frame": pa.array([ORIGINAL_FRAME] * rows, pa.string()),
    }
    for name in ("answer_words", "qa_pairs", "boxes"):
        columns[name] = pa.array(getattr(checked, name), pa.int32())
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def ingest_file(
    job: IngestJob, sizes: dict[int, tuple[int, int]], image_index: dict[int, str]
) -> IngestResult:
    """One task file -> one parquet file of samples; what was written and what was flagged.

    A ``.json`` array is read by the compiled reader (:mod:`svit_data.ingest_fast`); records outside its
    shape, JSON Lines, and the rest of a file after malformed JSON take the standard library's reader.
    """
    schema = job.schema
    per_qa = job.task in PER_QA_TASKS
    file = str(job.path)
    name = f"part-{job.name}.parquet"
    result = IngestResult([], 0)
    batch = Batch(job.task, image_index, FIRST_BATCH)
    writer: pq.ParquetWriter | None = None

    def check(part: Part) -> BatchCheck:
        """The part's flags; under ``strict`` the first flag is a located error."""
        checked = check_batch(
            job.task, part.froms, part.values, part.turn_offsets, part.records, part.pairs, repair=job.repair
        )
        if job.strict and checked.first is not None:
            i, finding = checked.first
            c, a = int(part.conversations[i]), int(part.first_turns[i])
            where = f"conversations[{c}].content"
            where += f"[{a + finding.turn}].{finding.part}" if finding.turn is not None else ""
            raise InputError(
                f"{finding.code}: {finding.detail} (--strict makes every flag an error)",
                file=file,
                record=int(part.records[i]),
                field=where,
            )
        return checked

    def flush() -> None:
        nonlocal writer
        part = batch.take()
        checked = check(part)
        writer = writer or part_writer(job.folder / name, schema)
        table = _table(part, job.task, schema, checked, job.source)
        writer.write_table(table)
        if job.sidecar is not None:
            result.sidecar.append((result.count, job.sidecar.batch(table, result.count)))
        conversations = table["conversations"].combine_chunks()
        result.add_batch(job.task, part.ids, checked.flagged, conversations, checked.scanned)

    def add(index: int, record: Any) -> None:
        """Append one decoded record, or raise its located error."""
        cols = batch.columns()
        try:
            add_record(cols, record, index, job.task, per_qa, sizes, image_index)
        except (Invalid, KeyError, TypeError, AttributeError):
            from svit_data.formats.svit import expand_record

            cols.truncate()  # drop the broken record's samples
            if job.strict and len(batch):
                check(
                    batch.joined()
                )  # an earlier record's flag comes first, as it did when checked per record
            expand_record(record, job.task, file=file, index=index)  # raises the located InputError
            raise RuntimeError(
                f"{file}: record {index}: the ingest fast path rejected a valid record"
            ) from None

    compiled = job.path.suffix == ".json" and COMPILED
    part, until = None, None
    if job.parts > 1:
        if compiled:  # the compiled reader finds where its range ends
            found = open_range(job.path, job.part, job.parts)
            part, until = found if found is not None else (None, None)
        else:
            part = file_range(job.path, job.part, job.parts)
        if part is None:  # no record starts in this range: the ranges before it cover the file
            return result
    try:
        records = iter_json_records(job.path, part) if not compiled else iter(())
        if compiled:
            part = read_fast(
                job.path, part, until, batch, per_qa=per_qa, sizes=size_table(sizes), batch_rows=BATCH_ROWS,
                flush=flush, add=add,
            )  # fmt: skip
            if part is not None:
                records = iter_json_records(job.path, part)
        for index, record in enumerate(records, part.record if part is not None else 0):
            add(index, record)
            if len(batch) >= BATCH_ROWS:
                flush()
        if len(batch):
            flush()
    finally:
        if writer is not None:
            writer.close()
    result.store_signatures(job.folder / name)
    result.names = [name] if result.count else []
    return result
