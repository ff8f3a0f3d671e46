"""Near-duplicate signatures kept with an ingested pool, so that a mix of pools finds near-duplicates across
its sources without signing every long answer again.

A long answer's signature (:func:`svit_data.quality.near_duplicates.document_signatures`) depends on its
text alone, not on the other samples of the pool. Ingest signs every long answer anyway (to find the
pool's own near-duplicates), so it also writes the signatures and their pool rows into the pool's folder
(:data:`SIGNATURES_FILE` and :data:`ROWS_FILE`, staged with the parquet parts: a pool folder has them all
or none). A mixed pool (:mod:`svit_data.mixed_pool`) reads each source's files (memory-mapped, copied once
into the mix's array) and walks their buckets once.

A pool ingested before this file existed, or whose file cannot be read whole (cut short, another shape,
rows out of the pool's range, the two files of different lengths), has its signatures computed again from
its parquet parts, once: they are then stored (atomic writes), so the next mix reads them. The names carry
:data:`SIGNATURES_VERSION`: a change of the signature rule changes them, and old files are ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from svit_data.atomic import atomic_open
from svit_data.quality.minhash import BINS
from svit_data.quality.near_duplicates import Documents, document_signatures, stack

log = logging.getLogger(__name__)

SIGNATURES_VERSION = "1"
SIGNATURES_FILE = f"near-signatures-v{SIGNATURES_VERSION}.npy"
ROWS_FILE = f"near-rows-v{SIGNATURES_VERSION}.npy"


def save_signatures(folder: Path, documents: Documents) -> None:
    """Write ``documents`` into ``folder`` (a pool's folder, or its staging folder during ingest)."""
    signatures, rows = documents
    for name, array in ((ROWS_FILE, rows), (SIGNATURES_FILE, signatures)):
        with atomic_open(folder / name, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def load_signatures(folder: Path, num_rows: int) -> Documents | None:
    """The signatures stored in ``folder`` for a pool of ``num_rows`` rows, or None when there is no file
    or they cannot be the whole of them (cut short, other shape or type, rows unsorted or out of range).
    The signatures are memory-mapped (read when used)."""
    path = folder / SIGNATURES_FILE
    if not path.is_file() or not (folder / ROWS_FILE).is_file():
        return None
    try:
        signatures = np.load(path, mmap_mode="r", allow_pickle=False)
        rows = np.load(folder / ROWS_FILE, allow_pickle=False)
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


def compute_signatures(files: list[Path]) -> Documents:
    """The signatures of the long answers in ``files`` (a pool's parquet parts, in pool order)."""
    parts, first = [], 0
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(columns=["conversations"], batch_size=65_536):
            parts.append(document_signatures(batch.column(0), first))
            first += batch.num_rows
    return stack(parts)


def pool_signatures(root: Path, files: list[Path], num_rows: int) -> Documents:
    """The signatures of an ingested pool (folder ``root``, parquet parts ``files``): stored ones, else
    computed from the parts and stored for the next time (in an ingested pool's folder only)."""
    stored = load_signatures(root, num_rows)
    if stored is not None:
        return stored
    documents = compute_signatures(files)
    if (root / "pool.json").is_file():
        try:
            save_signatures(root, documents)
        except OSError as error:  # a read-only cache: the mix still gets its result
            log.warning("could not store near-duplicate signatures in %s (%s)", root, error)
    return documents
