"""A small asyncio HTTP client for unit tests: answers from a function, records what it sent
and whether each body was released. Nothing opens a socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

from smruntime.http import Headers, HTTPRequest
from smruntime.transport.async_protocol import AsyncHTTPResponse

Answer = tuple[int, Mapping[str, str], "bytes | list[bytes]"]


class FakeBody:
    """A body that hands out its chunks one by one; ``gate`` holds the chunks after the first."""

    def __init__(self, chunks: list[bytes], gate: asyncio.Event | None = None) -> None:
        self.chunks = list(chunks)
        self.gate = gate
        self.closed = False
        self.fully_read = False

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_chunks()])

    async def aiter_chunks(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index and self.gate is not None:
                await self.gate.wait()
            if self.closed:
                raise RuntimeError("read after close")
            yield chunk
        self.fully_read = True

    async def aclose(self) -> None:
        self.closed = True


class FakeAsyncHTTPClient:
    """An AsyncHTTPClient answering ``(status, headers, body or chunks)`` from ``handler``."""

    def __init__(self, handler: Callable[[HTTPRequest], Answer], gate: asyncio.Event | None = None) -> None:
        self.handler = handler
        self.gate = gate
        self.requests: list[HTTPRequest] = []
        self.bodies: list[FakeBody] = []
        self.closed = False

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> AsyncHTTPResponse:
        await asyncio.sleep(0)  # a real client yields to the loop while it waits
        body = request.body
        data = body if body is None or isinstance(body, bytes) else bytes(body.read())
        sent = HTTPRequest(request.method, request.url, request.headers.copy(), data)
        self.requests.append(sent)
        status, headers, payload = self.handler(sent.copy())
        response_body = FakeBody(payload if isinstance(payload, list) else [payload], self.gate)
        self.bodies.append(response_body)
        return AsyncHTTPResponse(status, Headers(headers), response_body)

    async def aclose(self) -> None:
        self.closed = True
