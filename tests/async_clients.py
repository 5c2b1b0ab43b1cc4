"""Running the sync-style integration tests against AsyncClient as well as Client.

``make_client(kind, **fields)`` gives a ``Client``, or an :class:`AsyncClientOnLoop`: an
``AsyncClient`` (with its default asyncio HTTP client) on an event loop of its own, in debug
mode, behind Client's sync API, so one test body serves both clients. Closing it fails the
test when a task was left behind. Slow callbacks are only recorded here: these tests run their
servers in the same process, whose threads compete for the GIL with the loop;
tests/integration/test_asyncio.py checks for blocking calls against a server in another process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from smruntime import AsyncClient, Client

KINDS = ("Client", "AsyncClient")
T = TypeVar("T")

SLOW_CALLBACK = 0.1
"""Seconds a loop callback may run before debug mode records it."""


def make_client(kind: str, **fields: Any) -> Any:
    if kind == "Client":
        return Client(**fields)
    return AsyncClientOnLoop(**fields)


class SlowCallbacks(logging.Handler):
    """Records the slow callbacks asyncio's debug mode reports."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and "seconds" in message:
            self.seen.append(message)


class LoopThread:
    """An event loop in debug mode on a thread of its own; ``run`` waits for a coroutine."""

    def __init__(self, slow_callback: float = SLOW_CALLBACK) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_debug(True)
        self.loop.slow_callback_duration = slow_callback
        self.slow = SlowCallbacks()
        logging.getLogger("asyncio").addHandler(self.slow)
        self._thread = threading.Thread(target=self.loop.run_forever, name="async-client-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> list[asyncio.Task[Any]]:
        """Stop the loop; the tasks still pending (there should be none)."""

        async def pending() -> list[asyncio.Task[Any]]:
            await asyncio.sleep(0)
            return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]

        left = self.run(pending())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        logging.getLogger("asyncio").removeHandler(self.slow)
        return left


class AsyncClientOnLoop:
    """Client's API over an AsyncClient: each call is awaited on the loop thread."""

    def __init__(self, **fields: Any) -> None:
        self.loop = LoopThread()

        async def build() -> AsyncClient:
            return AsyncClient(**fields)

        self.client = self.loop.run(build())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def invoke_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        return self.loop.run(self.client.invoke_endpoint(*args, **kwargs))

    def invoke_endpoint_async(self, *args: Any, **kwargs: Any) -> Any:
        return self.loop.run(self.client.invoke_endpoint_async(*args, **kwargs))

    def invoke_endpoint_with_response_stream(self, *args: Any, **kwargs: Any) -> StreamOnLoop:
        return StreamOnLoop(self.loop, self.loop.run(self.client.invoke_endpoint_with_response_stream(*args, **kwargs)))

    def wait_for_async_inference(self, *args: Any, **kwargs: Any) -> bytes:
        return self.loop.run(self.client.wait_for_async_inference(*args, **kwargs))

    def close(self) -> None:
        if self.loop.loop.is_closed():
            return
        self.loop.run(self.client.aclose())
        left = self.loop.close()
        assert not left, f"tasks left behind: {left}"

    def __enter__(self) -> AsyncClientOnLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StreamOnLoop:
    """ResponseStream's API over an AsyncResponseStream."""

    def __init__(self, loop: LoopThread, stream: Any) -> None:
        self._loop = loop
        self.stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def _drain(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self._loop.run(iterator.__anext__())
            except StopAsyncIteration:
                return

    def __iter__(self) -> Iterator[Any]:
        return self._drain(self.stream)

    def __next__(self) -> Any:
        try:
            return self._loop.run(self.stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def payloads(self) -> Iterator[bytes]:
        return self._drain(self.stream.payloads())

    def lines(self) -> Iterator[bytes]:
        return self._drain(self.stream.lines())

    def close(self) -> None:
        self._loop.run(self.stream.aclose())

    def __enter__(self) -> StreamOnLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
