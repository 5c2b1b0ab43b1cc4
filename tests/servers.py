"""A raw-socket HTTP/1.1 test server that records every request and answers from a script.

It speaks just enough HTTP to test clients byte for byte: keep-alive, chunked replies with
pauses, delays, truncated bodies, connections closed or reset before or mid-response.
Everything runs on 127.0.0.1 with an ephemeral port; leaving the ``with`` block stops the
server, closes every connection and joins every thread it started.

::

    from tests.servers import HTTPTestServer, respond, chunked, Wait

    with HTTPTestServer() as server:
        server.enqueue(respond(200, b"hello", headers=[("Content-Type", "text/plain")]))
        ...  # call server.url
        assert server.requests[0].body == b"..."
        assert server.connections_accepted == 1

With ``tls=`` (a server-side ``ssl.SSLContext``; ``make_certificate`` makes one with its CA
file) it speaks HTTPS. A ``CONNECT`` request is always answered ``200`` and recorded; with
``tunnel_tls=`` the server then speaks TLS itself on the tunnel, so it can stand in for both a
proxy and the origin behind it.

A reply is a list of steps run in order on the connection after the request was read:
``Send(bytes)``, ``Sleep(seconds)``, ``Wait(event)``, ``Close()`` (FIN) and ``Reset()`` (RST).
Replies come from ``enqueue``-d replies first (in order), then ``handler(request)``, then
``default``. The builders ``respond``, ``chunked``, ``close`` and ``reset`` make the usual ones.
"""

from __future__ import annotations

import collections
import datetime
import ipaddress
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

__all__ = [
    "Close",
    "HTTPTestServer",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Send",
    "Sleep",
    "Wait",
    "chunked",
    "close",
    "make_certificate",
    "reset",
    "respond",
]

_STOP_POLL = 0.05  # how often blocking steps look at the stop flag


@attrs.frozen
class Send:
    """Write these bytes as one ``sendall``."""

    data: bytes


@attrs.frozen
class Sleep:
    """Pause before the next step."""

    seconds: float


@attrs.frozen
class Wait:
    """Block until the test sets ``event`` (at most ``timeout`` seconds, then go on)."""

    event: threading.Event
    timeout: float = 10.0


@attrs.frozen
class Close:
    """Close the connection cleanly (FIN); later steps are skipped."""


@attrs.frozen
class Reset:
    """Abort the connection (RST, via SO_LINGER 0); later steps are skipped."""


Step = Send | Sleep | Wait | Close | Reset


def _steps(steps: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(steps)


@attrs.frozen
class Reply:
    """What to do after reading one request; the connection stays open unless a step ends it."""

    steps: tuple[Step, ...] = attrs.field(converter=_steps)
    label: str = ""


@attrs.frozen
class RecordedRequest:
    """One request as it arrived: raw header lines in order, the decoded body."""

    method: str
    target: str
    version: str
    header_lines: tuple[tuple[str, str], ...]
    body: bytes
    connection: int
    """Index (from 1) of the connection it arrived on, in accept order."""
    chunked: bool = False
    """The request body used chunked transfer encoding."""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def header_names(self) -> list[str]:
        """Header names as sent, in order."""
        return [name for name, _ in self.header_lines]

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.header_lines:
            if key.lower() == lowered:
                return value
        return None

    @property
    def headers(self) -> dict[str, str]:
        """Lower-cased names to values (the last one wins)."""
        return {name.lower(): value for name, value in self.header_lines}


Handler = Callable[[RecordedRequest], Reply]


def respond(
    status: int = 200,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    *,
    reason: str | None = None,
    content_length: int | None = None,
    omit_content_length: bool = False,
    delay: float = 0.0,
    wait: threading.Event | None = None,
    close: bool | None = None,
) -> Reply:
    """A whole response sent in one write.

    ``content_length`` declares a length other than ``len(body)`` (a longer one makes a
    truncated body; the connection is then closed after the body unless ``close=False``).
    ``delay`` and ``wait`` hold the answer back; ``close`` closes the connection after it.
    """
    declared = len(body) if content_length is None else content_length
    head = _status_line(status, reason)
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if not omit_content_length:
        head += f"Content-Length: {declared}\r\n"
    steps: list[Step] = []
    if wait is not None:
        steps.append(Wait(wait))
    if delay:
        steps.append(Sleep(delay))
    steps.append(Send(head.encode("latin-1") + b"\r\n" + body))
    if close is None:
        close = declared > len(body) or omit_content_length
    if close:
        steps.append(Close())
    return Reply(steps, label=f"respond {status}")


def chunked(
    parts: Sequence[bytes | Step],
    status: int = 200,
    headers: Iterable[tuple[str, str]] = (),
    *,
    end: bool = True,
    close: bool = False,
) -> Reply:
    """A chunked response: each bytes item is one HTTP chunk, written on its own.

    Steps between the items (``Sleep``, ``Wait``, ``Reset``…) run between the chunks. With
    ``end=False`` the terminating zero chunk is never sent and the connection is closed.
    """
    head = _status_line(status, None)
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n"
    steps: list[Step] = [Send(head.encode("latin-1"))]
    for part in parts:
        if isinstance(part, bytes):
            if part:  # an empty chunk would end the body
                steps.append(Send(b"%x\r\n%b\r\n" % (len(part), part)))
        else:
            steps.append(part)
    if end:
        steps.append(Send(b"0\r\n\r\n"))
    if close or not end:
        steps.append(Close())
    return Reply(steps, label=f"chunked {status}")


def close(delay: float = 0.0) -> Reply:
    """Close the connection (FIN) after reading the request, without answering."""
    return Reply([Sleep(delay), Close()] if delay else [Close()], label="close")


def reset(delay: float = 0.0) -> Reply:
    """Reset the connection (RST) after reading the request, without answering."""
    return Reply([Sleep(delay), Reset()] if delay else [Reset()], label="reset")


def _status_line(status: int, reason: str | None) -> str:
    from http import HTTPStatus

    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"


class _Connection:
    """One accepted connection and its state, shared with the stopping thread."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.idle = True  # no byte of the next request has arrived yet
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def shutdown(self, *, rst: bool = False) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            try:
                if rst:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    # The plain socket call, so an SSL socket read by another thread is not touched.
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.closed.set()


class _Closed(Exception):
    """The peer or the server ended the connection."""


class HTTPTestServer:
    """A threaded HTTP/1.1 keep-alive server on 127.0.0.1:0 for client tests.

    ``requests`` holds every request read (in arrival order), ``connections_accepted``
    counts TCP connections, ``open_connections`` those still open. ``idle_timeout`` closes a
    connection that waits longer than that for its next request.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        default: Reply | None = None,
        idle_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        tunnel_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.tunnel_tls = tunnel_tls
        self.default = default if default is not None else respond(200)
        self.idle_timeout = idle_timeout
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self._replies: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._request_seen = threading.Condition(self._lock)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> HTTPTestServer:
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"testserver-{self.port}", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, join every thread (raises if one hangs)."""
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.shutdown()
        threads = [self._acceptor] if self._acceptor else []
        with self._lock:
            threads += self._threads
        for thread in threads:
            thread.join(timeout=5)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"test server threads did not stop: {alive}")

    def __enter__(self) -> HTTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection ------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._replies)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections if not c.closed.is_set())

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were read; returns them."""
        with self._request_seen:
            if not self._request_seen.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"saw {len(self.requests)} requests, wanted {count}")
            return list(self.requests)

    def wait_connections_closed(self, timeout: float = 5.0) -> None:
        """Block until every accepted connection has been closed (by either side)."""
        deadline = time.monotonic() + timeout
        while self.open_connections:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_connections} connection(s) still open")
            time.sleep(0.005)

    def close_idle_connections(self) -> int:
        """Close (FIN) every connection waiting for its next request; returns how many."""
        with self._lock:
            idle = [c for c in self._connections if c.idle and not c.closed.is_set()]
        for conn in idle:
            conn.shutdown()
        return len(idle)

    # -- the server side ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self.connections_accepted += 1
                conn = _Connection(sock, self.connections_accepted)
                self._connections.append(conn)
                thread = threading.Thread(
                    target=self._serve, args=(conn,), name=f"testserver-{self.port}-c{conn.index}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: _Connection) -> None:
        reader = _Reader(conn, self)
        try:
            if self.tls is not None:
                self._start_tls(conn, self.tls)
            while not self._stopping.is_set():
                request = reader.read_request()
                if request is None:
                    return
                if request.method == "CONNECT":
                    self._record(request)
                    conn.sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if self.tunnel_tls is not None:
                        self._start_tls(conn, self.tunnel_tls)
                    continue
                reply = self._reply_for(request)
                self._record(request)
                if not self._play(conn, reply):
                    return
                if (request.header("Connection") or "").lower() == "close":
                    return
        except (_Closed, OSError, ValueError):
            return
        finally:
            conn.shutdown()

    def _record(self, request: RecordedRequest) -> None:
        with self._request_seen:
            self.requests.append(request)
            self._request_seen.notify_all()

    @staticmethod
    def _start_tls(conn: _Connection, context: ssl.SSLContext) -> None:
        wrapped = context.wrap_socket(conn.sock, server_side=True)
        with conn.lock:
            conn.sock = wrapped

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.handler is not None:
            return self.handler(request)
        return self.default

    def _play(self, conn: _Connection, reply: Reply) -> bool:
        """Run a reply's steps; False once the connection was ended."""
        last = len(reply.steps) - 1
        for index, step in enumerate(reply.steps):
            if isinstance(step, Send):
                if index == last:
                    # The client may hold the whole answer before sendall returns here, so
                    # the connection counts as idle from its last write on.
                    with conn.lock:
                        conn.idle = True
                conn.sock.sendall(step.data)
            elif isinstance(step, Sleep):
                self._pause(step.seconds, None)
            elif isinstance(step, Wait):
                self._pause(step.timeout, step.event)
            elif isinstance(step, Close):
                conn.shutdown()
                return False
            elif isinstance(step, Reset):
                conn.shutdown(rst=True)
                return False
        return True

    def _pause(self, seconds: float, event: threading.Event | None) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if event is not None:
                if event.wait(min(left, _STOP_POLL)):
                    return
            else:
                time.sleep(min(left, _STOP_POLL))
        raise _Closed()


class _Reader:
    """Reads HTTP/1.1 requests off one connection."""

    def __init__(self, conn: _Connection, server: HTTPTestServer) -> None:
        self._conn = conn
        self._server = server
        self._buffer = bytearray()

    def _fill(self, *, idle: bool = False) -> None:
        sock = self._conn.sock
        if idle and self._server.idle_timeout is not None:
            ready, _, _ = select.select([sock], [], [], self._server.idle_timeout)
            if not ready:
                raise _Closed()
        data = sock.recv(65536)
        if not data:
            raise _Closed()
        self._buffer += data

    def _line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            self._fill()

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_request(self) -> RecordedRequest | None:
        with self._conn.lock:
            self._conn.idle = not self._buffer
        try:
            if not self._buffer:
                self._fill(idle=True)
        except (_Closed, OSError, ValueError):  # ValueError: the socket was closed under select()
            return None
        with self._conn.lock:
            self._conn.idle = False
        request_line = self._line().decode("latin-1")
        method, target, version = request_line.split(" ", 2)
        header_lines: list[tuple[str, str]] = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            header_lines.append((name, value.strip()))
        lowered = {name.lower(): value for name, value in header_lines}
        is_chunked = "chunked" in lowered.get("transfer-encoding", "").lower()
        if is_chunked:
            body = bytearray()
            while True:
                size = int(self._line().split(b";", 1)[0], 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    break
                body += self._exactly(size)
                self._line()
            data = bytes(body)
        else:
            data = self._exactly(int(lowered.get("content-length", "0")))
        return RecordedRequest(
            method=method,
            target=target,
            version=version,
            header_lines=tuple(header_lines),
            body=data,
            connection=self._conn.index,
            chunked=is_chunked,
        )


@attrs.frozen
class Certificate:
    """A throwaway self-signed certificate: a server context and the CA file that trusts it."""

    server_context: ssl.SSLContext
    ca_file: str


def make_certificate(directory: Path, names: Sequence[str] = ("localhost", "runtime.example.invalid")) -> Certificate:
    """A self-signed certificate for ``names`` and 127.0.0.1, written to ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smruntime test server")])
    now = datetime.datetime.now(datetime.UTC)
    alternative: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternative.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Certificate(context, str(cert_file))
