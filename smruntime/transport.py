"""HTTP clients: the ``HTTPClient`` protocol, the requests-based default, a faster
http.client-based client, and a mock for tests.

The wire request carries exactly the headers the stack built, plus what HTTP/1.1 requires
(``Host``, ``Content-Length``). No ``Accept``, ``Accept-Encoding``, ``User-Agent`` or
``Connection`` defaults reach the model. Responses are never decompressed. A streamed body
hands over data as it arrives and returns its connection to the pool only once it has been read
to the end; every other path drops the connection.

Every failure from requests, urllib3, http.client, socket or ssl becomes a
:class:`~smruntime.errors.TransportError` in :func:`map_transport_error`, and nowhere else.
The error says whether the request may have reached the server (``request_sent``).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Literal, Protocol, cast

import requests
import requests.adapters
import requests.exceptions
import requests.utils
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from urllib3.util import SKIP_HEADER

from smruntime.errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    TransportError,
)
from smruntime.http import Body, BytesBody, Headers, HTTPRequest, HTTPResponse
from smruntime.redaction import REDACTED, redact_text

__all__ = [
    "FastHTTPClient",
    "HTTPClient",
    "MockHTTPClient",
    "RequestsHTTPClient",
    "map_transport_error",
]


class HTTPClient(Protocol):
    """Sends one HTTP request: the terminal handler of every stack."""

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        """Send ``request``. With ``stream``, the body stays on the wire for the caller to read."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...


# -- error mapping ----------------------------------------------------------------------------

Phase = Literal["prepare", "connect", "send", "idle", "response"]
"""Where an exchange failed: building the request, connecting, writing the request, writing to
a reused connection the server had already closed, or after the request was fully written."""

_PHASE_ATTR = "_smruntime_phase"



def _failure_phase(write_failed: bool, reused: bool) -> Phase:
    """Where an exchange failed once the connection was up.

    Pooled connections are checked for a server close before they are reused, so a close
    between two calls never gets here. A write that failed on a reused connection means the
    server had closed it and never got the whole request: safe to send again ("idle"). Once
    the request was written, a connection that dies without answering is ambiguous — the
    server may have run the model — so it is never re-sent ("response").
    """
    if write_failed:
        return "idle" if reused else "send"
    return "response"

_CONNECT_TIMEOUTS = (urllib3.exceptions.ConnectTimeoutError, requests.exceptions.ConnectTimeout)
_READ_TIMEOUTS = (urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout)
_TIMEOUTS = (TimeoutError, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout)
_CONNECT_FAILURES = (
    urllib3.exceptions.NewConnectionError,  # a ConnectTimeoutError subclass, for historical reasons
    urllib3.exceptions.ProxyError,
    requests.exceptions.ProxyError,
    socket.gaierror,
    ConnectionRefusedError,
    urllib3.exceptions.EmptyPoolError,
    urllib3.exceptions.ClosedPoolError,
)
_INVALID_REQUEST = (
    urllib3.exceptions.LocationValueError,
    urllib3.exceptions.ProxySchemeUnsupported,
    requests.exceptions.InvalidURL,  # InvalidProxyURL too
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidHeader,
    http.client.InvalidURL,
)
_TLS_FAILURES = (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")
_SECRET_PARAMS = re.compile(r"(?i)(X-Amz-(?:Security-Token|Signature|Credential)=)[^&\s'\"]+")
_SECRET_HEADERS = re.compile(r"(?i)((?:Proxy-)?Authorization|X-Amz-Security-Token)(['\"]?\s*[:=,]\s*['\"]?)[^'\"\r\n]+")


def map_transport_error(exc: BaseException, *, request_sent: bool | None = None) -> TransportError:
    """The :class:`TransportError` for a failure raised by an HTTP library; raise it ``from exc``.

    ``request_sent`` overrides what the exception chain says about whether the whole request
    was written (pass True for failures while reading a response body). Without it, the error
    says False for failures before the request was fully written (including a write that
    failed on a reused keep-alive connection the server had closed); otherwise True.
    """
    chain = _exception_chain(exc)
    phase = _tagged_phase(chain)
    if request_sent is True:
        phase = "response"
    elif request_sent is False and phase in (None, "response"):
        phase = "connect"
    culprit, error_class, summary = _classify(chain, phase)
    sent = request_sent if request_sent is not None else _default_sent(phase, error_class)
    error = error_class(f"{summary}: {_describe(culprit)}", request_sent=sent)
    error.__cause__ = exc  # chained even if the caller forgets ``from``
    return error


def _classify(chain: list[BaseException], phase: Phase | None) -> tuple[BaseException, type[TransportError], str]:
    """The exception that explains the failure, the class to raise, and a short summary."""

    def first(kinds: tuple[type[BaseException], ...]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kinds)), None)

    if phase == "prepare":
        return _deepest(chain), ConnectError, "could not send the request"
    if culprit := first(_READ_TIMEOUTS):
        return culprit, *_timeout(phase)
    if culprit := first(_CONNECT_FAILURES + _CONNECT_TIMEOUTS):
        if isinstance(culprit, urllib3.exceptions.EmptyPoolError):
            return culprit, ConnectTimeoutError, "timed out waiting for a pooled connection"
        if isinstance(culprit, _CONNECT_TIMEOUTS) and not isinstance(culprit, urllib3.exceptions.NewConnectionError):
            return culprit, ConnectTimeoutError, "timed out connecting"
        return culprit, ConnectError, "could not connect"
    if culprit := first(_INVALID_REQUEST):
        return culprit, ConnectError, "could not send the request"
    if culprit := first(_TLS_FAILURES):
        if phase in (None, "connect"):
            return culprit, ConnectError, "TLS handshake failed"
        return culprit, ConnectionClosedError, "TLS connection failed"
    if culprit := first(_TIMEOUTS):
        return culprit, *_timeout(phase)
    culprit = _deepest(chain)
    if phase == "connect":
        return culprit, ConnectError, "could not connect"
    if phase == "send":
        return culprit, ConnectionClosedError, "connection failed while sending the request"
    if phase == "idle":
        return culprit, ConnectionClosedError, "the server had closed the idle keep-alive connection"
    return culprit, ConnectionClosedError, "connection closed before the response was complete"


def _timeout(phase: Phase | None) -> tuple[type[TransportError], str]:
    if phase == "connect":  # urllib3 also reports a TLS handshake timeout as a read timeout
        return ConnectTimeoutError, "timed out connecting"
    if phase == "send":
        return ReadTimeoutError, "timed out sending the request"
    return ReadTimeoutError, "timed out waiting for the response"


def _default_sent(phase: Phase | None, error_class: type[TransportError]) -> bool:
    if phase is None:
        return not issubclass(error_class, ConnectError)
    return phase == "response"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps, breadth first (wrappers before their causes)."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    queue = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        linked: list[object] = [getattr(current, "reason", None), current.__cause__]
        if not current.__suppress_context__:
            linked.append(current.__context__)
        args = getattr(current, "args", ())
        linked.extend(args if isinstance(args, tuple) else ())
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return chain


def _tagged_phase(chain: list[BaseException]) -> Phase | None:
    for error in chain:
        phase: Phase | None = getattr(error, _PHASE_ATTR, None)
        if phase is not None:
            return phase
    return None


def _phase_of(exc: BaseException) -> Phase | None:
    return _tagged_phase(_exception_chain(exc))


def _tag(exc: BaseException, phase: Phase) -> None:
    """Record on the exception where the exchange failed (the first tag wins)."""
    if getattr(exc, _PHASE_ATTR, None) is None:
        try:
            setattr(exc, _PHASE_ATTR, phase)
        except (AttributeError, TypeError):
            pass


def _deepest(chain: list[BaseException]) -> BaseException:
    """The innermost cause: the most specific explanation."""
    return chain[-1]


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a half-built exception may not even print
        text = ""
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _SECRET_PARAMS.sub(rf"\1{REDACTED}", redact_text(text))
    text = _SECRET_HEADERS.sub(rf"\1\2{REDACTED}", text)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# -- what both real clients share -------------------------------------------------------------

_READ1_SIZE = 65536
"""At most this much per ``iter_chunks`` item when the server does not chunk its reply."""


def _split_url(url: str) -> tuple[str, str, str]:
    """``(scheme, netloc, path?query)`` of an absolute URL, without the fragment."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not an absolute http(s) URL: {_describe_url(url)}")
    cut = len(rest)
    for mark in "/?#":
        index = rest.find(mark)
        if 0 <= index < cut:
            cut = index
    netloc, target = rest[:cut], rest[cut:].partition("#")[0]
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not netloc:
        raise ValueError(f"not an absolute http(s) URL: {_describe_url(url)}")
    if not target.startswith("/"):
        target = "/" + target
    return scheme, netloc, target


def _describe_url(url: str) -> str:
    return repr(_USERINFO.sub(rf"\1{REDACTED}@", url[:200]))


class _PreparedBody:
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


def _remaining_length(body: IO[bytes]) -> int | None:
    """Bytes left in a file object from its current position, or None if it cannot tell."""
    try:
        position = body.tell()
        end = body.seek(0, os.SEEK_END)
        body.seek(position)
        return max(end - position, 0)
    except (AttributeError, OSError, ValueError):
        return None


def _proxy_for(scheme: str, netloc: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy URL for an origin: from ``proxies``, else the environment, as requests decides."""
    origin = f"{scheme}://{netloc}/"
    chosen = dict(proxies) if proxies is not None else requests.utils.get_environ_proxies(origin)
    proxy: str | None = requests.utils.select_proxy(origin, chosen)
    if not proxy:
        return None
    return str(requests.utils.prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]


def _environ_ca_bundle() -> bool | str:
    """requests' rule: ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, else certifi's bundle."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class _LiveBody:
    """A response body still on its connection (``smruntime.http.ResponseBody``).

    Reading to the end gives the connection back to its pool; closing it earlier, or any
    failure, drops the connection instead.
    """

    __slots__ = ("_done", "_released")

    def __init__(self) -> None:
        self._done = False  # read to the end
        self._released = False  # the connection went back to the pool, or was dropped

    def read(self) -> bytes:
        if self._released:
            return self._after_release()
        try:
            data = self._read_rest()
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
    def _read_rest(self) -> bytes:
        raise NotImplementedError

    def _chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


# -- RequestsHTTPClient: requests' adapter and urllib3's pools --------------------------------


class _TrackedHTTPConnection(urllib3.connection.HTTPConnection):
    """Tags its failures with the phase they happened in, for ``request_sent``."""

    _sm_exchanges = 0  # responses received since this socket connected
    _sm_reused = False
    _sm_write_failed = False

    def connect(self) -> None:
        try:
            super().connect()
        except BaseException as exc:
            _tag(exc, "connect")
            raise
        self._sm_exchanges = 0

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._sm_reused = self.sock is not None and self._sm_exchanges > 0
        self._sm_write_failed = False
        try:
            super().request(*args, **kwargs)
        except BaseException as exc:
            # urllib3 swallows a broken pipe here and reads the answer; remember the failure.
            self._sm_write_failed = True
            _tag(exc, "send")
            raise

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        try:
            response = super().getresponse()
        except BaseException as exc:
            _tag(exc, _failure_phase(self._sm_write_failed, self._sm_reused))
            raise
        self._sm_exchanges += 1
        return response


class _TrackedHTTPSConnection(_TrackedHTTPConnection, urllib3.connection.HTTPSConnection):
    """The TLS variant (the MRO wraps HTTPSConnection's methods in the tracking)."""


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}

_NO_RETRIES = urllib3.Retry(total=False, redirect=False, raise_on_status=False)
"""Retries belong to the stack: urllib3 raises the first error unchanged."""


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that tag their failures (see ``_Tracked…``)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        new = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if new and not proxy.lower().startswith("socks"):  # SOCKS pools have their own classes
            manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager


class _Route:
    """Where requests for one origin go: a urllib3 pool, and whether to send the whole URL."""

    __slots__ = ("absolute", "pool")

    def __init__(self, pool: urllib3.connectionpool.HTTPConnectionPool, absolute: bool) -> None:
        self.pool = pool
        self.absolute = absolute  # through a plain HTTP proxy, the target is the absolute URL


class _Urllib3Body(_LiveBody):
    __slots__ = ("_raw",)

    def __init__(self, raw: urllib3.HTTPResponse) -> None:
        super().__init__()
        self._raw = raw

    def _read_rest(self) -> bytes:
        return self._raw.read(decode_content=False)

    def _chunks(self) -> Iterator[bytes]:
        raw = self._raw
        if raw.chunked and raw.supports_chunked_reads():
            for chunk in raw.read_chunked(decode_content=False):
                if chunk:
                    yield chunk
        else:
            # read1 returns what one socket read brings; it never waits for a full buffer.
            while data := raw.read1(_READ1_SIZE, decode_content=False):
                yield data

    def _complete(self) -> bool:
        return bool(self._raw.closed)  # urllib3 closes the http.client response at the end

    def _release(self) -> None:
        self._raw.release_conn()  # a no-op when urllib3 already did it

    def _discard(self) -> None:
        # Close the socket, then hand the (now empty) slot back so the pool does not shrink.
        try:
            self._raw.close()
        finally:
            self._raw.release_conn()


class RequestsHTTPClient:
    """The default HTTP client: requests' adapter and urllib3's pools, without a Session.

    Each origin gets one pool of ``max_pool_connections`` connections. When all are busy, a
    call waits for one (up to ``connect_timeout``) instead of opening extras, so many threads
    never churn through "Connection pool is full" discards. Proxies come from ``proxies`` or
    the environment (``HTTP(S)_PROXY``, ``NO_PROXY``). The CA bundle comes from ``verify`` or
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, as in requests. Both are resolved once per
    origin. No Session, cookies, hooks or default headers run per call. urllib3 never retries
    (the stack does); a pooled connection is checked for a server close before it is reused,
    and a request is sent again only when its write failed on a connection the server had
    already closed — never once it was written whole.
    """

    def __init__(
        self,
        connect_timeout: float = 60.0,
        read_timeout: float = 70.0,
        max_pool_connections: int = 10,
        proxies: Mapping[str, str] | None = None,
        verify: bool | str | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self._proxies = dict(proxies) if proxies is not None else None
        self._verify: bool | str = verify if verify is not None else _environ_ca_bundle()
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._adapter = _Adapter(
            pool_connections=10, pool_maxsize=max_pool_connections, max_retries=_NO_RETRIES, pool_block=True
        )
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        try:
            scheme, netloc, target = _split_url(request.url)
            route = self._routes.get((scheme, netloc))
            if route is None or route.pool.pool is None:  # a new origin, or its pool was closed
                route = self._route(scheme, netloc)
            body = _PreparedBody(request.body)
            headers = _urllib3_headers(request, body)
        except Exception as exc:
            _tag(exc, "prepare")
            raise map_transport_error(exc) from exc
        if route.absolute:
            target = f"{scheme}://{netloc}{target}"
        raw = self._urlopen(route.pool, request.method, target, body, headers)
        live = _Urllib3Body(raw)
        try:
            response_headers = Headers([(name, raw.headers[name]) for name in raw.headers])
            content: _LiveBody | BytesBody = live if stream else BytesBody(live.read())
        except BaseException:
            live.close()
            raise
        return HTTPResponse(raw.status, response_headers, content, raw.reason or "")

    def close(self) -> None:
        """Close every pooled connection. The client opens new ones if it is used again."""
        with self._lock:
            routes = list(self._routes.values())
            self._routes.clear()
            # urllib3 2's PoolManager.clear() only forgets its pools; closing them is up to us.
            for route in routes:
                route.pool.close()
            self._adapter.close()

    def __enter__(self) -> RequestsHTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _urlopen(
        self,
        pool: urllib3.connectionpool.HTTPConnectionPool,
        method: str,
        target: str,
        body: _PreparedBody,
        headers: dict[str, str],
    ) -> urllib3.HTTPResponse:
        for attempt in (1, 2):
            try:
                raw = pool.urlopen(
                    method,
                    target,
                    body=body.data,
                    headers=headers,
                    retries=_NO_RETRIES,
                    redirect=False,
                    assert_same_host=False,
                    timeout=self._timeout,
                    pool_timeout=self.connect_timeout,  # type: ignore[arg-type]  # any float works
                    release_conn=False,
                    chunked=False,
                    preload_content=False,
                    decode_content=False,
                )
                return cast(urllib3.HTTPResponse, raw)
            except Exception as exc:
                if attempt == 1 and _phase_of(exc) == "idle" and body.rewind():
                    continue  # the server closed that pooled connection and never saw the request
                raise map_transport_error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _route(self, scheme: str, netloc: str) -> _Route:
        """Resolve proxy, TLS settings and pool for an origin through requests, once."""
        origin = f"{scheme}://{netloc}/"
        proxy = _proxy_for(scheme, netloc, self._proxies)
        proxies = {scheme: proxy} if proxy else {}
        prepared = requests.PreparedRequest()
        prepared.url = origin
        with self._lock:
            pool = self._adapter.get_connection_with_tls_context(prepared, self._verify, proxies=proxies)
            self._adapter.cert_verify(pool, origin, self._verify, None)  # type: ignore[no-untyped-call]
            absolute = bool(proxy) and scheme == "http" and not str(proxy).lower().startswith("socks")
            route = _Route(cast(urllib3.connectionpool.HTTPConnectionPool, pool), absolute)
            self._routes[(scheme, netloc)] = route
        return route


def _urllib3_headers(request: HTTPRequest, body: _PreparedBody) -> dict[str, str]:
    """The request's headers, a Content-Length when the body needs one, and markers that stop
    http.client and urllib3 from adding their defaults."""
    headers = dict(request.headers.items())
    if _BAD_VALUE.search("".join(headers.values())):
        # Refused here, not by http.client: its error quotes the value, which may be a token.
        bad = next(name for name, value in headers.items() if _BAD_VALUE.search(value))
        raise ValueError(f"invalid header {bad[:100]!r}: its value contains CR, LF or NUL")
    present = {name.lower() for name in headers}
    if body.length is not None and "content-length" not in present:
        headers["Content-Length"] = str(body.length)
    if "user-agent" not in present:
        headers["User-Agent"] = SKIP_HEADER
    if "accept-encoding" not in present:
        headers["Accept-Encoding"] = SKIP_HEADER
    return headers


# -- FastHTTPClient: one write per request on http.client connections -------------------------

_COALESCE_LIMIT = 64 * 1024
"""Bodies up to this size go out in the same write as the head."""

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")


class _Conn:
    """A pooled http.client connection and what we know about it."""

    __slots__ = ("exchanges", "http", "reusable")

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.http = connection
        self.exchanges = 0  # responses received since the socket connected
        self.reusable = True


class _Origin:
    """The connections to one origin: idle ones (LIFO) and a cap on how many exist."""

    __slots__ = ("_cond", "_idle", "_live", "_lock", "_waiting", "absolute", "closed", "extra_headers", "host", "limit", "new_connection")

    def __init__(
        self,
        new_connection: Callable[[], http.client.HTTPConnection],
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
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                self._waiting += 1
                try:
                    if left <= 0 or not self._cond.wait(left):
                        raise ConnectTimeoutError(
                            f"timed out after {timeout:g} s waiting for one of {self.limit} pooled connections",
                            request_sent=False,
                        )
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


class _ConnBody(_LiveBody):
    __slots__ = ("_conn", "_origin", "_response")

    def __init__(self, response: http.client.HTTPResponse, conn: _Conn, origin: _Origin) -> None:
        super().__init__()
        self._response = response
        self._conn = conn
        self._origin = origin

    def _read_rest(self) -> bytes:
        return self._response.read()  # raises IncompleteRead when the body is cut short

    def _chunks(self) -> Iterator[bytes]:
        response = self._response
        if response.chunked:
            while piece := response.read1():  # at most the rest of the current chunk
                if response.chunk_left:  # hand over whole chunks, as the server framed them
                    parts = [piece]
                    while response.chunk_left:
                        parts.append(response.read1(response.chunk_left))
                    piece = b"".join(parts)
                yield piece
        else:
            while data := response.read1(_READ1_SIZE):
                yield data
            if response.length:  # http.client's read1 ends quietly on a short body
                raise http.client.IncompleteRead(b"", response.length)

    def _complete(self) -> bool:
        return self._response.isclosed() or self._response.length == 0

    def _release(self) -> None:
        response = self._response
        response.close()
        self._origin.release(self._conn, reusable=not response.will_close)

    def _discard(self) -> None:
        self._response.close()
        self._origin.release(self._conn, reusable=False)


class FastHTTPClient:
    """An :class:`HTTPClient` on plain http.client connections, for the lowest overhead.

    It has the same contract as :class:`RequestsHTTPClient`: exact wire headers, blocking
    per-origin pools of ``max_pool_connections``, live streams, one error mapping. It also
    takes proxies from ``proxies`` or the environment (plain ``http://`` proxies only: a
    tunnel for https, the absolute URL for http) and the CA bundle from ``verify`` or the
    environment. Each request goes out in one write, and a pooled connection is polled for a
    server close before every reuse (one zero-timeout select). Use RequestsHTTPClient for
    SOCKS or https:// proxies.
    """

    def __init__(
        self,
        connect_timeout: float = 60.0,
        read_timeout: float = 70.0,
        max_pool_connections: int = 10,
        proxies: Mapping[str, str] | None = None,
        verify: bool | str | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self._proxies = dict(proxies) if proxies is not None else None
        self._verify: bool | str = verify if verify is not None else _environ_ca_bundle()
        self._context: ssl.SSLContext | None = None
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._lock = threading.Lock()

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        try:
            scheme, netloc, target = _split_url(request.url)
            origin = self._origins.get((scheme, netloc))
            if origin is None or origin.closed:
                origin = self._origin(scheme, netloc)
            if origin.absolute:
                target = f"{scheme}://{netloc}{target}"
            body = _PreparedBody(request.body)
            head = _request_head(request, target, body, origin)
        except Exception as exc:
            _tag(exc, "prepare")
            raise map_transport_error(exc) from exc
        conn, response = self._exchange(origin, request.method, head, body)
        try:
            headers = Headers()
            for name, value in response.msg.items():
                known = headers.get(name)
                headers[name] = value if known is None else f"{known}, {value}"  # as HTTP allows
            live = _ConnBody(response, conn, origin)
        except BaseException:
            response.close()
            origin.release(conn, reusable=False)
            raise
        content: _LiveBody | BytesBody = live if stream else BytesBody(live.read())
        return HTTPResponse(response.status, headers, content, response.reason)

    def close(self) -> None:
        """Close every pooled connection. The client opens new ones if it is used again."""
        with self._lock:
            origins = list(self._origins.values())
            self._origins.clear()
        for origin in origins:
            origin.close()

    def __enter__(self) -> FastHTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(
        self, origin: _Origin, method: str, head: bytes, body: _PreparedBody
    ) -> tuple[_Conn, http.client.HTTPResponse]:
        """Write the request and read the response head; resend once on a stale connection."""
        for attempt in (1, 2):
            conn = origin.acquire(self.connect_timeout)
            try:
                return conn, self._roundtrip(conn, method, head, body)
            except Exception as exc:
                origin.release(conn, reusable=False)
                if attempt == 1 and _phase_of(exc) == "idle" and body.rewind():
                    continue  # the server closed that pooled connection and never saw the request
                raise map_transport_error(exc) from exc
            except BaseException:
                origin.release(conn, reusable=False)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _roundtrip(self, conn: _Conn, method: str, head: bytes, body: _PreparedBody) -> http.client.HTTPResponse:
        connection = conn.http
        reused = connection.sock is not None and conn.exchanges > 0
        if reused and _dropped(connection.sock):
            connection.close()
            reused = False
        if connection.sock is None:
            try:
                connection.connect()
                cast(socket.socket, connection.sock).settimeout(self.read_timeout)
            except BaseException as exc:
                _tag(exc, "connect")
                raise
            conn.exchanges = 0
        sock: socket.socket = connection.sock
        write_error: BaseException | None = None
        try:
            _write(sock, head, body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            write_error = exc  # the server may have answered early (a 413…): read that answer
            conn.reusable = False
        except BaseException as exc:
            _tag(exc, "send")
            raise
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
        except BaseException as exc:
            response.close()
            _tag(exc, _failure_phase(write_error is not None, reused))
            raise
        conn.exchanges += 1
        return response

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        """How to reach an origin (directly or through a proxy), resolved once."""
        address = netloc.rpartition("@")[2]
        default_port = ":443" if scheme == "https" else ":80"
        host = address[: -len(default_port)] if address.endswith(default_port) else address
        context = self._ssl_context() if scheme == "https" else None
        timeout = self.connect_timeout
        proxy = _proxy_for(scheme, netloc, self._proxies)
        extra_headers = ""
        absolute = False
        if proxy is None:
            if context is not None:
                factory: Callable[[], http.client.HTTPConnection] = lambda: http.client.HTTPSConnection(  # noqa: E731
                    address, timeout=timeout, context=context
                )
            else:
                factory = lambda: http.client.HTTPConnection(address, timeout=timeout)  # noqa: E731
        else:
            parts = urllib.parse.urlsplit(proxy)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(
                    f"FastHTTPClient supports http:// proxies only, not {_describe_url(proxy)}; use RequestsHTTPClient"
                )
            proxy_address = parts.netloc.rpartition("@")[2]
            auth = {}
            if parts.username is not None:
                credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
                auth["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode("latin-1")).decode("ascii")
            if context is not None:
                tunnel_context = context

                def factory() -> http.client.HTTPConnection:
                    connection = http.client.HTTPSConnection(proxy_address, timeout=timeout, context=tunnel_context)
                    connection.set_tunnel(address, headers=auth)
                    return connection
            else:
                factory = lambda: http.client.HTTPConnection(proxy_address, timeout=timeout)  # noqa: E731
                absolute = True
                extra_headers = "".join(f"{name}: {value}\r\n" for name, value in auth.items())
        origin = _Origin(factory, self.max_pool_connections, host=host, absolute=absolute, extra_headers=extra_headers)
        with self._lock:
            known = self._origins.get((scheme, netloc))
            if known is not None and not known.closed:
                return known  # another thread got here first: one pool per origin
            self._origins[(scheme, netloc)] = origin
        return origin

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            verify = self._verify
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                location = verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH
                if os.path.isdir(location):
                    context = ssl.create_default_context(capath=location)
                else:
                    context = ssl.create_default_context(cafile=location)
            context.set_alpn_protocols(["http/1.1"])
            self._context = context
        return self._context


def _request_head(request: HTTPRequest, target: str, body: _PreparedBody, origin: _Origin) -> bytes:
    """The request line and headers, validated so that nothing can smuggle a header in."""
    method = request.method
    if not _TOKEN.fullmatch(method) or _BAD_TARGET.search(target):
        raise ValueError(f"invalid method or request target: {method!r} {target[:100]!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    headers = request.headers
    if "host" not in headers:
        lines.append(f"Host: {origin.host}")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header {name[:100]!r}")
        lines.append(f"{name}: {value}")
    if "content-length" not in headers:
        if body.length is not None:
            lines.append(f"Content-Length: {body.length}")
        elif method in _METHODS_WITH_BODY:
            lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n" + origin.extra_headers + "\r\n").encode("latin-1")


def _write(sock: socket.socket, head: bytes, body: _PreparedBody) -> None:
    data = body.data
    if data is None:
        sock.sendall(head)
    elif isinstance(data, bytes):
        if len(data) <= _COALESCE_LIMIT:
            sock.sendall(head + data)  # one write: no head/body packet split
        else:
            sock.sendall(head)
            sock.sendall(data)
    else:
        sock.sendall(head)
        left = cast(int, body.length)
        while left > 0:  # never more than the Content-Length we announced
            block = data.read(min(left, _READ1_SIZE))
            if not block:
                raise ValueError(f"the file body ended {left} bytes short of its Content-Length")
            sock.sendall(block)
            left -= len(block)


def _dropped(sock: socket.socket) -> bool:
    """True if an idle connection has something to read: the server's close (or stray bytes)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


# -- a client for tests -----------------------------------------------------------------------

MockResult = HTTPResponse | tuple[int, Mapping[str, str], bytes | str]


class MockHTTPClient:
    """An :class:`HTTPClient` that answers from a function, for unit tests of your own code.

    ``handler`` gets a copy of each request, with its body read into bytes. It returns an
    :class:`HTTPResponse` or a ``(status, headers, body)`` tuple. Every request sent is kept
    in ``requests``. An exception from the handler propagates out of ``send`` unchanged.

    Example::

        from smruntime import Client
        from smruntime.transport import MockHTTPClient

        def answer(request):
            return 200, {"Content-Type": "application/json"}, b'{"sum": 3}'

        mock = MockHTTPClient(answer)
        client = Client(region="us-east-1", http_client=mock, credentials=("AKID", "SECRET"))
        out = client.invoke_endpoint(endpoint_name="ep", body=b'{"numbers": [1, 2]}')
        assert out.body == b'{"sum": 3}'
        assert mock.requests[0].url.endswith("/endpoints/ep/invocations")
    """

    def __init__(self, handler: Callable[[HTTPRequest], MockResult]) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        body = request.body
        data = body if body is None or isinstance(body, bytes) else bytes(body.read())
        sent = HTTPRequest(request.method, request.url, request.headers.copy(), data)
        self.requests.append(sent)
        result = self.handler(sent.copy())
        if isinstance(result, HTTPResponse):
            return result
        status, headers, payload = result
        content = payload.encode("utf-8") if isinstance(payload, str) else payload
        return HTTPResponse(status, Headers(headers), BytesBody(content))

    def close(self) -> None:
        """Nothing to release."""
