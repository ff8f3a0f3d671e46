"""Ingest: SVIT task files -> pool parquet, the hot path of ``open_pool``.

Columns are built directly from the decoded records (no per-sample objects or dicts). Every batch of
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
from svit_data.formats.jsonsplit import file_range
from svit_data.formats.jsonstream import iter_json_records
from svit_data.ingest_sidecar import BatchSidecar
from svit_data.pool_signatures import save_part_signatures
from svit_data.quality.batch import BatchCheck, check_batch
from svit_data.quality.near_duplicates import document_signatures
from svit_data.quality.textscan import TurnScan
from svit_data.tasks import GPT, ORIGINAL_FRAME, PER_QA_TASKS, SVIT_SOURCE, USER

BATCH_ROWS = 50_000  # samples per parquet row group
PARALLEL_BYTES = 256 << 20  # sources at least this big are ingested by several processes
EXAMPLES = 3  # example sample ids kept per reason code


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
        ids: list[str],
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
                    examples.append(ids[i])
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


class _Columns:
    """The pool columns of one batch, built directly (no per-row dicts): the ingest hot path."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.image_ids: list[int] = []
        self.conversation_index: list[int] = []
        self.offsets: list[int] = [0]
        self.froms: list[str] = []
        self.values: list[str] = []
        self.image_files: list[str] = []
        self.widths: list[int | None] = []
        self.heights: list[int | None] = []
        self.provenance: list[dict | None] = []
        self.records: list[int] = []  # per sample: the record's index in the file
        self.pairs: list[int] = []  # per sample: its conversation's QA count for the quota, -1 for none
        self.where: list[tuple[int, int]] = []  # per sample: conversation index, first turn in it

    def __len__(self) -> int:
        return len(self.ids)

    def truncate(self) -> None:
        """Drop the samples of a record that was not appended whole."""
        n = len(self.records)
        del self.froms[self.offsets[n] :], self.values[self.offsets[n] :], self.offsets[n + 1 :]
        del self.ids[n:], self.conversation_index[n:], self.where[n:], self.pairs[n:]

    def check(self, job: IngestJob) -> BatchCheck:
        return check_batch(
            job.task,
            pa.array(self.froms, pa.string()),
            pa.array(self.values, pa.string()),
            np.array(self.offsets, np.int64),
            np.array(self.records, np.int64),
            np.array(self.pairs, np.int64),
            repair=job.repair,
        )

    def table(self, task: str, schema: pa.Schema, checked: BatchCheck, source: str = SVIT_SOURCE) -> pa.Table:
        rows = len(self.ids)
        turn = schema.field("conversations").type.value_type
        conversations = pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [pa.array(self.froms, pa.string()), checked.values], fields=list(turn)
            ),
        )
        provenance_type = schema.field("provenance").type
        provenance = (
            pa.array(self.provenance, provenance_type)
            if any(p is not None for p in self.provenance)
            else pa.nulls(rows, provenance_type)
        )
        columns = {
            "id": pa.array(self.ids, pa.string()),
            "image_id": pa.array(self.image_ids, pa.int64()),
            "task": pa.array([task] * rows, pa.string()),
            "conversation_index": pa.array(self.conversation_index, pa.int32()),
            "conversations": conversations,
            "image": pa.nulls(rows, schema.field("image").type),
            "image_file": pa.array(self.image_files, pa.string()),
            "width": pa.array(self.widths, pa.int32()),
            "height": pa.array(self.heights, pa.int32()),
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


_ALTERNATION = [USER, GPT] * 64


def _alternation(turns: int) -> list[str]:
    """user, gpt, user, ... ``turns`` long (even): the turns of a conversation of QA pairs
    (:func:`svit_data.quality.samples.alternates`)."""
    return _ALTERNATION[:turns] if turns <= len(_ALTERNATION) else [USER, GPT] * (turns // 2)


class _Invalid(Exception):
    """Not an SVIT record; the checked path says exactly where."""


def _add_record(
    cols: _Columns,
    record: Any,
    index: int,
    job: IngestJob,
    per_qa: bool,
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
) -> int:
    """Append the samples of record ``index`` to ``cols`` (checked later, per batch); raise if not SVIT."""
    image_id = record["image_id"]
    conversations = record["conversations"]
    if type(image_id) is not int or type(conversations) is not list:
        raise _Invalid
    width, height = record.get("width"), record.get("height")
    if width is None and image_id in sizes:
        width, height = sizes[image_id]
    image_file = record.get("image_file") or image_index.get(image_id) or f"{image_id}.jpg"
    provenance = record.get("provenance")
    prefix = f"{job.task}/{image_id}/"
    n = 0
    for c, conversation in enumerate(conversations):
        content = conversation["content"]
        if type(content) is not list:
            raise _Invalid
        speakers = [turn["from"] for turn in content]
        values = [turn["value"] for turn in content]
        "".join(speakers), "".join(values)  # noqa: B018 - a TypeError unless every one is a string
        turns, first = len(speakers), len(cols.froms)
        cols.froms += speakers
        cols.values += values
        if per_qa and turns % 2 == 0 and speakers == _alternation(turns):  # one sample per QA pair
            count = pairs = turns // 2
            cols.offsets += range(first + 2, first + turns + 1, 2)
            cols.where += [(c, t) for t in range(0, turns, 2)]
        else:  # the whole conversation is one sample (flagged turn_order if it should have been pairs)
            count, pairs = 1, -1 if per_qa else turns // 2
            cols.offsets.append(first + turns)
            cols.where.append((c, 0))
        cols.ids += [f"{prefix}{k}" for k in range(n, n + count)]
        cols.conversation_index += [c] * count
        cols.pairs += [pairs] * count
        n += count
    cols.records += [index] * n
    cols.image_ids += [image_id] * n
    cols.image_files += [image_file] * n
    cols.widths += [width] * n
    cols.heights += [height] * n
    cols.provenance += [provenance] * n
    return n


def ingest_file(
    job: IngestJob, sizes: dict[int, tuple[int, int]], image_index: dict[int, str]
) -> IngestResult:
    """One task file -> one parquet file of samples; what was written and what was flagged."""
    schema = job.schema
    per_qa = job.task in PER_QA_TASKS
    file = str(job.path)
    name = f"part-{job.name}.parquet"
    result = IngestResult([], 0)
    cols = _Columns()
    writer: pq.ParquetWriter | None = None

    def check() -> BatchCheck:
        """The pending samples' flags; under ``strict`` the first flag is a located error."""
        checked = cols.check(job)
        if job.strict and checked.first is not None:
            i, finding = checked.first
            c, a = cols.where[i]
            where = f"conversations[{c}].content"
            where += f"[{a + finding.turn}].{finding.part}" if finding.turn is not None else ""
            raise InputError(
                f"{finding.code}: {finding.detail} (--strict makes every flag an error)",
                file=file,
                record=cols.records[i],
                field=where,
            )
        return checked

    def flush() -> None:
        nonlocal writer, cols
        checked = check()
        writer = writer or pq.ParquetWriter(job.folder / name, schema)
        table = cols.table(job.task, schema, checked, job.source)
        writer.write_table(table)
        if job.sidecar is not None:
            result.sidecar.append((result.count, job.sidecar.batch(table, result.count)))
        conversations = table["conversations"].combine_chunks()
        result.add_batch(job.task, cols.ids, checked.flagged, conversations, checked.scanned)
        cols = _Columns()

    records = iter_json_records(job.path)
    first = 0
    if job.parts > 1:
        found = file_range(job.path, job.part, job.parts)
        if found is None:  # no record starts in this range: the ranges before it cover the file
            return result
        records, first = iter_json_records(job.path, found), found.record
    try:
        for index, record in enumerate(records, first):
            try:
                _add_record(cols, record, index, job, per_qa, sizes, image_index)
            except (_Invalid, KeyError, TypeError, AttributeError):
                from svit_data.formats.svit import expand_record

                cols.truncate()  # drop the broken record's samples
                if job.strict and len(cols):
                    check()  # an earlier record's flag comes first, as it did when checked per record
                expand_record(record, job.task, file=file, index=index)  # raises the located InputError
                raise RuntimeError(
                    f"{file}: record {index}: the ingest fast path rejected a valid record"
                ) from None
            if len(cols) >= BATCH_ROWS:
                flush()
        if len(cols):
            flush()
    finally:
        if writer is not None:
            writer.close()
    result.store_signatures(job.folder / name)
    result.names = [name] if result.count else []
    return result
