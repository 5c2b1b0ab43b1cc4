"""FastHTTPClient: the lowest-overhead HTTP client, on plain sockets.

Each request goes out in one write, and the response is read with recv_into into one buffer per
connection and parsed by the sans-IO reader in :mod:`smruntime.transport.http11`. Pooled
connections are checked for a server close before they are reused. http.client is imported only
to tunnel through a proxy, and requests only to resolve a proxy the environment names, so a
direct connection costs neither import.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar, cast

from smruntime.errors import ClientClosedError
from smruntime.http import BytesBody, Headers, HTTPRequest, HTTPResponse
from smruntime.transport.error_mapping import describe_url, failure_phase, map_transport_error, phase_of, tag
from smruntime.transport.http11 import ResponseHead, ResponseReader
from smruntime.transport.shared import (
    CLOSED_WHILE_WAITING,
    READ1_SIZE,
    TOKEN,
    LiveBody,
    PooledHTTPClient,
    PreparedBody,
    body_too_large,
    breaks_header,
    gather,
    host_header,
    idle_too_long,
    pool_timeout,
    proxy_authorization,
    proxy_for,
    wire_pieces,
)

if TYPE_CHECKING:
    import ssl  # imported when an https origin is first used

__all__ = ["FastHTTPClient"]



_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_NAMES = re.compile(rf"(?:{TOKEN.pattern})(?:\n(?:{TOKEN.pattern}))*")
"""Header names joined by newlines (which no name may hold)."""


class _Connection(Protocol):
    """A socket to an origin, connected on demand: an http.client connection fits."""

    sock: socket.socket | None

    def connect(self) -> None: ...

    def close(self) -> None: ...


class _DirectConnection:
    """A TCP (and TLS) connection to the origin itself, set up as http.client would."""

    __slots__ = ("_context", "_host", "_port", "_timeout", "sock")

    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext | None) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._context = context
        self.sock: socket.socket | None = None

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self._host, self._port), self._timeout)
        except OSError as error:
            if error.errno is None or not error.strerror:
                raise
            # socket's errors do not say where: name the address, as urllib3's do
            raise type(error)(error.errno, f"{error.strerror} ({self._host}:{self._port})") from error
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the head and body go in one write anyway
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


def _host_and_port(address: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` too) as ``(host, port)``."""
    host, colon, port = address.rpartition(":")
    if not colon or "]" in port:  # no port, or a bare IPv6 literal's last group
        host, port = address, ""
    if port and not port.isdigit():
        raise ValueError(f"invalid port in {describe_url(address)}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port) if port else default_port


class Route(NamedTuple):
    """How a client of ours reaches an origin: directly, or through an ``http://`` proxy."""

    host: str
    """The Host header."""
    address: str
    """``host[:port]`` of the origin, without user information (a CONNECT tunnel's target)."""
    target: tuple[str, int]
    """Where a direct connection goes."""
    proxy: tuple[str, int] | None
    """The proxy's host and port; None for a direct connection."""
    proxy_authorization: str | None
    """The ``Proxy-Authorization`` value the proxy URL's user information makes."""
    absolute: bool
    """Requests name the absolute URL (plain http through a proxy; https goes through a tunnel)."""

    @property
    def extra_headers(self) -> str:
        """Header lines every request carries (its proxy's authorization, when not tunnelled)."""
        if self.absolute and self.proxy_authorization is not None:
            return f"Proxy-Authorization: {self.proxy_authorization}\r\n"
        return ""


class OriginLike(Protocol):
    """What writing a request head needs of a pool's origin (the sync and the asyncio one)."""

    host: str
    absolute: bool
    extra_headers: str
    closed: bool


OriginT = TypeVar("OriginT", bound=OriginLike)


def prepare(
    request: HTTPRequest,
    split: Callable[[str], tuple[str, str, str]],
    origins: Mapping[tuple[str, str], OriginT],
    new_origin: Callable[[str, str], OriginT],
) -> tuple[OriginT, bytes, PreparedBody]:
    """The origin a request goes to (``new_origin`` makes one it does not know yet), its head
    and its body, before any I/O; a bad request comes out as a ``TransportError``."""
    try:
        scheme, netloc, target = split(request.url)
        origin = origins.get((scheme, netloc))
        if origin is None or origin.closed:
            origin = new_origin(scheme, netloc)
        if origin.absolute:
            target = f"{scheme}://{netloc}{target}"
        body = PreparedBody(request.body)
        return origin, _request_head(request, target, body, origin), body
    except Exception as exc:
        tag(exc, "prepare")
        raise map_transport_error(exc) from exc


def route(scheme: str, netloc: str, proxies: Mapping[str, str] | None, client: str, advice: str = "") -> Route:
    """How ``client`` reaches ``scheme://netloc``, with ``proxies`` (or the environment's) in
    mind; ``client`` and ``advice`` complete the error for a proxy it cannot use."""
    address = netloc.rpartition("@")[2]
    tls = scheme == "https"
    target = _host_and_port(address, 443 if tls else 80)
    proxy = proxy_for(scheme, netloc, proxies)
    if proxy is None:
        return Route(host_header(scheme, netloc), address, target, None, None, absolute=False)
    parts = urllib.parse.urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{client} supports http:// proxies only, not {describe_url(proxy)}{advice}")
    return Route(
        host_header(scheme, netloc),
        address,
        target,
        (parts.hostname, parts.port or 80),
        proxy_authorization(parts),
        absolute=not tls,
    )


class _Conn:
    """A pooled connection, its response reader, and what we know about it."""

    __slots__ = ("exchanges", "http", "idle_since", "reader", "reusable")

    def __init__(self, connection: _Connection) -> None:
        self.http = connection
        self.reader = ResponseReader()
        self.exchanges = 0  # responses received since the socket connected
        self.reusable = True
        self.idle_since = 0.0  # time.monotonic() when it last went back to the pool


class _Origin:
    """The connections to one origin: idle ones (LIFO) and a cap on how many exist."""

    __slots__ = ("_cond", "_idle", "_live", "_lock", "_waiting", "absolute", "closed", "extra_headers", "host", "limit", "new_connection")

    def __init__(
        self,
        new_connection: Callable[[], _Connection],
        limit: int,
        *,
        host: str,
        absolute: bool,
        extra_headers: str,
    ) -> None:
        self.new_connection = new_connection
        self.limit = limit
        self.host = host  # the Host header value
        self.absolute = absolute  # through a plain HTTP proxy, the target is the absolute URL
        self.extra_headers = extra_headers  # header lines the proxy needs, already formatted
        self.closed = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle: list[_Conn] = []
        self._live = 0
        self._waiting = 0

    def acquire(self, timeout: float) -> _Conn:
        deadline: float | None = None
        with self._lock:
            while not self._idle and self._live >= self.limit:
                if self.closed:
                    raise ClientClosedError(CLOSED_WHILE_WAITING)
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                self._waiting += 1
                try:
                    if left <= 0 or not self._cond.wait(left):
                        raise pool_timeout(timeout, self.limit)
                finally:
                    self._waiting -= 1
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return _Conn(self.new_connection())
        except BaseException:
            self._forget_one()
            raise

    def _forget_one(self) -> None:
        with self._lock:
            self._live -= 1
            if self._waiting:
                self._cond.notify()

    def release(self, conn: _Conn, reusable: bool) -> None:
        keep = reusable and conn.reusable and not self.closed and conn.http.sock is not None
        if not keep:
            conn.http.close()
        if not keep:
            self._forget_one()
            return
        conn.idle_since = time.monotonic()
        with self._lock:
            self._idle.append(conn)
            if self._waiting:
                self._cond.notify()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.http.close()

    def close_copies(self) -> None:
        """In a forked child, which uses this origin no more: close its copies of the idle
        sockets, without the lock (a parent thread may have held it at the fork)."""
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.http.close()


class _ConnBody(LiveBody):
    """A response body still on its connection, read through the connection's ResponseReader."""

    __slots__ = ("_conn", "_origin", "_reader", "_sock")

    def __init__(self, conn: _Conn, origin: _Origin, limit: int) -> None:
        super().__init__(limit)
        self._conn = conn
        self._origin = origin
        self._reader = conn.reader
        self._sock = cast(socket.socket, conn.http.sock)  # connected by the exchange that made this body

    def _read_rest(self, limit: int) -> bytes:
        declared = self._reader.remaining_length
        if declared is None:  # chunked, or until the connection closes: counted as it arrives
            return gather(self._pieces(READ1_SIZE), limit)
        if declared > limit:
            raise body_too_large(limit)
        arrived = self._reader.arrived_body()  # the common answer: here with its head
        if arrived is not None:
            return arrived
        return b"".join(self._pieces(None))  # whole, in one piece up to 64 MiB

    def _chunks(self) -> Iterator[bytes]:
        return self._pieces(READ1_SIZE)  # as they arrive; a chunk up to 1 MiB whole (see read_body)

    def _pieces(self, max_size: int | None) -> Iterator[bytes]:
        reader, sock = self._reader, self._sock
        while True:
            piece = reader.read_body(max_size)
            if piece is None:
                reader.received(sock.recv_into(reader.receive_buffer()))
            elif piece:
                yield piece
            else:
                return

    def _complete(self) -> bool:
        return self._reader.complete

    def _release(self) -> None:
        self._origin.release(self._conn, reusable=self._reader.reusable)

    def _discard(self) -> None:
        self._origin.release(self._conn, reusable=False)


class FastHTTPClient(PooledHTTPClient):
    """An :class:`HTTPClient` on plain sockets, for the lowest overhead.

    It has the same contract as :class:`RequestsHTTPClient`: exact wire headers, blocking
    per-origin pools of ``max_pool_connections``, live streams, one error mapping. It also
    takes proxies from ``proxies`` or the environment (plain ``http://`` proxies only: a
    tunnel for https, the absolute URL for http) and the CA bundle from ``verify`` or the
    environment. Each request goes out in one write, and a pooled connection is polled for a
    server close before every reuse (one zero-timeout poll). Use RequestsHTTPClient for
    SOCKS or https:// proxies.
    """

    def _start_pools(self) -> None:
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._lock = threading.Lock()

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        origin, head, body = prepare(request, self._split_url, self._origins, self._origin)
        conn, response = self._exchange(origin, request.method, head, body)
        try:
            headers = Headers.received(response.headers)
            live = _ConnBody(conn, origin, self.max_response_body_size)
        except BaseException:
            origin.release(conn, reusable=False)
            raise
        content: LiveBody | BytesBody = live if stream else BytesBody(live.read())
        return HTTPResponse(response.status, headers, content, response.reason)

    def close(self) -> None:
        """Close every pooled connection. The client opens new ones if it is used again."""
        with self._lock:
            origins = list(self._origins.values())
            self._origins.clear()
        for origin in origins:
            origin.close()

    def _forked(self) -> None:
        inherited = list(self._origins.values())
        self._start_pools()
        for origin in inherited:
            origin.close_copies()

    def _exchange(self, origin: _Origin, method: str, head: bytes, body: PreparedBody) -> tuple[_Conn, ResponseHead]:
        """Write the request and read the response head; resend once on a stale connection."""
        for attempt in (1, 2):
            conn = origin.acquire(self.connect_timeout)
            try:
                return conn, self._roundtrip(conn, method, head, body)
            except Exception as exc:
                origin.release(conn, reusable=False)
                if attempt == 1 and phase_of(exc) == "idle" and body.rewind():
                    continue  # the server closed that pooled connection and never saw the request
                raise map_transport_error(exc) from exc
            except BaseException:
                origin.release(conn, reusable=False)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _roundtrip(self, conn: _Conn, method: str, head: bytes, body: PreparedBody) -> ResponseHead:
        connection = conn.http
        sock = connection.sock
        reused = sock is not None and conn.exchanges > 0
        if sock is not None and reused and (idle_too_long(conn.idle_since, self.idle_timeout) or _dropped(sock)):
            connection.close()
            sock, reused = None, False
        if sock is None:
            try:
                connection.connect()
                sock = cast(socket.socket, connection.sock)
                sock.settimeout(self.read_timeout)
            except BaseException as exc:
                tag(exc, "connect")
                raise
            conn.exchanges = 0
        write_error: BaseException | None = None
        try:
            _write(sock, head, body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            write_error = exc  # the server may have answered early (a 413…): read that answer
            conn.reusable = False
        except BaseException as exc:
            tag(exc, "send")
            raise
        reader = conn.reader
        reader.start(method)
        try:
            while True:  # the reader starts empty: receive first
                reader.received(sock.recv_into(reader.receive_buffer()))
                if (response := reader.next_head()) is not None:
                    break
        except BaseException as exc:
            tag(exc, failure_phase(write_error is not None, reused))
            raise
        conn.exchanges += 1
        return response

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        """How to reach an origin (directly or through a proxy), resolved once."""
        way = route(scheme, netloc, self._proxies, "FastHTTPClient", "; use RequestsHTTPClient")
        context = self._ssl_context() if scheme == "https" else None
        timeout = self.connect_timeout
        factory: Callable[[], _Connection]
        if way.proxy is None:
            target_host, port = way.target
            factory = lambda: _DirectConnection(target_host, port, timeout, context)  # noqa: E731
        else:
            import http.client

            proxy_host, proxy_port = way.proxy
            if context is not None:
                tunnel_context = context
                auth = {} if way.proxy_authorization is None else {"Proxy-Authorization": way.proxy_authorization}

                def factory() -> _Connection:
                    connection = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout, context=tunnel_context)
                    connection.set_tunnel(way.address, headers=auth)
                    return connection
            else:
                factory = lambda: http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)  # noqa: E731
        host, absolute, extra_headers = way.host, way.absolute, way.extra_headers
        origin = _Origin(factory, self.max_pool_connections, host=host, absolute=absolute, extra_headers=extra_headers)
        with self._lock:
            known = self._origins.get((scheme, netloc))
            if known is not None and not known.closed:
                return known  # another thread got here first: one pool per origin
            self._origins[(scheme, netloc)] = origin
        return origin


def _request_head(request: HTTPRequest, target: str, body: PreparedBody, origin: OriginLike) -> bytes:
    """The request line and headers, validated so that nothing can smuggle a header in."""
    method = request.method
    if not TOKEN.fullmatch(method) or _BAD_TARGET.search(target):
        raise ValueError(f"invalid method or request target: {method!r} {target[:100]!r}")
    headers = request.headers
    names, values = headers.names_and_values()
    # One match for all the names and one search for all the values, not two per header: a
    # name holding the separator shows up as a piece too many.
    joined = "\n".join(names)
    pairs = zip(names, values, strict=True)
    if (names and (not _NAMES.fullmatch(joined) or joined.count("\n") != len(names) - 1)) or breaks_header("".join(values)):
        bad = next(name for name, value in pairs if not TOKEN.fullmatch(name) or breaks_header(value))
        raise ValueError(f"invalid header {bad[:100]!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in headers:
        lines.append(f"Host: {origin.host}")
    lines += [f"{name}: {value}" for name, value in pairs]
    if "content-length" not in headers:
        if body.length is not None:
            lines.append(f"Content-Length: {body.length}")
        elif method in _METHODS_WITH_BODY:
            lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n" + origin.extra_headers + "\r\n").encode("latin-1")


def _write(sock: socket.socket, head: bytes, body: PreparedBody) -> None:
    for piece in wire_pieces(head, body):
        sock.sendall(piece)


def _dropped(sock: socket.socket) -> bool:
    """True if an idle connection has something to read: the server's close (or stray bytes).

    poll, not select: select cannot watch a descriptor numbered 1024 or more, which any
    process with many files open hands out.
    """
    try:
        if _HAS_POLL:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)  # Windows: no poll, and no such limit
    except (OSError, ValueError):
        return True
    return bool(readable)


_HAS_POLL = hasattr(select, "poll")
