"""Third-party records -> pool columns, a batch at a time: the hot path of :func:`svit_data.sources.open_source`.

A batch's turns become columns first; :func:`svit_data.quality.batch.check_batch` then checks them and
computes the complexity signals over whole columns (what ingest of SVIT data does), so that only the
samples it cannot prove clean go through :func:`svit_data.quality.check_sample`. The flags stay those of
:func:`check_record`, the per-sample rule for third-party samples: ``check_sample`` without quota, repairs
or repeat detection (``seen``), less the codes in :data:`NOT_FOR_SOURCES`. Under ``strict`` the batch's
first flagged sample goes through :func:`check_record`, which raises its located error.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa

from svit_data.errors import InputError
from svit_data.formats.record import SourceRecord
from svit_data.quality.batch import BatchCheck, check_batch
from svit_data.quality.samples import check_sample

# Codes that do not apply to third-party samples: their boxes are bare lists in their own frame (no leaked
# coordinates, no repairs); check_record looks for no repeated QA pairs, and check_batch, which does
# (within a record), is told each sample is its own record, so it can only find them within one sample.
NOT_FOR_SOURCES = frozenset({"leaked_coordinates", "box_repaired", "duplicate_qa"})


def check_record(record: SourceRecord, *, strict: bool, file: Path, index: int) -> list[str]:
    """The quality flags of one third-party sample; with ``strict`` the first is a located error."""
    result = check_sample("", record.speakers, record.values, repair=False)
    findings = [f for f in result.findings if f.code not in NOT_FOR_SOURCES]
    if strict and findings:
        first = findings[0]
        where = f"turn {first.turn}" if first.turn is not None else None
        raise InputError(
            f"{first.code}: {first.detail} (--strict makes every flag an error)",
            file=str(file),
            record=index,
            field=where,
        )
    return list(dict.fromkeys(f.code for f in findings))


def _image_size(data: bytes | None, path: Path | None) -> tuple[int | None, int | None]:
    """Width and height from the image header (bytes or file), or unknown."""
    if data is None and (path is None or not path.is_file()):
        return None, None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None, None


@dataclass
class SourceBatch:
    """Records read but not yet written, with where each came from (file, record index in the file)."""

    records: list[SourceRecord] = field(default_factory=list)
    where: list[tuple[Path, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def append(self, file: Path, index: int, record: SourceRecord) -> None:
        self.records.append(record)
        self.where.append((file, index))

    def turns(self) -> tuple[pa.Array, pa.Array, np.ndarray]:
        """Every turn's speaker and text, and each sample's first turn (``offsets``, one more than samples)."""
        records = self.records
        offsets = np.zeros(len(records) + 1, np.int64)
        np.cumsum([len(record.speakers) for record in records], out=offsets[1:])
        froms = pa.array(list(chain.from_iterable(record.speakers for record in records)), pa.string())
        values = pa.array(list(chain.from_iterable(record.values for record in records)), pa.string())
        return froms, values, offsets

    def check(self, froms: pa.Array, values: pa.Array, offsets: np.ndarray, *, strict: bool) -> BatchCheck:
        """The batch's flags (``flagged`` keeps only samples with a flag that applies to sources) and
        signals; under ``strict`` the first flagged sample is a located error."""
        n = len(self.records)
        checked = check_batch(
            "",
            froms,
            values,
            offsets,
            np.arange(n),
            np.full(n, -1, np.int64),
            repair=False,
            leaked_coordinates=False,
        )
        flagged = {}
        for i, codes in checked.flagged.items():
            kept = [code for code in codes if code not in NOT_FOR_SOURCES]
            if kept:
                flagged[i] = kept
        checked.flagged = flagged
        if strict and flagged:
            i = min(flagged)
            file, index = self.where[i]
            check_record(self.records[i], strict=True, file=file, index=index)  # raises the located error
            raise RuntimeError(
                f"{file}: record {index}: the batch check flagged a sample the rule leaves clean"
            )
        return checked

    def table(
        self,
        schema: pa.Schema,
        ids: list[str],
        source: str,
        box_frame: str,
        images_root: Path | None,
        froms: pa.Array,
        offsets: np.ndarray,
        checked: BatchCheck,
    ) -> pa.Table:
        """The batch's pool rows (``schema``: the pool's, :data:`svit_data.schema.POOL_SCHEMA`)."""
        rows = len(self.records)
        images, image_files, widths, heights, source_ids, lists = [], [], [], [], [], []
        for record in self.records:
            first = record.images[0] if record.images else None
            data = record.image_bytes[0] if record.image_bytes else None
            size = (None, None)
            if first:
                size = _image_size(data, images_root / first if images_root else None)
            images.append({"bytes": data, "path": first} if data is not None else None)
            image_files.append(first)
            widths.append(size[0])
            heights.append(size[1])
            source_ids.append(record.source_id)
            lists.append(list(record.images) if record.image_list else None)
        turn = schema.field("conversations").type.value_type
        columns = {
            "id": pa.array(ids, pa.string()),
            "image_id": pa.nulls(rows, pa.int64()),
            "task": pa.array([""] * rows, pa.string()),
            "conversation_index": pa.array(np.zeros(rows, np.int32)),
            "conversations": pa.ListArray.from_arrays(
                pa.array(offsets, pa.int32()),
                pa.StructArray.from_arrays([froms, checked.values], fields=list(turn)),
            ),
            "image": pa.array(images, schema.field("image").type),
            "image_file": pa.array(image_files, pa.string()),
            "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()),
            "provenance": pa.nulls(rows, schema.field("provenance").type),
            "flags": checked.flags(),
            "source": pa.array([source] * rows, pa.string()),
            "source_id": pa.array(source_ids, pa.string()),
            "images": pa.array(lists, schema.field("images").type),
            "box_frame": pa.array([box_frame] * rows, pa.string()),
        }
        for name in ("answer_words", "qa_pairs", "boxes"):
            columns[name] = pa.array(getattr(checked, name), pa.int32())
        return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
