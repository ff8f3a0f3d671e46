"""sha1 of a file's bytes, remembered by the file's identity and change times.

A warm build hashed all of its source JSON (2.1 GB at 3.0M samples, 1-3 s) only to find the pool it had
cached. The digest is now kept under ``$SVIT_CACHE/file-digests/``, keyed by the file's resolved path,
device, inode, size, mtime and ctime (nanoseconds): writing to a file moves its mtime and ctime (ctime
cannot be set back, not even by ``touch -d`` or ``os.utime``), and a file replaced by another (a copy
renamed over it) has another inode, so a changed file is hashed again. A file changed less than
:data:`RACY_SECONDS` before it is hashed is not remembered: on file systems with coarse timestamps a
second write within the same tick would keep the times (git's "racily clean" rule). On Windows, where
``st_ctime`` is the creation time, only a same-size edit that also sets the mtime back would go unnoticed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from svit_data import paths
from svit_data.atomic import write_text

log = logging.getLogger(__name__)

RACY_SECONDS = 2
FOLDER = "file-digests"


def _identity(path: Path) -> tuple[str, os.stat_result]:
    stat = path.stat()
    text = f"{path.resolve()}\0{stat.st_dev}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest(), stat


def hash_file(path: Path) -> bytes:
    """sha1 (a cache key, not a security check: about 3x faster than sha256 on GBs of JSON) of the bytes."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.digest()


def cached_hash(path: Path) -> bytes:
    """:func:`hash_file` of ``path``, read from the cache when the file is unchanged since it was hashed."""
    key, stat = _identity(path)
    remembered = paths.cache_dir() / FOLDER / key[:2] / key
    try:
        known = bytes.fromhex(remembered.read_text())
    except (OSError, ValueError):  # not remembered (or damaged from outside): hash it
        known = b""
    if len(known) == hashlib.sha1(usedforsecurity=False).digest_size:
        return known
    digest = hash_file(path)
    changed = max(stat.st_mtime_ns, stat.st_ctime_ns)
    if time.time_ns() - changed >= RACY_SECONDS * 1_000_000_000 and _identity(path)[0] == key:
        try:
            remembered.parent.mkdir(parents=True, exist_ok=True)
            write_text(remembered, digest.hex())
        except OSError as error:  # a cache that cannot take it costs the next build a hash, not this one
            log.debug("cannot remember the digest of %s: %s", path, error)
    return digest
