"""AsyncMockHTTPClient: an asyncio HTTP client that answers from a function, for users' unit tests."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from smruntime.http import Headers, HTTPRequest, HTTPResponse
from smruntime.transport.async_protocol import AsyncBytesBody, AsyncHTTPResponse
from smruntime.transport.mock import MockResult

__all__ = ["AsyncMockHTTPClient"]

AsyncMockResult = MockResult | AsyncHTTPResponse


class AsyncMockHTTPClient:
    """An :class:`~smruntime.transport.async_protocol.AsyncHTTPClient` that answers from a
    function, for unit tests of your own asyncio code: the twin of
    :class:`~smruntime.transport.MockHTTPClient`.

    ``handler`` may be a plain function or a coroutine function. It gets a copy of each
    request, with its body read into bytes, and returns an :class:`AsyncHTTPResponse`, an
    :class:`~smruntime.http.HTTPResponse` (its body is read) or a ``(status, headers, body)``
    tuple. Every request sent is kept in ``requests``. An exception from the handler propagates
    out of ``send`` unchanged.

    Example::

        from smruntime.transport import AsyncMockHTTPClient

        async def answer(request):
            return 200, {"Content-Type": "application/json"}, b'{"sum": 3}'

        mock = AsyncMockHTTPClient(answer)
    """

    def __init__(self, handler: Callable[[HTTPRequest], AsyncMockResult | Awaitable[AsyncMockResult]]) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> AsyncHTTPResponse:
        body = request.body
        data = body if body is None or isinstance(body, bytes) else bytes(body.read())
        sent = HTTPRequest(request.method, request.url, request.headers.copy(), data)
        self.requests.append(sent)
        result = self.handler(sent.copy())
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, AsyncHTTPResponse):
            return result
        if isinstance(result, HTTPResponse):
            content = result.body.read()
            return AsyncHTTPResponse(result.status_code, result.headers, AsyncBytesBody(content), result.reason)
        status, headers, payload = result
        content = payload.encode("utf-8") if isinstance(payload, str) else payload
        return AsyncHTTPResponse(status, Headers(headers), AsyncBytesBody(content))

    async def aclose(self) -> None:
        """Nothing to release."""
