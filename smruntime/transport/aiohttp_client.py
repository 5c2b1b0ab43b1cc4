"""AiohttpHTTPClient: the asyncio HTTP client on aiohttp, the field's standard (aiobotocore's).

aiohttp's defaults are switched off where they would change what reaches the model: no
``User-Agent``, ``Accept``, ``Accept-Encoding`` or ``Content-Type`` of its own, no
decompression, no cookies, no redirects, and proxies resolved here (as requests and the sync
clients resolve them) rather than by aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from smruntime.errors import ClientClosedError, ConnectError
from smruntime.http import Headers, HTTPRequest
from smruntime.transport.async_protocol import AsyncBytesBody, AsyncHTTPResponse
from smruntime.transport.error_mapping import map_transport_error, tag
from smruntime.transport.http11 import MAX_HEADERS, MAX_LINE, WHOLE_CHUNK_LIMIT
from smruntime.transport.shared import (
    CLOSED_IN_FLIGHT,
    CLOSED_WHILE_WAITING,
    AsyncLiveBody,
    PooledHTTPClient,
    PreparedBody,
    close_here,
    leave_loop,
    proxy_for,
    split_url,
)

if TYPE_CHECKING:
    pass

__all__ = ["AiohttpHTTPClient"]

_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_LARGE_BYTES = 1024 * 1024
"""Past this, aiohttp warns that a bytes body may hold up the loop (ResourceWarning): such a
body goes as an async iterable of pieces instead, still with its Content-Length."""


class _ResponseBody(AsyncLiveBody):
    """An aiohttp response body still on its connection: read to the end, the connection goes
    back to aiohttp's pool; otherwise it is closed."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse, limit: int) -> None:
        super().__init__(limit)
        self._response = response

    async def _arriving(self, max_size: int | None) -> AsyncIterator[bytes]:
        content = self._response.content
        if max_size is None or "chunked" not in self._response.headers.get("Transfer-Encoding", "").lower():
            while piece := await content.readany():  # what has arrived, as it arrives
                for part in _sliced(piece, max_size):
                    yield part
            return
        # Streaming a chunked body: a chunk up to WHOLE_CHUNK_LIMIT whole, as the server framed
        # it (an event stream's frame each), a longer one in pieces as they arrive; a piece never
        # spans two chunks (aiohttp's readchunk stops at each chunk's end).
        gathered: list[bytes] = []
        size = 0
        while True:
            data, chunk_ended = await content.readchunk()
            if not data and not chunk_ended:
                return  # the end of the body
            gathered.append(data)
            size += len(data)
            if size > WHOLE_CHUNK_LIMIT:  # a long chunk: its pieces go as they come
                for part in _sliced(b"".join(gathered), max_size):
                    yield part
                gathered = []
            elif chunk_ended:
                whole = b"".join(gathered)  # (of one piece: that piece itself, not a copy)
                if whole:
                    yield whole
                gathered = []
            if chunk_ended:
                size = 0

    def _release(self) -> None:
        self._response.release()

    def _discard(self) -> None:
        self._response.close()  # closes the connection: never a half-read one in the pool


class AiohttpHTTPClient(PooledHTTPClient):
    """An :class:`~smruntime.transport.async_protocol.AsyncHTTPClient` on aiohttp.

    The contract is :class:`~smruntime.transport.RequestsHTTPClient`'s: exact wire headers,
    per-origin pools of ``max_pool_connections`` (a request waits up to ``connect_timeout``
    for one), live streams, one error mapping, proxies from ``proxies`` or the environment
    (a CONNECT tunnel for https) and the CA bundle from ``verify`` or the environment.
    ``read_timeout`` bounds each wait for bytes. A request is never sent twice. The session is
    made on first use, on the running loop, and dropped for a new one if the client is used on a
    later loop; it is refused while the first loop still runs (in another thread).
    """

    def _start_pools(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy_cache: dict[tuple[str, str], str | None] = {}

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> AsyncHTTPResponse:
        if (loop := asyncio.get_running_loop()) is not self._loop:
            if leave_loop(self._loop, "AiohttpHTTPClient"):
                self._session = None  # it belongs to the finished loop, which alone could close it
            self._loop = loop
        try:
            scheme, netloc, _ = split_url(request.url)
            key = (scheme, netloc)
            if key in self._proxy_cache:
                proxy = self._proxy_cache[key]
            else:
                proxy = self._proxy_cache[key] = proxy_for(scheme, netloc, self._proxies)
            body = PreparedBody(request.body)
            data = body.data
            session = self._session if self._session is not None else self._open()
        except Exception as exc:
            tag(exc, "prepare")
            raise map_transport_error(exc) from exc
        headers = dict(request.headers.items())
        if data is not None and "content-length" not in request.headers:
            headers["Content-Length"] = str(body.length)
        try:
            response = await session.request(
                request.method,
                request.url,
                headers=headers,
                data=_in_pieces(data) if isinstance(data, bytes) and len(data) > _LARGE_BYTES else data,
                proxy=proxy,
                allow_redirects=False,
                skip_auto_headers=_SKIP_AUTO_HEADERS,
            )
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if session.closed and (task is None or not task.cancelling()):  # aclose() ended the wait, not our caller
                raise ClientClosedError(CLOSED_WHILE_WAITING) from exc
            raise
        except Exception as exc:
            if session.closed:
                raise ClientClosedError(CLOSED_IN_FLIGHT, request_sent=_sent(exc)) from exc
            raise map_transport_error(exc, request_sent=_sent(exc)) from exc
        try:
            out = Headers()
            for name, value in response.raw_headers:
                text, known = name.decode("latin-1"), None
                known = out.get(text)
                decoded = value.decode("latin-1")
                out[text] = decoded if known is None else f"{known}, {decoded}"  # as HTTP allows
        except BaseException:
            response.close()
            raise
        live = _ResponseBody(response, self.max_response_body_size)
        content = live if stream else AsyncBytesBody(await live.read())
        return AsyncHTTPResponse(response.status, out, content, response.reason or "")

    async def aclose(self) -> None:
        """Close every connection; requests waiting or in flight fail with a ``TransportError``.
        The client opens a new session if it is used again. From another event loop than the
        one using the client, the closing is done on that one (or, once it is closed, the
        session is dropped)."""
        where = await close_here(self._loop, self.aclose)
        if where is None:
            return
        session, self._session = self._session, None
        if session is not None and where == "here":
            await session.close()

    async def __aenter__(self) -> AiohttpHTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # the cap is per origin, as on the sync side
            limit_per_host=self.max_pool_connections,
            ssl=self._ssl_context(),
            enable_cleanup_closed=False,
            keepalive_timeout=self.idle_timeout,  # aiohttp's name for it; None keeps a connection
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            trust_env=False,  # proxies are resolved in send(), as the sync clients do
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            # The response-head limits of the other clients (aiohttp's own line limit is 8 KiB).
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
        )
        return self._session


async def _in_pieces(data: bytes) -> AsyncIterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), _LARGE_BYTES):
        yield view[start : start + _LARGE_BYTES]


def _sliced(data: bytes, size: int | None) -> list[bytes]:
    """``data`` in pieces of at most ``size`` bytes (whole when ``size`` is None)."""
    if size is None or len(data) <= size:
        return [data] if data else []
    return [data[start : start + size] for start in range(0, len(data), size)]


def _sent(exc: BaseException) -> bool:
    """Whether a failure before the response head may have come after the request was written."""
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientProxyConnectionError, aiohttp.InvalidURL)):
        return False
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for a pooled connection
        return False
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        return True
    return not isinstance(exc, (ConnectError, ValueError, TypeError))
