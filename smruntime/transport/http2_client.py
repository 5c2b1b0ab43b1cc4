"""H2HTTPClient: full-duplex HTTP/2 request streams on asyncio and the sans-IO ``h2`` library.

An ``https://`` URL is reached over TLS with ALPN ``h2`` (the handshake must pick ``h2``); an
``http://`` URL over cleartext HTTP/2 with prior knowledge (no Upgrade), as a local endpoint
serves it. The h2 state and the flow control live in :mod:`smruntime.transport.http2_flow`;
this module moves bytes between it and the socket and lets tasks wait. The event loop's
protocol callbacks do all the receiving, so the client starts no task of its own.

Streams to one origin share one connection (HTTP/2 multiplexing) until the server's
``MAX_CONCURRENT_STREAMS`` is reached; then another connection opens, up to
``max_pool_connections``, and further streams wait (up to ``connect_timeout``) for a slot.
Measured against a local hypercorn echo on loopback (``python -m benchmarks.h2_floor``, a
shared 2-core machine), 1,000 sequential short streams took 1.1-1.4 s on one shared connection
and 3.9-5.4 s with a connection per stream; 64 concurrent streams 45-49 ms against 183-200 ms.
Sharing wins both ways (each new connection pays the TCP, TLS and SETTINGS exchanges);
``multiplex=False`` (a connection per stream) is kept for that comparison.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

from smruntime.errors import (
    ClientClosedError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    TransportError,
)
from smruntime.http import DEFAULT_MAX_RESPONSE_BODY_SIZE, Headers, HTTPRequest
from smruntime.transport.async_protocol import AsyncHTTPResponse
from smruntime.transport.error_mapping import map_transport_error, tag
from smruntime.transport.fast_client import _host_and_port
from smruntime.transport.http2_errors import stream_cancelled
from smruntime.transport.http2_flow import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_STREAM_WINDOW,
    NOT_HTTP2_HINT,
    Changes,
    H2Session,
    NoAvailableStreamIDError,
    StreamState,
)
from smruntime.transport.shared import (
    BAD_VALUE,
    DEFAULT_IDLE_TIMEOUT,
    TOKEN,
    WriteGate,
    body_too_large,
    check_idle_timeout,
    close_here,
    environ_ca_bundle,
    host_header,
    idle_too_long,
    leave_loop,
    owner_now,
    set_nodelay,
    split_url,
    ssl_context_for,
)

if TYPE_CHECKING:
    import ssl

    from smruntime.transport.http2_protocol import AsyncHTTP2Client

__all__ = ["H2HTTPClient"]

_CONNECTION_SPECIFIC = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})
"""Headers HTTP/2 forbids (RFC 9113 §8.2.2); ``te`` is allowed only as ``trailers``."""
_CLOSE_TIMEOUT = 1.0
"""How long ``aclose`` lets a connection flush its GOAWAY before it aborts the socket."""


_RECEIVE_BUFFER = 64 * 1024
"""The bytes one socket read may bring (the loop reads into a buffer of this size)."""


class _Connection(asyncio.BufferedProtocol):
    """One HTTP/2 connection: the loop feeds received bytes to its session and wakes streams.

    A buffered protocol: the loop reads into one buffer kept for the connection's life. A plain
    protocol's reads each allocate 256 KiB (asyncio's read size) for a few hundred bytes, which
    costs more than the read itself for a small event.
    """

    def __init__(self, origin: _Origin, session: H2Session) -> None:
        self.origin = origin
        self.session = session
        self._view = memoryview(bytearray(_RECEIVE_BUFFER))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.opened = 0  # streams ever opened here
        self.idle_since: float | None = None  # time.monotonic() since when no stream was open
        self.lost = False
        self._gate = WriteGate()
        self._gone = asyncio.get_running_loop().create_future()  # done once the socket is closed

    # -- the loop's side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        changes = self.session.receive(bytes(self._view[:nbytes]))
        self.flush()
        self._apply(changes)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self._gone.done():
            self._gone.set_result(None)
        cause = f"{type(exc).__name__}: {exc}" if exc is not None else None
        if not self.session.heard:  # closed before the server said a word: most likely not an HTTP/2 server
            detail = f" before the server sent anything ({cause or 'no error'}){NOT_HTTP2_HINT}"
        else:
            detail = f": {cause}" if cause else ""
        self.session.fail(ConnectionClosedError(f"the HTTP/2 connection closed{detail}", request_sent=True))
        self._gate.resume()  # a writer then finds its stream failed
        for stream in list(self.streams.values()):
            stream._wake()
        self.origin.forget(self)

    def pause_writing(self) -> None:
        self._gate.pause()

    def resume_writing(self) -> None:
        self._gate.resume()

    # -- the client's side ------------------------------------------------------------------

    def start(self) -> None:
        self.session.start()
        self.flush()
        self.idle_since = time.monotonic()

    @property
    def idle_too_long(self) -> bool:
        """Whether no stream was open here for the client's ``idle_timeout``: not to be reused."""
        return not self.streams and self.idle_since is not None and idle_too_long(
            self.idle_since, self.origin.client.idle_timeout)

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.lost:
            self.transport.write(data)

    async def drain(self) -> None:
        await self._gate.wait()

    @property
    def usable(self) -> bool:
        """Whether a new stream may go on this connection now."""
        return (
            not self.lost
            and self.transport is not None
            and not self.transport.is_closing()
            and self.session.can_open
            and (self.origin.multiplex or self.opened == 0)
        )

    def open(self, headers: list[tuple[str, str]], client: H2HTTPClient) -> H2Stream:
        state = self.session.open_stream(headers)
        self.opened += 1
        self.idle_since = None
        stream = self.streams[state.stream_id] = H2Stream(self, state, client.read_timeout, client.max_response_body_size)
        self.flush()
        return stream

    def release(self, stream: H2Stream, *, reset: bool) -> None:
        """The stream is over for us: reset it if asked, and free its slot."""
        if self.streams.pop(stream.state.stream_id, None) is None:
            return
        if reset:
            self.session.reset_stream(stream.state)
        else:
            self.session.forget(stream.state)
        self.flush()
        if not self.streams:
            if self.session.terminated or not self.origin.multiplex:
                self.close()
            else:
                self.idle_since = time.monotonic()
        self.origin.wake()

    def close(self) -> None:
        """Say GOAWAY (unless the connection is over already) and close the socket."""
        self.session.close()
        self.flush()
        if self.transport is not None:
            self.transport.close()
        self.origin.forget(self)

    async def closed(self, timeout: float) -> None:
        """Wait until the socket is closed; abort it if that takes longer than ``timeout``."""
        if self.transport is None or self._gone.done():
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._gone)
        except TimeoutError:
            self.transport.abort()
            await self._gone

    def fail(self, error: TransportError) -> None:
        """Fail every stream with ``error`` and close (the client is closing)."""
        self.session.close()  # the GOAWAY first: a failed session says nothing more
        self.session.fail(error)
        for stream in list(self.streams.values()):
            stream._wake()
        self.close()

    def _apply(self, changes: Changes) -> None:
        streams = self.streams
        if changes.terminated or changes.all_writers:
            for stream in list(streams.values()):
                stream._wake()
        else:
            for stream_id in changes.streams:
                woken = streams.get(stream_id)
                if woken is not None:
                    woken._wake()
        if changes.terminated and not streams:
            self.close()
        if changes.slots_changed or changes.terminated:
            self.origin.wake()


class H2Stream:
    """One open request stream (an :class:`~smruntime.transport.http2_protocol.HTTP2Stream`).

    ``send`` and the response body may be used from two tasks at once: full duplex. Every wait
    for the server (the response, its data, a flow-control window) is bounded by
    ``read_timeout`` and fails the stream with :class:`ReadTimeoutError`. A cancelled wait resets
    the stream (RST_STREAM CANCEL) and releases it.
    """

    def __init__(self, conn: _Connection, state: StreamState, read_timeout: float, limit: int) -> None:
        self._conn = conn
        self.state = state
        self._read_timeout = read_timeout
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._reading = ""  # what the reader waits for, for its timeout's message
        self._reader_deadline = self._writer_deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._response: AsyncHTTPResponse | None = None
        self._released = False

    @property
    def stream_id(self) -> int:
        return self.state.stream_id

    async def send(self, data: bytes) -> None:
        conn = self._conn
        rest: bytes | memoryview = data
        try:
            while rest:
                sent = conn.session.send_some(self.state, rest)
                if sent:
                    rest = memoryview(rest)[sent:]
                    conn.flush()
                    await conn.drain()
                else:
                    await self._wait_writable()
        except asyncio.CancelledError:
            self._cancelled()
            raise

    async def end_input(self) -> None:
        state = self.state
        if state.local_ended:
            return
        if state.error is not None:
            raise state.error
        if state.reset:
            return
        self._conn.session.end_stream(state)
        self._conn.flush()
        self._release_if_finished()

    async def response(self) -> AsyncHTTPResponse:
        if self._response is not None:
            return self._response
        state = self.state
        try:
            while state.status is None:
                if state.error is not None:
                    raise state.error
                if state.reset:
                    raise ConnectionClosedError("the HTTP/2 stream was closed before its response arrived")
                await self._wait_readable("response headers")
        except asyncio.CancelledError:
            self._cancelled()
            raise
        headers = Headers()
        for name, value in state.headers:
            known = headers.get(name)
            headers[name] = value if known is None else f"{known}, {value}"  # as HTTP allows
        self._response = AsyncHTTPResponse(state.status, headers, _StreamBody(self))
        return self._response

    async def aclose(self) -> None:
        self._release(reset=True)

    # -- for the body ---------------------------------------------------------------------------

    async def _next(self, max_size: int | None) -> bytes:
        """The next received data (``b""`` at the end), waiting for it."""
        conn = self._conn
        try:
            while True:
                data = conn.session.take(self.state, max_size)
                conn.flush()  # the WINDOW_UPDATE the taken data earned, if any
                if data is not None:
                    if not data:
                        self._release_if_finished()
                    return data
                await self._wait_readable("response data")
        except asyncio.CancelledError:
            self._cancelled()
            raise

    # -- waiting --------------------------------------------------------------------------------

    async def _wait_readable(self, what: str) -> None:
        self._reader = waiter = self._loop.create_future()
        self._reading = what
        self._reader_deadline = self._loop.time() + self._read_timeout
        await self._wait(waiter)

    async def _wait_writable(self) -> None:
        self._writer = waiter = self._loop.create_future()
        self._writer_deadline = self._loop.time() + self._read_timeout
        await self._wait(waiter)

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        if self._timer is None:
            self._timer = self._loop.call_at(self._loop.time() + self._read_timeout, self._check_deadlines)
        try:
            await waiter
        except ReadTimeoutError as exc:
            if self.state.error is None:
                self.state.error = exc
            self._release(reset=True)
            raise

    def _check_deadlines(self) -> None:
        """The stream's one timer: fail a wait that has lasted ``read_timeout``, and look again
        when the next wait still pending would. One timer for the stream's life costs less than
        one per wait (a small event's round trip waits once)."""
        self._timer = None
        now = self._loop.time()
        timeout = self._read_timeout
        nearest: float | None = None
        for waiter, deadline, message in (
            (self._reader, self._reader_deadline, f"no {self._reading} from the server for {timeout:g} s"),
            (self._writer, self._writer_deadline, f"the server opened no flow-control window for {timeout:g} s"),
        ):
            if waiter is None or waiter.done():
                continue
            if deadline <= now:
                waiter.set_exception(ReadTimeoutError(message, request_sent=True))
            elif nearest is None or deadline < nearest:
                nearest = deadline
        if nearest is not None:
            self._timer = self._loop.call_at(nearest, self._check_deadlines)

    def _wake(self) -> None:
        for waiter in (self._reader, self._writer):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._reader = self._writer = None

    def _cancelled(self) -> None:
        """A task waiting on the stream was cancelled: part of an event may be written or
        unread, so the stream cannot go on. Reset it; a later use says why."""
        if self.state.error is None and not self._released:
            self.state.error = stream_cancelled()
        self._release(reset=True)

    def _release_if_finished(self) -> None:
        if self.state.finished:
            self._release(reset=False)

    def _release(self, *, reset: bool) -> None:
        if self._released:
            return
        self._released = True
        self._conn.release(self, reset=reset)
        self._wake()  # a task waiting on the other side of the stream sees it is over
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _StreamBody:
    """The response body of an :class:`H2Stream` (an ``AsyncResponseBody``): its DATA as it
    arrives. Closing it before the end resets the stream."""

    __slots__ = ("_done", "_stream")

    def __init__(self, stream: H2Stream) -> None:
        self._stream = stream
        self._done = False

    async def read(self) -> bytes:
        stream = self._stream
        limit = stream._limit
        gathered = []
        size = 0
        while piece := await self._next():
            size += len(piece)
            if size > limit:
                stream._release(reset=True)
                raise body_too_large(limit)
            gathered.append(piece)
        return b"".join(gathered)

    def aiter_chunks(self) -> AsyncIterator[bytes]:
        return _Chunks(self)

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            if not self._stream.state.remote_ended:
                self._stream._release(reset=True)

    @property
    def closed(self) -> bool:
        return self._done

    async def _next(self) -> bytes:
        if self._done:
            if self._stream.state.remote_ended and not self._stream.state.buffered:
                return b""
            raise ConnectionClosedError("the response body was closed before it was read to the end", request_sent=True)
        data = await self._stream._next(None)
        if not data:
            self._done = True
        return data


class _Chunks:
    """The DATA of a :class:`_StreamBody` as it arrives (an async iterator; cheaper per chunk
    than an async generator)."""

    __slots__ = ("_body",)

    def __init__(self, body: _StreamBody) -> None:
        self._body = body

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        piece = await self._body._next()
        if not piece:
            raise StopAsyncIteration
        return piece


class _Origin:
    """The connections to one origin, how to open another, and who waits for a stream slot."""

    def __init__(
        self, client: H2HTTPClient, host: str, port: int, context: ssl.SSLContext | None, *, multiplex: bool
    ) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.context = context
        self.multiplex = multiplex
        self.limit = client.max_pool_connections
        self.connections: list[_Connection] = []
        self.closed = False
        self._connecting = 0
        self._pending: asyncio.Future[None] | None = None  # a connection on its way (multiplexing)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, deadline: float) -> _Connection:
        """A connection that can take a new stream now: one in use, else a new one, else wait;
        by ``deadline`` (the loop's clock), else ``TimeoutError``, or a connect's own error."""
        while True:
            if self.closed:
                raise ClientClosedError("the HTTP/2 client was closed while this stream waited to open")
            for conn in list(self.connections):
                if conn.idle_too_long:
                    conn.close()  # a GOAWAY, in case it is still there; the stream goes on a new one
                elif conn.usable:
                    return conn
            if self.multiplex and self._pending is not None:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._pending)  # its failure is ours too
                continue
            if len(self.connections) + self._connecting < self.limit:
                conn = await self._connect(deadline)
                if conn.usable:
                    return conn
                continue
            async with asyncio.timeout_at(deadline):
                await self._wait()

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        pending = self._pending = loop.create_future() if self.multiplex else None
        self._connecting += 1
        protocol = _Connection(self, H2Session(**self.client._windows))
        outcome: BaseException | None = None
        try:
            await self._open(loop, protocol, deadline)
            if self.closed:  # while we connected
                _abort(protocol)
                raise ClientClosedError("the HTTP/2 client was closed while this stream waited to open")
            self.connections.append(protocol)
            protocol.start()
            return protocol
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            self._connecting -= 1
            if pending is not None:
                # Streams waiting for this connection: a failure is theirs too; after a
                # success, or if we were cancelled, they look again.
                self._pending = None
                if isinstance(outcome, Exception):
                    pending.set_exception(outcome)
                    pending.exception()  # marked retrieved: each waiter re-raises it itself
                else:
                    pending.set_result(None)
            self.wake()

    async def _open(self, loop: asyncio.AbstractEventLoop, protocol: _Connection, deadline: float) -> None:
        # Timed out here, the connect fails with its own error, which the streams waiting for
        # it share; cancelled from outside, they would each try to connect again.
        timeout = self.client.connect_timeout
        try:
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(
                    lambda: protocol,
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.host if self.context is not None else None,
                )
        except TimeoutError as exc:
            _abort(protocol)
            raise ConnectTimeoutError(f"timed out after {timeout:g} s connecting", request_sent=False) from exc
        except BaseException as exc:
            _abort(protocol)
            tag(exc, "connect")
            raise
        transport = cast(asyncio.Transport, protocol.transport)
        if self.context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            if chosen != "h2":
                _abort(protocol)
                raise ConnectError(
                    f"the server does not speak HTTP/2 over TLS: ALPN offered h2, the server chose {chosen or 'nothing'}",
                    request_sent=False,
                )
        set_nodelay(transport)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def wake(self) -> None:
        """Something changed (a slot freed, a connection closed): every waiter looks again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def forget(self, conn: _Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
            self.wake()

    def close(self) -> list[_Connection]:
        """Close every connection; the ones that were open."""
        self.closed = True
        connections = list(self.connections)
        for conn in connections:
            conn.fail(ClientClosedError("the HTTP/2 client was closed while this stream was open", request_sent=True))
        self.wake()
        return connections


def _abort(protocol: _Connection) -> None:
    if protocol.transport is not None:
        protocol.transport.abort()


def request_headers(request: HTTPRequest, scheme: str, netloc: str, target: str) -> list[tuple[str, str]]:
    """A request's HTTP/2 header list: the pseudo-headers, then its own headers lower-cased.

    ``:authority`` keeps a port other than the scheme's default; a ``Host`` header becomes
    ``:authority`` (RFC 9113 §8.3.1). Headers HTTP/2 forbids, or that are malformed, are refused.
    """
    authority = host_header(scheme, netloc)
    own: list[tuple[str, str]] = []
    for name, value in request.headers.items():
        key = name.lower()
        if not TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}: a header name is an RFC 9110 token")
        if BAD_VALUE.search(value):
            raise ValueError(f"invalid value for header {name!r}: it contains CR, LF or NUL")
        if key in _CONNECTION_SPECIFIC or (key == "te" and value.strip().lower() != "trailers"):
            raise ValueError(f"header {name!r} is connection-specific, which HTTP/2 forbids (RFC 9113 §8.2.2)")
        if key == "host":
            authority = value
            continue
        own.append((key, value))
    method = request.method
    if not TOKEN.fullmatch(method):
        raise ValueError(f"invalid method {method!r}: a method is an RFC 9110 token")
    return [(":method", method), (":scheme", scheme), (":authority", authority), (":path", target), *own]


class H2HTTPClient:
    """An :class:`~smruntime.transport.http2_protocol.AsyncHTTP2Client` on asyncio and ``h2``.

    ``connect_timeout`` bounds connecting (TCP, TLS) and waiting for a free stream slot;
    ``read_timeout`` bounds every wait of a stream for the server (its response, its data, a
    flow-control window). ``max_pool_connections`` connections per origin, each carrying up to
    the server's ``MAX_CONCURRENT_STREAMS``. ``verify`` is as for the other clients (False, a CA
    bundle path, or True for certifi's bundle; when None, the environment's ``AWS_CA_BUNDLE``,
    ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``). A stream holds at most ``stream_window``
    bytes of unread response data (the server waits for the reader), a connection
    ``connection_window``. ``multiplex=False`` opens a connection per stream instead of
    sharing one. A connection with no stream open for ``idle_timeout`` seconds (None: no
    limit) is closed when the next stream would use it. Proxies are not used. Used on a later
    event loop, the client drops the previous loop's connections; it is refused while that
    loop runs.
    """

    def __init__(
        self,
        connect_timeout: float = 60.0,
        read_timeout: float = 70.0,
        max_pool_connections: int = 10,
        verify: bool | str | None = None,
        max_response_body_size: int = DEFAULT_MAX_RESPONSE_BODY_SIZE,
        *,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        multiplex: bool = True,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        for name, window in (("stream_window", stream_window), ("connection_window", connection_window)):
            if not 65535 <= window <= 2**31 - 1:
                raise ValueError(f"{name} must be between 65535 and 2**31-1 bytes (RFC 9113 §6.9.1), not {window}")
        if max_pool_connections < 1:
            raise ValueError(f"max_pool_connections must be at least 1, not {max_pool_connections}")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self.max_response_body_size = max_response_body_size
        self.multiplex = multiplex
        self.idle_timeout = check_idle_timeout(idle_timeout)
        self._verify: bool | str = verify if verify is not None else environ_ca_bundle()
        self._windows = {"stream_window": stream_window, "connection_window": connection_window}
        self._context: ssl.SSLContext | None = None
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def verify(self) -> bool | str:
        """How server certificates are checked: a CA bundle's path, True (certifi's) or False."""
        return self._verify

    async def open_stream(self, request: HTTPRequest) -> H2Stream:
        if (loop := asyncio.get_running_loop()) is not self._loop:
            self._move_to(loop)
        try:
            scheme, netloc, target = split_url(request.url)
            headers = request_headers(request, scheme, netloc, target)
            origin = self._origins.get((scheme, netloc))
            if origin is None or origin.closed:
                origin = self._origin(scheme, netloc)
        except Exception as exc:
            tag(exc, "prepare")
            raise map_transport_error(exc) from exc
        deadline = loop.time() + self.connect_timeout
        try:
            while True:
                conn = await origin.acquire(deadline)
                try:
                    return conn.open(headers, self)
                except NoAvailableStreamIDError:
                    conn.session.close()  # this connection used up its stream IDs: retire it
                    conn.flush()
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                f"timed out after {self.connect_timeout:g} s waiting to open an HTTP/2 stream", request_sent=False
            ) from exc
        except TransportError:
            raise
        except Exception as exc:
            tag(exc, "connect")
            raise map_transport_error(exc, request_sent=False) from exc

    async def aclose(self) -> None:
        """Close every connection; streams still open fail with ``ClientClosedError``.
        The client opens new connections if it is used again. From another event loop than the
        one using the client, the closing is done on that one (or, once it is closed, the
        connections are dropped)."""
        if await close_here(self._loop, self.aclose) is None:
            return
        closing = self._close_origins()
        # Return once the sockets are closed: a GOAWAY still in the write buffer goes out first.
        await asyncio.gather(*(conn.closed(_CLOSE_TIMEOUT) for conn in closing))

    def _close_origins(self) -> list[_Connection]:
        """Forget every origin and close its connections (those closing), unless their loop is
        closed: it can close nothing, and Python closes those sockets."""
        origins = list(self._origins.values())
        self._origins.clear()
        if owner_now(self._loop) == "closed":
            return []
        return [conn for origin in origins for conn in origin.close()]

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        if leave_loop(self._loop, "H2HTTPClient"):
            self._close_origins()
        self._loop = loop

    async def __aenter__(self) -> H2HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        address = netloc.rpartition("@")[2]
        context = self._ssl_context() if scheme == "https" else None
        host, port = _host_and_port(address, 443 if context is not None else 80)
        origin = self._origins[(scheme, netloc)] = _Origin(self, host, port, context, multiplex=self.multiplex)
        return origin

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            context = ssl_context_for(self._verify)
            context.set_alpn_protocols(["h2"])
            self._context = context
        return self._context


if TYPE_CHECKING:

    def _is_an_async_http2_client(client: H2HTTPClient) -> AsyncHTTP2Client:
        return client  # mypy checks that H2HTTPClient and H2Stream follow the protocols
