"""Ingest: SVIT task files -> pool parquet, the hot path of ``open_pool``.

Columns are built directly from the decoded records (no per-sample objects or dicts) and checked on
the way: speakers, QA pairing, and every ``<st>..<ed>`` box. Anything unusual falls back to
:func:`svit_data.formats.svit.expand_record`, which raises the located :class:`InputError`. Several
task files are ingested by separate processes. This module does not import ``datasets``, so that
worker processes start fast.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from svit_data.boxes import BOX_RE, START, parse_refs
from svit_data.errors import BoxError
from svit_data.formats.jsonstream import iter_json_records
from svit_data.tasks import GPT, PER_QA_TASKS, SPEAKERS, USER

BATCH_ROWS = 50_000  # samples per parquet row group


@dataclass(frozen=True)
class IngestJob:
    """One task file to ingest into ``folder / part-<name>.parquet`` with the pool's arrow ``schema``."""

    task: str
    path: Path
    name: str
    folder: Path
    schema: pa.Schema


def run_jobs(
    jobs: list[IngestJob],
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
    *,
    workers: int = 1,
    progress: Callable[[int], Any] = lambda done_bytes: None,
) -> list[tuple[list[str], int]]:
    """Ingest every job (in ``workers`` processes when > 1); results in the order of ``jobs``."""
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(ingest_file(job, sizes, image_index))
            progress(job.path.stat().st_size)
        return results
    # spawn, not fork: the parent may hold pyarrow's thread pools, which do not survive a fork.
    # A worker that dies (killed, out of memory) breaks the executor: an error, never a hang.
    order = sorted(range(len(jobs)), key=lambda k: -jobs[k].path.stat().st_size)
    results: list[tuple[list[str], int] | None] = [None] * len(jobs)
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
            results[k] = future.result()
            progress(jobs[k].path.stat().st_size)
    except BaseException:
        _stop_workers(executor)  # stop the other files at once instead of finishing them
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    return results  # type: ignore[return-value]


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


def _worker_ingest(job: IngestJob) -> tuple[list[str], int]:
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

    def __len__(self) -> int:
        return len(self.ids)

    def table(self, task: str, schema: pa.Schema) -> pa.Table:
        rows = len(self.ids)
        turn = schema.field("conversations").type.value_type
        conversations = pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [pa.array(self.froms, pa.string()), pa.array(self.values, pa.string())], fields=list(turn)
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
        }
        return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


class _Invalid(Exception):
    """The fast path saw something it does not accept; the checked path says exactly what."""


def _boxes_in_range(value: str) -> bool:
    """Every ``[x1, y1, x2, y2]`` in ``value`` is a valid 0-1 box: a fast superset of the ref check."""
    for x1, y1, x2, y2 in BOX_RE.findall(value):
        a, b, c, d = float(x1), float(y1), float(x2), float(y2)
        if not (0.0 <= a <= c <= 1.0 and 0.0 <= b <= d <= 1.0):
            return False
    return True


def _add_record(
    cols: _Columns,
    record: Any,
    task: str,
    per_qa: bool,
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
) -> int:
    """Append the samples of one valid record to ``cols``; raise on anything unusual."""
    image_id = record["image_id"]
    conversations = record["conversations"]
    if type(image_id) is not int or type(conversations) is not list:
        raise _Invalid
    width, height = record.get("width"), record.get("height")
    if width is None and image_id in sizes:
        width, height = sizes[image_id]
    image_file = record.get("image_file") or image_index.get(image_id) or f"{image_id}.jpg"
    provenance = record.get("provenance")
    add_from, add_value, add_offset = cols.froms.append, cols.values.append, cols.offsets.append
    add_id, add_index = cols.ids.append, cols.conversation_index.append
    prefix = f"{task}/{image_id}/"
    n = 0
    for c, conversation in enumerate(conversations):
        content = conversation["content"]
        if type(content) is not list or (per_qa and len(content) % 2):
            raise _Invalid
        expected = USER
        for turn in content:
            speaker, value = turn["from"], turn["value"]
            if type(value) is not str or speaker not in SPEAKERS:
                raise _Invalid
            if START in value and not _boxes_in_range(value):
                parse_refs(value)  # raises BoxError if a referred box is bad
            add_from(speaker)
            add_value(value)
            if per_qa:
                if speaker != expected:
                    raise _Invalid
                if expected == GPT:  # a QA pair is complete: one sample
                    add_offset(len(cols.froms))
                    add_id(f"{prefix}{n}")
                    add_index(c)
                    n += 1
                expected = GPT if expected == USER else USER
        if not per_qa:  # the whole conversation is one sample
            add_offset(len(cols.froms))
            add_id(f"{prefix}{n}")
            add_index(c)
            n += 1
    cols.image_ids += [image_id] * n
    cols.image_files += [image_file] * n
    cols.widths += [width] * n
    cols.heights += [height] * n
    cols.provenance += [provenance] * n
    return n


def ingest_file(
    job: IngestJob, sizes: dict[int, tuple[int, int]], image_index: dict[int, str]
) -> tuple[list[str], int]:
    """One task file -> one parquet file of samples; return its name (none if empty) and row count."""
    schema = job.schema
    per_qa = job.task in PER_QA_TASKS
    file = str(job.path)
    name = f"part-{job.name}.parquet"
    count = 0
    cols = _Columns()
    writer: pq.ParquetWriter | None = None
    try:
        for index, record in enumerate(iter_json_records(job.path)):
            try:
                _add_record(cols, record, job.task, per_qa, sizes, image_index)
            except (_Invalid, KeyError, TypeError, AttributeError, BoxError):
                from svit_data.formats.svit import expand_record

                expand_record(record, job.task, file=file, index=index)  # raises the located InputError
                raise RuntimeError(
                    f"{file}: record {index}: the ingest fast path rejected a valid record"
                ) from None
            if len(cols) >= BATCH_ROWS:
                writer = writer or pq.ParquetWriter(job.folder / name, schema)
                writer.write_table(cols.table(job.task, schema))
                count += len(cols)
                cols = _Columns()
        if len(cols):
            writer = writer or pq.ParquetWriter(job.folder / name, schema)
            writer.write_table(cols.table(job.task, schema))
            count += len(cols)
    finally:
        if writer is not None:
            writer.close()
    return ([name] if count else []), count
