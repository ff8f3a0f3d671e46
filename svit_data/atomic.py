"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of one.

Everything is written under a temporary sibling name, ``.<name>.tmp-<pid>-<token>``, and renamed
into place when complete. A folder that is replaced goes aside as ``.<name>.old-<pid>-<token>``
for the instant between its two renames. On failure the temporary path is removed; a killed
process (SIGKILL, power loss) can leave one behind, and :func:`clean_leftovers` removes those whose
process is gone. ``.gitignore`` matches both names.

``durable=True`` also fsyncs the data and the folder entry, so the rename survives a machine crash.
Use it where a crash must not lose work that cost money or hours (LLM replies, checkpoints);
caches and outputs that can be rebuilt skip it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

TEMP, ASIDE = "tmp", "old"
LEGACY = "building"  # staging folders of dataset builds before this module existed


def temp_path(path: str | Path, kind: str = TEMP) -> Path:
    """A fresh hidden sibling name for ``path``: ``.<name>.<kind>-<pid>-<token>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            with open(Path(root) / name, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(root))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", *, durable: bool = False, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` when the block ends.

    If the block raises (or is interrupted), ``path`` is left as it was and the temporary file is
    removed. ``mode`` is ``"w"`` or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp = temp_path(path)
    handle = open(tmp, mode.replace("w", "x"), encoding=None if "b" in mode else encoding)
    try:
        with handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_open(path, "wb", durable=durable) as handle:
        handle.write(data)


def write_text(path: str | Path, text: str, *, durable: bool = False, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_open(path, "w", durable=durable, encoding=encoding) as handle:
        handle.write(text)


def swap_in(stage: Path, path: Path, *, durable: bool = False) -> None:
    """Rename the complete folder ``stage`` onto ``path``; an existing ``path`` is removed afterwards.

    The old folder goes aside first (two renames); a process killed between them leaves it as
    ``.<name>.old-...``, which :func:`clean_leftovers` puts back.
    """
    if durable:
        _fsync_tree(stage)
    old = temp_path(path, ASIDE)
    if path.exists():
        os.replace(path, old)
    try:
        os.replace(stage, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    if durable:
        _fsync_dir(path.parent)
    _remove(old)


@contextmanager
def staged_folder(path: str | Path, *, durable: bool = False, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block ends it replaces ``path`` as a whole.

    If the block raises, ``path`` is left as it was and the temporary folder is removed. With
    ``keep_existing``, a ``path`` that exists when the block ends (another process finished first)
    is kept and the staged copy is dropped: for caches whose content is determined by their name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    stage = temp_path(path)
    stage.mkdir()
    try:
        yield stage
        if not (keep_existing and path.exists()):
            swap_in(stage, path, durable=durable)
    finally:
        _remove(stage)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without signalling)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except OverflowError:
        return False
    return True


def _leftover_re(name: str) -> re.Pattern[str]:
    # the leading dot is optional: caches (pools, matrices, the sample) used "<name>.tmp-<pid>" before
    return re.compile(rf"\.?{re.escape(name)}\.({TEMP}|{ASIDE}|{LEGACY})-(\d+)(?:-[0-9a-f]+)?")


def clean_leftovers(path: str | Path) -> list[Path]:
    """Remove what killed writers left beside ``path``; return the removed paths.

    Temporary and set-aside siblings whose process is gone are removed, except that a set-aside
    folder is put back when ``path`` itself is missing (its writer died between the two renames
    of :func:`swap_in`). Siblings of live processes are left alone: they are being written now.
    Process ids are local to a machine, so do not share one output folder between machines while
    they write to it.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _leftover_re(path.name)
    found = []
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not process_alive(int(match.group(2))):
            found.append((match.group(1), entry))
    asides = sorted((e for kind, e in found if kind == ASIDE), key=lambda e: e.stat().st_mtime)
    if asides and not path.exists():
        os.replace(asides[-1], path)
        log.warning("restored %s from an interrupted write", path)
        found = [(kind, e) for kind, e in found if e != asides[-1]]
    removed = []
    for _, entry in sorted(found, key=lambda item: item[1].name):
        try:
            _remove(entry)
        except OSError as error:
            log.warning("could not remove %s, left by a killed run: %s", entry, error.strerror)
            continue
        removed.append(entry)
    if removed:
        log.warning(
            "removed %d leftover%s of killed runs beside %s: %s",
            len(removed),
            "" if len(removed) == 1 else "s",
            path,
            ", ".join(e.name for e in removed),
        )
    return removed
