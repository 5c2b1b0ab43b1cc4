"""What both real HTTP clients share: URL splitting, request bodies ready for the wire,
proxy and CA-bundle resolution as requests does it, and live response bodies."""

from __future__ import annotations

import functools
import os
import re
import sys
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, Self, cast

from smruntime.errors import ConnectionClosedError, PoolTimeoutError, ResponseTooLargeError
from smruntime.http import DEFAULT_MAX_RESPONSE_BODY_SIZE, Body
from smruntime.transport.error_mapping import describe_url, map_transport_error

if TYPE_CHECKING:
    import asyncio
    import ssl

__all__ = [
    "BAD_VALUE",
    "CLOSED_IN_FLIGHT",
    "CLOSED_WHILE_WAITING",
    "COALESCE_LIMIT",
    "DEFAULT_IDLE_TIMEOUT",
    "READ1_SIZE",
    "TOKEN",
    "AsyncLiveBody",
    "LiveBody",
    "PooledHTTPClient",
    "PreparedBody",
    "WriteGate",
    "WrongEventLoopError",
    "body_too_large",
    "breaks_header",
    "check_idle_timeout",
    "close_here",
    "environ_ca_bundle",
    "file_block",
    "gather",
    "host_header",
    "idle_too_long",
    "leave_loop",
    "owner_now",
    "pool_timeout",
    "proxy_authorization",
    "proxy_for",
    "set_nodelay",
    "split_url",
    "ssl_context_for",
]

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name or method (RFC 9110 token)."""
COALESCE_LIMIT = 64 * 1024
"""Request bodies up to this size go out in the same write as the head."""
BAD_VALUE = re.compile(r"[\r\n\x00]")
"""What no header value may contain: it would end the header, or the head."""


def breaks_header(value: str) -> bool:
    """True if ``value`` holds what :data:`BAD_VALUE` matches. Three substring scans: several
    times quicker than the regular expression on the few hundred characters of a request's
    joined values, which every request checks."""
    return "\n" in value or "\r" in value or "\x00" in value


CLOSED_WHILE_WAITING = "the client was closed while this call waited for a pooled connection; the request was not sent"
"""The message of the :class:`ClientClosedError` a call waiting for a connection gets."""
CLOSED_IN_FLIGHT = "the client was closed while this call was in flight"
"""The message of the :class:`ClientClosedError` a call on a connection gets (asyncio clients)."""

READ1_SIZE = 65536
"""At most this much per ``iter_chunks`` item when the server does not chunk its reply."""


def split_url(url: str) -> tuple[str, str, str]:
    """``(scheme, netloc, path?query)`` of an absolute URL, without the fragment."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not an absolute http(s) URL: {describe_url(url)}")
    cut = len(rest)
    for mark in "/?#":
        index = rest.find(mark)
        if 0 <= index < cut:
            cut = index
    netloc, target = rest[:cut], rest[cut:].partition("#")[0]
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not netloc:
        raise ValueError(f"not an absolute http(s) URL: {describe_url(url)}")
    if not target.startswith("/"):
        target = "/" + target
    return scheme, netloc, target


class PreparedBody:
    """A request body ready for the wire: its length, and how to rewind it for a resend."""

    __slots__ = ("data", "length", "start")

    def __init__(self, body: Body) -> None:
        self.start: int | None = None
        if body is None:
            self.data: bytes | IO[bytes] | None = None
            self.length: int | None = None
        elif isinstance(body, (bytes, bytearray, memoryview)):
            self.data = bytes(body) if not isinstance(body, bytes) else body
            self.length = len(self.data)
        else:
            length = _remaining_length(body)
            if length is None:  # not seekable: read it, so it goes with a Content-Length
                self.data = bytes(body.read())
                self.length = len(self.data)
            else:
                self.data, self.length, self.start = body, length, body.tell()

    def rewind(self) -> bool:
        """Put a file body back where it started; False if that is impossible."""
        if self.start is None:
            return True
        try:
            cast(IO[bytes], self.data).seek(self.start)
        except (AttributeError, OSError, ValueError):
            return False
        return True


def wire_pieces(head: bytes, body: PreparedBody) -> Iterator[bytes]:
    """What to write for a request, in order: a small body in the head's write (no head/body
    packet split), a file body block by block and never past the Content-Length announced."""
    data = body.data
    if data is None:
        yield head
    elif isinstance(data, bytes):
        if len(data) <= COALESCE_LIMIT:
            yield head + data
        else:
            yield head
            yield data
    else:
        yield head
        left = cast(int, body.length)
        while left > 0:
            block = file_block(data, left, READ1_SIZE)
            yield block
            left -= len(block)


def file_block(data: IO[bytes], left: int, size: int) -> bytes:
    """The next block of a file body with ``left`` bytes still to send, at most ``size``."""
    block = data.read(min(left, size))
    if not block:
        raise ValueError(f"the file body ended {left} bytes short of its Content-Length")
    return block


def _remaining_length(body: IO[bytes]) -> int | None:
    """Bytes left in a file object from its current position, or None if it cannot tell."""
    try:
        position = body.tell()
        end = body.seek(0, os.SEEK_END)
        body.seek(position)
        return max(end - position, 0)
    except (AttributeError, OSError, ValueError):
        return None


def proxy_for(scheme: str, netloc: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy URL for an origin: from ``proxies``, else the environment, as requests decides."""
    if proxies is None and not _proxies_configured():
        return None
    import requests.utils

    origin = f"{scheme}://{netloc}/"
    chosen = dict(proxies) if proxies is not None else requests.utils.get_environ_proxies(origin)
    proxy: str | None = requests.utils.select_proxy(origin, chosen)
    if not proxy:
        return None
    return str(requests.utils.prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]


def _proxies_configured() -> bool:
    """Whether the environment may name a proxy.

    Elsewhere than macOS and Windows, proxies come only from ``*_proxy`` variables; there,
    checking for none spares FastHTTPClient the import of requests.
    """
    if sys.platform in ("darwin", "win32"):  # system settings too: let requests decide
        return True
    return any(name.lower().endswith("_proxy") for name in os.environ)


def environ_ca_bundle() -> bool | str:
    """The CA bundle the environment names: ``AWS_CA_BUNDLE`` (as boto3 and the AWS CLI read
    it), then requests' ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE``; else True (certifi's).
    A leading ``~`` is the home directory, as urllib3 reads botocore's bundle."""
    env = os.environ
    path = env.get("AWS_CA_BUNDLE") or env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    return os.path.expanduser(path) if path else True


def pool_timeout(timeout: float, limit: int) -> PoolTimeoutError:
    """What a call gets when none of an origin's ``limit`` connections came free in ``timeout``."""
    return PoolTimeoutError(
        f"timed out after {timeout:g} s waiting for one of {limit} pooled connections "
        "(max_pool_connections); the request was not sent",
        request_sent=False,
    )


def body_too_large(limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the response body is longer than max_response_body_size ({limit} bytes); "
        "raise that option (of the client or its HTTP client) to read it",
        request_sent=True,
    )


def gather(pieces: Iterator[bytes], limit: int) -> bytes:
    """A body of unknown length, joined; :func:`body_too_large` as soon as it passes ``limit``."""
    gathered = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > limit:
            raise body_too_large(limit)
        gathered.append(piece)
    return b"".join(gathered)


def host_header(scheme: str, netloc: str) -> str:
    """The ``Host`` value for an origin: its address without user info or the scheme's default port."""
    address = netloc.rpartition("@")[2]
    default_port = ":443" if scheme == "https" else ":80"
    return address[: -len(default_port)] if address.endswith(default_port) else address


def proxy_authorization(proxy: urllib.parse.SplitResult) -> str | None:
    """The ``Proxy-Authorization`` value for the user info in a proxy URL (Basic), if any."""
    if proxy.username is None:
        return None
    import base64

    credentials = f"{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password or '')}"
    return "Basic " + base64.b64encode(credentials.encode("latin-1")).decode("ascii")


def ssl_context_for(verify: bool | str) -> ssl.SSLContext:
    """A TLS context for HTTP/1.1 as requests sets one up: ``verify`` False skips the checks, a
    path is a CA bundle file or directory, True means certifi's bundle."""
    import ssl

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if isinstance(verify, str):
            location = verify
        else:
            import certifi

            location = str(certifi.where())
        if os.path.isdir(location):
            context = ssl.create_default_context(capath=location)
        else:
            context = ssl.create_default_context(cafile=location)
    context.set_alpn_protocols(["http/1.1"])
    return context


class LiveBody:
    """A response body still on its connection (``smruntime.http.ResponseBody``).

    Reading to the end gives the connection back to its pool; closing it earlier, or any
    failure, drops the connection instead. :meth:`read` refuses a body longer than
    ``limit`` bytes; :meth:`iter_chunks` streams any length.
    """

    __slots__ = ("_done", "_limit", "_released")

    def __init__(self, limit: int) -> None:
        self._done = False  # read to the end
        self._released = False  # the connection went back to the pool, or was dropped
        self._limit = limit

    def read(self) -> bytes:
        if self._released:
            return self._after_release()
        try:
            data = self._read_rest(self._limit)
        except ResponseTooLargeError:
            self._drop()
            raise
        except Exception as exc:
            self._drop()
            raise map_transport_error(exc, request_sent=True) from exc
        except BaseException:
            self._drop()
            raise
        self._finish()
        return data

    def iter_chunks(self) -> Iterator[bytes]:
        if self._released:
            self._after_release()
            return
        try:
            yield from self._chunks()
        except Exception as exc:
            self._drop()
            raise map_transport_error(exc, request_sent=True) from exc
        except BaseException:  # GeneratorExit too: the consumer stopped early
            self._drop()
            raise
        self._finish()

    def close(self) -> None:
        if not self._released:
            self._drop()

    @property
    def closed(self) -> bool:
        return self._released

    def _after_release(self) -> bytes:
        if self._done:
            return b""
        raise ConnectionClosedError("the response body was closed before it was read to the end", request_sent=True)

    def _finish(self) -> None:
        """The reader reached the end: pool the connection if the transfer really is over."""
        if not self._complete():
            self._drop()
            return
        self._done = self._released = True
        self._release()

    def _drop(self) -> None:
        self._released = True
        self._discard()

    # What each connection kind provides.
    def _read_rest(self, limit: int) -> bytes:
        """The rest of the body; :func:`body_too_large` once it is over ``limit`` bytes."""
        raise NotImplementedError

    def _chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


class WrongEventLoopError(RuntimeError):
    """An asyncio client was used on a second event loop while its first one still runs."""


def leave_loop(previous: asyncio.AbstractEventLoop | None, client: str) -> bool:
    """Whether an asyncio client whose connections belong to ``previous`` is now used on another
    loop, and so must drop them (a later ``asyncio.run``); they are closed first if ``previous``
    is not closed yet. Refused while ``previous`` runs in another thread."""
    if previous is None:
        return False
    if previous.is_running():
        raise WrongEventLoopError(
            f"this {client} is in use on an event loop running in another thread; make one client per event loop"
        )
    return True


def owner_now(owner: asyncio.AbstractEventLoop | None) -> Literal["here", "closed", "elsewhere"]:
    """Where the loop an asyncio client's connections belong to stands, seen from the caller of
    its ``close``: ``closed`` (nothing can close them any more: they are dropped), ``elsewhere``
    (it runs in another thread: closing is handed to it) or ``here`` (close them now)."""
    if owner is None:
        return "here"
    if owner.is_closed():
        return "closed"
    if owner.is_running():
        import asyncio  # loaded already: only asyncio clients ask

        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not owner:
            return "elsewhere"
    return "here"


async def close_here(
    owner: asyncio.AbstractEventLoop | None, aclose: Callable[[], Coroutine[Any, Any, None]]
) -> Literal["here", "closed"] | None:
    """Where an asyncio client's ``aclose`` is to close its connections (see :func:`owner_now`);
    None once ``aclose()`` has been run on ``owner``, which runs in another thread."""
    where = owner_now(owner)
    if where != "elsewhere":
        return where
    import asyncio  # loaded already: only asyncio clients ask

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(aclose(), cast(asyncio.AbstractEventLoop, owner)))
    return None


class WriteGate:
    """Where an asyncio protocol's writer waits while the transport's buffer is full: from the
    loop's ``pause_writing`` until its ``resume_writing`` (or the connection is lost)."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def pause(self) -> None:
        if self._waiter is None:
            import asyncio

            self._waiter = asyncio.get_running_loop().create_future()

    def resume(self, error: BaseException | None = None) -> None:
        """Let the writer go on, or make it raise ``error``."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def wait(self) -> None:
        if self._waiter is not None:
            await self._waiter


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn off Nagle's algorithm on a transport's TCP socket: a small write goes out at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        import socket

        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class AsyncLiveBody:
    """The asyncio twin of :class:`LiveBody` (``AsyncResponseBody``): a response body still on
    its connection.

    Reading to the end gives the connection back to its pool; closing it earlier, any failure
    or a cancellation drops the connection instead. :meth:`read` refuses a body longer than
    ``limit`` bytes; :meth:`aiter_chunks` streams any length.
    """

    __slots__ = ("_done", "_limit", "_released")

    def __init__(self, limit: int) -> None:
        self._done = False  # read to the end
        self._released = False  # the connection went back to the pool, or was dropped
        self._limit = limit

    async def read(self) -> bytes:
        if not self._released:
            whole = self._arrived()
            if whole is not None:  # the common answer: small, and here with its head
                if len(whole) > self._limit:
                    self._drop()
                    raise body_too_large(self._limit)
                self._done = self._released = True
                self._release()
                return whole
        gathered = []
        size = 0
        pieces = self._pieces(None)
        try:
            async for piece in pieces:
                size += len(piece)
                if size > self._limit:
                    raise body_too_large(self._limit)
                gathered.append(piece)
        finally:
            await pieces.aclose()  # past the limit: drops the connection, the rest unread
        return b"".join(gathered)

    def aiter_chunks(self) -> AsyncIterator[bytes]:
        return self._pieces(READ1_SIZE)

    async def aclose(self) -> None:
        if not self._released:
            self._drop()

    @property
    def closed(self) -> bool:
        return self._released

    async def _pieces(self, max_size: int | None) -> AsyncGenerator[bytes, None]:
        if self._released:
            if self._done:
                return
            raise ConnectionClosedError("the response body was closed before it was read to the end", request_sent=True)
        try:
            async for piece in self._arriving(max_size):
                yield piece
        except Exception as exc:
            self._drop()
            raise map_transport_error(exc, request_sent=True) from exc
        except BaseException:  # a cancellation, or the consumer stopped early
            self._drop()
            raise
        self._done = self._released = True
        self._release()

    def _drop(self) -> None:
        self._released = True
        self._discard()

    # What each connection kind provides.
    def _arrived(self) -> bytes | None:
        """The whole body if it is already here, read without waiting; else None (nothing read)."""
        return None

    def _arriving(self, max_size: int | None) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, at most ``max_size`` a piece (None: no bound)."""
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


_POOLED_CLIENTS: weakref.WeakSet[PooledHTTPClient] = weakref.WeakSet()
"""Every live pooled client, for a forked child to give new pools."""


def _new_pools_after_fork() -> None:
    # The inherited connections are the parent's sockets too: a child reusing one would read
    # answers meant for its parent (or the parent the child's). Only the forking thread lives
    # on in the child, so no lock is taken: one held by another parent thread stays held.
    failure: BaseException | None = None
    for client in list(_POOLED_CLIENTS):
        try:
            client._forked()
        except Exception as error:  # the others still start over; Python reports the first
            failure = failure or error
    if failure is not None:
        raise failure


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pools_after_fork)


DEFAULT_IDLE_TIMEOUT = 90.0
"""Seconds a pooled connection may sit unused and still be reused (the Go SDK's
``IdleConnTimeout``): past it, the next call connects anew. A middlebox (a NAT gateway, a load
balancer) may drop a quiet connection without telling either side; a request written to one
would wait out its read timeout, and an inference call is not sent again after that."""


def check_idle_timeout(idle_timeout: float | None) -> float | None:
    """``idle_timeout`` if it is None or a positive, finite number of seconds; else ValueError."""
    if idle_timeout is not None and not 0 < idle_timeout < float("inf"):
        raise ValueError(f"idle_timeout must be a positive number of seconds or None (no limit), not {idle_timeout!r}")
    return idle_timeout


def idle_too_long(idle_since: float, idle_timeout: float | None) -> bool:
    """Whether a connection pooled at ``idle_since`` (``time.monotonic()``) was unused too long to reuse."""
    return idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout


class PooledHTTPClient:
    """What both real HTTP clients are configured with: timeouts, the pool size per origin,
    proxies (else the environment's), the CA bundle (else the environment's, as requests),
    the longest response body read whole (a longer one raises ``ResponseTooLargeError``;
    streamed bodies have no limit) and how long a pooled connection may sit unused and still be
    reused (``idle_timeout``, :data:`DEFAULT_IDLE_TIMEOUT`; None: as long as the server keeps it).

    The constructor, and so its defaults, is this one; a client sets up its own pools in
    :meth:`_start_pools`.
    """

    def __init__(
        self,
        connect_timeout: float = 60.0,
        read_timeout: float = 70.0,
        max_pool_connections: int = 10,
        proxies: Mapping[str, str] | None = None,
        verify: bool | str | None = None,
        max_response_body_size: int = DEFAULT_MAX_RESPONSE_BODY_SIZE,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self.max_response_body_size = max_response_body_size
        self.idle_timeout = check_idle_timeout(idle_timeout)
        self._proxies = dict(proxies) if proxies is not None else None
        self._verify: bool | str = verify if verify is not None else environ_ca_bundle()
        # (scheme, netloc, target) per URL: a client sends to a few URLs over and over.
        self._split_url = functools.lru_cache(maxsize=256)(split_url)
        self._context: ssl.SSLContext | None = None
        self._start_pools()
        _POOLED_CLIENTS.add(self)

    @property
    def verify(self) -> bool | str:
        """How server certificates are checked: a CA bundle's path, True (certifi's) or False."""
        return self._verify

    def _start_pools(self) -> None:
        """Set up the client's own (empty) pools from the settings above."""
        raise NotImplementedError

    def _forked(self) -> None:
        """In a forked child: the blocking clients start over with empty pools, closing the
        child's copies of the idle sockets (which leaves the parent's open). The asyncio ones
        keep theirs: their connections belong to the parent's event loop, whose epoll set the
        child shares, and closing them there would unregister the parent's sockets."""

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS settings of every https origin, made on first use (loading a CA bundle costs)."""
        if self._context is None:
            self._context = ssl_context_for(self._verify)
        return self._context

    def close(self) -> None:
        """Close every pooled connection. The client opens new ones if it is used again."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
