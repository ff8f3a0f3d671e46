"""Decontamination: no training split holds a probe image, and ``build --exclude-images`` lists leave them.

A *training split* is the ``train`` split of any config (recipes have only that one; subsets also have
``test``, which holds SVIT's test images and is never trained on). Probe configs record their images
in the build state; :func:`check_decontaminated` reads ``image_id`` of every training split and
refuses the build when one of them holds a probe image.

An exclude list names images to keep out of training (benchmark images such as POPE's COCO val2014
files or LLaVA-Bench's), one per line, ``#`` comments and blank lines ignored:

- ``2345`` or ``vg:2345``: a Visual Genome image id;
- ``coco:123456``, ``COCO_val2014_000000123456.jpg`` or ``000000123456.jpg`` (any folder prefix): a COCO
  image id, mapped to Visual Genome through ``image_data.json``'s ``coco_id``;
- a JSON object per line with an ``image`` file name (POPE's question files), read as above.

Rows in LLaVA format (``mix-665k``) have no ``image_id``: their ``image_file`` is matched instead (COCO
file names by COCO id, ``vg/``/``gqa/`` files by Visual Genome id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from svit_data.errors import InputError, SvitError
from svit_data.splits import TRAIN
from svit_data.state import BuildState, ExclusionState

_COCO_FILE = re.compile(r"(?:COCO_[a-z]+\d{4}_)?(\d{12})\.(?:jpe?g|png)", re.IGNORECASE)
_VG_FOLDER = re.compile(r"(?:^|/)(?:vg|VG_100K(?:_2)?|gqa)(?:/|$)", re.IGNORECASE)
REASON = "its image is in the exclude list {file} (sha256 {sha256})"


def probe_images(state: BuildState) -> set[int]:
    """Images used by the probe configs of a build state."""
    return {
        int(i) for config in state.configs.values() if config.probe is not None for i in config.probe.images
    }


def check_decontaminated(folder: Path, state: BuildState) -> int:
    """Raise when a training split of ``folder`` holds a probe image; return the probe images checked."""
    probes = probe_images(state)
    if not probes:
        return 0
    value_set = pa.array(sorted(probes), pa.int64())
    for name, config in sorted(state.configs.items()):
        split = config.splits.get(TRAIN)
        features = config.features
        if split is None or not {"image_id", "image_file"} & set(features):
            continue
        for file in split.files:
            path = folder / "data" / name / file
            if "image_id" in features:
                ids = pq.read_table(path, columns=["image_id"])["image_id"]
                hits = pc.filter(ids, pc.is_in(ids, value_set=value_set)).to_pylist()
            else:  # LLaVA-format rows name their image by file
                files = pq.read_table(path, columns=["image_file"])["image_file"].to_pylist()
                hits = [
                    i for kind, i in filter(None, map(_image_or_none, files)) if kind == "vg" and i in probes
                ]
            if hits:
                raise SvitError(
                    f"config {name!r}: its train split holds probe image {hits[0]}; probe images "
                    "must never be trained on (build the probes from test images only)"
                )
    return len(probes)


def image_of_file(path: str) -> tuple[str, int] | None:
    """``("coco", id)`` for a COCO file name, ``("vg", id)`` for ``<id>.jpg`` alone or under a VG/GQA folder
    (as LLaVA-format rows name them: ``vg/VG_100K/2345.jpg``, ``gqa/images/2345.jpg``), else None."""
    folder, _, name = path.strip().rpartition("/")
    match = _COCO_FILE.fullmatch(name)
    if match:
        return "coco", int(match.group(1))
    stem, dot, _ = name.rpartition(".")
    if dot and stem.isdigit() and (not folder or _VG_FOLDER.search(folder)):
        return "vg", int(stem)
    return None


def _image_or_none(path: str | None) -> tuple[str, int] | None:
    return image_of_file(path) if path else None


def _parse_token(token: str, path: Path, line: int) -> tuple[str, int]:
    name = token.strip().rsplit("/", 1)[-1]
    lowered = name.lower()
    for prefix, kind in (("vg:", "vg"), ("coco:", "coco")):
        if lowered.startswith(prefix) and name[len(prefix) :].strip().isdigit():
            return kind, int(name[len(prefix) :])
    if name.isdigit():
        return "vg", int(name)
    match = _COCO_FILE.fullmatch(name)
    if match:
        return "coco", int(match.group(1))
    raise InputError(
        f"cannot read {token.strip()!r} as a VG id, 'coco:ID' or a COCO file name",
        file=str(path),
        record=f"line {line}",
    )


@dataclass
class ExcludeList:
    """The images of an exclude file, as Visual Genome ids."""

    file: str
    sha256: str
    listed: int  # entries in the file (distinct)
    vg_ids: set[int]
    coco_ids: set[int] = field(default_factory=set)  # as listed (LLaVA-format rows name COCO files)
    unmatched_coco: int = 0  # COCO ids with no Visual Genome image

    def reason(self) -> str:
        return REASON.format(file=self.file, sha256=self.sha256[:12])


def read_exclude_list(path: str | Path, coco_to_vg: dict[int, int] | None = None) -> ExcludeList:
    """Parse an exclude file; COCO ids need ``coco_to_vg`` (from ``image_data.json``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SvitError(f"cannot read the exclude list {path}: {error.strerror}") from None
    entries: set[tuple[str, int]] = set()
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                raise InputError("malformed JSON", file=str(path), record=f"line {number}") from None
            if not isinstance(record.get("image"), str):
                raise InputError("no image file name", file=str(path), record=f"line {number}", field="image")
            text = record["image"]
        entries.add(_parse_token(text, path, number))
    coco = {i for kind, i in entries if kind == "coco"}
    if coco and coco_to_vg is None:
        raise SvitError(
            f"the exclude list {path} names COCO images: give --image-data (Visual Genome image_data.json) "
            "to map them to Visual Genome ids"
        )
    mapped = {coco_to_vg[i] for i in coco if coco_to_vg and i in coco_to_vg}
    return ExcludeList(
        file=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        listed=len(entries),
        vg_ids={i for kind, i in entries if kind == "vg"} | mapped,
        coco_ids=coco,
        unmatched_coco=len(coco) - len(mapped),
    )


@dataclass
class Exclusion:
    """Drops the rows of excluded images from training splits and counts them per config."""

    excluded: ExcludeList
    removed: dict[str, int] = field(default_factory=dict)

    def _excluded_file(self, path: str | None) -> bool:
        image = _image_or_none(path)
        if image is None:
            return False
        kind, number = image
        return number in (self.excluded.coco_ids if kind == "coco" else self.excluded.vg_ids)

    def _filter(self, config: str, tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        value_set = pa.array(sorted(self.excluded.vg_ids), pa.int64())
        self.removed.setdefault(config, 0)
        for table in tables:
            if "image_id" in table.column_names:
                keep = pc.invert(pc.is_in(table["image_id"], value_set=value_set))
            else:  # LLaVA-format rows: the image file names the image
                keep = pa.array([not self._excluded_file(f) for f in table["image_file"].to_pylist()])
            kept = table.filter(keep)
            self.removed[config] += table.num_rows - kept.num_rows
            yield kept

    def apply(self, config: str, splits: dict[str, Iterable[pa.Table]]) -> dict[str, Iterable[pa.Table]]:
        """``splits`` with excluded images left out of ``train``."""
        if TRAIN not in splits:
            return splits
        return {**splits, TRAIN: self._filter(config, splits[TRAIN])}

    def state(self, config: str, before_selection: int | None = None) -> ExclusionState | None:
        """What the card reports for ``config`` (call after its splits were written); None without a train split.

        ``before_selection``: samples a recipe did not select from because of the list (it keeps its size).
        """
        if config not in self.removed:
            return None
        e = self.excluded
        return ExclusionState(
            file=e.file,
            sha256=e.sha256,
            listed=e.listed,
            images=len(e.vg_ids),
            unmatched_coco=e.unmatched_coco,
            samples_removed=self.removed[config],
            reason=e.reason(),
            before_selection=before_selection,
        )
