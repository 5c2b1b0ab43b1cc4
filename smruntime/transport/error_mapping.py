"""The one place where failures of HTTP libraries become :class:`~smruntime.errors.TransportError`.

Every exception from requests, urllib3, http.client, socket, ssl or aiohttp, and from the fast
clients' response reader (:mod:`smruntime.transport.http11`), is mapped by :func:`map_transport_error`,
and nowhere else. The error says whether the request may have reached the server
(``request_sent``): the clients tag an exception with the phase of the exchange it interrupted,
and the mapping reads that tag.

No HTTP library is imported here (not even http.client or ssl): exception classes are looked up
only once their modules are loaded, since none of their exceptions can exist before that.
"""

from __future__ import annotations

import re
import socket
import sys
from typing import Literal, NamedTuple

from smruntime.errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeoutError,
    PoolTimeoutError,
    ReadTimeoutError,
    TransportError,
    server_text,
)
from smruntime.redaction import REDACTED, redact_text

__all__ = ["Phase", "describe_url", "failure_phase", "map_transport_error", "phase_of", "tag"]

Phase = Literal["prepare", "connect", "send", "idle", "response"]
"""Where an exchange failed: building the request, connecting, writing the request, writing to
a reused connection the server had already closed, or after the request was fully written."""

_PHASE_ATTR = "_smruntime_phase"



def failure_phase(write_failed: bool, reused: bool) -> Phase:
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

class _Kinds(NamedTuple):
    """The exception classes that decide a failure's class, by what they mean."""

    connect_timeouts: tuple[type[BaseException], ...]
    read_timeouts: tuple[type[BaseException], ...]
    timeouts: tuple[type[BaseException], ...]
    connect_failures: tuple[type[BaseException], ...]
    invalid_request: tuple[type[BaseException], ...]
    tls_failures: tuple[type[BaseException], ...]
    empty_pool: tuple[type[BaseException], ...]
    new_connection: tuple[type[BaseException], ...]
    malformed_responses: tuple[type[BaseException], ...]
    closed_early: tuple[type[BaseException], ...]


# Exception classes by module and meaning. A module's classes count once it is loaded: none of
# its exceptions can exist before, and looking them up this way imports nothing.
_BY_MODULE: dict[str, dict[str, tuple[str, ...]]] = {
    "http.client": {
        "invalid_request": ("InvalidURL",),
        "malformed_responses": ("BadStatusLine", "LineTooLong", "UnknownProtocol", "UnknownTransferEncoding"),
        # A BadStatusLine subclass, but the server sent nothing at all: not a malformed answer.
        "closed_early": ("RemoteDisconnected",),
    },
    "ssl": {"tls_failures": ("SSLError", "CertificateError")},
    "urllib3.exceptions": {
        "connect_timeouts": ("ConnectTimeoutError",),
        "read_timeouts": ("ReadTimeoutError",),
        "timeouts": ("TimeoutError",),
        # NewConnectionError is a ConnectTimeoutError subclass, for historical reasons.
        "connect_failures": ("NewConnectionError", "ProxyError", "EmptyPoolError", "ClosedPoolError"),
        "invalid_request": ("LocationValueError", "ProxySchemeUnsupported"),
        "tls_failures": ("SSLError",),
        "empty_pool": ("EmptyPoolError",),
        "new_connection": ("NewConnectionError",),
    },
    "requests.exceptions": {
        "connect_timeouts": ("ConnectTimeout",),
        "read_timeouts": ("ReadTimeout",),
        "timeouts": ("Timeout",),
        "connect_failures": ("ProxyError",),
        # InvalidURL covers InvalidProxyURL too.
        "invalid_request": ("InvalidURL", "InvalidSchema", "MissingSchema", "URLRequired", "InvalidHeader"),
        "tls_failures": ("SSLError",),
    },
    "smruntime.transport.http11": {"malformed_responses": ("MalformedResponseError",)},
    "aiohttp.client_exceptions": {
        "connect_timeouts": ("ConnectionTimeoutError",),
        "read_timeouts": ("SocketTimeoutError",),
        "timeouts": ("ServerTimeoutError",),
        "connect_failures": ("ClientConnectorError",),
        "invalid_request": ("InvalidURL",),
        "tls_failures": ("ClientSSLError",),
        "malformed_responses": ("ClientResponseError",),
    },
}
_BUILTIN = {"timeouts": (TimeoutError,), "connect_failures": (socket.gaierror, ConnectionRefusedError)}


def _kinds() -> _Kinds:
    """The classes to classify by, from the builtins and every module of ``_BY_MODULE`` loaded.

    Worked out for each failure (a few dozen lookups): only failures need it, and what is
    loaded can change between two of them.
    """
    fields: dict[str, list[type[BaseException]]] = {name: list(_BUILTIN.get(name, ())) for name in _Kinds._fields}
    for module_name, meanings in _BY_MODULE.items():
        module = sys.modules.get(module_name)
        if module is not None:
            for meaning, class_names in meanings.items():
                fields[meaning].extend(getattr(module, name) for name in class_names)
    return _Kinds(**{name: tuple(classes) for name, classes in fields.items()})


# Pattern strings, compiled by re's cache on first use: only failures need them, and compiling
# them at import costs every cold start.
_POOL_OR_CONNECTION = r"\b\w*(?:Connection|Pool)\(host='([^'\s]*)', port=(\d+)\)"
_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@"
_SECRET_PARAMS = r"(?i)(X-Amz-(?:Security-Token|Signature|Credential)=)[^&\s'\"]+"
_SECRET_HEADERS = r"(?i)((?:Proxy-)?Authorization|X-Amz-Security-Token)(['\"]?\s*[:=,]\s*['\"]?)[^'\"\r\n]+"


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

    kinds = _kinds()

    def first(classes: tuple[type[BaseException], ...]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, classes)), None)

    if phase == "prepare":
        return _deepest(chain), ConnectError, "could not send the request"
    if culprit := first(kinds.read_timeouts):
        return culprit, *_timeout(phase)
    if culprit := first(kinds.connect_failures + kinds.connect_timeouts):
        if isinstance(culprit, kinds.tls_failures):  # aiohttp's TLS errors are connector errors too
            return culprit, ConnectError, "TLS handshake failed"
        if isinstance(culprit, kinds.empty_pool):
            return culprit, PoolTimeoutError, "timed out waiting for a pooled connection"
        if isinstance(culprit, kinds.connect_timeouts) and not isinstance(culprit, kinds.new_connection):
            return culprit, ConnectTimeoutError, "timed out connecting"
        return culprit, ConnectError, "could not connect"
    if culprit := first(kinds.invalid_request):
        return culprit, ConnectError, "could not send the request"
    if culprit := first(kinds.tls_failures):
        if phase in (None, "connect"):
            return culprit, ConnectError, "TLS handshake failed"
        return culprit, ConnectionClosedError, "TLS connection failed"
    if culprit := first(kinds.timeouts):
        return culprit, *_timeout(phase)
    culprit = _deepest(chain)
    if phase == "connect":
        return culprit, ConnectError, "could not connect"
    if phase == "send":
        return culprit, ConnectionClosedError, "connection failed while sending the request"
    if phase == "idle":
        return culprit, ConnectionClosedError, "the server had closed the idle keep-alive connection"
    malformed = next(
        (e for e in chain if isinstance(e, kinds.malformed_responses) and not isinstance(e, kinds.closed_early)), None
    )
    if malformed is not None:
        return malformed, ConnectionClosedError, "the server's response is not valid HTTP/1.1"
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


def phase_of(exc: BaseException) -> Phase | None:
    return _tagged_phase(_exception_chain(exc))


def tag(exc: BaseException, phase: Phase) -> None:
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
    args = exc.args
    try:
        if len(args) == 2 and isinstance(args[1], str) and not isinstance(args[0], (str, int)):
            text = args[1]  # urllib3's (connection, message): the message names the host already
        else:
            text = str(exc)
    except Exception:  # a half-built exception may not even print
        text = ""
    text = re.sub(_USERINFO, rf"\1{REDACTED}@", text)
    text = re.sub(_SECRET_PARAMS, rf"\1{REDACTED}", redact_text(text))
    text = re.sub(_POOL_OR_CONNECTION, _host_and_port, text)  # urllib3 names our connection and pool classes
    text = server_text(re.sub(_SECRET_HEADERS, rf"\1\2{REDACTED}", text), 1000)  # may quote what the server sent
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _host_and_port(found: re.Match[str]) -> str:
    host, port = found.groups()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 address in brackets, as in a URL


def describe_url(url: str) -> str:
    """A URL for an error message: shortened, user and password hidden."""
    return repr(re.sub(_USERINFO, rf"\1{REDACTED}@", url[:200]))
