"""The LLM client: any OpenAI-compatible base URL, through the async openai SDK or, for plain ``http://``
endpoints (local replicas), through :mod:`~svit_data.builders.http11`'s keep-alive client, which costs a
fraction of the SDK's CPU per request; both paths classify replies and errors the same way.

Everything around the HTTP call is ours (the SDK runs with ``max_retries=0``): the response cache is
consulted first and written the moment an answer arrives; a semaphore bounds concurrency; the
:class:`RateLimiter` meters requests and tokens and learns from ``x-ratelimit-*`` headers; 429 and 5xx
replies, timeouts, dropped connections and empty replies are retried with exponential backoff that honours
``Retry-After``; 401/403 stop the run at once with a clear message, without retrying.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from svit_data.builders._deps import require
from svit_data.builders.cache import ResponseCache
from svit_data.builders.http11 import HttpConnectionError, HttpTimeout, KeepAlivePool, usable_for
from svit_data.builders.llm import ChatRequest, ChatResult, ImagesRejected, LLMFatalError, RequestFailed
from svit_data.builders.ratelimit import RateLimiter, parse_duration
from svit_data.builders.tokens import TokenCounter
from svit_data.builders.vision import TokenDrift
from svit_data.errors import ConfigError

log = logging.getLogger(__name__)
# a 400 on a request with an image part whose message says this: the model cannot read images
_IMAGE_REFUSAL = re.compile(r"image|multimodal|vision", re.IGNORECASE)


@dataclass(frozen=True)
class ClientConfig:
    base_url: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "OpenAI-compatible base URL (none: api.openai.com); repeat it for several endpoints "
            "(e.g. vLLM replicas): requests go to the one with the fewest in flight, each with its own "
            "limits, and a failing one is paused (a single string is accepted too)"
        },
    )
    api_key: str = field(default="EMPTY", metadata={"help": "API key sent as a bearer token"})
    concurrency: int = field(default=16, metadata={"help": "requests in flight at most"})
    rpm: float | None = field(default=None, metadata={"help": "client-side requests/min limit"})
    tpm: float | None = field(
        default=None, metadata={"help": "client-side tokens/min limit (input + max_tokens)"}
    )
    timeout: float = field(default=120.0, metadata={"help": "seconds before one HTTP request times out"})
    max_retries: int = field(default=6, metadata={"help": "retries of one request after a transient error"})
    backoff: float = field(default=1.0, metadata={"help": "first backoff in seconds; doubles per retry"})
    max_backoff: float = field(default=60.0, metadata={"help": "longest backoff in seconds"})
    endpoint_pause: float = field(
        default=30.0,
        metadata={"help": "seconds a failing endpoint is left out when several --base-url are given"},
    )

    def __post_init__(self) -> None:
        if self.base_url is None or isinstance(self.base_url, str):  # one URL, as library callers pass it
            object.__setattr__(self, "base_url", (self.base_url,) if self.base_url else ())
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError("max_retries must be >= 0 and timeout > 0")

    @property
    def url(self) -> str | None:
        """The first (or only) base URL; None for api.openai.com."""
        return self.base_url[0] if self.base_url else None


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    return parse_duration(value) if value else None


class OpenAIChat:
    """:class:`~svit_data.builders.llm.ChatModel` on the openai SDK; see the module docstring."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        cache: ResponseCache | None = None,
        limiter: RateLimiter | None = None,
        counter: TokenCounter | None = None,
        transport: str = "auto",
    ):
        """``transport="sdk"`` sends through the SDK even to http:// (tests and benchmarks of that path)."""
        if transport not in ("auto", "sdk"):
            raise ValueError(f"transport must be 'auto' or 'sdk', got {transport!r}")
        openai = require("openai")
        self.openai = openai
        self.config = config
        self.client = openai.AsyncOpenAI(
            base_url=config.url, api_key=config.api_key, max_retries=0, timeout=config.timeout
        )
        self._response_type = raw_response_type()
        self._pool = (
            KeepAlivePool(config.url, _headers(config.api_key, self.client), config.timeout)
            if transport == "auto" and usable_for(config.url)
            else None
        )
        self.cache = cache
        self.limiter = limiter or RateLimiter(config.rpm, config.tpm)
        self.counter = counter
        self.stats: Counter[str] = Counter()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._fatal: LLMFatalError | None = None
        self.drift = TokenDrift()

    def estimate_tokens(self, request: ChatRequest) -> int:
        counter = self.counter or TokenCounter(request.model)
        self.counter = counter
        return request.prompt_tokens(counter) + request.max_tokens

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The cached answer, else the API's; a fatal error stops every later call without sending."""
        if self._fatal is not None:
            raise self._fatal
        try:
            return await self._complete(request)
        except LLMFatalError as exc:
            self._fatal = exc
            raise

    async def _complete(self, request: ChatRequest) -> ChatResult:
        if self.cache is not None:
            cached = self.cache.get(request.key)
            if cached is not None:
                self.stats["cache_hits"] += 1
                return cached
        estimate = self.estimate_tokens(request) if self.limiter.tokens is not None else 0
        last_error = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
            await self.limiter.acquire(estimate)
            result, delay, error = await self._attempt(request, attempt)
            if result is not None:
                break
            last_error = error
            if attempt < self.config.max_retries:
                await asyncio.sleep(delay if delay is not None else self._backoff(attempt))
        else:
            raise self._give_up(last_error)
        self.stats["input_tokens"] += result.input_tokens
        self.stats["output_tokens"] += result.output_tokens
        if request.image is not None:  # the image rule is an estimate: compare it with the bill
            self.drift.observe(self.estimate_tokens(request) - request.max_tokens, result.input_tokens)
        if self.cache is not None:
            self.cache.put(request, result)
        return result

    async def _attempt(
        self, request: ChatRequest, attempt: int
    ) -> tuple[ChatResult | None, float | None, str]:
        """One HTTP round trip: (result, None, "") or (None, delay before the retry or None, reason).

        An empty reply counts as a failed attempt, except on the last one. Errors that no retry can fix
        raise (LLMFatalError for the whole run, RequestFailed for this request).
        """
        openai = self.openai
        try:
            async with self._semaphore:
                if self._fatal is not None:  # another request found the endpoint unusable meanwhile
                    raise self._fatal
                self.stats["requests"] += 1
                status, headers, content = await self._post(request)
            if status >= 400:
                return None, *self._failure(status, headers, _error_text(content), request, attempt)
            self.limiter.observe(headers)
            result = self._result(json.loads(content), headers)  # a dict: cheaper than the SDK's models
        except openai.APIStatusError as exc:
            return None, *self._failure(
                exc.status_code, exc.response.headers, _message(exc), request, attempt
            )
        except (HttpTimeout, openai.APITimeoutError):
            self.stats["timeouts"] += 1
            return None, None, f"timed out after {self.config.timeout}s"
        except (HttpConnectionError, openai.APIConnectionError) as exc:
            self.stats["connection_errors"] += 1
            return None, None, f"connection error: {exc.__cause__ or exc}"
        except (openai.APIError, ValueError, KeyError, IndexError, TypeError) as exc:
            self.stats["bad_responses"] += 1  # APIResponseValidationError, unparsable JSON and the like
            return None, None, f"malformed response: {exc!r}"
        if result.text.strip() or attempt == self.config.max_retries:
            return result, None, ""
        self.stats["empty_replies"] += 1
        return None, None, "empty reply"

    async def _post(self, request: ChatRequest) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of one POST; errors statuses too, except on the SDK path (it raises)."""
        if self._pool is not None:
            reply = await self._pool.post("/chat/completions", _json_bytes(request.body()))
            return reply.status, reply.headers, reply.body
        # the SDK's documented raw call (README, "Undocumented endpoints"): the body as it is, the response
        # unparsed. Errors map as for .create(), but it skips the typed-params transform and the models
        raw = await self.client.post("/chat/completions", cast_to=self._response_type, body=request.body())
        return raw.status_code, raw.headers, raw.content

    def _failure(
        self, status: int, headers: Mapping[str, str], message: str, request: ChatRequest, attempt: int
    ) -> tuple[float | None, str]:
        """(delay before the retry or None, reason) of a retryable error reply; raise for the others."""
        if status == 401:
            raise LLMFatalError(
                f"{self._where()} rejected the API key (401): {message}; set a valid key (--api-key-env)"
            )
        if status == 403:
            raise LLMFatalError(f"{self._where()} denied access (403): {message}")
        if status == 404:
            raise LLMFatalError(
                f"{self._where()} has no chat completions for model {request.model!r} (404): {message}"
            )
        if status == 429:
            self.stats["429"] += 1
            delay = _retry_after(headers) or self._backoff(attempt)
            self.limiter.pause(delay)
            return delay, f"429 rate limited: {message}"
        self.stats[str(status)] += 1
        if request.image is not None and status == 400 and _IMAGE_REFUSAL.search(message):
            raise ImagesRejected(
                f"model {request.model!r} at {self._where()} does not take images (HTTP 400: "
                f"{message}); drop --send-image or choose a vision model",
                where=self._where(),
                reply=message,
            )
        if status < 500 and status not in (408, 409):
            raise RequestFailed(f"HTTP {status}: {message}")
        return _retry_after(headers), f"HTTP {status}: {message}"

    def _give_up(self, last_error: str) -> Exception:
        self.stats["failed"] += 1
        if (
            last_error.startswith("connection error")
            and self.stats["requests"] == self.stats["connection_errors"]
        ):
            return EndpointDown(f"cannot reach {self._where()}: {last_error}")
        kind = "rate_limited" if last_error.startswith("429") else "transient"
        return RequestFailed(f"gave up after {self.config.max_retries + 1} attempts: {last_error}", kind)

    def _result(self, completion: dict, headers) -> ChatResult:
        if not isinstance(completion, dict) or not completion.get("choices"):
            raise ValueError("response has no choices")
        return result_from_completion(completion, headers.get("x-request-id") or completion.get("id") or "")

    def _backoff(self, attempt: int) -> float:
        return min(self.config.max_backoff, self.config.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def _where(self) -> str:
        return f"the API at {self.config.url or 'api.openai.com'}"

    def resume(self) -> None:
        """Accept requests again after an EndpointDown (several endpoints: a paused one is retried later)."""
        if isinstance(self._fatal, EndpointDown):
            self._fatal = None

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await self.client.close()


class EndpointDown(LLMFatalError):
    """Every attempt to reach this endpoint failed to connect: fatal for one endpoint, not for several."""


def result_from_completion(completion, request_id: str) -> ChatResult:
    """A ChatResult from an SDK ``ChatCompletion`` (or a dict of the same shape, from batch output)."""
    if isinstance(completion, dict):
        choice, usage = completion["choices"][0], completion.get("usage") or {}
        return ChatResult(
            choice["message"].get("content") or "",
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            request_id,
            choice.get("finish_reason") or "stop",
        )
    choice, usage = completion.choices[0], completion.usage
    return ChatResult(
        choice.message.content or "",
        int(getattr(usage, "prompt_tokens", 0) or 0),
        int(getattr(usage, "completion_tokens", 0) or 0),
        request_id,
        choice.finish_reason or "stop",
    )


def _headers(api_key: str, client) -> dict[str, str]:
    """What the SDK sends that an OpenAI-compatible server reads: the key, JSON, organization and project."""
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "svit",
    }
    if client.organization:
        headers["OpenAI-Organization"] = client.organization
    if client.project:
        headers["OpenAI-Project"] = client.project
    return headers


def _json_bytes(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _error_text(content: bytes) -> str:
    """The ``error.message`` of an error reply's JSON body, else its text (shortened)."""
    try:
        body = json.loads(content)
    except ValueError:
        return content[:300].decode("utf-8", "replace").strip() or "(empty body)"
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(error)[:300]


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))


def raw_response_type() -> type:
    """The ``Response`` class of the HTTP library the installed openai SDK is built on.

    ``client.post(path, cast_to=<that class>, body=...)`` is the SDK's documented raw call, but the SDK
    names the class only through its HTTP library, which changed (httpx until openai 2.x, httpx2 since).
    Rather than guess import names, it is read from the SDK's public ``DefaultAsyncHttpxClient`` (a
    subclass of that library's ``AsyncClient``). tests/builders/test_ratelimit.py fails if this breaks.
    """
    import openai

    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__[1:] if c.__name__ == "AsyncClient")
    return sys.modules[base.__module__.split(".")[0]].Response
