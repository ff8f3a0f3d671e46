"""Near-duplicate signatures kept with an ingested pool, so that a mix of pools finds near-duplicates across
its sources without signing every long answer again.

A long answer's signature (:func:`svit_data.quality.near_duplicates.document_signatures`) depends on its
text alone, not on the other samples of the pool. Ingest signs every long answer anyway (to find the
pool's own near-duplicates), so the process that writes a parquet part also writes its signatures and their
rows (numbered from 0 in the part) beside it: ``part-X.parquet`` gets ``part-X.`` :data:`SIGNATURES_SUFFIX`
and ``part-X.`` :data:`ROWS_SUFFIX` (:func:`save_part_signatures`). They are written into the pool's
staging folder with the parts, so a pool folder has them all or none, and nothing is sent back to the
parent process: it reads the files (:func:`read_signatures`) for the pool's own near-duplicate pass. A
mixed pool (:mod:`svit_data.mixed_pool`) reads each source's part files (memory-mapped, copied once into
the mix's array) and walks their buckets once.

A part whose files are missing (a pool ingested before this layout) or cannot be read whole (cut short,
another shape, rows out of the part's range, the two files of different lengths) has its signatures
computed again from its parquet file, once: they are then stored (atomic writes), so the next mix reads
them. The names carry :data:`SIGNATURES_VERSION`: a change of the signature rule or of the layout changes
them, and old files are ignored (and removed when the new ones are stored).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from svit_data.atomic import atomic_open
from svit_data.quality.minhash import BINS
from svit_data.quality.near_duplicates import Documents, document_signatures

log = logging.getLogger(__name__)

SIGNATURES_VERSION = "2"  # 2: one pair of files per parquet part, rows numbered in the part
SIGNATURES_SUFFIX = f"near-signatures-v{SIGNATURES_VERSION}.npy"
ROWS_SUFFIX = f"near-rows-v{SIGNATURES_VERSION}.npy"
# version 1: one pair for the whole pool (pool rows), written by the parent process
OLD_FILES = ("near-signatures-v1.npy", "near-rows-v1.npy")
THREADED_BYTES = 64 << 20  # signatures at least this big are copied on threads


def signature_files(part: Path) -> tuple[Path, Path]:
    """The signature and row files kept beside the parquet part ``part``."""
    stem = part.name.removesuffix(".parquet")
    return part.with_name(f"{stem}.{SIGNATURES_SUFFIX}"), part.with_name(f"{stem}.{ROWS_SUFFIX}")


def _write_npy(handle, arrays: list[np.ndarray], dtype: np.dtype, width: int | None) -> None:
    """``np.save`` of the arrays concatenated (the same bytes), written one after the other without the copy."""
    count = sum(len(a) for a in arrays)
    shape = (count,) if width is None else (count, width)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)
    for array in arrays:
        handle.write(np.ascontiguousarray(array, dtype).data)


def save_part_signatures(part: Path, batches: list[Documents], *, atomic: bool = False) -> None:
    """Write the signatures of the parquet part ``part`` (per batch, rows numbered in the part) beside it.
    ``atomic``: for a pool folder in use; a staging folder (ingest) is written directly."""
    signatures, rows = signature_files(part)
    for path, arrays, dtype, width in (
        (rows, [r for _, r in batches], np.dtype(np.int64), None),
        (signatures, [s for s, _ in batches], np.dtype(np.uint8), BINS),
    ):
        with (atomic_open if atomic else open)(path, "wb") as handle:
            _write_npy(handle, arrays, dtype, width)


def load_part_signatures(part: Path, num_rows: int) -> Documents | None:
    """The signatures stored beside the parquet part ``part`` of ``num_rows`` rows (rows numbered in the
    part), or None when there is no file or they cannot be the whole of them (cut short, other shape or
    type, rows unsorted or out of range). The signatures are memory-mapped (read when used)."""
    path, rows_path = signature_files(part)
    if not path.is_file() or not rows_path.is_file():
        return None
    try:
        signatures = np.load(path, mmap_mode="r", allow_pickle=False)
        rows = np.load(rows_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        log.warning("near-duplicate signatures in %s are unreadable (%s): computing them again", path, error)
        return None
    valid = (
        signatures.dtype == np.uint8
        and signatures.ndim == 2
        and signatures.shape[1] == BINS
        and rows.dtype == np.int64
        and rows.shape == (len(signatures),)
        and (len(rows) == 0 or (rows[0] >= 0 and rows[-1] < num_rows and bool(np.all(np.diff(rows) >= 0))))
    )
    if not valid:
        log.warning("near-duplicate signatures in %s do not fit the pool: computing them again", path)
        return None
    return signatures, rows


def concatenate(parts: Iterable[tuple[Documents, int]]) -> Documents:
    """One pair of arrays from parts' ``((signatures, rows), first_row)`` in pool order (rows numbered on
    from ``first_row``): each part is copied once, into arrays allocated once (the bucket walk needs one).
    Parts are copied on threads (numpy copies without the GIL): at 3.0M samples this is half a GB the
    parent reads from the workers' memory-mapped files while every other core waits for the walk."""
    parts = list(parts)
    starts = np.cumsum([0] + [len(rows) for (_, rows), _ in parts])
    signatures, rows = np.empty((starts[-1], BINS), np.uint8), np.empty(starts[-1], np.int64)

    def copy(k: int) -> None:
        (sig, row), first = parts[k]
        at = slice(starts[k], starts[k + 1])
        signatures[at] = sig
        rows[at] = row
        rows[at] += first

    threads = min(os.cpu_count() or 1, len(parts))
    if threads > 1 and signatures.nbytes >= THREADED_BYTES:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(copy, range(len(parts))))
    else:
        for k in range(len(parts)):
            copy(k)
    return signatures, rows


def read_signatures(parts: list[Path]) -> Documents:
    """The signatures an ingest just wrote beside its parquet ``parts`` (in pool order), with pool rows."""
    stored, first = [], 0
    for part in parts:
        num_rows = _rows_of(part)
        found = load_part_signatures(part, num_rows)
        if found is None:
            raise RuntimeError(f"ingest wrote no whole near-duplicate signatures beside {part}")
        stored.append((found, first))
        first += num_rows
    return concatenate(stored)


def compute_signatures(files: list[Path]) -> Documents:
    """The signatures of the long answers in ``files`` (a pool's parquet parts, in pool order)."""
    parts, first = [], 0
    for file in files:
        parts += [(batch, first) for batch in _part_batches(file)]
        first += _rows_of(file)
    return concatenate(parts)


def _rows_of(file: Path) -> int:
    return pq.ParquetFile(file).metadata.num_rows


def _part_batches(file: Path) -> list[Documents]:
    """The signatures of one parquet part per batch (rows numbered in the part)."""
    batches, first = [], 0
    for batch in pq.ParquetFile(file).iter_batches(columns=["conversations"], batch_size=65_536):
        batches.append(document_signatures(batch.column(0), first))
        first += batch.num_rows
    return batches


def pool_signature_parts(root: Path, files: list[Path]) -> list[tuple[Documents, int]]:
    """Per parquet part of an ingested pool (folder ``root``, parts ``files`` in pool order): its signatures
    (rows numbered in the part) and its first pool row. Stored ones, else computed from the part and stored
    for the next time (in an ingested pool's folder only)."""
    parts, first = [], 0
    store = (root / "pool.json").is_file()
    for file in files:
        num_rows = _rows_of(file)
        stored = load_part_signatures(file, num_rows)
        if stored is None:
            batches = _part_batches(file)
            stored = concatenate((part, 0) for part in batches)
            if store:
                try:
                    save_part_signatures(file, batches, atomic=True)
                    for name in OLD_FILES:  # superseded by the part files
                        (root / name).unlink(missing_ok=True)
                except OSError as error:  # a read-only cache: the mix still gets its result
                    log.warning("could not store near-duplicate signatures beside %s (%s)", file, error)
        parts.append((stored, first))
        first += num_rows
    return parts
