"""Where svit keeps its caches: ``$SVIT_CACHE``, else ``$XDG_CACHE_HOME/svit``, else ``~/.cache/svit``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("SVIT_CACHE"):
        return Path(os.environ["SVIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "svit"
