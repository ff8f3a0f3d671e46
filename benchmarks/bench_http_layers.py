"""CPU floor per request of each HTTP layer under the LLM client, for ``bench_llm_client.py --layers``.

Each layer sends the same chat bodies to a loopback fake server without a limit (50 ms latency) with the
same concurrency; layers run in interleaved rounds so that load from other processes hits all of them alike,
and the median per layer is printed. CPU is this process's (``time.process_time``), per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import urllib.parse
from collections.abc import Awaitable, Callable

from svit_data.builders.http11 import KeepAlivePool
from svit_data.builders.llm import ChatRequest
from svit_data.builders.openai_client import ClientConfig, OpenAIChat, raw_response_type
from svit_data.builders.tokens import TokenCounter

Send = Callable[[ChatRequest], Awaitable[object]]
Layer = Callable[[str, int], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]
HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


def body(request: ChatRequest) -> bytes:
    return json.dumps(request.body(), separators=(",", ":")).encode()


async def bare_streams(url: str, concurrency: int):
    """The floor: a loop over asyncio streams that knows only Content-Length responses."""
    parts = urllib.parse.urlsplit(url)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    head = f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())

    async def send(request: ChatRequest) -> object:
        data = body(request)
        reader, writer = idle.pop() if idle else await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next(
            int(v) for k, _, v in (x.partition(b":") for x in lines) if k.lower() == b"content-length"
        )
        content = await reader.readexactly(length)
        idle.append((reader, writer))
        return json.loads(content)

    async def close() -> None:
        for _, writer in idle:
            writer.close()

    return send, close


async def keepalive_pool(url: str, concurrency: int):
    pool = KeepAlivePool(url, HEADERS, 30)

    async def send(request: ChatRequest) -> object:
        return json.loads((await pool.post("/chat/completions", body(request))).body)

    return send, pool.aclose


async def raw_httpx(url: str, concurrency: int):
    """The openai SDK's HTTP library (httpx or httpx2) with its default connection pool."""
    import sys

    lib = sys.modules[raw_response_type().__module__.split(".")[0]]
    limits = lib.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = lib.AsyncClient(base_url=url, limits=limits, timeout=30, headers=HEADERS)

    async def send(request: ChatRequest) -> object:
        return json.loads((await client.post("/chat/completions", content=body(request))).content)

    return send, client.aclose


async def sdk_post(url: str, concurrency: int):
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, timeout=30)
    response_type = raw_response_type()

    async def send(request: ChatRequest) -> object:
        raw = await client.post("/chat/completions", cast_to=response_type, body=request.body())
        return json.loads(raw.content)

    return send, client.close


def chat(transport: str) -> Layer:
    async def make(url: str, concurrency: int):
        config = ClientConfig(base_url=url, api_key="bench", concurrency=concurrency, timeout=30, tpm=1e12)
        client = OpenAIChat(config, counter=TokenCounter("gpt-4o"), transport=transport)
        client.estimate_tokens(ChatRequest.build("gpt-4o", [{"role": "user", "content": "warm"}]))
        return client.complete, client.aclose

    return make


LAYERS: dict[str, Layer] = {
    "asyncio streams, bare loop (floor)": bare_streams,
    "builders/http11.py KeepAlivePool": keepalive_pool,
    "httpx AsyncClient, default pool": raw_httpx,
    "openai SDK client.post (httpx+httpcore)": sdk_post,
    "OpenAIChat.complete, http:// path": chat("auto"),
    "OpenAIChat.complete, SDK path": chat("sdk"),
}


def cpu_ms_per_request(layer: Layer, url: str, n: int, concurrency: int, first_id: int) -> float:
    from bench_llm_client import request

    async def go() -> float:
        send, close = await layer(url, concurrency)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(r: ChatRequest) -> None:
            async with semaphore:
                await send(r)

        requests = [request(first_id + i, 100) for i in range(n)]
        cpu0 = time.process_time()
        await asyncio.gather(*(one(r) for r in requests))
        cpu = time.process_time() - cpu0
        await close()
        return 1000 * cpu / n

    return asyncio.run(go())


def print_layers(start_server, n: int, concurrency: int, rounds: int) -> None:
    server, url = start_server(0.05, None)
    runs: dict[str, list[float]] = {name: [] for name in LAYERS}
    try:
        for round_ in range(rounds):
            for i, (name, layer) in enumerate(LAYERS.items()):
                first_id = 10**8 * (1 + round_ * len(LAYERS) + i)
                runs[name].append(cpu_ms_per_request(layer, url, n, concurrency, first_id))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"CPU per request by HTTP layer ({n} requests x {rounds} interleaved rounds, concurrency {concurrency}):"
    )
    for name, values in runs.items():
        print(
            f"  {name:42s} {statistics.median(values):6.3f} ms  (runs: {', '.join(f'{v:.3f}' for v in values)})"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
