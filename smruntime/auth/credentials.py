"""Credentials and their providers: static, anonymous, and botocore's default chain.

botocore is imported only when the default credentials chain is first used and the keys are
not simply in the environment: importing it costs more than the rest of the client's cold start.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable

import attrs

from smruntime.errors import CredentialsError, FieldProblem, InvalidParamsError, SageMakerRuntimeError
from smruntime.middleware.reprs import fields_repr
from smruntime.redaction import REDACTED, redact_text

__all__ = [
    "ANONYMOUS",
    "AnonymousCredentials",
    "BotocoreCredentialsProvider",
    "Credentials",
    "CredentialsProvider",
    "DefaultCredentialsProvider",
    "StaticCredentialsProvider",
    "credentials_provider",
]

NO_CREDENTIALS_ADVICE: Final = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, configure a profile in ~/.aws, "
    "or pass credentials= (ANONYMOUS to send unsigned requests)"
)
"""What a program can do when no credentials are found (the CLI says it in its own terms)."""


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


@attrs.frozen(eq=False)
class StaticCredentialsProvider:
    """Always the same credentials."""

    __repr__ = fields_repr

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
        raise CredentialsError(f"no AWS credentials found{where}: {NO_CREDENTIALS_ADVICE}")
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
