"""The default HTTP client: requests' engine (urllib3's pools) with requests' settings, without a Session.

For an origin reached directly (no proxy) the client builds the urllib3 pool itself, with what
requests' ``HTTPAdapter`` would configure: a blocking pool of ``max_pool_connections`` per
origin, certificates required and checked against ``verify``, ``AWS_CA_BUNDLE``,
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` or certifi's bundle. requests itself is imported
only for an origin behind a proxy, whose pool comes from requests' adapter
(:mod:`smruntime.transport.requests_proxy`): a cold start through no proxy, the common case,
skips requests' own import.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, cast

import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from urllib3.util import SKIP_HEADER

from smruntime.errors import ClientClosedError, PoolTimeoutError
from smruntime.http import BytesBody, Headers, HTTPRequest, HTTPResponse
from smruntime.transport.error_mapping import failure_phase, map_transport_error, phase_of, tag
from smruntime.transport.shared import (
    CLOSED_WHILE_WAITING,
    COALESCE_LIMIT,
    READ1_SIZE,
    LiveBody,
    PooledHTTPClient,
    PreparedBody,
    body_too_large,
    breaks_header,
    gather,
    idle_too_long,
    pool_timeout,
    proxy_for,
    split_url,
)

__all__ = ["RequestsHTTPClient"]


class _TrackedHTTPConnection(urllib3.connection.HTTPConnection):
    """Tags its failures with the phase they happened in, for ``request_sent``, and writes a
    small body in the same system call as the head."""

    _sm_exchanges = 0  # responses received since this socket connected
    _sm_idle_since = 0.0  # time.monotonic() when it last went back to the pool
    _sm_reused = False
    _sm_write_failed = False
    _sm_hold_head = False  # the request's body is small bytes: hold the head back for it
    _sm_head: bytes | None = None

    def connect(self) -> None:
        try:
            super().connect()
        except BaseException as exc:
            tag(exc, "connect")
            raise
        self._sm_exchanges = 0

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        self._sm_reused = self.sock is not None and self._sm_exchanges > 0
        self._sm_write_failed = False
        # urllib3 writes the head, then the body: two system calls, each handing the GIL over,
        # which many threads sharing a client feel. Its first send() is the head (http.client's
        # endheaders); send() holds that back and writes it with the body.
        self._sm_hold_head = isinstance(body, bytes) and 0 < len(body) <= COALESCE_LIMIT
        try:
            super().request(method, url, body=body, headers=headers, **kwargs)
            if self._sm_head is not None:  # no body was sent after all
                head, self._sm_head = self._sm_head, None
                super().send(head)
        except BaseException as exc:
            # urllib3 swallows a broken pipe here and reads the answer; remember the failure.
            self._sm_write_failed = True
            tag(exc, "send")
            raise
        finally:
            self._sm_hold_head = False
            self._sm_head = None

    def send(self, data: Any) -> None:
        if self._sm_hold_head:
            if self._sm_head is None:
                self._sm_head = bytes(data)
                return
            data = self._sm_head + data
            self._sm_hold_head = False
            self._sm_head = None
        super().send(data)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        try:
            response = super().getresponse()
        except BaseException as exc:
            tag(exc, failure_phase(self._sm_write_failed, self._sm_reused))
            raise
        self._sm_exchanges += 1
        return response


class _TrackedHTTPSConnection(_TrackedHTTPConnection, urllib3.connection.HTTPSConnection):
    """The TLS variant (the MRO wraps HTTPSConnection's methods in the tracking)."""


class _ClosingPool(urllib3.connectionpool.HTTPConnectionPool):
    """A pool whose close() also fails the calls waiting for one of its connections, at once:
    urllib3 leaves them asleep until their pool timeout (the connect timeout). A connection
    that sat in it unused for ``sm_idle_timeout`` connects again before it is used."""

    _closed_slots: queue.LifoQueue[Any] | None = None  # the slots close() took away
    sm_idle_timeout: float | None = None  # the client's idle_timeout, set when it takes the pool

    def _get_conn(self, timeout: float | None = None) -> Any:
        try:
            conn = cast(_TrackedHTTPConnection, super()._get_conn(timeout))  # the pools' ConnectionCls
        except urllib3.exceptions.ClosedPoolError:
            raise ClientClosedError(CLOSED_WHILE_WAITING) from None
        if conn.sock is not None and idle_too_long(conn._sm_idle_since, self.sm_idle_timeout):
            conn.close()  # as urllib3 does with a connection the server dropped: it connects anew
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn._sm_idle_since = time.monotonic()
        super()._put_conn(conn)

    def _new_conn(self) -> Any:
        slots = self._closed_slots
        if slots is not None:  # close() woke this call with an empty slot: pass it on to the next
            slots.put_nowait(None)
            raise ClientClosedError(CLOSED_WHILE_WAITING)
        return super()._new_conn()

    def close(self) -> None:
        slots = self.pool
        super().close()
        if slots is not None:
            self._closed_slots = slots
            with contextlib.suppress(queue.Full):
                slots.put_nowait(None)


class _HTTPPool(_ClosingPool):
    ConnectionCls = _TrackedHTTPConnection


class _HTTPSPool(_ClosingPool, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}

_NO_RETRIES = urllib3.Retry(total=False, redirect=False, raise_on_status=False)
"""Retries belong to the stack: urllib3 raises the first error unchanged."""


class _Route:
    """Where requests for one origin go: a urllib3 pool, and whether to send the whole URL."""

    __slots__ = ("absolute", "pool")

    def __init__(self, pool: urllib3.connectionpool.HTTPConnectionPool, absolute: bool) -> None:
        self.pool = pool
        self.absolute = absolute  # through a plain HTTP proxy, the target is the absolute URL


class _Urllib3Body(LiveBody):
    __slots__ = ("_raw",)

    def __init__(self, raw: urllib3.HTTPResponse, limit: int) -> None:
        super().__init__(limit)
        self._raw = raw

    def _read_rest(self, limit: int) -> bytes:
        raw = self._raw
        declared = raw.length_remaining  # the Content-Length still to come; None if the body has none
        if declared is None:
            return gather(iter(lambda: raw.read1(READ1_SIZE, decode_content=False), b""), limit)
        if declared > limit:
            raise body_too_large(limit)
        return raw.read(decode_content=False)

    def _chunks(self) -> Iterator[bytes]:
        raw = self._raw
        if raw.chunked and raw.supports_chunked_reads():
            # The FastHTTPClient's parser module, loaded only when a chunked body is streamed.
            from smruntime.transport.http11 import WHOLE_CHUNK_LIMIT

            # A chunk up to WHOLE_CHUNK_LIMIT whole, as the server framed it (an event stream's
            # server sends an event a chunk); a longer one in pieces of that size, so a chunk's
            # declared size never makes the client buffer more before the reader sees its bytes.
            for chunk in raw.read_chunked(WHOLE_CHUNK_LIMIT, decode_content=False):
                if chunk:
                    yield chunk
        else:
            # read1 returns what one socket read brings; it never waits for a full buffer.
            while data := raw.read1(READ1_SIZE, decode_content=False):
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


class RequestsHTTPClient(PooledHTTPClient):
    """The default HTTP client: urllib3's pools set up as requests' adapter does, without a Session.

    Each origin gets one pool of ``max_pool_connections`` connections. When all are busy, a
    call waits for one (up to ``connect_timeout``) instead of opening extras, so many threads
    never churn through "Connection pool is full" discards. Proxies come from ``proxies`` or
    the environment (``HTTP(S)_PROXY``, ``NO_PROXY``). The CA bundle comes from ``verify`` or
    ``AWS_CA_BUNDLE``, then ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` as in requests. Both
    are resolved once per origin; requests is imported only for an origin behind a proxy. No
    Session, cookies, hooks or default headers run per call. urllib3 never retries (the stack
    does); a pooled connection is checked for a server close before it is reused, and a
    request is sent again only when its write failed on a connection the server had already
    closed — never once it was written whole.
    """

    def _start_pools(self) -> None:
        self._timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)
        # What requests' HTTPAdapter(pool_connections=10, pool_maxsize=…, pool_block=True) sets up.
        self._pools = urllib3.PoolManager(num_pools=10, maxsize=self.max_pool_connections, block=True)
        self._pools.pool_classes_by_scheme = dict(_POOL_CLASSES)
        self._adapter: Any = None  # requests' adapter, made for the first origin behind a proxy
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        try:
            scheme, netloc, target = split_url(request.url)
            route = self._routes.get((scheme, netloc))
            if route is None or route.pool.pool is None:  # a new origin, or its pool was closed
                route = self._route(scheme, netloc)
            body = PreparedBody(request.body)
            headers = _urllib3_headers(request, body)
        except Exception as exc:
            tag(exc, "prepare")
            raise map_transport_error(exc) from exc
        if route.absolute:
            target = f"{scheme}://{netloc}{target}"
        raw = self._urlopen(route.pool, request.method, target, body, headers)
        live = _Urllib3Body(raw, self.max_response_body_size)
        try:
            response_headers = Headers(raw.headers.itermerged())
        except BaseException:
            live.close()
            raise
        # Not streamed: read here (bounded; urllib3's preload is not), which pools the connection.
        return HTTPResponse(raw.status, response_headers, live if stream else BytesBody(live.read()), raw.reason or "")

    def close(self) -> None:
        """Close every pooled connection. The client opens new ones if it is used again."""
        with self._lock:
            routes = list(self._routes.values())
            self._routes.clear()
            # urllib3 2's PoolManager.clear() only forgets its pools; closing them is up to us.
            for route in routes:
                route.pool.close()
            self._pools.clear()
            if self._adapter is not None:
                self._adapter.close()

    def _forked(self) -> None:
        inherited = [route.pool for route in self._routes.values()]
        self._start_pools()
        for pool in inherited:  # the child's copies of the idle sockets; a parent thread may hold the pool's lock
            slots = pool.pool
            for conn in list(slots.queue) if slots is not None else ():
                if conn is not None:
                    conn.close()

    def _urlopen(
        self,
        pool: urllib3.connectionpool.HTTPConnectionPool,
        method: str,
        target: str,
        body: PreparedBody,
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
            except ClientClosedError:
                raise
            except Exception as exc:
                if attempt == 1 and phase_of(exc) == "idle" and body.rewind():
                    continue  # the server closed that pooled connection and never saw the request
                error = map_transport_error(exc)
                if isinstance(error, PoolTimeoutError):  # said as the other clients say it
                    error = pool_timeout(self.connect_timeout, self.max_pool_connections)
                raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _route(self, scheme: str, netloc: str) -> _Route:
        """Resolve proxy, TLS settings and pool for an origin, once."""
        proxy = proxy_for(scheme, netloc, self._proxies)
        with self._lock:
            if proxy:
                from smruntime.transport.requests_proxy import ProxyAdapter

                if self._adapter is None:
                    self._adapter = ProxyAdapter(
                        _POOL_CLASSES, pool_connections=10, pool_maxsize=self.max_pool_connections,
                        max_retries=_NO_RETRIES, pool_block=True,
                    )
                pool = self._adapter.pool_for(scheme, netloc, proxy, self._verify)
            else:
                pool = self._direct_pool(scheme, netloc)
            if isinstance(pool, _ClosingPool):  # a SOCKS proxy's pools are urllib3's own
                pool.sm_idle_timeout = self.idle_timeout
            absolute = bool(proxy) and scheme == "http" and not str(proxy).lower().startswith("socks")
            route = _Route(pool, absolute)
            self._routes[(scheme, netloc)] = route
        return route

    def _direct_pool(self, scheme: str, netloc: str) -> urllib3.connectionpool.HTTPConnectionPool:
        """The pool requests' adapter would give this origin, with no proxy and no client certificate."""
        parts = urllib.parse.urlsplit(f"{scheme}://{netloc}/")
        host, port = parts.hostname, parts.port  # a bad port fails here first, as in requests
        tls = _tls_settings(self._verify) if scheme == "https" else {}
        return self._pools.connection_from_host(host, port, scheme, pool_kwargs=tls)


def _tls_settings(verify: bool | str) -> dict[str, Any]:
    """The certificate settings of an HTTPS pool, as requests' adapter makes them from ``verify``."""
    if not verify:
        return {"cert_reqs": "CERT_NONE", "ca_certs": None, "ca_cert_dir": None}
    if verify is True:
        import certifi  # requests' default bundle (certifi is installed with requests)

        location = certifi.where()
    else:
        location = verify
    if not os.path.exists(location):
        raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {location}")
    if os.path.isdir(location):
        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": None, "ca_cert_dir": location}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": location, "ca_cert_dir": None}


def _urllib3_headers(request: HTTPRequest, body: PreparedBody) -> dict[str, str]:
    """The request's headers, a Content-Length when the body needs one, and markers that stop
    http.client and urllib3 from adding their defaults."""
    given = request.headers
    headers = dict(given.items())
    if breaks_header("".join(headers.values())):
        # Refused here, not by http.client: its error quotes the value, which may be a token.
        bad = next(name for name, value in headers.items() if breaks_header(value))
        raise ValueError(f"invalid header {bad[:100]!r}: its value contains CR, LF or NUL")
    if body.length is not None and "content-length" not in given:
        headers["Content-Length"] = str(body.length)
    if "user-agent" not in given:
        headers["User-Agent"] = SKIP_HEADER
    if "accept-encoding" not in given:
        headers["Accept-Encoding"] = SKIP_HEADER
    return headers
