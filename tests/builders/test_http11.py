"""The keep-alive HTTP/1.1 client of plain http:// endpoints, and the chat client on both of its paths."""

from __future__ import annotations

import asyncio
import gzip
import sys
import time

import pytest
from PIL import Image

from svit_data.builders.http11 import (
    HttpConnectionError,
    HttpTimeout,
    KeepAlivePool,
    read_response,
    usable_for,
)
from svit_data.builders.llm import ChatRequest, LLMFatalError
from svit_data.builders.openai_client import ClientConfig, OpenAIChat
from svit_data.builders.vision import ImageInput

needs_timeout = pytest.mark.skipif(sys.version_info < (3, 11), reason="the http:// path needs Python 3.11+")


def parse(raw: bytes, method: str = "POST"):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_response(reader, method)

    return asyncio.run(go())


def test_content_length_body_keeps_the_connection():
    status, headers, body, reusable = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-RateLimit-Remaining-Tokens: 7\r\n\r\nhelloEXTRA"
    )
    assert (status, body, reusable) == (200, b"hello", True)
    assert headers["x-ratelimit-remaining-tokens"] == "7"  # names lower-cased, as the limiter reads them


def test_chunked_body_with_extensions_and_trailers():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: 1\r\n\r\n"
    assert parse(raw)[2:] == (b"abcdefg", True)


def test_body_framed_by_close_is_not_reused_and_http10_closes():
    assert parse(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")[2:] == (b"until the end", False)
    assert parse(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")[3] is False
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")[3] is True
    assert parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")[3] is False


def test_informational_responses_are_skipped_and_some_have_no_body():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    assert parse(raw)[0::2] == (201, b"ok")
    assert parse(b"HTTP/1.1 204 No Content\r\n\r\n")[2] == b""
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", method="HEAD")[2] == b""


@pytest.mark.parametrize(
    "raw",
    [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2xx OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"],
)
def test_malformed_heads_raise(raw):
    with pytest.raises(ValueError):
        parse(raw)


def test_truncated_body_raises():
    with pytest.raises(asyncio.IncompleteReadError):
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")


def test_usable_only_for_plain_http_without_a_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not usable_for(None) and not usable_for("https://api.openai.com/v1")
    assert usable_for("http://127.0.0.1:8000/v1") is hasattr(asyncio, "timeout")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert not usable_for("http://10.0.0.5:8000/v1")
    monkeypatch.setenv("NO_PROXY", "10.0.0.5")
    assert usable_for("http://10.0.0.5:8000/v1") is hasattr(asyncio, "timeout")


class Scripted:
    """A loopback server whose replies are scripted per request; counts connections and requests."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                if reply == "hang":
                    await asyncio.sleep(10)
                    return
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply or b"Content-Length" not in reply:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def __aexit__(self, *exc):
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@needs_timeout
def test_connections_are_reused_and_requests_are_well_formed():
    scripted = Scripted([OK] * 5)

    async def go():
        async with scripted as url:
            pool = KeepAlivePool(url, {"Authorization": "Bearer k", "Content-Length": "999"}, 5)
            replies = [await pool.post("/chat/completions", b'{"a":1}') for _ in range(5)]
            await pool.aclose()
            return replies

    replies = asyncio.run(go())
    assert [r.status for r in replies] == [200] * 5 and replies[0].body == b"{}"
    assert scripted.connections == 1
    first = scripted.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Authorization: Bearer k\r\n" in first and first.count(b"Content-Length") == 1
    assert first.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')


@needs_timeout
def test_closed_and_close_delimited_connections_are_replaced():
    gz = gzip.compress(b'{"z":1}')
    replies = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\n\r\n{}",  # framed by the close
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(gz), gz),
    ]
    scripted = Scripted(replies)

    async def go():
        async with scripted as url:
            pool = KeepAlivePool(url, {}, 5)
            bodies = [(await pool.post("/x", b"{}")).body for _ in range(3)]
            await pool.aclose()
            return bodies

    assert asyncio.run(go()) == [b"{}", b"{}", b'{"z":1}']
    assert scripted.connections == 3


@needs_timeout
def test_timeouts_and_refused_connections_raise_their_own_errors():
    scripted = Scripted(["hang"])

    async def go():
        async with scripted as url:
            pool = KeepAlivePool(url, {}, 0.3)
            start = time.monotonic()
            with pytest.raises(HttpTimeout):
                await pool.post("/x", b"{}")
            assert time.monotonic() - start < 3
            assert pool._idle == []  # a connection that failed is never reused
        with pytest.raises(HttpConnectionError):
            await KeepAlivePool(url, {}, 2).post("/x", b"{}")  # the server is gone: refused

    asyncio.run(go())


@needs_timeout
def test_a_reply_cut_short_is_a_connection_error():
    scripted = Scripted([b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{"cut'])

    async def go():
        async with scripted as url:
            with pytest.raises(HttpConnectionError, match="broke"):
                await KeepAlivePool(url, {}, 5).post("/x", b"{}")

    asyncio.run(go())


# -- the chat client: the same classification on the http:// path and on the SDK path -------------------
PATHS = [pytest.param("auto", marks=needs_timeout, id="http11"), pytest.param("sdk", id="sdk")]
REQUEST = ChatRequest.build("gpt-4o", [{"role": "user", "content": "hello"}], max_tokens=20)


def run_chat(url: str, transport: str, request: ChatRequest = REQUEST, **config):
    async def go():
        client = OpenAIChat(
            ClientConfig(base_url=url, api_key="k", backoff=0.01, **config), transport=transport
        )
        try:
            return await client.complete(request), client
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("transport", PATHS)
def test_faults_are_classified_alike_on_both_paths(fake_server, transport):
    with fake_server(tpm=40_000, faults=["429", "500", "truncated", "timeout"], timeout_sleep=2) as (
        fake,
        url,
    ):
        result, client = run_chat(url, transport, timeout=0.5)
    assert result.text and result.input_tokens > 0
    assert (client.stats["429"], client.stats["500"], client.stats["bad_responses"]) == (1, 1, 1)
    assert client.stats["timeouts"] == 1 and client.stats["retries"] == 4
    assert client.limiter.tokens.capacity == 40_000  # learned from x-ratelimit-limit-tokens
    assert fake.log[-1]["body"] == REQUEST.body()
    assert (client._pool is not None) == (transport == "auto")


@pytest.mark.parametrize("transport", PATHS)
def test_bad_key_and_image_refusal_stop_the_run_on_both_paths(fake_server, transport, tmp_path):
    with fake_server(api_key="right") as (fake, url):
        with pytest.raises(LLMFatalError, match="rejected the API key \\(401\\): Incorrect API key"):
            run_chat(url, transport)
    assert len(fake.log) == 1  # not retried
    picture = tmp_path / "1.png"
    Image.new("RGB", (32, 32), "red").save(picture)
    with_image = ChatRequest.build(
        "gpt-4o", [{"role": "user", "content": "hi"}], ImageInput(str(picture), "low", 85, "d1"), max_tokens=5
    )
    with fake_server(text_only=True) as (fake, url):
        with pytest.raises(LLMFatalError, match="does not take images"):
            run_chat(url, transport, with_image)
    assert len(fake.log) == 1


@pytest.mark.parametrize("transport", PATHS)
def test_a_dead_endpoint_is_a_connection_error_on_both_paths(transport):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens here once closed
    with pytest.raises(LLMFatalError, match="cannot reach"):
        run_chat(f"http://127.0.0.1:{port}/v1", transport, max_retries=1)
