"""Work that rides along ingest: a sidecar sees every batch of pool rows while ingest still holds it.

A computation over every sample of a pool (the recipes' concept matrix) would otherwise read the pool's
parquet again after ingest wrote it. Ingest hands each batch it writes (the arrow table of its pool rows)
to :meth:`BatchSidecar.batch` in the process that built it, a spawned worker as often as not: the sidecar
travels to the worker inside the job and must pickle, and so must what it returns. The parts come back
with the job's result; once the pool is in place, :func:`finish` gives them to :meth:`BatchSidecar.finish`
in pool order, each with the pool row of its first row.

Core defines the protocol only. The recipe engine implements it
(:class:`svit_data.recipes.match_at_ingest.MatchAtIngest`) and the build passes it down
(``open_sources`` -> ``open_pool`` / ``open_source``), so ingest never imports the recipe engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    from svit_data.pool import Pool

log = logging.getLogger(__name__)


class BatchSidecar(Protocol):
    """Per-batch work during ingest, then one step over every batch's part once the pool is written."""

    def batch(self, table: pa.Table, first_row: int) -> Any:
        """The part of one batch of pool rows (``first_row``: its first row's number among the rows the
        job writes, numbered from 0 in the job's parquet file); it must pickle."""

    def finish(self, parts: list[tuple[int, Any]], pool: Pool) -> None:
        """Use every batch's part, in pool order with the pool row of its first row, once ``pool`` is
        written (not called when ingest fails)."""


def finish(sidecar: BatchSidecar | None, parts: list[tuple[int, Any]] | None, pool: Pool) -> None:
    """:meth:`BatchSidecar.finish` on the parts of a pool ingested now (``parts`` None: the pool came
    from the cache, nothing to do). A disk error there leaves the pool as it is: whatever the sidecar
    would have written is computed again by whoever needs it."""
    if sidecar is None or parts is None:
        return
    try:
        sidecar.finish(parts, pool)
    except OSError as error:
        log.warning("pool %s: what ingest computed alongside was not saved (%s)", pool.fingerprint, error)


def pool_parts(per_job: Iterable[tuple[int, list[tuple[int, Any]]]]) -> list[tuple[int, Any]]:
    """The parts of several jobs in pool order: ``per_job`` holds each job's first pool row and its parts
    (rows numbered from 0 in the job), in pool order."""
    return [(start + row, part) for start, parts in per_job for row, part in parts]
