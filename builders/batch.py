"""OpenAI Batch API mode: requests as JSONL, upload, create, poll, download, merge into the cache.

A batch id is stored in the cache database the moment the batch is created, and its input JSONL is
kept under ``batch_dir``; a restarted process finds open batches there, polls them instead of submitting
again, and merges their answers into the response cache.

The window between ``batches.create`` and storing its id is closed by an intent: before uploading, the
input's SHA-256, its keys and its file path are stored; the uploaded file id is added as soon as it is
known, and the batch is created with the hash in its ``metadata``. A restarted process first settles every
intent left behind: it lists the account's batches (newest first, back to the intent's time) for one whose
metadata carries the hash or whose ``input_file_id`` is the intent's file, and adopts it; only when there
is none does it create the batch (uploading again only if no file id was stored). A kill at any point
therefore never pays for a batch twice. After that the normal pipeline runs on the
cache alone (:class:`CacheOnly`): every answered request becomes a record; a request the batch failed
becomes a ``request_failed`` rejection and is submitted again by the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from svit_data.atomic import write_bytes
from svit_data.builders._deps import require
from svit_data.builders.cache import ResponseCache
from svit_data.builders.cost import Budget
from svit_data.builders.llm import ChatRequest, ChatResult, LLMFatalError, RequestFailed
from svit_data.builders.openai_client import ClientConfig, result_from_completion
from svit_data.builders.tokens import TokenCounter

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # OpenAI's per-batch limit
MAX_BYTES = 190 * 1024 * 1024  # under the 200 MB input file limit
TERMINAL = {"completed", "failed", "expired", "cancelled"}
INTENT_KEY = "svit_input_sha256"  # batch metadata: the SHA-256 of the input JSONL
LOOKUP_SLACK = 3600.0  # seconds of clock difference tolerated when listing batches back to an intent


class CacheOnly:
    """A ChatModel that answers from the cache and never sends (used after the batches are merged)."""

    def __init__(self, cache: ResponseCache):
        self.cache = cache
        self.stats: Counter[str] = Counter()

    async def complete(self, request: ChatRequest) -> ChatResult:
        result = self.cache.get(request.key)
        if result is None:
            self.stats["missing"] += 1
            raise RequestFailed("no answer from the batch (failed or expired); the next run submits it again")
        self.stats["cache_hits"] += 1
        return result


class BatchRunner:
    def __init__(
        self,
        config: ClientConfig,
        cache: ResponseCache,
        batch_dir: str | Path,
        *,
        budget: Budget | None = None,
        counter: TokenCounter | None = None,
        poll_interval: float = 30.0,
    ):
        openai = require("openai")
        self.openai = openai
        self.client = openai.AsyncOpenAI(
            base_url=config.url,
            api_key=config.api_key,
            max_retries=config.max_retries,
            timeout=config.timeout,
        )
        self.cache, self.batch_dir = cache, Path(batch_dir)
        self.budget, self.counter, self.poll_interval = budget, counter, poll_interval
        self.stats: Counter[str] = Counter()

    async def submit(self, requests: Iterable[ChatRequest]) -> list[str]:
        """Submit every request not answered and not already in an open batch; return the new batch ids.

        Intents left by a killed process are settled first (adopted or created), so their requests
        count as batched.
        """
        await self._settle_intents()
        skip = self.cache.batched_keys()
        batch_ids, lines, keys, size = [], [], [], 0
        for request in requests:
            key = request.key
            if key in skip or key in self.cache:
                continue
            skip.add(key)
            if self.budget is not None and self.counter is not None:
                self.budget.reserve(request.prompt_tokens(self.counter), request.max_tokens)
            line = json.dumps(
                {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": request.body()},
                ensure_ascii=False,
            )
            if lines and (len(lines) >= MAX_REQUESTS or size + len(line) > MAX_BYTES):
                batch_ids.append(await self._create(lines, keys))
                lines, keys, size = [], [], 0
            lines.append(line)
            keys.append(key)
            size += len(line) + 1
        if lines:
            batch_ids.append(await self._create(lines, keys))
        return batch_ids

    async def _create(self, lines: list[str], keys: list[str]) -> str:
        data = ("\n".join(lines) + "\n").encode()
        digest = hashlib.sha256(data).hexdigest()
        path = self.batch_dir / f"input-{digest[:24]}.jsonl"
        _write_bytes(path, data)
        self.cache.add_intent(digest, str(path), keys)  # before anything is sent
        return await self._fulfil(digest, path, data, keys, None)

    async def _settle_intents(self) -> None:
        for digest, input_path, keys, file_id, created in self.cache.intents():
            path = Path(input_path)
            found = await self._find_batch(digest, file_id, created)
            if found is not None:
                self.cache.add_batch(found.id, found.input_file_id, str(path), keys, intent=digest)
                self.stats["batches_adopted"] += 1
                log.info("adopted batch %s, created before the last run stopped", found.id)
                continue
            if not path.exists():  # its input is gone and no batch exists: the requests go out again
                self.cache.drop_intent(digest)
                continue
            await self._fulfil(digest, path, path.read_bytes(), keys, file_id)

    async def _find_batch(self, digest: str, file_id: str | None, since: float):  # -> Batch | None
        try:
            async for batch in self.client.batches.list(limit=100):
                if batch.created_at < since - LOOKUP_SLACK:
                    break
                if (batch.metadata or {}).get(INTENT_KEY) == digest or (
                    file_id is not None and batch.input_file_id == file_id
                ):
                    return batch
        except self.openai.AuthenticationError as exc:
            raise LLMFatalError(f"the Batch API rejected the API key ({exc.status_code})") from exc
        return None

    async def _fulfil(
        self, digest: str, path: Path, data: bytes, keys: list[str], file_id: str | None
    ) -> str:
        """Upload (unless ``file_id``) and create the batch of an intent; store it, dropping the intent."""
        try:
            if file_id is None:
                uploaded = await self.client.files.create(file=("svit-batch.jsonl", data), purpose="batch")
                file_id = uploaded.id
                self.cache.set_intent_file(digest, file_id)
            batch = await self.client.batches.create(
                input_file_id=file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"source": "svit", INTENT_KEY: digest},
            )
        except self.openai.AuthenticationError as exc:
            raise LLMFatalError(f"the Batch API rejected the API key ({exc.status_code})") from exc
        self.cache.add_batch(batch.id, file_id, str(path), keys, intent=digest)
        self.stats["batches_created"] += 1
        self.stats["batched_requests"] += len(keys)
        log.info("created batch %s with %d requests", batch.id, len(keys))
        return batch.id

    async def collect(self) -> None:
        """Poll every open batch until it ends; merge its answers into the cache."""
        for batch_id, input_path, _ in self.cache.open_batches():
            while True:
                batch = await self.client.batches.retrieve(batch_id)
                if batch.status in TERMINAL:
                    break
                log.info("batch %s: %s", batch_id, batch.status)
                await asyncio.sleep(self.poll_interval)
            if batch.output_file_id:
                await self._merge(batch_id, batch.output_file_id, Path(input_path))
            if batch.status != "completed":
                log.warning(
                    "batch %s ended %s; its unanswered requests go into the next run", batch_id, batch.status
                )
            self.cache.set_batch_status(batch_id, batch.status)

    async def _merge(self, batch_id: str, output_file_id: str, input_path: Path) -> None:
        bodies: dict[str, str] = {}
        if input_path.exists():
            for line in input_path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                bodies[item["custom_id"]] = json.dumps(item["body"], ensure_ascii=False)
        content = await self.client.files.content(output_file_id)
        for line in content.text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            response = item.get("response") or {}
            if item.get("error") or response.get("status_code") != 200:
                self.stats["batch_errors"] += 1
                continue
            body = response["body"]
            result = result_from_completion(
                body, f"{batch_id}/{response.get('request_id') or body.get('id', '')}"
            )
            request_json = bodies.get(item["custom_id"], "{}")
            model = json.loads(request_json).get("model", body.get("model", ""))
            self.cache.put_raw(item["custom_id"], model, request_json, result)
            self.stats["merged"] += 1
            if self.budget is not None:
                self.budget.spent += self.budget.price.cost(
                    result.input_tokens, result.output_tokens, batch=True
                )

    async def aclose(self) -> None:
        await self.client.close()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data, durable=True)
