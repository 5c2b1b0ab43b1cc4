"""Credentials, AWS Signature Version 4 and the signing middleware.

The SigV4 pieces are sans-IO: :func:`canonical_request`, :func:`string_to_sign` and
:func:`compute_signature` are the one implementation shared by :class:`SigV4Signer` and the
local endpoint's verifier, with :func:`parse_authorization` for the server side.

botocore is imported only when the default credentials chain is first used and the keys are
not simply in the environment: importing it costs more than the rest of the client's cold start.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Callable, Final, Iterable, Literal, Protocol, Sequence, runtime_checkable
from urllib.parse import quote, unquote, urlsplit

import attrs

from smruntime import keys
from smruntime.errors import (
    CredentialsError,
    FieldProblem,
    InvalidParamsError,
    SageMakerRuntimeError,
    SigningError,
)
from smruntime.http import HTTPRequest
from smruntime.logs import NOT_LOGGING, logger_for
from smruntime.middleware import (
    AsyncNext,
    BuildInput,
    BuildOutput,
    Context,
    FinalizeInput,
    FinalizeOutput,
    Next,
    Transform,
)
from smruntime.options import LogMode
from smruntime.redaction import REDACTED, SECRET_HEADERS, SENSITIVE_HEADERS, redact_text

__all__ = [
    "ALGORITHM",
    "ANONYMOUS",
    "EMPTY_SHA256",
    "UNSIGNED_HEADERS",
    "UNSIGNED_PAYLOAD",
    "AnonymousCredentials",
    "Authorization",
    "BotocoreCredentialsProvider",
    "ComputePayloadHash",
    "Credentials",
    "CredentialsProvider",
    "DefaultCredentialsProvider",
    "HTTPSigner",
    "SigV4Signer",
    "Signing",
    "SigningKey",
    "SigningKeyCache",
    "StaticCredentialsProvider",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "compute_signature",
    "credential_scope",
    "credentials_provider",
    "format_amz_date",
    "format_authorization",
    "parse_authorization",
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


# -- credentials --------------------------------------------------------------------


@attrs.frozen(repr=False)
class Credentials:
    """An AWS key pair, with a session token for temporary credentials.

    ``repr``/``str`` show the access key id only: the secret and the token never appear.
    """

    access_key_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    secret_access_key: str = attrs.field(validator=attrs.validators.instance_of(str))
    session_token: str | None = None
    expiry: datetime | None = None
    source: str = ""

    def __repr__(self) -> str:
        parts = [f"access_key_id={self.access_key_id!r}", f"secret_access_key={REDACTED}"]
        if self.session_token:
            parts.append(f"session_token={REDACTED}")
        if self.expiry is not None:
            parts.append(f"expiry={self.expiry.isoformat()}")
        if self.source:
            parts.append(f"source={self.source!r}")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__


class AnonymousCredentials:
    """The type of :data:`ANONYMOUS`: requests made with it are not signed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANONYMOUS"

    def __reduce__(self) -> str:
        return "ANONYMOUS"  # unpickles to the module's singleton


ANONYMOUS: Final = AnonymousCredentials()
"""Pass as ``credentials`` to send requests unsigned (the Signing middleware skips them)."""


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that can hand out credentials; called once per attempt."""

    def retrieve(self) -> Credentials:
        """The credentials to sign with now (refreshed if they are about to expire)."""
        ...


@attrs.frozen
class StaticCredentialsProvider:
    """Always the same credentials."""

    credentials: Credentials

    def retrieve(self) -> Credentials:
        return self.credentials

    async def aretrieve(self) -> Credentials:
        return self.credentials


class BotocoreCredentialsProvider:
    """Wraps a botocore credentials object (``boto3.Session().get_credentials()``).

    Refreshable credentials are frozen again on every :meth:`retrieve`, so each attempt
    signs with current ones and botocore refreshes them before they expire.
    """

    __slots__ = ("_credentials",)

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def retrieve(self) -> Credentials:
        return _freeze_botocore(self._credentials, None)

    async def aretrieve(self) -> Credentials:
        if _refresh_may_wait(self._credentials):
            import asyncio

            return await asyncio.to_thread(self.retrieve)
        return self.retrieve()

    def __repr__(self) -> str:
        return f"BotocoreCredentialsProvider(method={getattr(self._credentials, 'method', None)!r})"


class DefaultCredentialsProvider:
    """botocore's default chain: env, shared files, SSO, process, container, IMDS, assume-role.

    Nothing is imported or looked up until the first :meth:`retrieve`; the chain is then
    resolved once (thread-safe) and its credentials are frozen again on every call.
    """

    __slots__ = ("_found", "_lock", "profile")

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self._lock = threading.Lock()
        self._found: Any = None

    def retrieve(self) -> Credentials:
        found = self._found
        if found is None:
            with self._lock:
                if self._found is None:
                    # A failed lookup is not remembered: the next call tries again, so
                    # credentials that appear later (a refreshed SSO login) are picked up.
                    self._found = _from_environment(self.profile) or _resolve_chain(self.profile)
                found = self._found
        return self._current(found)

    async def aretrieve(self) -> Credentials:
        """As :meth:`retrieve`; the first lookup and any refresh run in a worker thread."""
        found = self._found
        if found is None or _refresh_may_wait(found):
            import asyncio

            return await asyncio.to_thread(self.retrieve)
        return self._current(found)

    def _current(self, found: Any) -> Credentials:
        if isinstance(found, Credentials):  # from the environment: as they are
            return found
        return _freeze_botocore(found, self.profile)

    def __repr__(self) -> str:
        return f"DefaultCredentialsProvider(profile={self.profile!r})"


def _refresh_may_wait(found: Any) -> bool:
    """Whether freezing botocore credentials may refresh them over the network now."""
    refresh_needed = getattr(found, "refresh_needed", None)
    if refresh_needed is None:
        return False  # plain credentials: freezing them is a copy
    try:
        return bool(refresh_needed())
    except Exception:
        return True  # let the worker thread meet (and report) the failure


def credentials_provider(value: Any, profile: str | None = None) -> CredentialsProvider | None:
    """Normalize ``Options.credentials``; ``None`` in the result means "do not sign".

    ``None`` → botocore's default chain for ``profile``; ``(key, secret[, token])`` or a
    :class:`Credentials` → static; an object with ``retrieve()`` → itself; a botocore
    credentials object → :class:`BotocoreCredentialsProvider`; :data:`ANONYMOUS` → ``None``.
    """
    if value is None:
        return DefaultCredentialsProvider(profile)
    if isinstance(value, AnonymousCredentials):
        return None
    if isinstance(value, Credentials):
        return StaticCredentialsProvider(_header_safe(value))
    if isinstance(value, (tuple, list)):
        return StaticCredentialsProvider(_credentials_from_tuple(value))
    if callable(getattr(value, "retrieve", None)):
        provider: CredentialsProvider = value
        return provider
    if callable(getattr(value, "get_frozen_credentials", None)):
        return BotocoreCredentialsProvider(value)
    raise _bad_credentials(
        "type",
        "expected a (access_key_id, secret_access_key[, session_token]) tuple, Credentials, "
        f"a provider with retrieve(), or ANONYMOUS; got {type(value).__name__}",
    )


def _credentials_from_tuple(value: tuple[Any, ...] | list[Any]) -> Credentials:
    # Messages describe the shape only: the values may be secrets.
    if len(value) not in (2, 3):
        raise _bad_credentials("length", f"a credentials tuple has 2 or 3 items, got {len(value)}")
    key, secret = value[0], value[1]
    token = value[2] if len(value) == 3 else None
    if not isinstance(key, str) or not key:
        raise _bad_credentials("type", "the access key id must be a non-empty string")
    if not isinstance(secret, str) or not secret:
        raise _bad_credentials("type", "the secret access key must be a non-empty string")
    if token is not None and not isinstance(token, str):
        raise _bad_credentials("type", "the session token must be a string or None")
    return _header_safe(Credentials(key, secret, token or None, source="static"))


_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def _header_safe(credentials: Credentials) -> Credentials:
    """Reject static credentials that could not travel in a header (a stray newline, say)."""
    if not _HEADER_SAFE.fullmatch(credentials.access_key_id):
        raise _bad_credentials("pattern", "the access key id must be visible US-ASCII (no spaces or line breaks)")
    if credentials.session_token is not None and not _HEADER_SAFE.fullmatch(credentials.session_token):
        raise _bad_credentials("pattern", "the session token must be visible US-ASCII (no spaces or line breaks)")
    return credentials


def _bad_credentials(rule: str, detail: str) -> InvalidParamsError:
    return InvalidParamsError([FieldProblem("credentials", rule, detail)])


def _from_environment(profile: str | None) -> Credentials | None:
    """The chain's first link without importing botocore (~50 ms of a cold start), or ``None``.

    Answers only where botocore's environment provider would give these very credentials:
    no profile named (a named profile takes precedence over the environment), both keys set,
    and no ``AWS_CREDENTIAL_EXPIRATION`` (which makes them refreshable). Everything else,
    including a half-set pair that botocore reports as an error, goes to botocore.
    """
    env = os.environ
    key = env.get("AWS_ACCESS_KEY_ID", "")
    secret = env.get("AWS_SECRET_ACCESS_KEY", "")
    if profile is not None or not key or not secret or "AWS_CREDENTIAL_EXPIRATION" in env:
        return None
    token = next((env[name] for name in _TOKEN_VARIABLES if env.get(name)), None)
    return Credentials(key, secret, token, source="env")


# botocore's order: the first of these that is non-empty is the session token.
_TOKEN_VARIABLES: Final = ("AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")


def _resolve_chain(profile: str | None) -> Any:
    with _BotocoreErrors(profile):
        import botocore.session

        found = botocore.session.Session(profile=profile).get_credentials()
    if found is None:
        where = f" for profile {profile!r}" if profile else ""
        raise CredentialsError(
            f"no AWS credentials found{where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "configure a profile in ~/.aws, or pass credentials= (ANONYMOUS to send unsigned requests)"
        )
    return found


def _freeze_botocore(found: Any, profile: str | None) -> Credentials:
    with _BotocoreErrors(profile):
        frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        raise CredentialsError("the credentials found are incomplete: an access key id or secret is empty")
    expiry = getattr(found, "_expiry_time", None)  # set by botocore on refreshable credentials only
    return Credentials(
        frozen.access_key,
        frozen.secret_key,
        frozen.token or None,
        expiry=expiry if isinstance(expiry, datetime) else None,
        source=str(getattr(found, "method", "") or "botocore"),
    )


class _BotocoreErrors:
    """The one place where botocore's exceptions become :class:`CredentialsError`."""

    __slots__ = ("_profile",)

    def __init__(self, profile: str | None) -> None:
        self._profile = profile

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> Literal[False]:
        if error is None or isinstance(error, SageMakerRuntimeError) or not isinstance(error, Exception):
            return False
        where = f" (profile {self._profile!r})" if self._profile else ""
        if isinstance(error, ImportError):
            raise CredentialsError(
                "botocore is needed for the default credentials chain: install it or pass credentials="
            ) from None
        detail = redact_text(str(error)) or type(error).__name__
        raise CredentialsError(f"failed to load AWS credentials{where}: {type(error).__name__}: {detail}") from error


# -- SigV4, sans-IO -----------------------------------------------------------------


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


@functools.lru_cache(maxsize=512)
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


@functools.lru_cache(maxsize=512)
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
        inner = self._inner.copy()
        inner.update(message.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

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


@attrs.frozen
class Authorization:
    """A parsed SigV4 ``Authorization`` header."""

    algorithm: str
    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str = attrs.field(repr=lambda _: REDACTED)

    @property
    def scope(self) -> str:
        return credential_scope(self.date, self.region, self.service)


_HEX = frozenset("0123456789abcdef")


def parse_authorization(value: str) -> Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``.

    Raises :class:`SigningError` naming the part that is missing or malformed.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigningError(f"Authorization: unsupported algorithm {algorithm[:32]!r}, expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep:
            raise SigningError(f"Authorization: malformed component {name[:32]!r}, expected Name=value")
        if name in fields:
            raise SigningError(f"Authorization: {name} appears twice")
        fields[name] = field_value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise SigningError(f"Authorization: missing {required}")
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise SigningError("Authorization: Credential must be access_key_id/date/region/service/aws4_request")
    access_key_id, date, region, service, terminator = credential
    if len(date) != 8 or not date.isdigit():
        raise SigningError(f"Authorization: Credential date {date[:16]!r} is not YYYYMMDD")
    if terminator != TERMINATOR:
        raise SigningError(f"Authorization: Credential must end in {TERMINATOR}, not {terminator[:32]!r}")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(signed) or any(name != name.lower() for name in signed):
        raise SigningError("Authorization: SignedHeaders must be non-empty lower-case names separated by ';'")
    signature = fields["Signature"]
    if len(signature) != 64 or not _HEX.issuperset(signature):
        raise SigningError("Authorization: Signature must be 64 lower-case hex digits")
    return Authorization(algorithm, access_key_id, date, region, service, terminator, signed, signature)


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


@functools.lru_cache(maxsize=256)
def _url_parts(url: str) -> tuple[str, str, str]:
    """``(host header, raw path, raw query)`` of a URL; memoized: a client reuses a few URLs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host, parts.path, parts.query


# Per-call signing work that depends only on the URL or on the set of header names is
# memoized below: a client sends to a few URLs with the same headers every time.


@functools.lru_cache(maxsize=256)
def _request_line(method: str, url: str) -> tuple[str, str]:
    """``(host header, "METHOD\\nURI\\nQUERY\\n")``: the canonical request's first three lines."""
    host, raw_path, raw_query = _url_parts(url)
    query = canonical_query(raw_query) if raw_query else ""
    return host, f"{method.upper()}\n{canonical_uri(raw_path, True)}\n{query}\n"


@functools.lru_cache(maxsize=256)
def _signed_headers(names: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The sorted lower-case names to sign out of a request's, and their ``;``-joined list."""
    signed = tuple(sorted(name for name in names if name not in UNSIGNED_HEADERS))
    return signed, ";".join(signed)


@functools.lru_cache(maxsize=64)
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

    __slots__ = ("_last_date", "_lines", "key_cache")

    def __init__(self, *, key_cache: SigningKeyCache | None = None) -> None:
        self.key_cache = key_cache if key_cache is not None else SigningKeyCache()
        self._lines: dict[str, tuple[str, str]] = {}  # header name → (value, canonical line)
        self._last_date: tuple[tuple[int, ...], str] = ((), "")  # (UTC date and time fields, X-Amz-Date)

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
            host, request_line = _request_line(request.method, request.url)
        except ValueError as error:
            raise SigningError(f"cannot sign a request with an invalid URL: {error}") from None
        # Request headers are unique by name, so they go straight into the canonical form.
        values = headers.lower_dict()
        if "host" not in values:
            if not host:
                raise SigningError(f"cannot sign a request whose URL has no host: {request.url[:100]!r}")
            values["host"] = host
        signed, signed_list = _signed_headers(tuple(values))
        creq = f"{request_line}{self._canonical_headers(values, signed)}\n{signed_list}\n{payload_hash}"
        date = amz_date[:8]
        scope, authorization_prefix = _scope_and_prefix(credentials.access_key_id, date, region, service)
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


# -- middleware ----------------------------------------------------------------------


class ComputePayloadHash(Transform[BuildInput, BuildOutput]):
    """Build step: records the body's SHA-256 for signing (once, shared by every attempt).

    A hash set beforehand (``keys.PAYLOAD_HASH``, e.g. ``UNSIGNED-PAYLOAD``) or an
    ``X-Amz-Content-Sha256`` header on the request is kept, as botocore does.
    """

    id = "ComputePayloadHash"

    def before(self, ctx: Context, in_: BuildInput) -> BuildInput:
        if not ctx.get(keys.PAYLOAD_HASH):
            request: HTTPRequest = in_.request
            declared = request.headers.get("x-amz-content-sha256")
            try:
                ctx.set(keys.PAYLOAD_HASH, declared or payload_sha256(request.body))
            except SageMakerRuntimeError as error:
                raise _with_operation(error, ctx) from None
        return in_


_utc_now: Final = functools.partial(datetime.now, UTC)
"""The signing clock: ``datetime.now(UTC)``, as a partial so that calling it adds no Python frame."""


@attrs.frozen
class Signing:
    """Finalize step: signs each attempt with fresh credentials and a fresh date.

    Reads everything from ``ctx.options`` at call time: ``credentials`` (a provider; a raw
    value, ``None`` included, is normalized here; only :data:`ANONYMOUS` skips signing), ``signer``
    (else a SigV4 signer of its own), ``region``; ``keys.SIGNING_REGION`` and
    ``keys.SIGNING_NAME`` from the endpoint win, and ``keys.CLOCK_OFFSET`` corrects skew.

    Retrieving credentials may wait (a refresh from IMDS, STS, SSO): the async shell awaits a
    provider's ``aretrieve()`` when it has one and otherwise runs ``retrieve()`` in a worker
    thread, so the event loop never blocks. Signing itself is shared by both shells.
    """

    id: str = "Signing"
    clock: Callable[[], datetime] = attrs.field(default=_utc_now, repr=False)
    default_signer: SigV4Signer = attrs.field(factory=SigV4Signer, repr=False)

    def handle(self, ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        provider: Any = getattr(ctx.options, "credentials", None)
        if not callable(getattr(provider, "retrieve", None)):  # a raw value, or ANONYMOUS: rare
            provider = _provider_of(ctx.options)
        if provider is not None:
            credentials = _retrieve(provider, ctx)
            if credentials is not None:
                self.sign(ctx, in_.request, credentials)
        return next(ctx, in_)

    async def ahandle(
        self, ctx: Context, in_: FinalizeInput, next: AsyncNext[FinalizeInput, FinalizeOutput]
    ) -> FinalizeOutput:
        provider: Any = getattr(ctx.options, "credentials", None)
        if not callable(getattr(provider, "retrieve", None)):
            provider = _provider_of(ctx.options)
        if provider is not None:
            credentials = await _aretrieve(provider, ctx)
            if credentials is not None:
                self.sign(ctx, in_.request, credentials)
        return await next(ctx, in_)

    def sign(self, ctx: Context, request: HTTPRequest, credentials: Credentials) -> None:
        """Sign ``request`` in place for this call (the sans-IO core of both shells)."""
        options = ctx.options
        region = ctx.get(keys.SIGNING_REGION) or getattr(options, "region", None)
        if not region:
            raise SigningError(
                "no signing region: set the client's region (or AWS_REGION), or give the endpoint a signing region",
                operation=ctx.operation_name,
            )
        service = ctx.get(keys.SIGNING_NAME) or DEFAULT_SIGNING_NAME
        payload_hash = ctx.get(keys.PAYLOAD_HASH)
        try:
            if not payload_hash:  # ComputePayloadHash was removed from the stack
                payload_hash = payload_sha256(request.body)
            signing_time = self.clock()
            offset = ctx.get(keys.CLOCK_OFFSET)
            if offset:
                signing_time += timedelta(seconds=offset)
            signer: HTTPSigner = getattr(options, "signer", None) or self.default_signer
            mode: LogMode = getattr(options, "log_mode", NOT_LOGGING)
            if mode is not NOT_LOGGING and mode & LogMode.SIGNING:
                _signed_with_log(ctx, signer, request, credentials, payload_hash, service, region, signing_time, mode)
            else:
                signer.sign_http(request, credentials, payload_hash, service, region, signing_time)
        except SageMakerRuntimeError as error:
            raise _with_operation(error, ctx) from None
        except Exception as error:  # a signer's own failure: wrapped, secrets scrubbed
            detail = _scrub(f"{type(error).__name__}: {error}", credentials)
            raise SigningError(f"failed to sign request: {detail}", operation=ctx.operation_name) from None


def _provider_of(options: Any) -> CredentialsProvider | None:
    value: Any = getattr(options, "credentials", None)
    if isinstance(value, AnonymousCredentials):
        return None
    if callable(getattr(value, "retrieve", None)):
        provider: CredentialsProvider = value
        return provider
    # A raw value the client did not normalize (tuple, Credentials, botocore credentials).
    return credentials_provider(value, getattr(options, "profile", None))


def _retrieve(provider: CredentialsProvider, ctx: Context) -> Credentials | None:
    try:
        credentials: Any = provider.retrieve()
    except Exception as error:
        raise _retrieval_error(provider, error, ctx) from None
    if type(credentials) is Credentials:  # the usual answer, checked without another call
        return credentials
    return _checked(provider, credentials, ctx)


async def _aretrieve(provider: CredentialsProvider, ctx: Context) -> Credentials | None:
    """The async shell of :func:`_retrieve`: ``aretrieve()`` if the provider has one, else
    ``retrieve()`` in a worker thread (a provider may refresh over the network)."""
    try:
        aretrieve = getattr(provider, "aretrieve", None)
        if aretrieve is not None:
            credentials: Any = await aretrieve()
        else:
            import asyncio

            credentials = await asyncio.to_thread(provider.retrieve)
    except Exception as error:
        raise _retrieval_error(provider, error, ctx) from None
    return _checked(provider, credentials, ctx)


def _retrieval_error(provider: CredentialsProvider, error: Exception, ctx: Context) -> SageMakerRuntimeError:
    if isinstance(error, SageMakerRuntimeError):
        return _with_operation(error, ctx)
    # A user's provider: its message is shown, scrubbed of signatures.
    return CredentialsError(
        f"credentials provider {type(provider).__name__} failed: {type(error).__name__}: {redact_text(str(error))}",
        operation=ctx.operation_name,
    )


def _checked(provider: CredentialsProvider, credentials: Any, ctx: Context) -> Credentials | None:
    if isinstance(credentials, AnonymousCredentials):
        return None
    if not isinstance(credentials, Credentials):
        raise CredentialsError(
            f"credentials provider {type(provider).__name__} returned {type(credentials).__name__}, not Credentials",
            operation=ctx.operation_name,
        )
    return credentials


def _with_operation(error: SageMakerRuntimeError, ctx: Context) -> SageMakerRuntimeError:
    if error.operation is None:
        error.operation = ctx.operation_name
    return error


def _scrub(text: str, credentials: Credentials) -> str:
    for secret in (credentials.secret_access_key, credentials.session_token):
        if secret:
            text = text.replace(secret, REDACTED)
    return redact_text(text)


def _signed_with_log(
    ctx: Context,
    signer: HTTPSigner,
    request: HTTPRequest,
    credentials: Credentials,
    payload_hash: str,
    service: str,
    region: str,
    signing_time: datetime,
    mode: LogMode,
) -> None:
    logger = logger_for(ctx)
    hidden = SECRET_HEADERS if mode & LogMode.REQUEST_BODY else SECRET_HEADERS | SENSITIVE_HEADERS

    def trace(creq: str, sts: str) -> None:
        logger.debug(
            "%s request signature v4\n---[ CANONICAL STRING ]-----\n%s\n---[ STRING TO SIGN ]--------\n%s",
            ctx.operation_name,
            _scrub(_redact_canonical(creq, hidden), credentials),
            sts,
        )

    if isinstance(signer, SigV4Signer):
        signer.sign_http(request, credentials, payload_hash, service, region, signing_time, trace=trace)
    else:
        signer.sign_http(request, credentials, payload_hash, service, region, signing_time)
        logger.debug(
            "%s request signed by %s: Authorization=%s",
            ctx.operation_name,
            type(signer).__name__,
            _scrub(request.headers.get("authorization") or "<none>", credentials),
        )


def _redact_canonical(creq: str, hidden: frozenset[str]) -> str:
    """The canonical request with the values of secret (and sensitive) headers hidden."""
    return "\n".join(_redact_line(line, hidden) for line in creq.split("\n"))


def _redact_line(line: str, hidden: frozenset[str]) -> str:
    name, sep, _ = line.partition(":")
    return f"{name}:{REDACTED}" if sep and name in hidden else line
