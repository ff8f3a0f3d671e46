"""What a builder needs from an LLM: one chat request in, one result out. Implementations are injected."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from svit_data.errors import SvitError


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    params: tuple[tuple[str, Any], ...] = ()  # sampling parameters, sorted by name

    @classmethod
    def build(cls, model: str, messages: list[dict[str, str]], **params: Any) -> ChatRequest:
        return cls(
            model,
            tuple((m["role"], m["content"]) for m in messages),
            tuple(sorted((k, v) for k, v in params.items() if v is not None)),
        )

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def body(self) -> dict[str, Any]:
        return {"model": self.model, "messages": self.message_dicts(), **dict(self.params)}

    @property
    def key(self) -> str:
        """Cache key: a hash of model, messages and sampling parameters."""
        return hashlib.sha256(
            json.dumps(self.body(), sort_keys=True, ensure_ascii=False).encode()
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


class RequestFailed(Exception):
    """One request failed after its retries; the run records it and goes on (a rerun tries again)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
