"""The dataset folder: ``DIR/data/<config>/<split>-*.parquet`` + ``DIR/README.md`` + build state.

Building happens in a staging folder beside ``DIR`` (unchanged configs hard-linked in), and the
finished folder replaces ``DIR`` by rename: a failed or killed build leaves the previous folder as it
was. Shard names carry a hash of their bytes, so a rebuilt config gets new file names and the
datasets cache can never serve rows of an older build.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from svit_data.atomic import clean_leftovers, swap_in, temp_path, write_bytes, write_text
from svit_data.configs import CONFIG_NAME_RE
from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows
from svit_data.state import STATE_FILE, BuildState, ConfigState, SplitState, read_state_file

log = logging.getLogger(__name__)

IDS_FILE, MANIFEST_FILE = "ids.txt.gz", "manifest.json"  # a recipe's selection, beside its parquet
ROW_GROUP_BYTES = 64 << 20  # the Hub viewer wants row groups under ~100 MB uncompressed
SHARD_BYTES = 512 << 20


def legacy_features_dict(value: Any) -> Any:
    """``Features.to_dict()`` in the encoding that datasets < 4 also reads, with the same meaning.

    datasets >= 4 writes ``{"_type": "List"}``, unknown to older readers (and to older viewers). A list
    of structs is written as ``[struct]`` and a list of values as ``{"_type": "Sequence"}``: both old
    and new readers decode these to the same types (old ``Sequence`` of a *dict* would mean a dict of
    lists, so it is never used for structs).
    """
    if isinstance(value, dict):
        if value.get("_type") == "List":
            feature = legacy_features_dict(value["feature"])
            if "_type" not in value["feature"]:  # a struct
                return [feature]
            extra = {k: v for k, v in value.items() if k not in ("feature", "_type")}
            return {"feature": feature, **extra, "_type": "Sequence"}
        return {key: legacy_features_dict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [legacy_features_dict(item) for item in value]
    return value


def _parquet_schema(features: Features) -> pa.Schema:
    encoded = legacy_features_dict(features.to_dict())
    meta = {"huggingface": json.dumps({"info": {"features": encoded}})}
    return features.arrow_schema.with_metadata(meta)


class SplitWriter:
    """Writes one split as hash-named parquet shards with viewer-sized row groups and a page index."""

    def __init__(self, folder: Path, split: str, features: Features):
        self.folder, self.split, self.features = folder, split, features
        self.schema = _parquet_schema(features)
        self.num_rows = 0
        self.num_bytes = 0
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        row_bytes = max(1, table.nbytes // table.num_rows)
        rows_per_group = max(1, min(100_000, ROW_GROUP_BYTES // row_bytes))
        if self._writer is None:
            path = self.folder / f".{self.split}-part-{len(self._parts):05d}.parquet"
            self._parts.append(path)
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd", write_page_index=True)
        self._writer.write_table(table, row_group_size=rows_per_group)
        self.num_rows += table.num_rows
        self.num_bytes += table.nbytes
        self._shard_bytes += table.nbytes
        if self._shard_bytes >= SHARD_BYTES:
            self._writer.close()
            self._writer, self._shard_bytes = None, 0

    def close(self) -> list[str]:
        """Rename parts to ``<split>-<k>-of-<n>-<hash>.parquet``; return the final file names."""
        if self._writer is not None:
            self._writer.close()
        names = []
        for k, part in enumerate(self._parts):
            digest = hashlib.sha256(part.read_bytes()).hexdigest()[:10]
            name = f"{self.split}-{k:05d}-of-{len(self._parts):05d}-{digest}.parquet"
            os.replace(part, self.folder / name)
            names.append(name)
        return names


class DatasetFolder:
    """A staged rebuild of a dataset folder; use as a context manager, then :meth:`commit`."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir).resolve()
        self.removed = clean_leftovers(self.out)  # staging of killed builds; puts back a set-aside folder
        if self.out.exists() and not self.out.is_dir():
            raise SvitError(f"output {self.out} exists and is not a folder")
        if self.out.is_dir() and any(self.out.iterdir()) and not (self.out / STATE_FILE).is_file():
            raise SvitError(
                f"output {self.out} is a non-empty folder that svit did not build; choose another --out"
            )
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.stage = temp_path(self.out)
            if self.out.is_dir():
                shutil.copytree(self.out, self.stage, copy_function=os.link)
            else:
                self.stage.mkdir()
        except OSError as error:
            raise SvitError(f"cannot write the output folder {self.out}: {error.strerror}") from None
        staged = self.stage / STATE_FILE
        self.state = read_state_file(staged) if staged.is_file() else BuildState()

    def __enter__(self) -> DatasetFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def write_config(self, rows: ConfigRows, *, source: str) -> dict[str, int]:
        """Write one config (replacing any older build of it) and its state; return rows per split.

        A recipe's sorted ids and manifest go beside its parquet files (``ids.txt.gz``,
        ``manifest.json``): the selection contract travels with the data.
        """
        name = rows.name
        if not CONFIG_NAME_RE.fullmatch(name) or ".." in name:  # callers validate; never leave data/
            raise ValueError(f"unsafe config name {name!r}")
        folder = self.stage / "data" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        split_state = {}
        for split, tables in rows.splits.items():
            writer = SplitWriter(folder, split, rows.features)
            for table in tables:
                writer.write(table)
            files = writer.close()
            if writer.num_rows:
                split_state[split] = SplitState(
                    num_examples=writer.num_rows, num_bytes=writer.num_bytes, files=files
                )
        if not split_state:
            raise SvitError(f"config {name!r} has no rows to write")
        recipe = rows.recipe
        if recipe is not None and rows.ids is not None:
            write_selection(folder, recipe.manifest, rows.ids)
            recipe = dataclasses.replace(recipe, ids_file=f"data/{name}/{IDS_FILE}")
        for file_name, data in rows.extra_files.items():
            write_bytes(folder / file_name, data)
            if recipe is not None and recipe.recipe_file == file_name:
                recipe = dataclasses.replace(recipe, recipe_file=f"data/{name}/{file_name}")
        self.state.configs[name] = ConfigState(
            description=rows.description,
            schema=rows.schema,
            kind=rows.kind,
            source=source,
            features=rows.features.to_dict(),
            columns=list(rows.features),
            splits=split_state,
            tasks=list(rows.tasks),
            pool_fingerprint=rows.pool_fingerprint,
            task_mix=rows.task_mix,
            recipe=recipe,
            probe=rows.probe,
        )
        return {split: s.num_examples for split, s in split_state.items()}

    def commit(self, render_card: Callable[[BuildState], str]) -> Path:
        """Write the card and state, then swap the staged folder into place."""
        card = render_card(self.state)
        # new files, never in place: the staged copies are hard links of the live folder's files
        write_text(self.stage / STATE_FILE, self.state.to_json())
        write_text(self.stage / "README.md", card)
        try:
            swap_in(self.stage, self.out)
        except OSError as error:
            raise SvitError(
                f"cannot replace the output folder {self.out} ({error.strerror}); it was left as it was"
            ) from None
        log.info("wrote %s", self.out)
        return self.out


def write_selection(folder: Path, manifest: Any, ids: list[str]) -> None:
    """``ids.txt.gz`` (sorted ids, one a line) and ``manifest.json`` of a recipe into ``folder``."""
    write_bytes(folder / IDS_FILE, _gzipped(tuple(ids)))
    text = json.dumps(dataclasses.asdict(manifest), indent=2, sort_keys=True, default=_plain)
    write_text(folder / MANIFEST_FILE, text)


@lru_cache(maxsize=1)
def _gzipped(ids: tuple[str, ...]) -> bytes:
    """The id list compressed (level 9, no time stamp: the same bytes for the same ids). A build writes one
    selection twice, to the recipe cache and to the dataset folder: compressed once (0.3 s at 157K ids)."""
    return gzip.compress("".join(f"{i}\n" for i in ids).encode(), mtime=0)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def config_features(config: ConfigState) -> Features:
    """A built config's features in column order (the state file sorts its keys, so order is kept apart)."""
    features = Features.from_dict(config.features)
    order = [c for c in config.columns if c in features]
    return Features({name: features[name] for name in order + [c for c in features if c not in order]})


def read_state(folder: str | Path) -> BuildState:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise SvitError(f"{folder} is not a dataset folder built by svit (no {STATE_FILE})")
    return read_state_file(path)


def config_files(folder: str | Path, config: str) -> dict[str, list[Path]]:
    state = read_state(folder)
    if config not in state.configs:
        raise SvitError(
            f"config {config!r} is not built in {folder}; built: {', '.join(state.configs) or 'none'}"
        )
    base = Path(folder) / "data" / config
    return {split: [base / f for f in s.files] for split, s in state.configs[config].splits.items()}
