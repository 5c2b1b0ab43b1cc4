"""The asyncio twins of the transport protocols: what an ``AsyncClient`` stack's terminal
handler needs from an HTTP client.

Requests are the same plain :class:`~smruntime.http.HTTPRequest` the sync stack builds; only
reading the response waits, so the response body is the one part with an async shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import attrs

from smruntime.http import Headers, HTTPRequest, to_headers

__all__ = ["AsyncBytesBody", "AsyncHTTPClient", "AsyncHTTPResponse", "AsyncResponseBody"]


class AsyncResponseBody(Protocol):
    """A response body that may still be arriving, read without blocking the event loop."""

    async def read(self) -> bytes:
        """The rest of the body; the connection is released once it is all read."""
        ...

    def aiter_chunks(self) -> AsyncIterator[bytes]:
        """Chunks as their bytes arrive."""
        ...

    async def aclose(self) -> None:
        """Idempotent: release the connection (back to the pool only if fully read)."""
        ...


class AsyncBytesBody:
    """A response body already in memory (an :class:`AsyncResponseBody`)."""

    __slots__ = ("_data", "_read")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._read = False

    async def read(self) -> bytes:
        data, self._read = (b"" if self._read else self._data), True
        return data

    async def aiter_chunks(self) -> AsyncIterator[bytes]:
        data = await self.read()
        if data:
            yield data

    async def aclose(self) -> None:
        self._read = True

    @property
    def closed(self) -> bool:
        return self._read


@attrs.define(slots=True, eq=False, on_setattr=attrs.setters.NO_OP)
class AsyncHTTPResponse:
    """An HTTP response whose ``body`` is read with ``await``."""

    status_code: int
    headers: Headers = attrs.field(converter=to_headers)
    body: AsyncResponseBody
    reason: str = ""

    async def read(self) -> bytes:
        """Read the whole body and release the connection."""
        try:
            return await self.body.read()
        finally:
            await self.body.aclose()

    async def aclose(self) -> None:
        await self.body.aclose()

    def __repr__(self) -> str:
        from smruntime.redaction import redact_headers

        return f"AsyncHTTPResponse(status_code={self.status_code!r}, headers={redact_headers(self.headers)!r})"


class AsyncHTTPClient(Protocol):
    """Sends one HTTP request on the running event loop: the terminal handler of an async stack."""

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> AsyncHTTPResponse:
        """Send ``request``. With ``stream``, the body stays on the wire for the caller to read."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...
