"""The concept matrix computed while the pool is ingested, so that a cold build reads no parquet to match.

:func:`~svit_data.recipes.matching.match_pool` reads every sample's text back from the pool's parquet;
on a cold build that read (and its decoding) is about a third of matching's CPU. :class:`MatchAtIngest`
is an ingest sidecar (:mod:`svit_data.ingest_sidecar`): each ingest process matches every batch it has
just built, from the arrow table still in memory, with the same :func:`~svit_data.recipes.matching.match_batch`;
once the pool is written, the batches' results are stacked in pool order
(:func:`~svit_data.recipes.matching.assembled`, as :func:`~svit_data.recipes.matching.compute_matrix`
does) and saved where ``match_pool`` looks first (:func:`~svit_data.recipes.matching.cache_path`). A
sample's row depends on that sample alone, so how ingest splits the pool into batches and processes
does not change the matrix. A pool that was cached already, or another vocabulary, is matched by
``match_pool`` as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from svit_data.pool import Pool
from svit_data.recipes.matching import (
    COLUMNS,
    FormTable,
    _BatchResult,
    assembled,
    cache_key,
    cache_path,
    match_batch,
    save,
)
from svit_data.recipes.vocabulary import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class MatchedBatch:
    """One ingest batch matched, and the CPU time its process spent on it (the benchmarks report it)."""

    result: _BatchResult
    cpu: float  # thread CPU seconds: the match itself, and the vocabulary's tables when built for it


class MatchAtIngest:
    """The ingest sidecar that matches every batch against ``vocabulary`` (see the module's docstring).

    It travels to the ingest's spawned workers inside their jobs: only the vocabulary is pickled; the
    vocabulary's tables (:class:`~svit_data.recipes.matching.FormTable`) are built where first needed.
    """

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self._forms: FormTable | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["vocabulary"])

    def batch(self, table: pa.Table, first_row: int) -> MatchedBatch:
        start = time.thread_time()
        if self._forms is None:
            self._forms = FormTable(self.vocabulary)
        rows = pa.RecordBatch.from_arrays([table[name].combine_chunks() for name in COLUMNS], names=COLUMNS)
        result = match_batch(rows, self._forms, len(self.vocabulary.concepts))
        return MatchedBatch(result, time.thread_time() - start)

    def finish(self, parts: list[tuple[int, MatchedBatch]], pool: Pool) -> None:
        """Stack the batches in pool order and cache the matrix (unless a matrix is cached already)."""
        folder = cache_path(pool, self.vocabulary)
        if (folder / "meta.json").is_file():
            return
        row = 0
        for first, part in parts:
            if first != row:
                raise RuntimeError(f"an ingest batch starts at pool row {first}, {row} rows after the last")
            row += part.result.matrix.shape[0]
        if row != pool.num_rows:
            raise RuntimeError(f"ingest matched {row} samples of a pool of {pool.num_rows}")
        cpu = sum(part.cpu for _, part in parts)
        matched = assembled(
            [part.result for _, part in parts], self.vocabulary, cache_key(pool, self.vocabulary)
        )
        save(matched, folder)
        log.info(
            "concept matrix matched during ingest: %s samples x %d concepts in %.1f s of the ingest's CPU "
            "(cached in %s)",
            f"{matched.num_rows:,}",
            len(matched.concepts),
            cpu,
            folder,
        )
