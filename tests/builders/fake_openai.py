"""A real HTTP server speaking the OpenAI chat-completions, files and batches routes, for tests and benchmarks.

Answers come from a callable ``answer(body) -> str``; faults are injected from a queue consumed in
arrival order (``"429"``, ``"500"``, ``"timeout"``, ``"truncated"``, ``"empty"``, ``"malformed"``).
A tokens/min bucket (input tokens + max_tokens, as OpenAI meters) answers 429 with Retry-After when
exceeded and reports ``x-ratelimit-*`` headers. Every request is logged. Listens on 127.0.0.1 only.

Image parts (``image_url`` with a base64 data URL) are decoded and billed with OpenAI's GPT-4o rule, or
``image_token_cost`` tokens each; ``text_only=True`` plays a model that rejects them (HTTP 400), and
``reject_response_format=True`` a server without structured output (HTTP 400 on ``response_format``).

Run standalone (benchmarks): ``python tests/builders/fake_openai.py --port 0 --latency 0.3 --tpm 600000``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email.parser
import io
import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from svit_data.builders.tokens import TokenCounter
from svit_data.builders.vision import image_tokens


def text_of(content: str | list) -> str:
    """The text of a message's content: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


def image_parts(body: dict) -> list[dict]:
    return [
        part
        for message in body["messages"]
        if not isinstance(message["content"], str)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def echo_answer(body: dict) -> str:
    return "echo: " + text_of(body["messages"][-1]["content"])[:200]


def judge_answer(body: dict) -> str:
    """A vision judge (``svit-recipe verify``): "no" when the judged answer mentions a unicorn, a reply that is
    neither yes nor no on the first ask when it mentions "mumble", else "yes"; JSON when ``response_format``
    asks for it, else the plain-text form."""
    answer = text_of(body["messages"][1]["content"]).split("Answer:", 1)[-1]
    if "mumble" in answer and len(body["messages"]) <= 2:
        return "I cannot tell from here."
    supported = "unicorn" not in answer
    reason = "the picture shows no unicorn" if not supported else "everything named is visible"
    if body.get("response_format"):
        return json.dumps({"supported": "yes" if supported else "no", "reason": reason})
    return ("Yes, " if supported else "No, ") + reason


def _bad_request(entry: dict, message: str) -> Response:
    """HTTP 400 as OpenAI words it, logged in ``entry``."""
    entry["status"] = 400
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=400)


class FakeOpenAI:
    def __init__(
        self,
        answer: Callable[[dict], str] = echo_answer,
        *,
        latency: float = 0.0,
        tpm: float | None = None,
        faults: list[str | None] | None = None,
        api_key: str | None = None,
        timeout_sleep: float = 5.0,
        batch_delay: float = 0.0,
        create_hold: float = 0.0,
        text_only: bool = False,
        image_token_cost: int | None = None,
        reject_response_format: bool = False,
    ):
        self.answer = answer
        self.latency = latency
        self.tpm = tpm
        self.level = tpm or 0.0
        self.updated = time.monotonic()
        self.faults = deque(faults or [])
        self.api_key = api_key
        self.timeout_sleep = timeout_sleep
        self.batch_delay = batch_delay
        self.create_hold = create_hold  # the first batch creation answers only after this many seconds
        self.text_only = text_only
        self.image_token_cost = image_token_cost
        self.reject_response_format = reject_response_format  # plays a server without structured output
        self.counter = TokenCounter("gpt-4o")
        self.log: list[dict] = []  # every chat request: {"body", "status", "time"}
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.list_calls = 0
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/files", self.upload, methods=["POST"]),
                Route("/v1/files/{file_id}/content", self.content, methods=["GET"]),
                Route("/v1/batches", self.create_batch, methods=["POST"]),
                Route("/v1/batches", self.list_batches, methods=["GET"]),
                Route("/v1/batches/{batch_id}", self.retrieve_batch, methods=["GET"]),
            ]
        )

    # -- chat ---------------------------------------------------------------------------------------
    def prompt_tokens(self, body: dict) -> int:
        """Text tokens of every message plus each image's tokens (decoded from its data URL)."""
        text = [{"role": m["role"], "content": text_of(m["content"])} for m in body["messages"]]
        total = self.counter.count_messages(text)
        for part in image_parts(body):
            if self.image_token_cost is not None:
                total += self.image_token_cost
                continue
            header, data = part["image_url"]["url"].split(",", 1)
            with Image.open(io.BytesIO(base64.b64decode(data))) as image:
                total += image_tokens(*image.size, part["image_url"].get("detail", "auto"))
        return total

    def _charge(self, body: dict) -> float | None:
        """Take the request's tokens from the bucket; return a retry-after if it does not fit."""
        if not self.tpm:
            return None
        cost = self.prompt_tokens(body) + int(body.get("max_tokens") or 0)
        with self.lock:
            now = time.monotonic()
            self.level = min(self.tpm, self.level + (now - self.updated) * self.tpm / 60)
            self.updated = now
            if self.level < cost:
                return (cost - self.level) / (self.tpm / 60)
            self.level -= cost
        return None

    def _headers(self) -> dict[str, str]:
        if not self.tpm:
            return {}
        return {
            "x-ratelimit-limit-tokens": str(int(self.tpm)),
            "x-ratelimit-remaining-tokens": str(max(0, int(self.level))),
        }

    def completion(self, body: dict, text: str, finish: str = "stop") -> dict:
        prompt = self.prompt_tokens(body)
        return {
            "id": f"chatcmpl-{next(self.ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": self.counter.count(text),
                "total_tokens": prompt + self.counter.count(text),
            },
        }

    async def chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        entry = {"body": body, "status": 200, "time": time.monotonic()}
        self.log.append(entry)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            entry["status"] = 401
            return JSONResponse(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        if self.text_only and image_parts(body):
            return _bad_request(entry, "Invalid content type. image_url is only supported by certain models.")
        if self.reject_response_format and "response_format" in body:
            return _bad_request(entry, "response_format is not supported by this server")
        fault = self.faults.popleft() if self.faults else None
        if fault == "429" or (retry := self._charge(body)) is not None:
            entry["status"] = 429
            wait = 0.05 if fault == "429" else retry
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "tokens"}},
                status_code=429,
                headers={"retry-after-ms": str(int(wait * 1000) + 1), **self._headers()},
            )
        await asyncio.sleep(self.latency)
        if fault == "500":
            entry["status"] = 500
            return JSONResponse({"error": {"message": "The server had an error"}}, status_code=500)
        if fault == "timeout":
            entry["status"] = "timeout"
            await asyncio.sleep(self.timeout_sleep)
        text = self.answer(body)
        if fault == "empty":
            text = ""
        if fault == "malformed":
            text = "Sure! Here is some text without any of the structure you asked for."
        payload = json.dumps(self.completion(body, text))
        if fault == "truncated":
            entry["status"] = "truncated"
            return Response(payload[: len(payload) // 2], media_type="application/json")
        entry["answered"] = True
        return Response(payload, media_type="application/json", headers=self._headers())

    # -- files and batches --------------------------------------------------------------------------
    async def upload(self, request: Request) -> Response:
        raw = await request.body()
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        message = email.parser.BytesParser().parsebytes(head + raw)
        fields = {
            part.get_param("name", header="content-disposition"): part for part in message.get_payload()
        }
        data = fields["file"].get_payload(decode=True)
        file_id = f"file-{next(self.ids)}"
        self.files[file_id] = data
        return JSONResponse(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": fields["file"].get_filename() or "input.jsonl",
                "purpose": fields["purpose"].get_payload(),
                "status": "processed",
            }
        )

    async def content(self, request: Request) -> Response:
        return Response(self.files[request.path_params["file_id"]], media_type="application/octet-stream")

    def _batch_json(self, batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    async def create_batch(self, request: Request) -> Response:
        body = json.loads(await request.body())
        batch_id = f"batch_{next(self.ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "in_progress",
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "_created": time.monotonic(),
        }
        if self.create_hold:  # the batch exists; the client hears of it late (a kill lands in between)
            hold, self.create_hold = self.create_hold, 0.0
            await asyncio.sleep(hold)
        return JSONResponse(self._batch_json(self.batches[batch_id]))

    async def list_batches(self, request: Request) -> Response:
        """Newest first, cursor-paginated with ``after`` and ``limit``, like the real API."""
        self.list_calls += 1
        ordered = sorted(self.batches.values(), key=lambda b: b["_created"], reverse=True)
        after = request.query_params.get("after")
        if after:
            ids = [b["id"] for b in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", 20))
        page = ordered[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": [self._batch_json(b) for b in page],
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(ordered) > limit,
            }
        )

    async def retrieve_batch(self, request: Request) -> Response:
        batch = self.batches[request.path_params["batch_id"]]
        if batch["status"] == "in_progress" and time.monotonic() - batch["_created"] >= self.batch_delay:
            lines = []
            for line in self.files[batch["input_file_id"]].decode().splitlines():
                item = json.loads(line)
                self.log.append(
                    {"body": item["body"], "status": 200, "time": time.monotonic(), "batch": True}
                )
                response = {
                    "status_code": 200,
                    "request_id": f"req-{next(self.ids)}",
                    "body": self.completion(item["body"], self.answer(item["body"])),
                }
                lines.append(
                    json.dumps(
                        {
                            "id": f"batch_req_{next(self.ids)}",
                            "custom_id": item["custom_id"],
                            "response": response,
                            "error": None,
                        }
                    )
                )
            file_id = f"file-{next(self.ids)}"
            self.files[file_id] = ("\n".join(lines) + "\n").encode()
            batch.update(
                status="completed",
                output_file_id=file_id,
                request_counts={"total": len(lines), "completed": len(lines), "failed": 0},
            )
        return JSONResponse(self._batch_json(batch))

    # -- serving ------------------------------------------------------------------------------------
    @contextmanager
    def serve(self, port: int = 0, hard_timeout: float = 600.0):
        """Serve on 127.0.0.1 in a thread; yields the base URL; stops on exit or after ``hard_timeout``."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        config = uvicorn.Config(self.app, log_level="error", lifespan="off", timeout_keep_alive=30)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        timer = threading.Timer(hard_timeout, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        finally:
            timer.cancel()
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="fake OpenAI server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per chat completion")
    parser.add_argument("--tpm", type=float, default=None, help="tokens/min limit")
    parser.add_argument("--hard-timeout", type=float, default=900, help="stop after this many seconds")
    args = parser.parse_args()
    fake = FakeOpenAI(lambda body: "ok " * 20, latency=args.latency, tpm=args.tpm)
    with fake.serve(args.port, hard_timeout=args.hard_timeout) as url:
        print(url, flush=True)
        deadline = time.monotonic() + args.hard_timeout
        try:
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if sys.stdin.closed:
                    break
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
