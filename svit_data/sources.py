"""Third-party sources in the pool: ``--source NAME=PATH`` specs, their ingest, and mixed pools.

A third-party source (LLaVA, ShareGPT, messages or the_cauldron data; see
:mod:`svit_data.formats.sources`) is ingested into pool parquet like SVIT data, cached by a fingerprint
of its files, name, format and box frame. Its rows have ``task`` empty, ``image_id`` null, ``source``
= the source's name, ``source_id`` = the record's own id and ``id`` = ``<name>/<n>`` (``n`` counts
the source's records from 0 in file order; unique even where the source repeats an id). Several
sources (SVIT and third-party) make one mixed pool: their parquet files side by side.

Every third-party sample goes through the quality checks (:func:`svit_data.source_batches.check_record`:
the rules of :func:`svit_data.quality.check_sample`, run a batch at a time by
:func:`svit_data.quality.batch.check_batch` as for SVIT data): problems become ``flags``, counted in
``pool.quality`` under the task label ``none``; ``strict`` makes the first one a located error.
Third-party boxes are bare ``[x1, y1, x2, y2]`` lists in the source's declared frame, so
``leaked_coordinates`` (a box in an SVIT task without boxes) does not apply to them, and no box is
repaired (repairs assume the 0-1 original frame). Near-duplicate signatures
(:mod:`svit_data.quality.near_duplicates`) are computed per batch at ingest and confirmed over the whole
source (:mod:`svit_data.source_ingest`, which also splits one large file among processes); the pass runs
once more over a mixed pool in pool order (cached by the mix's fingerprint), so a third-party answer that
templates an SVIT one (or another source's) is flagged ``near_duplicate``; the first copy in pool order
stays clean.

``hf://datasets/OWNER/NAME[@rev][/config]`` reads a Hub dataset: without a config part, a repo holding
SVIT's task files is SVIT's release (:func:`svit_data.pool.open_pool`); anything else is a third-party
source made of every .json, .jsonl and .parquet file of the repo (or of its ``config`` folder),
downloaded into the Hub cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svit_data import paths
from svit_data.errors import InputError, SvitError
from svit_data.file_digest import cached_hash
from svit_data.formats.sources import SOURCE_FORMATS, check_format, detect_format, source_files
from svit_data.frames import check_frame
from svit_data.ingest_sidecar import BatchSidecar, finish
from svit_data.mixed_pool import merge_pools
from svit_data.pool import HUB_PREFIX, Pool, open_pool
from svit_data.schema import POOL_SCHEMA
from svit_data.source_ingest import SourceJob, ingest_source
from svit_data.tasks import ALL_TASKS_FILE, SVIT_SOURCE, TASK_FILES
from svit_data.verified import attach_verdicts

log = logging.getLogger(__name__)

SOURCES_VERSION = "3"  # 2: flags and complexity signals; 3: near-duplicates within the source
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SourceSpec:
    """One source of a build: ``path`` read as ``format`` (None: detected) with boxes in ``box_frame``
    (None: the format's default)."""

    name: str
    path: str
    format: str | None = None
    box_frame: str | None = None

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise SvitError(
                f"source name {self.name!r} must start with a letter or digit and hold only letters, "
                "digits, '_', '.' and '-'"
            )
        if self.format is not None:
            check_format(self.format)
        if self.box_frame is not None:
            check_frame(self.box_frame)

    @property
    def is_svit(self) -> bool:
        return self.format is None and is_svit_path(self.path)


def hub_parts(path: str) -> tuple[str, str]:
    """``hf://datasets/OWNER/NAME[@rev][/config]`` -> (``OWNER/NAME[@rev]``, ``config`` or "")."""
    parts = path[len(HUB_PREFIX) :].strip("/").split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def is_svit_path(path: str) -> bool:
    """SVIT data: the bundled sample, a Hub repo without a config part (the release, unless its files
    say otherwise: :func:`open_sources` checks), or a folder of SVIT task files."""
    if path == "sample":
        return True
    if path.startswith(HUB_PREFIX):
        return not hub_parts(path)[1]
    folder = Path(path)
    names = [*TASK_FILES.items(), ("", ALL_TASKS_FILE)]
    return folder.is_dir() and any(
        (folder / name).is_file() or (folder / "data" / name).is_file() or (task and (folder / task).is_dir())
        for task, name in names
    )


def parse_source(text: str, *, format: str | None = None, box_frame: str | None = None) -> SourceSpec:
    """``NAME=PATH`` or ``PATH`` (named after the file stem; ``svit`` for SVIT data)."""
    name, sep, path = text.partition("=")
    if not sep or "/" in name or name.startswith("hf:"):
        path, name = text, ""
    if not name:
        svit = format is None and is_svit_path(path)
        name = SVIT_SOURCE if svit else Path(path.rstrip("/").partition("@")[0]).stem
    return SourceSpec(name, path, format, box_frame)


def _hash_files(files: list[Path]) -> str:
    """Each file's name and content digest; the digests are remembered (:mod:`svit_data.file_digest`), so a
    warm build of a 0.9 GB source no longer reads it (about 0.5 s) only to find its cached pool."""
    digest = hashlib.sha1(usedforsecurity=False)
    for file in files:
        digest.update(file.name.encode() + cached_hash(file))
    return digest.hexdigest()


def open_source(
    spec: SourceSpec,
    *,
    images: str | Path | None = None,
    progress: bool = True,
    strict: bool = False,
    sidecar: BatchSidecar | None = None,
) -> Pool:
    """Ingest one third-party source once (cached by fingerprint) and return its pool; ``sidecar`` sees
    every batch when it is ingested now (:mod:`svit_data.ingest_sidecar`)."""
    hub = spec.path.startswith(HUB_PREFIX)
    path = hub_folder(spec.path) if hub else Path(spec.path)
    with _hub_names(spec.path if hub else None, path):
        return _open_local(spec, path, images=images, progress=progress, strict=strict, sidecar=sidecar)


@contextmanager
def _hub_names(hub_path: str | None, local: Path) -> Iterator[None]:
    """Errors about a Hub source's files name them by their ``hf://`` path, not by their place in the
    Hub cache (which the user never gave)."""
    try:
        yield
    except InputError as error:
        if hub_path is None or error.file is None or not Path(error.file).is_relative_to(local):
            raise
        name = f"{hub_path.rstrip('/')}/{Path(error.file).relative_to(local).as_posix()}"
        raise InputError(error.message, file=name, record=error.record, field=error.field) from None


def _open_local(
    spec: SourceSpec,
    path: Path,
    *,
    images: str | Path | None,
    progress: bool,
    strict: bool,
    sidecar: BatchSidecar | None = None,
) -> Pool:
    files = source_files(path)
    fmt = spec.format or detect_format(files[0])
    frame = spec.box_frame or SOURCE_FORMATS[fmt].box_frame
    images_root = Path(images) if images else None
    key_text = json.dumps([SOURCES_VERSION, spec.name, fmt, frame, str(images_root), _hash_files(files)])
    key = "src-" + hashlib.sha1(key_text.encode(), usedforsecurity=False).hexdigest()[:16]
    root = paths.cache_dir() / "pools" / key
    parts = None
    if not (root / "pool.json").is_file():
        job = SourceJob(spec.name, path, fmt, frame, images_root, root, POOL_SCHEMA, strict, sidecar)
        parts = ingest_source(job, root)
    meta = json.loads((root / "pool.json").read_text())
    quality = meta["quality"]
    if strict and quality["flagged"]:
        code, ids = next(iter(quality["examples"].items()))
        raise SvitError(
            f"source {spec.name}: sample {ids[0]} is flagged {code!r} (and {quality['flagged'] - 1:,} more "
            "flagged samples); --strict makes every flag an error"
        )
    log.info(
        "source %s: %s records read as %s, boxes in the %s frame", spec.name, f"{meta['rows']:,}", fmt, frame
    )
    pool = Pool(
        root=root,
        files=[root / name for name in meta["files"]],
        fingerprint=key,
        counts={},
        images_root=images_root,
        source=spec.path,
        source_counts={spec.name: meta["rows"]},
        formats={spec.name: fmt},
        quality=quality,
        near_duplicates=np.array(meta.get("near_duplicates", []), np.int64),
    )
    finish(sidecar, parts, pool)
    return pool


HUB_SKIP = frozenset({"dataset_info.json", "dataset_infos.json"})  # Hub metadata, not records


def hub_folder(path: str) -> Path:
    """The local folder (Hub cache) of the data files (.json, .jsonl, .parquet) of a third-party
    ``hf://datasets/OWNER/NAME[@rev][/config]`` source: every data file under the ``config`` folder."""
    from svit_data.formats.sources import SOURCE_SUFFIXES
    from svit_data.hub_source import download, has_released_files, repo_files

    repo, config = hub_parts(path)
    files = repo_files(repo)
    prefix = f"{config}/" if config else ""
    data = [
        f
        for f in files
        if f.startswith(prefix) and Path(f).suffix in SOURCE_SUFFIXES and Path(f).name not in HUB_SKIP
    ]
    if not data:
        what = f"folder {config!r} of dataset {repo}" if config else f"dataset {repo}"
        svit = "" if config or has_released_files(files) else "none of the SVIT task files and "
        raise SvitError(f"{what} has {svit}no {', '.join(SOURCE_SUFFIXES)} data files")
    local = download(repo, data)
    root = Path(str(local[0])[: -len(data[0])])
    log.info("source %s: %s data files downloaded to %s", path, len(data), root / config)
    return root / config


def _hub_release(spec: SourceSpec) -> bool:
    """Whether an hf:// source without a config part holds SVIT's released task files."""
    from svit_data.hub_source import has_released_files, repo_files

    return has_released_files(repo_files(hub_parts(spec.path)[0]))


def open_sources(
    specs: list[SourceSpec],
    *,
    images: str | Path | None = None,
    image_data: str | Path | None = None,
    progress: bool = True,
    repair: bool = True,
    strict: bool = False,
    sidecar: BatchSidecar | None = None,
) -> Pool:
    """One pool over every source: SVIT sources through :func:`open_pool`, the others through
    :func:`open_source`; the parquet files side by side, the fingerprint over all of them. ``sidecar``
    sees the batches of every source ingested now (:mod:`svit_data.ingest_sidecar`)."""
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SvitError(
            f"source name {repeated[0]!r} is given twice; name each source differently (NAME=PATH)"
        )
    pools = []
    for spec in specs:
        svit = spec.is_svit
        if svit and spec.path.startswith(HUB_PREFIX) and not _hub_release(spec):
            svit = False  # a third-party Hub dataset: named after the repo unless NAME= was given
            if spec.name == SVIT_SOURCE:
                name = hub_parts(spec.path)[0].split("/")[1].partition("@")[0]
                if name in names:
                    raise SvitError(
                        f"source name {name!r} (of {spec.path}) is given twice; name it with NAME=PATH"
                    )
                spec = SourceSpec(name, spec.path, spec.format, spec.box_frame)
        if svit:
            pools.append(
                open_pool(
                    spec.path,
                    images=images,
                    image_data=image_data,
                    progress=progress,
                    repair=repair,
                    strict=strict,
                    name=spec.name,
                    sidecar=sidecar,
                )
            )
        else:
            pools.append(open_source(spec, images=images, progress=progress, strict=strict, sidecar=sidecar))
    # verdicts of svit-recipe verify, kept per pool fingerprint, become flags (svit_data.verified)
    return attach_verdicts(pools[0] if len(pools) == 1 else merge_pools(pools))
