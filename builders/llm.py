"""What a builder needs from an LLM: one chat request in, one result out. Implementations are injected."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from svit_data.builders.tokens import TokenCounter
from svit_data.builders.vision import ImageInput
from svit_data.errors import SvitError


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    params: tuple[tuple[str, Any], ...] = ()  # sampling parameters, sorted by name
    image: ImageInput | None = None  # sent as an image_url part of message ``image_turn``
    image_turn: int = -1  # index of the user message holding the record's context

    @classmethod
    def build(
        cls, model: str, messages: list[dict[str, str]], image: ImageInput | None = None, **params: Any
    ) -> ChatRequest:
        """The image, if any, joins the last message (the context turn; re-asks are appended later)."""
        return cls(
            model,
            tuple((m["role"], m["content"]) for m in messages),
            tuple(sorted((k, v) for k, v in params.items() if v is not None)),
            image,
            len(messages) - 1 if image is not None else -1,
        )

    def message_dicts(self) -> list[dict[str, str]]:
        """Text-only messages (token counts add :attr:`image_tokens`)."""
        return [{"role": role, "content": content} for role, content in self.messages]

    @property
    def image_tokens(self) -> int:
        return self.image.tokens if self.image is not None else 0

    def prompt_tokens(self, counter: TokenCounter) -> int:
        """Estimated input tokens: the messages' exact text tokens plus the image's rule-based tokens."""
        return counter.count_messages(self.message_dicts()) + self.image_tokens

    def body(self, *, inline_images: bool = True) -> dict[str, Any]:
        """The request body; ``inline_images=False`` names images by digest (cache keys and rows)."""
        messages: list[dict[str, Any]] = self.message_dicts()  # type: ignore[assignment]
        if self.image is not None:
            text = messages[self.image_turn]["content"]
            messages[self.image_turn] = {
                "role": messages[self.image_turn]["role"],
                "content": [{"type": "text", "text": text}, self.image.part(inline=inline_images)],
            }
        return {"model": self.model, "messages": messages, **dict(self.params)}

    @cached_property  # a request is looked up, stored and checked several times: hash it once
    def key(self) -> str:
        """Cache key: a hash of model, messages (images by digest) and sampling parameters."""
        return hashlib.sha256(
            json.dumps(self.body(inline_images=False), sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()

    @property
    def max_tokens(self) -> int:
        params = dict(self.params)
        return int(params.get("max_tokens") or params.get("max_completion_tokens") or 0)


@dataclass(frozen=True)
class ChatResult:
    text: str
    input_tokens: int
    output_tokens: int
    request_id: str
    finish_reason: str = "stop"
    from_cache: bool = field(default=False, compare=False)


class ChatModel(Protocol):
    # counters the run reports and shows in its progress bar (requests, retries, "429", input_tokens, ...)
    stats: Counter[str]

    async def complete(self, request: ChatRequest) -> ChatResult: ...


class LLMFatalError(SvitError):
    """The LLM endpoint cannot serve this run (bad key, unknown model, unreachable): stop at once."""


class ImagesRejected(LLMFatalError):
    """The endpoint refused a request's image parts (HTTP 400): the model does not take images.

    ``where`` names the endpoint and ``reply`` is the server's message, for callers that word it their way."""

    def __init__(self, message: str, *, where: str = "", reply: str = ""):
        super().__init__(message)
        self.where, self.reply = where, reply


class RequestFailed(Exception):
    """One request failed after its retries; the run records it and goes on (a rerun tries again)."""

    def __init__(self, reason: str, kind: str = "permanent"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # "permanent" (4xx), "transient" (5xx, timeouts, connections) or "rate_limited"
