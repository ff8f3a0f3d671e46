"""What the Hub dataset viewer needs from a config's parquet files, checked from the files alone.

The viewer reads parquet directly when the files are "viewer-ready": row groups small enough to
load one at a time (about 100 MB uncompressed at most), a page index so it can seek within a row
group, at most 30 splits per config, features declared in the file, and images stored as bytes
(a path alone points to a file the viewer does not have).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

MAX_ROW_GROUP_BYTES = 100 << 20
MAX_SPLITS_PER_CONFIG = 30


@dataclass
class ParquetReport:
    """Facts about one parquet file that decide whether the viewer can show it."""

    path: Path
    num_rows: int = 0
    row_groups: int = 0
    max_row_group_bytes: int = 0
    page_index: bool = True
    features: dict | None = None
    images_with_bytes: int = 0
    images_path_only: int = 0
    problems: list[str] = field(default_factory=list)


def _image_columns(features: dict | None) -> list[str]:
    if not features:
        return []
    return [name for name, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image"]


def inspect_parquet(path: Path) -> ParquetReport:
    """Read a parquet file's footer (and its image columns) and list what breaks the viewer limits."""
    report = ParquetReport(Path(path))
    try:
        file = pq.ParquetFile(path)
    except (OSError, ValueError) as error:
        report.problems.append(f"{path.name}: not a readable parquet file ({error})")
        return report
    meta = file.metadata
    report.num_rows, report.row_groups = meta.num_rows, meta.num_row_groups
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        report.max_row_group_bytes = max(report.max_row_group_bytes, group.total_byte_size)
        if group.num_columns and not all(group.column(j).has_offset_index for j in range(group.num_columns)):
            report.page_index = False
    if report.max_row_group_bytes > MAX_ROW_GROUP_BYTES:
        report.problems.append(
            f"{path.name}: a row group holds {report.max_row_group_bytes / 2**20:.0f} MB uncompressed; "
            f"the viewer needs at most {MAX_ROW_GROUP_BYTES >> 20} MB"
        )
    if not report.page_index:
        report.problems.append(f"{path.name}: written without a page index")
    hf_meta = (file.schema_arrow.metadata or {}).get(b"huggingface")
    if hf_meta is None:
        report.problems.append(f"{path.name}: declares no features (no 'huggingface' schema metadata)")
    else:
        report.features = json.loads(hf_meta).get("info", {}).get("features")
    for column in _image_columns(report.features):
        for batch in file.iter_batches(columns=[column], batch_size=4096):
            images = batch.column(0)
            present = pc.invert(pc.is_null(images))
            has_bytes = pc.invert(pc.is_null(pc.struct_field(images, "bytes")))
            report.images_with_bytes += pc.sum(pc.and_(present, has_bytes)).as_py() or 0
            report.images_path_only += pc.sum(pc.and_(present, pc.invert(has_bytes))).as_py() or 0
    if report.images_path_only:
        report.problems.append(
            f"{path.name}: {report.images_path_only} images are stored as paths only; embed their bytes"
        )
    return report


def split_count_problems(config: str, splits: Iterable[str]) -> list[str]:
    """The viewer shows at most 30 splits per config, and split names may not contain dashes."""
    splits = list(splits)
    problems = []
    if len(splits) > MAX_SPLITS_PER_CONFIG:
        problems.append(
            f"config {config!r} has {len(splits)} splits; the viewer shows at most {MAX_SPLITS_PER_CONFIG}"
        )
    problems += [f"config {config!r}: split name {s!r} contains a dash" for s in splits if "-" in s]
    return problems
