"""A keep-alive HTTP/1.1 client for plain ``http://`` endpoints: the chat client's transport for local replicas.

Why: the openai SDK's transport (httpx and httpcore's connection pool) costs several ms of CPU per request
(4-7 ms measured on a loaded 2-core machine) with the 128 connections a generation run keeps open: the pool
scans every connection and asks each socket whether it is readable, on every request and every response
close; the SDK adds about 1.5 ms building each request. This client costs about 0.4 ms
(benchmarks/bench_llm_client.py ``--layers`` measures each layer); where the model runs on the same machine
or next to it, that CPU is what limits throughput.

Scope, so the SDK keeps everything else (:func:`usable_for`): plain ``http://`` only, without a proxy from
the environment, on Python 3.11+ (``asyncio.timeout``); ``https://`` (api.openai.com) goes through the SDK.

- HTTP/1.1 with keep-alive; response bodies framed by ``Content-Length``, ``chunked`` or the connection's
  close (which is then not reused); 1xx responses before the real one are skipped; gzip/deflate bodies are
  decoded;
- an idle connection is reused for at most :data:`KEEPALIVE_EXPIRY_S` (uvicorn, hence vLLM, drops idle
  ones after 5 s) and only while the server has not closed it; one that failed or was cancelled
  mid-exchange is closed, never reused;
- one timeout bounds connecting, and another sending the request and receiving the whole response;
  failures raise :class:`HttpTimeout` or :class:`HttpConnectionError`, which the chat client classifies
  as it does the SDK's ``APITimeoutError`` and ``APIConnectionError``. A request is never resent here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)
KEEPALIVE_EXPIRY_S = 4.0  # below uvicorn's (vLLM's) 5 s keep-alive timeout, so the server never closes first
HEAD_LIMIT = 1 << 16  # bytes of status line + headers at most
_NO_BODY_STATUS = {204, 304}
_FRAMING = {"host", "content-length", "transfer-encoding", "connection"}


def usable_for(url: str | None) -> bool:
    """Whether requests to ``url`` go through :class:`KeepAlivePool` (see the module docstring)."""
    if not url or not url.startswith("http://") or not hasattr(asyncio, "timeout"):
        return False
    host = urllib.parse.urlsplit(url).hostname or ""
    proxies = urllib.request.getproxies()
    return not (proxies.get("http") or proxies.get("all")) or bool(urllib.request.proxy_bypass(host))


class HttpTimeout(Exception):
    """No connection or no complete response within the timeout."""


class HttpConnectionError(Exception):
    """The connection could not be made, broke, or carried something that is not an HTTP/1.x response."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.idle_since = reader, writer, 0.0

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < KEEPALIVE_EXPIRY_S
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )


class KeepAlivePool:
    """POSTs to one ``http://`` base URL over reused connections; see the module docstring."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or "localhost", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        host = host if self.port == 80 else f"{host}:{self.port}"
        lines = [f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _FRAMING]
        self._headers = "\r\n".join(lines).encode("latin-1")
        self._idle: list[_Connection] = []

    async def post(self, path: str, body: bytes) -> HttpReply:
        """One POST of ``body`` (JSON) to ``<base path><path>``; raises HttpTimeout or HttpConnectionError."""
        head = b"POST %s HTTP/1.1\r\n%s\r\nContent-Length: %d\r\n\r\n" % (
            (self.prefix + path).encode(),
            self._headers,
            len(body),
        )
        conn = await self._checkout()
        try:
            async with asyncio.timeout(self.timeout):
                if len(body) < 65536:  # one send for the usual small body; no copy of a large one
                    conn.writer.write(head + body)
                else:
                    conn.writer.write(head)
                    conn.writer.write(body)
                status, headers, content, reusable = await read_response(conn.reader, "POST")
        except TimeoutError as exc:
            conn.writer.close()
            raise HttpTimeout(f"no complete response within {self.timeout} s") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            conn.writer.close()
            raise HttpConnectionError(f"connection to {self.host}:{self.port} broke: {exc!r}") from exc
        except (ValueError, asyncio.LimitOverrunError) as exc:
            conn.writer.close()
            raise HttpConnectionError(f"malformed HTTP response: {exc}") from exc
        except BaseException:  # cancelled mid-exchange: the connection is out of step
            conn.writer.close()
            raise
        if reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.writer.close()
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            try:
                content = zlib.decompress(content, 47 if encoding == "gzip" else 15)
            except zlib.error as exc:
                raise HttpConnectionError(f"response body is not valid {encoding}: {exc}") from exc
        if log.isEnabledFor(logging.DEBUG):  # the line httpx logs per request (shown with -v)
            log.debug(
                'HTTP Request: POST http://%s:%d%s%s "HTTP/1.1 %d"',
                self.host,
                self.port,
                self.prefix,
                path,
                status,
            )
        return HttpReply(status, headers, content)

    async def _checkout(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to have expired
            if conn.usable(now):
                return conn
            conn.writer.close()
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT)
        except TimeoutError as exc:
            raise HttpTimeout(
                f"could not connect to {self.host}:{self.port} within {self.timeout} s"
            ) from exc
        except OSError as exc:
            raise HttpConnectionError(f"could not connect to {self.host}:{self.port}: {exc}") from exc
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


async def read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, whether the connection may be reused) of one response."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        if not 100 <= status < 200 or status == 101:
            break  # 1xx (100 Continue, 103 Early Hints) precede the real response
    headers: dict[str, str] = {}
    length, chunked, close = None, False, version != b"HTTP/1.1"
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"header line without a colon: {line[:80]!r}")
        value = value.strip()
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1")
        lower = name.lower()
        if lower == b"content-length":
            length = int(value)
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            tokens = value.lower()
            close = b"close" in tokens if version == b"HTTP/1.1" else b"keep-alive" not in tokens
    if method == "HEAD" or status in _NO_BODY_STATUS or status < 200:
        return status, headers, b"", not close
    if chunked:
        return status, headers, await _read_chunked(reader), not close
    if length is not None:
        if length < 0:
            raise ValueError(f"negative Content-Length {length}")
        return status, headers, await reader.readexactly(length), not close
    return status, headers, await reader.read(), False  # framed by the connection's close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the empty line
                pass
            return b"".join(parts)
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        parts.append(chunk[:-2])
