"""AWS Signature Version 4, sans-IO, and the SigV4 signer.

:func:`canonical_request`, :func:`string_to_sign` and :func:`compute_signature` are the one
implementation shared by :class:`SigV4Signer` and the local endpoint's verifier (which parses
the header with :mod:`smruntime.auth.authorization`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
from datetime import UTC, datetime
from typing import IO, Any, Callable, Final, Iterable, Protocol, Sequence
from urllib.parse import quote, unquote, urlsplit

from smruntime.auth.credentials import Credentials
from smruntime.errors import SigningError
from smruntime.http import HTTPRequest
from smruntime.redaction import REDACTED

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "UNSIGNED_HEADERS",
    "UNSIGNED_PAYLOAD",
    "HTTPSigner",
    "SigV4Signer",
    "SigningKey",
    "SigningKeyCache",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "compute_signature",
    "credential_scope",
    "format_amz_date",
    "format_authorization",
    "payload_sha256",
    "signing_key",
    "string_to_sign",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
DEFAULT_SIGNING_NAME: Final = "sagemaker"

UNSIGNED_HEADERS: Final = frozenset(
    {
        # Hop-by-hop headers and headers that proxies or tracing agents add or rewrite in
        # flight; signing them would break the signature. The same set botocore leaves out.
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
"""Header names that are never signed, even when the request carries them."""

_HASH_CHUNK = 1024 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


# %-formatting: strftime and f-string format specs cost 2-4 times more, once per attempt.
_AMZ_DATE: Final = "%04d%02d%02dT%02d%02d%02dZ"


def format_amz_date(when: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` in UTC; a naive datetime is taken to be UTC."""
    if when.tzinfo is not None and when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return _AMZ_DATE % (when.year, when.month, when.day, when.hour, when.minute, when.second)


def credential_scope(date: str, region: str, service: str) -> str:
    """``date/region/service/aws4_request`` (``date`` is ``YYYYMMDD``)."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def canonical_uri(raw_path: str, normalize: bool = True) -> str:
    """The path as sent, normalized (unless S3-style) and percent-encoded once more.

    Non-S3 services encode the already-encoded wire path again: ``/a%20b`` → ``/a%2520b``.
    """
    path = _remove_dot_segments(raw_path) if normalize else (raw_path or "/")
    return quote(path, safe="/")


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, plus what AWS adds: empty segments (repeated slashes) go too.
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path[0] == "/" else ""
    trail = "/" if path[-1] == "/" and kept else ""
    return lead + "/".join(kept) + trail


def canonical_query(raw_query: str) -> str:
    """Parameters decoded, encoded the SigV4 way (``%20``, upper-case hex) and sorted."""
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        # Decode first so an already-encoded name (``%E1%88%B4``) is not encoded twice.
        pairs.append((quote(unquote(name), safe=""), quote(unquote(value), safe="")))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_request(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    signed_headers: Sequence[str],
    payload_hash: str,
    normalize_path: bool = True,
) -> str:
    """The SigV4 canonical request.

    ``headers`` are the request's ``(name, value)`` pairs, repeated names allowed (joined
    with ``,`` in order); only the lower-case names in ``signed_headers`` are used, in that
    order. Values are trimmed and inner whitespace runs collapse to one space.
    """
    values: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        previous = values.get(name)
        # Each value is trimmed before repeated ones are joined ("a ", "b" → "a,b").
        values[name] = value if previous is None else f"{_trim(previous)},{_trim(value)}"
    return _canonical_request(method, raw_path, raw_query, values, signed_headers, payload_hash, normalize_path)


def _trim(value: str) -> str:
    return " ".join(value.split())


def _canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    values: dict[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
    normalize_path: bool,
) -> str:
    # ``values``: lower-case name → value, repeated headers already joined.
    get = values.get
    canonical_headers = "".join([f"{name}:{' '.join(get(name, '').split())}\n" for name in signed_headers])
    query = canonical_query(raw_query) if raw_query else ""
    return (
        f"{method.upper()}\n{canonical_uri(raw_path, normalize_path)}\n{query}\n"
        f"{canonical_headers}\n{';'.join(signed_headers)}\n{payload_hash}"
    )


def string_to_sign(*, canonical_request: str, amz_date: str, region: str, service: str) -> str:
    """The SigV4 string to sign for a canonical request."""
    return _string_to_sign(canonical_request, amz_date, credential_scope(amz_date[:8], region, service))


def _string_to_sign(canonical_request: str, amz_date: str, scope: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over date, region, service and ``aws4_request``."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


class SigningKey:
    """A derived signing key, ready to sign many strings.

    HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once: ``hmac.digest``
    redoes that setup on every call, which costs more than hashing a whole string to sign.
    """

    __slots__ = ("_inner", "_outer", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        block = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def sign(self, message: str) -> str:
        """Hex HMAC-SHA256 of ``message`` (UTF-8)."""
        return self.digest(message).hex()

    def digest(self, message: str) -> bytes:
        """Raw HMAC-SHA256 of ``message`` (UTF-8)."""
        inner = self._inner.copy()
        inner.update(message.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return f"SigningKey({REDACTED})"


class SigningKeyCache:
    """Signing keys by ``(secret, date, region, service)``: bounded and thread-safe.

    A key is valid for one day, so a handful of entries serves a process; the oldest entry
    goes first when the cache is full.
    """

    __slots__ = ("_keys", "_lock", "hits", "maxsize", "misses")

    def __init__(self, maxsize: int = 16) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._keys: dict[tuple[str, str, str, str], SigningKey] = {}
        self._lock = threading.Lock()

    def get(self, secret_key: str, date: str, region: str, service: str) -> SigningKey:
        cache_key = (secret_key, date, region, service)
        found = self._keys.get(cache_key)  # a dict read is atomic: no lock on the hot path
        if found is not None:
            self.hits += 1
            return found
        found = SigningKey(signing_key(secret_key, date, region, service))
        with self._lock:
            self.misses += 1
            while len(self._keys) >= self.maxsize:
                del self._keys[next(iter(self._keys))]
            self._keys[cache_key] = found
        return found

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return (
            f"SigningKeyCache(size={len(self._keys)}, maxsize={self.maxsize}, hits={self.hits}, misses={self.misses})"
        )


def compute_signature(
    *,
    secret_key: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    signed_headers: Sequence[str],
    payload_hash: str,
    amz_date: str,
    region: str,
    service: str,
    normalize_path: bool = True,
    key_cache: SigningKeyCache | None = None,
) -> str:
    """The hex SigV4 signature of a request (``raw_path``/``raw_query`` as on the wire)."""
    creq = canonical_request(
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        signed_headers=signed_headers,
        payload_hash=payload_hash,
        normalize_path=normalize_path,
    )
    sts = string_to_sign(canonical_request=creq, amz_date=amz_date, region=region, service=service)
    date = amz_date[:8]
    if key_cache is None:
        return SigningKey(signing_key(secret_key, date, region, service)).sign(sts)
    return key_cache.get(secret_key, date, region, service).sign(sts)


def format_authorization(access_key_id: str, scope: str, signed_headers: Sequence[str], signature: str) -> str:
    """The ``Authorization`` header value, spaced exactly as AWS SDKs write it."""
    return _authorization(_authorization_prefix(access_key_id, scope), ";".join(signed_headers), signature)


def _authorization_prefix(access_key_id: str, scope: str) -> str:
    """The ``Authorization`` value up to its signed headers list: the same for a day and a key."""
    return f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders="


def _authorization(prefix: str, signed_list: str, signature: str) -> str:
    return f"{prefix}{signed_list}, Signature={signature}"


def payload_sha256(body: bytes | bytearray | memoryview | str | IO[bytes] | None) -> str:
    """Hex SHA-256 of a request body; a file is hashed from its position, then put back."""
    if body is None:
        return EMPTY_SHA256
    if isinstance(body, (bytes, bytearray, memoryview)):
        return hashlib.sha256(body).hexdigest() if len(body) else EMPTY_SHA256
    if isinstance(body, str):
        return hashlib.sha256(body.encode("utf-8")).hexdigest()
    if not _seekable(body):
        raise SigningError(
            f"cannot sign a {type(body).__name__} body: request bodies must be bytes or a seekable binary file"
        )
    digest = hashlib.sha256()
    try:
        start = body.tell()
        try:
            for chunk in iter(functools.partial(body.read, _HASH_CHUNK), b""):
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise SigningError(
                        f"cannot sign a body whose read() returns {type(chunk).__name__}: open files in binary mode"
                    )
                digest.update(chunk)
        finally:
            body.seek(start)
    except (OSError, ValueError) as error:  # a closed file, or one that only claims to seek
        raise SigningError(f"cannot read the request body to sign it: {type(error).__name__}: {error}") from None
    return digest.hexdigest()


def _seekable(body: Any) -> bool:
    if not (callable(getattr(body, "seek", None)) and callable(getattr(body, "tell", None))):
        return False
    check = getattr(body, "seekable", None)
    try:
        return bool(check()) if callable(check) else True
    except (OSError, ValueError):
        return False


# -- the signer ----------------------------------------------------------------------


class HTTPSigner(Protocol):
    """Signs a request in place (X-Amz-Date, X-Amz-Security-Token, Authorization)."""

    def sign_http(
        self,
        request: HTTPRequest,
        credentials: Credentials,
        payload_hash: str,
        service: str,
        region: str,
        signing_time: datetime,
    ) -> None: ...


SigningTrace = Callable[[str, str], None]
"""Receives ``(canonical_request, string_to_sign)`` when signing is logged."""


def _url_parts(url: str) -> tuple[str, str, str]:
    """``(host header, raw path, raw query)`` of a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host, parts.path, parts.query


def _request_line(method: str, url: str) -> tuple[str, str]:
    """``(host header, "METHOD\\nURI\\nQUERY\\n")``: the canonical request's first three lines."""
    host, raw_path, raw_query = _url_parts(url)
    query = canonical_query(raw_query) if raw_query else ""
    return host, f"{method.upper()}\n{canonical_uri(raw_path, True)}\n{query}\n"


def _signed_headers(names: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The sorted lower-case names to sign out of a request's, and their ``;``-joined list."""
    signed = tuple(sorted(name for name in names if name not in UNSIGNED_HEADERS))
    return signed, ";".join(signed)


def _scope_and_prefix(access_key_id: str, date: str, region: str, service: str) -> tuple[str, str]:
    """The credential scope and the ``Authorization`` value up to its signed headers list;
    they change only with the day or the key."""
    scope = credential_scope(date, region, service)
    return scope, _authorization_prefix(access_key_id, scope)


_MAX_REMEMBERED_LINES = 64
"""Header names a signer remembers a canonical line for (a request carries fewer than ten)."""


class SigV4Signer:
    """The default signer: AWS Signature Version 4 with an ``Authorization`` header.

    Signs every header on the request except :data:`UNSIGNED_HEADERS`, plus ``host`` taken
    from the URL when the request has no Host header: the same headers and signature as
    botocore's ``SigV4Auth`` for the same request. Thread-safe; one per client is enough.
    """

    __slots__ = ("_last_date", "_lines", "_request_line", "_scope_and_prefix", "_signed_headers", "key_cache")

    def __init__(self, *, key_cache: SigningKeyCache | None = None) -> None:
        self.key_cache = key_cache if key_cache is not None else SigningKeyCache()
        self._lines: dict[str, tuple[str, str]] = {}  # header name → (value, canonical line)
        self._last_date: tuple[tuple[int, ...], str] = ((), "")  # (UTC date and time fields, X-Amz-Date)
        # The work that depends only on the URL, the set of header names, or the key and day is
        # memoized per signer (so per client, never process-wide): a client sends to a few URLs
        # with the same headers every time.
        self._request_line = functools.lru_cache(maxsize=256)(_request_line)
        self._signed_headers = functools.lru_cache(maxsize=256)(_signed_headers)
        self._scope_and_prefix = functools.lru_cache(maxsize=64)(_scope_and_prefix)

    def sign_http(
        self,
        request: HTTPRequest,
        credentials: Credentials,
        payload_hash: str,
        service: str,
        region: str,
        signing_time: datetime,
        *,
        trace: SigningTrace | None = None,
    ) -> None:
        headers = request.headers
        if "authorization" in headers:
            del headers["authorization"]  # a previous attempt's signature
        amz_date = self._amz_date(signing_time)
        headers["X-Amz-Date"] = amz_date
        if credentials.session_token:
            headers["X-Amz-Security-Token"] = credentials.session_token
        try:
            host, request_line = self._request_line(request.method, request.url)
        except ValueError as error:
            raise SigningError(f"cannot sign a request with an invalid URL: {error}") from None
        # Request headers are unique by name, so they go straight into the canonical form.
        values = headers.lower_dict()
        if "host" not in values:
            if not host:
                raise SigningError(f"cannot sign a request whose URL has no host: {request.url[:100]!r}")
            values["host"] = host
        signed, signed_list = self._signed_headers(tuple(values))
        creq = f"{request_line}{self._canonical_headers(values, signed)}\n{signed_list}\n{payload_hash}"
        date = amz_date[:8]
        scope, authorization_prefix = self._scope_and_prefix(credentials.access_key_id, date, region, service)
        sts = _string_to_sign(creq, amz_date, scope)
        signature = self.key_cache.get(credentials.secret_access_key, date, region, service).sign(sts)
        if trace is not None:
            trace(creq, sts)
        headers["Authorization"] = _authorization(authorization_prefix, signed_list, signature)

    def _canonical_headers(self, values: dict[str, str], signed: tuple[str, ...]) -> str:
        """``name:value\\n`` per signed header, each value trimmed and its inner whitespace collapsed.

        Most values repeat from call to call (content type, length, host, date within a second),
        so each name keeps the last line it made and the value it made it from.
        """
        lines = self._lines
        if len(lines) > _MAX_REMEMBERED_LINES:  # a caller inventing header names: start over
            lines.clear()
        parts = []
        for name in signed:
            value = values[name]
            known = lines.get(name)
            if known is not None and known[0] == value:
                parts.append(known[1])
            else:
                line = f"{name}:{' '.join(value.split())}\n"
                lines[name] = (value, line)
                parts.append(line)
        return "".join(parts)

    def _amz_date(self, when: datetime) -> str:
        """:func:`format_amz_date`, formatted once per second: calls in a row share their second."""
        if when.tzinfo is not None and when.tzinfo is not UTC:
            return format_amz_date(when)
        fields = (when.year, when.month, when.day, when.hour, when.minute, when.second)
        last_fields, last_text = self._last_date  # one tuple: threads never see a torn pair
        if fields == last_fields:
            return last_text
        text = _AMZ_DATE % fields
        self._last_date = (fields, text)
        return text

    def __repr__(self) -> str:
        return f"SigV4Signer(key_cache={self.key_cache!r})"
