"""HTTP clients: the ``HTTPClient`` protocol, the requests-based default, a faster
http.client-based client, a mock for tests, and :class:`H2HTTPClient` for full-duplex HTTP/2
streams (the ``http2`` extra).

The wire request carries exactly the headers the stack built, plus what HTTP/1.1 requires
(``Host``, ``Content-Length``). No ``Accept``, ``Accept-Encoding``, ``User-Agent`` or
``Connection`` defaults reach the model. Responses are never decompressed. A streamed body
hands over data as it arrives and returns its connection to the pool only once it has been read
to the end; every other path drops the connection.

Every failure from requests, urllib3, http.client, socket or ssl becomes a
:class:`~smruntime.errors.TransportError` in :func:`map_transport_error`, and nowhere else.
The error says whether the request may have reached the server (``request_sent``).

Each client lives in a module of its own and loads on first use, so a program that uses
:class:`FastHTTPClient` never imports requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from smruntime.transport.error_mapping import map_transport_error
from smruntime.transport.protocol import HTTPClient

if TYPE_CHECKING:
    from smruntime.transport.aiohttp_client import AiohttpHTTPClient
    from smruntime.transport.async_fast_client import AsyncFastHTTPClient
    from smruntime.transport.async_mock import AsyncMockHTTPClient
    from smruntime.transport.async_protocol import AsyncBytesBody, AsyncHTTPClient, AsyncHTTPResponse, AsyncResponseBody
    from smruntime.transport.fast_client import FastHTTPClient
    from smruntime.transport.http2_client import H2HTTPClient
    from smruntime.transport.http2_errors import ConnectionTerminatedError, StreamResetError
    from smruntime.transport.http2_mock import AsyncHTTP2MockClient
    from smruntime.transport.http2_protocol import AsyncHTTP2Client, HTTP2Stream
    from smruntime.transport.mock import MockHTTPClient, MockResult
    from smruntime.transport.requests_client import RequestsHTTPClient

__all__ = [
    "AiohttpHTTPClient",
    "AsyncBytesBody",
    "AsyncFastHTTPClient",
    "AsyncHTTP2Client",
    "AsyncHTTP2MockClient",
    "AsyncHTTPClient",
    "AsyncHTTPResponse",
    "AsyncMockHTTPClient",
    "AsyncResponseBody",
    "ConnectionTerminatedError",
    "FastHTTPClient",
    "H2HTTPClient",
    "HTTP2Stream",
    "HTTPClient",
    "MockHTTPClient",
    "MockResult",
    "RequestsHTTPClient",
    "StreamResetError",
    "default_http2_client",
    "map_transport_error",
]

_MODULES = {
    "AiohttpHTTPClient": "smruntime.transport.aiohttp_client",
    "AsyncMockHTTPClient": "smruntime.transport.async_mock",
    "AsyncBytesBody": "smruntime.transport.async_protocol",
    "AsyncFastHTTPClient": "smruntime.transport.async_fast_client",
    "AsyncHTTP2Client": "smruntime.transport.http2_protocol",
    "AsyncHTTP2MockClient": "smruntime.transport.http2_mock",
    "AsyncHTTPClient": "smruntime.transport.async_protocol",
    "AsyncHTTPResponse": "smruntime.transport.async_protocol",
    "AsyncResponseBody": "smruntime.transport.async_protocol",
    "ConnectionTerminatedError": "smruntime.transport.http2_errors",
    "FastHTTPClient": "smruntime.transport.fast_client",
    "H2HTTPClient": "smruntime.transport.http2_client",
    "HTTP2Stream": "smruntime.transport.http2_protocol",
    "MockHTTPClient": "smruntime.transport.mock",
    "MockResult": "smruntime.transport.mock",
    "RequestsHTTPClient": "smruntime.transport.requests_client",
    "StreamResetError": "smruntime.transport.http2_errors",
}


def default_http2_client(options: Any) -> AsyncHTTP2Client:
    """The HTTP/2 client a client makes for its bidirectional streams when ``options`` name none."""
    try:
        module = importlib.import_module("smruntime.transport.http2_client")
    except ImportError as error:  # h2 is not installed
        from smruntime.errors import SageMakerRuntimeError

        raise SageMakerRuntimeError(
            f"bidirectional streaming needs the h2 package (pip install 'smruntime[http2]'): {error}"
        ) from error
    client: AsyncHTTP2Client = module.H2HTTPClient(
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=options.max_pool_connections,
        max_response_body_size=options.max_response_body_size,
        verify=options.verify,
    )
    return client


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'smruntime.transport' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
