"""One test body for both clients' bidirectional streams.

``open_stream(kind, fields, **inputs)`` opens a stream with ``Client`` or ``AsyncClient`` and
hands it to the test as a :class:`Stream` with awaitable methods: the asyncio stream itself,
or the blocking one driven from worker threads (each blocking call then drives the client's
event loop from its thread, as in a program without asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from smruntime import AsyncClient, Client
from smruntime.types import ResponsePayloadPart

KINDS = ("Client", "AsyncClient")


class Stream:
    """The stream under test, with the same awaitable methods whichever the client."""

    def __init__(self, stream: Any, blocking: bool) -> None:
        self.stream = stream
        self.blocking = blocking

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.stream, name)
        if self.blocking:
            return await asyncio.to_thread(method, *args, **kwargs)
        return await method(*args, **kwargs)

    async def send(self, data: Any, **kwargs: Any) -> None:
        await self._call("send", data, **kwargs)

    async def end_input(self) -> None:
        await self._call("end_input")

    async def wait_for_response(self) -> None:
        await self._call("wait_for_response")

    async def next(self) -> ResponsePayloadPart | None:
        """The next part, or None at the end."""
        if self.blocking:
            return await asyncio.to_thread(next, self.stream, None)
        try:
            part: ResponsePayloadPart = await self.stream.__anext__()
        except StopAsyncIteration:
            return None
        return part

    async def parts(self) -> list[ResponsePayloadPart]:
        """Every part up to the end."""
        found = []
        while (part := await self.next()) is not None:
            found.append(part)
        return found

    async def close(self) -> None:
        await self._call("close" if self.blocking else "aclose")

    @property
    def invoked_production_variant(self) -> str | None:
        value: str | None = self.stream.invoked_production_variant
        return value

    @property
    def metadata(self) -> Any:
        return self.stream.metadata


@contextlib.asynccontextmanager
async def open_client(kind: str, **fields: Any) -> AsyncIterator[Any]:
    if kind == "Client":
        client = Client(**fields)
        try:
            yield client
        finally:
            await asyncio.to_thread(client.close)
    else:
        async with AsyncClient(**fields) as async_client:
            yield async_client


@contextlib.asynccontextmanager
async def open_stream(client: Any, **inputs: Any) -> AsyncIterator[Stream]:
    """Enter ``client``'s stream as its context manager does; leave it the same way."""
    stream = client.invoke_endpoint_with_bidirectional_stream(**inputs)
    if isinstance(client, Client):
        await asyncio.to_thread(stream.__enter__)
        try:
            yield Stream(stream, blocking=True)
        finally:
            await asyncio.to_thread(stream.__exit__, None, None, None)
    else:
        async with stream:
            yield Stream(stream, blocking=False)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
