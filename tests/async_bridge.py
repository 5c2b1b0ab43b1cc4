"""An asyncio HTTP client seen as a blocking ``HTTPClient``: the sync transport tests run
against the async clients unchanged. The client lives on an event loop in a thread of its own;
every call from any thread is a task on that one loop, as in an asyncio program."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.transport.async_protocol import AsyncHTTPClient, AsyncResponseBody

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="async-bridge", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _BridgedBody:
    def __init__(self, body: AsyncResponseBody, loop: _Loop) -> None:
        self._body = body
        self._loop = loop
        self._closed = False

    def read(self) -> bytes:
        try:
            return self._loop.run(self._body.read())
        finally:
            self._closed = True

    def iter_chunks(self) -> Iterator[bytes]:
        chunks = self._body.aiter_chunks()
        try:
            while True:
                try:
                    yield self._loop.run(chunks.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(chunks.aclose())  # type: ignore[attr-defined]
            self._closed = True

    def close(self) -> None:
        self._loop.run(self._body.aclose())
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


class BlockingClient:
    """``make(**settings)`` of an async client, driven from blocking code."""

    def __init__(self, client: AsyncHTTPClient) -> None:
        self.client = client
        self._loop = _Loop()

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        response = self._loop.run(self.client.send(request, stream=stream))
        return HTTPResponse(response.status_code, response.headers, _BridgedBody(response.body, self._loop), response.reason)

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.run(self.client.aclose())
        self._loop.stop()
