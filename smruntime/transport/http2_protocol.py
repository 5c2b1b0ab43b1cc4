"""What a bidirectional-streaming stack's terminal handler needs from an HTTP/2 client.

A request stream is opened by sending its HEADERS; sending DATA and reading the response are then
independent, because some models answer only after they have seen input. The response body is an
:class:`~smruntime.transport.async_protocol.AsyncResponseBody` over the stream's incoming DATA, so
the event-stream decoder and the error mapping of the other operations read it unchanged.
"""

from __future__ import annotations

from typing import Protocol

from smruntime.http import HTTPRequest
from smruntime.transport.async_protocol import AsyncHTTPResponse

__all__ = ["AsyncHTTP2Client", "HTTP2Stream"]


class HTTP2Stream(Protocol):
    """One open HTTP/2 request stream."""

    async def send(self, data: bytes) -> None:
        """Send ``data`` as DATA frames, waiting for the peer's flow-control window as needed."""
        ...

    async def end_input(self) -> None:
        """Half-close our side (END_STREAM). Idempotent."""
        ...

    async def response(self) -> AsyncHTTPResponse:
        """Wait for the response HEADERS; the body yields incoming DATA as it arrives."""
        ...

    async def aclose(self) -> None:
        """Release the stream, resetting it (CANCEL) if either side is still open. Idempotent."""
        ...


class AsyncHTTP2Client(Protocol):
    """An HTTP/2 client that opens full-duplex request streams."""

    async def open_stream(self, request: HTTPRequest) -> HTTP2Stream:
        """Send ``request``'s HEADERS without END_STREAM and return once the stream is open.

        ``request.body`` is ignored: the body is what the caller then :meth:`HTTP2Stream.send`\\ s.
        Nothing here waits for the response.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection; streams still open fail with ``ClientClosedError``."""
        ...
