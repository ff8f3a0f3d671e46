"""The manifest of a built recipe: what went in (hashes, parameters, seed) and what came out.

Two runs with the same pool fingerprint, vocabulary hash, parameters and seed give the same ids, so
``ids_sha256`` (sha256 of the sorted ids joined by newlines, with a trailing newline) identifies the
selection. The manifest and the id list are also written next to each other under
``$SVIT_CACHE/recipes/<config>/<ids_sha256[:16]>/`` (``manifest.json``, ``ids.txt.gz``).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

from svit_data import paths
from svit_data.errors import SvitError
from svit_data.folder import write_selection
from svit_data.state import Manifest


def ids_sha256(ids: list[str]) -> str:
    """sha256 of the ids, each followed by a newline (one encode of the joined text: UTF-8 of a
    concatenation is the concatenation of the parts' UTF-8)."""
    return hashlib.sha256(("\n".join(ids) + "\n").encode() if ids else b"").hexdigest()


def make_manifest(
    *,
    pool_fingerprint: str,
    vocabulary_hash: str,
    parameters: dict[str, Any],
    seed: int,
    ids: list[str],
    counts: dict[str, Any],
) -> Manifest:
    return Manifest(
        pool_fingerprint=pool_fingerprint,
        vocabulary_hash=vocabulary_hash,
        parameters=parameters,
        seed=seed,
        ids_sha256=ids_sha256(ids),
        counts=counts,
    )


def write_manifest(config: str, manifest: Manifest, ids: list[str]) -> Path:
    """Write ``manifest.json`` and ``ids.txt.gz`` atomically; return their folder."""
    folder = paths.cache_dir() / "recipes" / config / manifest.ids_sha256[:16]
    folder.mkdir(parents=True, exist_ok=True)
    write_selection(folder, manifest, ids)  # the files a dataset folder holds beside a recipe's data
    return folder


def read_ids(folder: str | Path) -> list[str]:
    return gzip.decompress((Path(folder) / "ids.txt.gz").read_bytes()).decode().split()


def load_ids(path: str | Path) -> list[str]:
    """A user-given id list (``.gz`` or plain text, one id a line), which must be sorted and unique."""
    path = Path(path)
    try:
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
    except OSError as error:
        raise SvitError(f"cannot read the id list {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SvitError(f"{path}: the id list is not UTF-8 text, one id a line") from None
    ids = text.split()
    for line, (a, b) in enumerate(zip(ids, ids[1:], strict=False), start=2):
        if not a < b:
            raise SvitError(f"{path}: line {line}: ids must be sorted and unique ({b!r} after {a!r})")
    return ids
