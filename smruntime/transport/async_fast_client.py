"""AsyncFastHTTPClient: the lowest-overhead asyncio HTTP client, on asyncio transports.

The event loop receives straight into each connection's sans-IO reader
(:mod:`smruntime.transport.http11`) through a buffered protocol: no stream objects, no copies
before parsing. Each request goes out in one write. The loop reports a server close on an idle
connection as it happens, so a pooled connection needs no check before it is reused. Nothing
but asyncio and ssl is imported (requests only to resolve a proxy the environment names).
"""

from __future__ import annotations

import asyncio
import collections
import io
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

from smruntime.errors import ClientClosedError, ConnectTimeoutError
from smruntime.http import Headers, HTTPRequest
from smruntime.transport.async_protocol import AsyncBytesBody, AsyncHTTPResponse
from smruntime.transport.error_mapping import failure_phase, map_transport_error, tag
from smruntime.transport.fast_client import prepare, route
from smruntime.transport.http11 import ResponseHead, ResponseReader, parse_head
from smruntime.transport.shared import (
    CLOSED_IN_FLIGHT,
    CLOSED_WHILE_WAITING,
    AsyncLiveBody,
    PooledHTTPClient,
    PreparedBody,
    WriteGate,
    close_here,
    file_block,
    idle_too_long,
    leave_loop,
    owner_now,
    pool_timeout,
    set_nodelay,
    wire_pieces,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["AsyncFastHTTPClient"]

_WRITE_HIGH_WATER = 256 * 1024
"""Wait for the kernel to take a file body's blocks once this much is buffered."""
_FILE_BLOCK = 1024 * 1024
"""A file body is read in blocks this large, each in a worker thread (few hand-offs)."""


class ReadTimeout(TimeoutError):
    """No byte arrived within the read timeout (its name shows in error messages)."""


class _Protocol(asyncio.BufferedProtocol):
    """One connection: the loop writes received bytes into the reader's buffer."""

    __slots__ = (
        "_deadline",
        "_gate",
        "_idle",
        "_paused",
        "_timeout",
        "_timer",
        "_waiter",
        "broken",
        "error",
        "reader",
        "transport",
    )

    def __init__(self, reader: ResponseReader) -> None:
        self.reader = reader
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._timeout = 0.0
        self._gate = WriteGate()
        self._paused = False
        self._idle = False  # in the pool: bytes arriving now belong to no request
        self.broken = False  # closed, or bytes arrived that no request asked for
        self.error: BaseException | None = None

    # -- the loop's side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.receive_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.reader.received(nbytes)
        waiter = self._waiter
        if waiter is None:
            # Nobody is reading: stop receiving until someone is, so an unread stream does
            # not pile up in memory (and an idle connection with stray bytes is not reused).
            self.broken = self.broken or self._idle
            if self.transport is not None and not self._paused:
                self._paused = True
                self.transport.pause_reading()
        else:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        self.reader.received(0)
        self.broken = True
        self._wake(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()  # it would keep this connection's buffer alive until it fired
            self._timer = None
        self.broken = True
        if exc is not None and self.error is None:
            self.error = exc
        if self.error is None:
            self.reader.received(0)
        self._wake(self.error)
        self._gate.resume(self.error or ConnectionResetError("the connection closed while sending"))

    def pause_writing(self) -> None:
        self._gate.pause()

    def resume_writing(self) -> None:
        self._gate.resume()

    # -- the client's side ------------------------------------------------------------------

    async def receive(self, timeout: float) -> None:
        """Wait until more bytes (or the end) reached the reader."""
        if self.error is not None:
            raise self.error
        if self.broken and self.transport is not None and self.transport.is_closing():
            self.reader.received(0)  # the end was already seen: let the reader say what it means
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        # One timer per connection, moved on rather than armed and cancelled for every wait
        # (which cost more than the rest of a wait's bookkeeping): a wait that gets its bytes
        # leaves it armed, and when it fires before the current wait's deadline it arms again.
        self._timeout = timeout
        deadline = self._deadline = loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._check_deadline)
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms the timer again
        loop = waiter.get_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._check_deadline)
        else:
            waiter.set_exception(ReadTimeout(f"no data for {self._timeout:g} s (read_timeout)"))

    async def drain(self) -> None:
        await self._gate.wait()

    def fail(self, exc: BaseException) -> None:
        """Make the connection's reader and writer raise ``exc`` (the client was closed)."""
        if self.error is None:
            self.error = exc
        self._wake(exc)
        if self.transport is not None:
            self.transport.abort()

    def _wake(self, exc: BaseException | None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)


class _Conn:
    """A pooled connection: its protocol (which holds the reader) and how many responses it carried."""

    __slots__ = ("exchanges", "idle_since", "protocol")

    def __init__(self, protocol: _Protocol) -> None:
        self.protocol = protocol
        self.exchanges = 0
        self.idle_since = 0.0  # time.monotonic() when it last went back to the pool

    def close(self) -> None:
        transport = self.protocol.transport
        if transport is not None:
            transport.abort()  # never a half-read connection: no graceful close to wait for


class _Origin:
    """The connections to one origin: idle ones (LIFO), a cap on how many exist, and who waits."""

    __slots__ = (
        "_idle",
        "_live",
        "_waiters",
        "absolute",
        "busy",
        "closed",
        "connect",
        "extra_headers",
        "host",
        "idle_timeout",
        "limit",
    )

    def __init__(
        self, connect: _Connector, limit: int, *, host: str, absolute: bool, extra_headers: str,
        idle_timeout: float | None,
    ) -> None:
        self.connect = connect
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.host = host
        self.absolute = absolute
        self.extra_headers = extra_headers
        self.closed = False
        self._idle: list[_Conn] = []
        self._live = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.busy: set[_Conn] = set()

    async def acquire(self, timeout: float) -> _Conn:
        if self.closed:
            raise ClientClosedError(CLOSED_WHILE_WAITING)
        while True:
            while self._idle:
                conn = self._idle.pop()
                conn.protocol._idle = False
                # The server closed it while it was idle, or it sat unused too long to trust.
                if conn.protocol.broken or idle_too_long(conn.idle_since, self.idle_timeout):
                    conn.close()
                    self._live -= 1
                    continue
                self.busy.add(conn)
                return conn
            if self._live < self.limit:
                break
            await self._wait(timeout)
        self._live += 1
        try:
            conn = _Conn(await self.connect())
        except BaseException:
            self._forget_one()
            raise
        if self.closed:  # closed while connecting
            conn.close()
            self._forget_one()
            raise ClientClosedError(CLOSED_WHILE_WAITING)
        self.busy.add(conn)
        return conn

    async def _wait(self, timeout: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise pool_timeout(timeout, self.limit) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._wake_one()  # we were handed a slot we will not use: pass it on
            raise
        finally:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget_one(self) -> None:
        self._live -= 1
        self._wake_one()

    def release(self, conn: _Conn, reusable: bool) -> None:
        if conn not in self.busy:
            return  # released already
        self.busy.discard(conn)
        protocol = conn.protocol
        if not (reusable and not self.closed and not protocol.broken and protocol.error is None):
            conn.close()
            self._forget_one()
            return
        conn.protocol._idle = True
        conn.idle_since = time.monotonic()
        self._idle.append(conn)
        self._wake_one()

    def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        self._live -= len(idle)
        for conn in idle:
            conn.close()
        for conn in list(self.busy):
            conn.protocol.fail(ClientClosedError(CLOSED_IN_FLIGHT, request_sent=True))
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ClientClosedError(CLOSED_WHILE_WAITING))


class _Connector:
    """Opens one connection to an origin, directly or through a proxy."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        timeout: float,
        proxy: tuple[str, int] | None = None,
        tunnel_headers: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.context = context
        self.timeout = timeout
        self.proxy = proxy
        self.tunnel_headers = tunnel_headers

    async def __call__(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(ResponseReader())
        try:
            async with asyncio.timeout(self.timeout):
                if self.proxy is None:
                    await loop.create_connection(
                        lambda: protocol, self.host, self.port, ssl=self.context,
                        server_hostname=self.host if self.context is not None else None,
                    )
                else:
                    await loop.create_connection(lambda: protocol, *self.proxy)
                    if self.context is not None:
                        await self._tunnel(loop, protocol)
        except TimeoutError as exc:
            if protocol.transport is not None:
                protocol.transport.abort()
            tag(exc, "connect")
            raise ConnectTimeoutError(f"timed out after {self.timeout:g} s connecting", request_sent=False) from exc
        except BaseException as exc:
            if protocol.transport is not None:
                protocol.transport.abort()
            tag(exc, "connect")
            raise
        set_nodelay(cast(asyncio.Transport, protocol.transport))
        return protocol

    async def _tunnel(self, loop: asyncio.AbstractEventLoop, protocol: _Protocol) -> None:
        """CONNECT through the proxy, then TLS to the origin inside the tunnel."""
        transport = cast(asyncio.Transport, protocol.transport)
        authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        transport.write(
            f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{self.tunnel_headers}\r\n".encode("latin-1")
        )
        reader = protocol.reader
        reader.start("CONNECT")
        received = bytearray()
        while b"\r\n\r\n" not in received:
            await protocol.receive(self.timeout)
            received = bytearray(reader._buffer[reader._start : reader._end])
            if reader._eof:
                raise ConnectionResetError("the proxy closed the connection during CONNECT")
        head = parse_head(bytes(received[: received.index(b"\r\n\r\n") + 4]))
        if not 200 <= head.status < 300:
            raise OSError(f"the proxy refused the tunnel: {head.status} {head.reason}")
        tls = await loop.start_tls(transport, protocol, cast("ssl.SSLContext", self.context), server_hostname=self.host)
        if tls is None:
            raise ConnectionResetError("the proxy closed the connection during the TLS handshake")
        protocol.transport = tls
        protocol.reader = ResponseReader()


class _ConnBody(AsyncLiveBody):
    """A response body still on one of the client's own connections."""

    __slots__ = ("_conn", "_origin", "_timeout")

    def __init__(self, conn: _Conn, origin: _Origin, timeout: float, limit: int) -> None:
        super().__init__(limit)
        self._conn = conn
        self._origin = origin
        self._timeout = timeout

    def _arrived(self) -> bytes | None:
        return self._conn.protocol.reader.arrived_body()

    async def _arriving(self, max_size: int | None) -> AsyncIterator[bytes]:
        protocol = self._conn.protocol
        reader = protocol.reader
        while True:
            piece = reader.read_body(max_size)
            if piece is None:
                try:
                    await protocol.receive(self._timeout)
                except ClientClosedError as exc:  # mapped as the connection lost mid-body it is
                    raise ConnectionResetError(str(exc)) from exc
            elif piece:
                yield piece
            else:
                return

    def _release(self) -> None:
        self._origin.release(self._conn, reusable=self._conn.protocol.reader.reusable)

    def _discard(self) -> None:
        self._origin.release(self._conn, reusable=False)


class AsyncFastHTTPClient(PooledHTTPClient):
    """An :class:`~smruntime.transport.async_protocol.AsyncHTTPClient` on asyncio transports,
    for the lowest overhead.

    The contract is :class:`~smruntime.transport.FastHTTPClient`'s: exact wire headers,
    per-origin pools of ``max_pool_connections`` (a request waits up to ``connect_timeout``
    for one), live streams, one error mapping, proxies from ``proxies`` or the environment
    (plain ``http://`` proxies: a CONNECT tunnel for https, the absolute URL for http) and the
    CA bundle from ``verify`` or the environment. ``read_timeout`` bounds each wait for bytes.
    A request is never sent twice. Used on a later event loop (a second ``asyncio.run``), the
    client drops the previous loop's connections; it is refused while that loop still runs.
    """

    def _start_pools(self) -> None:
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> AsyncHTTPResponse:
        if (loop := asyncio.get_running_loop()) is not self._loop:
            self._move_to(loop)
        origin, head, body = prepare(request, self._split_url, self._origins, self._origin)
        try:
            conn = await origin.acquire(self.connect_timeout)
        except (ClientClosedError, ConnectTimeoutError):  # ours already, said as meant
            raise
        except Exception as exc:
            tag(exc, "connect")
            raise map_transport_error(exc, request_sent=False) from exc
        try:
            response = await self._roundtrip(conn, request.method, head, body)
            headers = Headers.received(response.headers)
        except ClientClosedError:
            origin.release(conn, reusable=False)
            raise
        except Exception as exc:
            origin.release(conn, reusable=False)
            raise map_transport_error(exc) from exc
        except BaseException:
            origin.release(conn, reusable=False)
            raise
        live = _ConnBody(conn, origin, self.read_timeout, self.max_response_body_size)
        if stream:
            return AsyncHTTPResponse(response.status, headers, live, response.reason)
        return AsyncHTTPResponse(response.status, headers, AsyncBytesBody(await live.read()), response.reason)

    async def aclose(self) -> None:
        """Close every connection; requests waiting or in flight fail with a ``TransportError``.
        The client opens new connections if it is used again. From another event loop than the
        one using the client, the closing is done on that one (or, once it is closed, the
        connections are dropped)."""
        if await close_here(self._loop, self.aclose) is not None:
            self.close()

    def close(self) -> None:
        """As :meth:`aclose`, for code that cannot await (from another thread, the closing is
        handed to the loop using the client, not waited for)."""
        where = owner_now(self._loop)
        if where == "elsewhere":
            cast(asyncio.AbstractEventLoop, self._loop).call_soon_threadsafe(self.close)
            return
        origins = list(self._origins.values())
        self._origins.clear()
        if where == "closed":
            return  # a closed loop can close nothing: Python closes those sockets
        for origin in origins:
            origin.close()

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        if leave_loop(self._loop, "AsyncFastHTTPClient"):
            self.close()
        self._loop = loop

    async def __aenter__(self) -> AsyncFastHTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _roundtrip(self, conn: _Conn, method: str, head: bytes, body: PreparedBody) -> ResponseHead:
        protocol = conn.protocol
        reused = conn.exchanges > 0
        transport = cast(asyncio.Transport, protocol.transport)
        reader = protocol.reader
        reader.start(method)
        write_failed = False
        try:
            await _write(protocol, transport, head, body)
        except (BrokenPipeError, ConnectionResetError):
            write_failed = True  # the server may have answered early (a 413…): read that answer
        except BaseException as exc:
            tag(exc, "send")
            raise
        try:
            while (response := reader.next_head()) is None:
                await protocol.receive(self.read_timeout)
        except BaseException as exc:
            tag(exc, failure_phase(write_failed, reused))
            raise
        conn.exchanges += 1
        return response

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        """How to reach an origin (directly or through a proxy), resolved once."""
        way = route(scheme, netloc, self._proxies, "AsyncFastHTTPClient")
        context = self._ssl_context() if scheme == "https" else None
        target_host, port = way.target
        if way.proxy is None:
            connector = _Connector(target_host, port, context, self.connect_timeout)
        elif context is not None:
            tunnel_auth = "" if way.proxy_authorization is None else f"Proxy-Authorization: {way.proxy_authorization}\r\n"
            connector = _Connector(target_host, port, context, self.connect_timeout, way.proxy, tunnel_auth)
        else:
            connector = _Connector(target_host, port, None, self.connect_timeout, way.proxy)
        host, absolute, extra_headers = way.host, way.absolute, way.extra_headers
        origin = _Origin(connector, self.max_pool_connections, host=host, absolute=absolute, extra_headers=extra_headers,
                         idle_timeout=self.idle_timeout)
        self._origins[(scheme, netloc)] = origin
        return origin


async def _write(protocol: _Protocol, transport: asyncio.Transport, head: bytes, body: PreparedBody) -> None:
    if protocol.broken or transport.is_closing():
        raise ConnectionResetError("the connection was closed before the request was written")
    data = body.data
    if data is None or isinstance(data, (bytes, io.BytesIO)):
        for piece in wire_pieces(head, body):
            transport.write(piece)
            if transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                await protocol.drain()
    else:  # a file: its blocks are read in a worker thread, so the loop never waits on a disk
        transport.write(head)
        left = cast(int, body.length)
        while left > 0:
            block = await asyncio.to_thread(file_block, data, left, _FILE_BLOCK)
            transport.write(block)
            left -= len(block)
            if transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                await protocol.drain()
    await protocol.drain()
