"""The signing middleware: ComputePayloadHash (Build) and Signing (Finalize)."""

from __future__ import annotations

import functools
import io
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Final

import attrs

from smruntime import keys
from smruntime.auth.credentials import AnonymousCredentials, Credentials, CredentialsProvider, credentials_provider
from smruntime.auth.sigv4 import DEFAULT_SIGNING_NAME, HTTPSigner, SigV4Signer, payload_sha256
from smruntime.errors import CredentialsError, SageMakerRuntimeError, SigningError
from smruntime.http import HTTPRequest
from smruntime.logs import NOT_LOGGING, LogMode, logger_for
from smruntime.middleware import AsyncNext, Next, Transform
from smruntime.middleware.reprs import fields_repr
from smruntime.redaction import REDACTED, SECRET_HEADERS, SENSITIVE_HEADERS, redact_text
from smruntime.stack_types import BuildInput, BuildOutput, Context, FinalizeInput, FinalizeOutput

__all__ = [
    "ComputePayloadHash",
    "Signing",
]

NO_SIGNING_REGION: Final = (
    "no signing region: set the client's region (or AWS_REGION), or give the endpoint a signing region"
)


class ComputePayloadHash(Transform[BuildInput, BuildOutput]):
    """Build step: records the body's SHA-256 for signing (once, shared by every attempt).

    A hash set beforehand (``keys.PAYLOAD_HASH``, e.g. ``UNSIGNED-PAYLOAD``) or an
    ``X-Amz-Content-Sha256`` header on the request is kept, as botocore does. On an asyncio
    chain a file body other than an in-memory one is read and hashed in a worker thread, so
    the event loop never waits on a disk.
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

    async def ahandle(self, ctx: Context, in_: BuildInput, next: AsyncNext[BuildInput, BuildOutput]) -> BuildOutput:
        request: HTTPRequest = in_.request
        body = request.body
        known = bool(ctx.get(keys.PAYLOAD_HASH)) or bool(request.headers.get("x-amz-content-sha256"))
        if known or _in_memory(body):
            return await next(ctx, self.before(ctx, in_))
        import asyncio  # here: a sync client's cold start never imports asyncio

        ctx.set(keys.PAYLOAD_HASH, await asyncio.to_thread(_hashed, ctx, body))
        return await next(ctx, in_)


def _in_memory(body: Any) -> bool:
    return body is None or isinstance(body, (bytes, bytearray, memoryview, str, io.BytesIO))


def _hashed(ctx: Context, body: Any) -> str:
    """``payload_sha256`` for a worker thread, its error naming the operation as ``before`` does."""
    try:
        return payload_sha256(body)
    except SageMakerRuntimeError as error:
        raise _with_operation(error, ctx) from None


_utc_now: Final = functools.partial(datetime.now, UTC)
"""The signing clock: ``datetime.now(UTC)``, as a partial so that calling it adds no Python frame."""


@attrs.frozen(eq=False)
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

    __repr__ = fields_repr

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
            raise SigningError(NO_SIGNING_REGION, operation=ctx.operation_name)
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
