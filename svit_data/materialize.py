"""From the pool to a config's rows: filter by task, ids and split, and embed image bytes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Features

from svit_data.configs import SVIT_SCHEMA, ConfigSpec
from svit_data.errors import SvitError
from svit_data.pool import Pool
from svit_data.schema import FEATURES
from svit_data.splits import TEST, TRAIN, test_image_ids
from svit_data.state import ProbeState, RecipeState
from svit_data.tasks import TASKS


def _test_mask(table: pa.Table) -> pa.Array:
    return pc.is_in(table["image_id"], value_set=pa.array(sorted(test_image_ids()), pa.int64()))


def filter_split(table: pa.Table, split: str | None) -> pa.Table:
    if split is None:
        return table
    mask = _test_mask(table)
    return table.filter(mask if split == TEST else pc.invert(mask))


@lru_cache(maxsize=512)
def _read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SvitError(f"cannot read image {path}: {error.strerror}") from None


def embed_images(table: pa.Table, images_root: Path | None) -> pa.Table:
    """Fill the ``image`` column with the bytes of ``images_root / image_file`` where that file exists."""
    if images_root is None or table.num_rows == 0:
        return table
    files = table["image_file"].to_pylist()
    embedded = table["image"].to_pylist()  # third-party parquet sources carry their image bytes
    values = []
    for name, image in zip(files, embedded, strict=True):
        path = images_root / name if name and image is None else None
        values.append({"bytes": _read_image(str(path)), "path": name} if path and path.is_file() else image)
    column = pa.array(values, type=table.schema.field("image").type)
    return table.set_column(table.schema.get_field_index("image"), "image", column)


def select_rows(
    pool: Pool,
    *,
    tasks: Iterable[str] | None = None,
    ids: Iterable[str] | None = None,
    rows: np.ndarray | None = None,
    split: str | None = None,
    batch_size: int = 8_192,
) -> Iterator[pa.Table]:
    """Pool rows in pool order, restricted to ``tasks``, ``ids``, ``rows`` (a mask over the pool's rows,
    as :func:`check_ids` returns it) and ``split``, with images embedded.

    The wanted rows are found once, as positions in the pool (one pass over the ``id``, ``task`` and
    ``image_id`` columns the filters need); each batch then ``take``s its sorted positions, and a row
    group with none is never decoded."""
    needed = [name for name, used in (("id", ids), ("task", tasks), ("image_id", split)) if used is not None]
    columns = pool.table(needed or ["task"])
    keep = np.ones(columns.num_rows, bool) if rows is None else rows.copy()
    if tasks is not None:
        task_set = pa.array(sorted(set(tasks)), pa.string())
        keep &= pc.is_in(columns["task"], value_set=task_set).to_numpy(zero_copy_only=False)
    if ids is not None:
        id_set = pa.array(sorted(set(ids)), pa.string())
        keep &= pc.is_in(columns["id"], value_set=id_set).to_numpy(zero_copy_only=False)
    if split is not None:
        test = _test_mask(columns).to_numpy(zero_copy_only=False)
        keep &= test if split == TEST else ~test
    del columns
    wanted_groups = []  # (file, its metadata, row group, first pool row, wanted rows in the group)
    start = 0
    for file in pool.files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            wanted = np.flatnonzero(keep[start : start + rows])
            if len(wanted):
                wanted_groups.append((file, metadata, group, start, wanted))
            start += rows
    for table, wanted in _read_ahead(pool, wanted_groups):
        for first in range(0, len(wanted), batch_size):
            part = table.take(pa.array(wanted[first : first + batch_size]))
            yield embed_images(part, pool.images_root)


READ_AHEAD = 2  # row groups decoded at once, on threads (decoding holds no GIL; a group is ~50K rows)


def _read_group(pool: Pool, file: Path, metadata: pq.FileMetaData, group: int, first: int) -> pa.Table:
    # configs carry the sample columns (flags included, with the pool-wide near-duplicate flags that
    # iter_batches adds), not the pool's signals
    table = pq.ParquetFile(file, metadata=metadata).read_row_group(group, columns=list(FEATURES))
    return pool.add_pool_flags(table, first)


def _read_ahead(pool: Pool, groups: list) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The row groups ``groups`` decoded in order, up to :data:`READ_AHEAD` of them at once: one
    group's text column is most of its decoding, so groups side by side keep both cores busy."""
    with ThreadPoolExecutor(READ_AHEAD) as executor:
        pending: deque = deque()
        for file, metadata, group, first, wanted in groups:
            pending.append((executor.submit(_read_group, pool, file, metadata, group, first), wanted))
            if len(pending) > READ_AHEAD:
                future, rows = pending.popleft()
                yield future.result(), rows
        while pending:
            future, rows = pending.popleft()
            yield future.result(), rows


def check_ids(pool: Pool, ids: list[str]) -> np.ndarray:
    """Raise if ``ids`` is not sorted and unique or names samples missing from the pool; else the mask of
    the pool rows they name (for :func:`select_rows`' ``rows``: the pool's ids are read once)."""
    array = np.asarray(ids, dtype=object)
    if len(array) > 1 and not all(a < b for a, b in zip(array[:-1], array[1:], strict=False)):
        raise ValueError("selection ids must be sorted and unique")
    pool_ids = pool.table(["id"])["id"]
    if not ids:
        return np.zeros(len(pool_ids), bool)
    # the pool's ids looked up among the (fewer) selected ones: a hash table of the selection, not of
    # the pool; the distinct pool ids found are the selected ids the pool holds
    mask = pc.is_in(pool_ids, value_set=pa.array(ids, pa.string()))
    missing = len(ids) - pc.count_distinct(pool_ids.filter(mask)).as_py()
    if missing:
        raise SvitError(f"{missing} selected ids are not in the pool")
    return mask.to_numpy(zero_copy_only=False)


SPLITS_OF_POOL = (TRAIN, TEST)


@dataclass
class ConfigRows:
    """What a config builder hands the dataset folder: rows per split plus what the card shows.

    The folder turns it into a :class:`svit_data.state.ConfigState` (adding features, splits, source).
    """

    name: str
    description: str
    features: Features
    splits: dict[str, Iterable[pa.Table]]
    kind: str
    schema: str = SVIT_SCHEMA
    tasks: list[str] = field(default_factory=list)
    pool_fingerprint: str | None = None
    task_mix: dict[str, int] | None = None
    recipe: RecipeState | None = None
    ids: list[str] | None = None  # a recipe's sorted ids, written beside its data
    probe: ProbeState | None = None  # a probe config's construction and counts
    extra_files: dict[str, bytes] = field(default_factory=dict)  # written beside the data (a recipe file)


def _task_filter(tasks: Iterable[str]) -> list[str] | None:
    return None if set(TASKS) <= set(tasks) else list(tasks)


def subset_rows(pool: Pool, spec: ConfigSpec) -> ConfigRows:
    """A subset config: the pool's samples of ``spec.tasks``, split into train and test by image."""
    return ConfigRows(
        name=spec.name,
        description=spec.description,
        features=FEATURES,
        # a config of every task (full) also keeps third-party samples, whose task is empty
        splits={
            split: select_rows(pool, tasks=_task_filter(spec.tasks), split=split) for split in SPLITS_OF_POOL
        },
        kind=spec.kind,
        tasks=list(spec.tasks),
        pool_fingerprint=pool.fingerprint,
        task_mix={task: pool.counts[task] for task in spec.tasks if task in pool.counts},
    )
