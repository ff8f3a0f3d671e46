"""How the pool's parquet parts are written.

Every column is dictionary encoded except the two whose values are (nearly) all different: a sample's
id and a turn's text. For those, the writer would build a dictionary page for every row group only to
find it too big and fall back to plain encoding; leaving them plain saves about a fifth of the writing
time and changes no value read back.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PLAIN_COLUMNS = frozenset({"id", "conversations.list.element.value"})


def leaf_paths(schema: pa.Schema) -> list[str]:
    """The parquet column paths of an arrow schema (``a.b`` for a struct field, ``a.list.element`` inside a list)."""

    def walk(name: str, kind: pa.DataType) -> list[str]:
        if pa.types.is_struct(kind):
            return [
                p
                for i in range(kind.num_fields)
                for p in walk(f"{name}.{kind.field(i).name}", kind.field(i).type)
            ]
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return walk(f"{name}.list.element", kind.value_type)
        return [name]

    return [p for field in schema for p in walk(field.name, field.type)]


def part_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer for one pool part (:data:`PLAIN_COLUMNS` without a dictionary)."""
    return pq.ParquetWriter(
        path, schema, use_dictionary=[p for p in leaf_paths(schema) if p not in PLAIN_COLUMNS]
    )
