"""Images for vision teachers: find them, send them as data URLs, count their tokens as OpenAI bills GPT-4o.

Token rule of the GPT-4o family (OpenAI's published vision pricing):

- ``low``: a fixed 85 tokens, whatever the size;
- ``high``: the image is scaled down to fit in 2048 x 2048, then scaled down so its short side is at most
  768 px; each 512-px tile of the result costs 170 tokens, plus 85 (1024 x 1024 -> 768 x 768 -> 4 tiles
  -> 765 tokens);
- ``auto``: the server picks; we count it as ``high`` so an estimate never undercounts.

Servers with other rules (vLLM, other model families) take ``--image-tokens N``: every image counts N.
The estimate feeds the dry run, the tokens/min limiter and the cost cap; :class:`TokenDrift` compares it
with the ``usage.prompt_tokens`` servers return and warns once when they disagree.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DETAILS = ("low", "high", "auto")
LOW_TOKENS = 85
BASE_TOKENS = 85
TILE_TOKENS = 170
TILE_PX = 512
FIT_PX = 2048
SHORT_SIDE_PX = 768
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def image_tokens(width: int, height: int, detail: str, override: int | None = None) -> int:
    """Input tokens of one image; see the module docstring for the rule."""
    if override is not None:
        return override
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    if detail == "low":
        return LOW_TOKENS
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    w, h = float(width), float(height)
    fit = min(1.0, FIT_PX / max(w, h))
    w, h = w * fit, h * fit
    shrink = min(1.0, SHORT_SIDE_PX / min(w, h))
    w, h = w * shrink, h * shrink
    tiles = math.ceil(round(w, 6) / TILE_PX) * math.ceil(round(h, 6) / TILE_PX)
    return TILE_TOKENS * tiles + BASE_TOKENS


@dataclass(frozen=True)
class ImageInput:
    """One image attached to a request: where its bytes are, how it is sent and what it costs."""

    path: str
    detail: str
    tokens: int
    digest: str  # sha256 of the file: the cache key names the image by it, not by its base64

    def data_url(self) -> str:
        mime = MIME.get(Path(self.path).suffix.lower(), "image/jpeg")
        return f"data:{mime};base64," + base64.b64encode(Path(self.path).read_bytes()).decode("ascii")

    def part(self, *, inline: bool = True) -> dict[str, Any]:
        """The OpenAI ``image_url`` content part (``inline=False``: the digest instead of the bytes)."""
        url = self.data_url() if inline else f"sha256:{self.digest}"
        return {"type": "image_url", "image_url": {"url": url, "detail": self.detail}}


class ImageUnavailable(Exception):
    """The image of a record is missing or does not decode: the record is skipped and counted."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class ImageFinder:
    """``<image_id>.<ext>`` anywhere below ``root`` (as ``build --images`` finds them) -> :class:`ImageInput`."""

    def __init__(self, root: str | Path, detail: str, override: int | None = None):
        from svit_data.pool import index_images

        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
        self.root, self.detail, self.override = Path(root), detail, override
        self.index = index_images(self.root)
        self._inputs: dict[int | str, ImageInput | ImageUnavailable] = {}

    def get(self, image_id: int) -> ImageInput:
        """The image of ``image_id``; raises :class:`ImageUnavailable` (remembered) when it cannot be sent."""
        found = self._inputs.get(image_id)
        if found is None:
            found = self._inputs[image_id] = self._load(image_id)
        if isinstance(found, ImageUnavailable):
            raise found
        return found

    def get_file(self, relative: str) -> ImageInput:
        """The image file ``relative`` below the root (records that name a file, not a VG image id)."""
        found = self._inputs.get(relative)
        if found is None:
            path = self.root / relative
            found = self._inputs[relative] = (
                self._read(path)
                if path.is_file()
                else ImageUnavailable("image_missing", f"no {relative} below {self.root}")
            )
        if isinstance(found, ImageUnavailable):
            raise found
        return found

    def _load(self, image_id: int) -> ImageInput | ImageUnavailable:
        relative = self.index.get(image_id)
        if relative is None:
            return ImageUnavailable("image_missing", f"no {image_id}.jpg (or .png/.webp) below {self.root}")
        return self._read(self.root / relative)

    def _read(self, path: Path) -> ImageInput | ImageUnavailable:
        from PIL import Image, UnidentifiedImageError

        try:
            data = path.read_bytes()
            with Image.open(path) as image:
                image.load()  # decode fully: a truncated file fails here, not at the server
                width, height = image.size
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            return ImageUnavailable("image_unreadable", f"{path} does not decode: {exc}")
        tokens = image_tokens(width, height, self.detail, self.override)
        return ImageInput(str(path), self.detail, tokens, hashlib.sha256(data).hexdigest())


class TokenDrift:
    """Estimated vs server-reported prompt tokens over the last ``window`` calls; warns once past ``threshold``."""

    def __init__(self, window: int = 20, threshold: float = 0.10):
        self.window, self.threshold = window, threshold
        self.pairs: deque[tuple[int, int]] = deque(maxlen=window)
        self.warned: tuple[int, int] | None = None

    def observe(self, estimate: int, reported: int) -> bool:
        """Record one call; True when this call triggered the (single) warning."""
        if reported <= 0 or self.warned is not None:
            return False
        self.pairs.append((estimate, reported))
        if len(self.pairs) < self.window:
            return False
        est = sum(e for e, _ in self.pairs)
        got = sum(r for _, r in self.pairs)
        if abs(est - got) / got <= self.threshold:
            return False
        self.warned = (est, got)
        log.warning(
            "image token estimate is off: the last %d requests were estimated at %d prompt tokens but the "
            "server reported %d (%+.0f%%); costs and limits follow the estimate (set --image-tokens)",
            len(self.pairs),
            est,
            got,
            100 * (got - est) / est if est else 100.0,
        )
        return True
