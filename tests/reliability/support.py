"""What the reliability tests share: clients that never sleep, a fault-injecting gateway in
front of the local endpoint, a connection-counting wrapper for it, and raw HTTP helpers.

Everything talks to real servers on 127.0.0.1 ephemeral ports. Nothing here sleeps for a
backoff: retryers get a :class:`Sleeps` recorder instead of ``time.sleep``.
"""

from __future__ import annotations

import contextvars
import enum
import http.client
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import attrs

from smruntime import Client
from smruntime.auth import Credentials, SigV4Signer, payload_sha256
from smruntime.http import Headers, HTTPRequest
from smruntime.retry import RetryQuota, StandardRetryer
from tests.servers import Close, HTTPTestServer, RecordedRequest, Reply, Reset, Send, respond

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
REGION = "us-east-1"
MIB = 1024 * 1024


class Sleeps:
    """A ``sleep`` for retryers that records each delay instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        """The same record, for an AsyncClient's retries."""
        self(seconds)


CLIENT_KIND: contextvars.ContextVar[str] = contextvars.ContextVar("CLIENT_KIND", default="Client")
"""Which client ``make_client`` makes; a module parametrizes it over ``tests.async_clients.KINDS``."""


def make_client(
    url: str,
    *,
    sleeps: Sleeps | None = None,
    quota: RetryQuota | None = None,
    max_attempts: int = 3,
    credentials: tuple[str, ...] = CREDENTIALS,
    **fields: Any,
) -> Client:
    """A client for ``url`` whose retryer records its backoff instead of sleeping."""
    sleeps = sleeps if sleeps is not None else Sleeps()
    retryer = StandardRetryer(
        max_attempts=max_attempts,
        sleep=sleeps,
        asleep=sleeps.asleep,
        quota=quota if quota is not None else RetryQuota(),
    )
    from tests.async_clients import make_client as make

    made: Client = make(CLIENT_KIND.get(), region=REGION, endpoint_url=url, credentials=credentials, retryer=retryer, **fields)
    return made


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until ``predicate()`` holds; a bounded wait for work another thread finishes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def open_fds() -> set[int]:
    """This process's open file descriptors (Linux)."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


# --- a fault-injecting gateway in front of the local endpoint ----------------------------------


class Action(enum.Enum):
    """What the gateway does with one request."""

    FORWARD = "forward"
    """Pass it to the endpoint and relay the answer."""
    CLOSE_BEFORE_FORWARD = "close before forward"
    """Read it, then close the connection (FIN) without forwarding: an idle-timeout race."""
    RESET_AFTER_FORWARD = "reset after forward"
    """Forward it (the model runs), then reset the client's connection without answering."""
    TRUNCATE_AFTER_FORWARD = "truncate after forward"
    """Forward it, then relay the head and half the body, and close (Content-Length is whole)."""


@attrs.frozen
class Answer:
    """Answer from the gateway itself, without forwarding (a load balancer's 502 or 504)."""

    status: int
    body: bytes = b""
    content_type: str | None = None


Step = Action | Answer


@attrs.frozen
class Relayed:
    """An endpoint's answer as the gateway received it."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def head(self, content_length: int | None = None) -> bytes:
        length = len(self.body) if content_length is None else content_length
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        hop_by_hop = {"content-length", "transfer-encoding", "connection", "keep-alive"}
        lines += [f"{name}: {value}" for name, value in self.headers if name.lower() not in hop_by_hop]
        lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Gateway:
    """An HTTP front for an upstream server, like a load balancer, with scripted faults.

    Requests are forwarded byte for byte (the same request line, header lines and body, so
    SigV4 signatures still verify upstream) unless :meth:`plan` says otherwise for the next
    ones. ``requests`` and ``connections_accepted`` are what the gateway saw from the client.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._plan: deque[Step] = deque()
        self._lock = threading.Lock()
        self.forwarded = 0
        self.server = HTTPTestServer(handler=self._handle)

    def __enter__(self) -> Gateway:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    @property
    def connections_accepted(self) -> int:
        return self.server.connections_accepted

    def plan(self, *steps: Step) -> None:
        """Handle the next requests this way, in order; then forward again."""
        with self._lock:
            self._plan.extend(steps)

    def _next_step(self) -> Step:
        with self._lock:
            return self._plan.popleft() if self._plan else Action.FORWARD

    def _handle(self, request: RecordedRequest) -> Reply:
        step = self._next_step()
        if isinstance(step, Answer):
            headers = [("Content-Type", step.content_type)] if step.content_type else []
            return respond(step.status, step.body, headers=headers)
        if step is Action.CLOSE_BEFORE_FORWARD:
            return Reply([Close()], label="close before forward")
        relayed = self._forward(request)
        if step is Action.RESET_AFTER_FORWARD:
            return Reply([Reset()], label="reset after forward")
        if step is Action.TRUNCATE_AFTER_FORWARD:
            half = relayed.body[: len(relayed.body) // 2]
            return respond_raw(relayed.head(len(relayed.body)) + half, close=True)
        return respond_raw(relayed.head() + relayed.body)

    def _forward(self, request: RecordedRequest) -> Relayed:
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.header_lines:
                connection.putheader(name, value)
            connection.endheaders(request.body)
            response = connection.getresponse()
            body = response.read()
            relayed = Relayed(response.status, response.reason, tuple(response.getheaders()), body)
        finally:
            connection.close()
        with self._lock:
            self.forwarded += 1
        return relayed


def respond_raw(data: bytes, *, close: bool = False) -> Reply:
    """A reply of exactly these bytes (then a FIN if ``close``)."""
    return Reply([Send(data), Close()] if close else [Send(data)], label="raw")


# --- counting the local endpoint's TCP connections --------------------------------------------


class ConnectionCounter:
    """An ASGI wrapper that records each HTTP request's client address (host, port).

    Each TCP connection has its own client port, so the distinct addresses are the
    connections the server accepted that carried at least one request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.peers: set[tuple[str, int]] = set()
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if client is not None:
                self.peers.add((str(client[0]), int(client[1])))
            self.requests += 1
        await self.app(scope, receive, send)


# --- raw HTTP ------------------------------------------------------------------------------


@attrs.frozen
class RawResponse:
    """A response read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


def read_response(sock: socket.socket) -> RawResponse | None:
    """One HTTP/1.1 response (Content-Length, chunked or until close); None if the server
    closed or reset the connection before the first byte. Socket timeouts propagate."""
    buffer = bytearray()
    while True:
        while b"\r\n\r\n" not in buffer:
            data = _recv(sock)
            if not data:
                if not buffer:
                    return None
                raise AssertionError(f"connection closed inside a response head: {bytes(buffer[:200])!r}")
            buffer += data
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        if status >= 200:
            break
        buffer = bytearray(rest)  # an interim 1xx answer (100 Continue): the real one follows
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = bytearray(rest)
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(body) < length:
            data = _recv(sock)
            if not data:
                break
            body += data
        return RawResponse(status, headers, bytes(body[:length]))
    if "chunked" in headers.get("transfer-encoding", ""):
        while not body.endswith(b"0\r\n\r\n"):
            data = _recv(sock)
            if not data:
                break
            body += data
        return RawResponse(status, headers, _unchunk(bytes(body)))
    while data := _recv(sock):
        body += data
    return RawResponse(status, headers, bytes(body))


def _recv(sock: socket.socket) -> bytes:
    """The next bytes; b"" at the end, also when the server closed with a reset (it does when
    it answers before reading everything sent, as after a 400 or a 413)."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def exchange(port: int, data: bytes, *, timeout: float = 10.0, half_close: bool = False) -> RawResponse | None:
    """Send raw bytes on a new connection and read one response (None: closed unanswered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it read everything (a 413, a 400)
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return read_response(sock)


def signed_headers(
    port: int,
    path: str,
    *,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    credentials: tuple[str, ...] = CREDENTIALS,
    region: str = REGION,
    service: str = "sagemaker",
    when: datetime | None = None,
) -> list[tuple[str, str]]:
    """The header lines of a POST to ``path`` signed with SigV4 as the client signs it
    (``Host`` first; no Content-Length, which is not signed)."""
    host = f"127.0.0.1:{port}"
    request = HTTPRequest("POST", f"http://{host}{path}", Headers(list(headers)), body)
    signing_time = when or datetime.now(UTC)
    token = credentials[2] if len(credentials) > 2 else None
    SigV4Signer().sign_http(
        request, Credentials(credentials[0], credentials[1], token), payload_sha256(body), service, region, signing_time
    )
    return [("Host", host), *request.headers.items()]


def raw_request(path: str, headers: Iterable[tuple[str, str]], body: bytes = b"", *, content_length: int | None = None,
                method: str = "POST") -> bytes:
    """A request's bytes: the header lines as given, then Content-Length (unless None and
    ``content_length`` is negative) and the body."""
    lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    if content_length is None or content_length >= 0:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def signed_request(
    port: int,
    path: str,
    *,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    unsigned: Iterable[tuple[str, str]] = (),
    credentials: tuple[str, ...] = CREDENTIALS,
    region: str = REGION,
    when: datetime | None = None,
    content_length: int | None = None,
) -> bytes:
    """A raw POST signed like the client signs it; ``unsigned`` headers are added after
    signing, ``content_length`` overrides the (unsigned) Content-Length."""
    lines = signed_headers(port, path, body=body, headers=headers, credentials=credentials, region=region, when=when)
    return raw_request(path, [*lines, *unsigned], body, content_length=content_length)
