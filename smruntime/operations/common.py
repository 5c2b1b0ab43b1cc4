"""Middleware every operation registers, and the default stack they form."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import attrs

from smruntime import errors, keys
from smruntime.http import HTTPRequest
from smruntime.middleware import Transform
from smruntime.middleware.reprs import fields_repr
from smruntime.operations.protocol import request_id
from smruntime.stack_types import (
    BuildInput,
    BuildOutput,
    Context,
    DeserializeInput,
    DeserializeOutput,
    InitializeInput,
    InitializeOutput,
)
from smruntime.version import __version__

SERVICE_ID = errors.SERVICE_ID
SIGNING_NAME = "sagemaker"

# A middleware that is only an ID and a ``handle`` method is a plain class throughout the SDK:
# attrs generates (compiles) its methods when the module is imported, ~0.7 ms per class,
# which across the default stack was a tenth of the client's cold start. Middleware with
# configuration (OperationInputValidation, Retry, Signing) stay attrs classes.


class RegisterServiceMetadata(Transform[InitializeInput, InitializeOutput]):
    """Records the service and default signing name for the rest of the call."""

    id = "RegisterServiceMetadata"

    def before(self, ctx: Context, in_: InitializeInput) -> InitializeInput:
        if not ctx.has(keys.SIGNING_NAME):
            ctx.set(keys.SIGNING_NAME, SIGNING_NAME)
        ctx.service_id = errors.service_id(ctx.operation_name)
        return in_


@attrs.frozen(eq=False)
class OperationInputValidation(Transform[InitializeInput, InitializeOutput]):
    """Checks the input against the service model before any I/O."""

    __repr__ = fields_repr

    validate: Callable[[Any, str], None]
    id: str = "OperationInputValidation"

    def before(self, ctx: Context, in_: InitializeInput) -> InitializeInput:
        self.validate(in_.parameters, ctx.operation_name)
        return in_


class ComputeContentLength(Transform[BuildInput, BuildOutput]):
    """Sets Content-Length from the body, so files are sent whole rather than chunked."""

    id = "ComputeContentLength"

    def before(self, ctx: Context, in_: BuildInput) -> BuildInput:
        request: HTTPRequest = in_.request
        body = request.body
        if "Content-Length" not in request.headers:
            if body is None:
                request.headers["Content-Length"] = "0"
            elif isinstance(body, bytes):
                request.headers["Content-Length"] = str(len(body))
            else:
                size = _stream_size(body)
                if size is None:
                    raise errors.SerializationError(
                        "cannot compute Content-Length of an unseekable body stream", operation=ctx.operation_name
                    )
                request.headers["Content-Length"] = str(size)
        return in_


def _stream_size(stream: Any) -> int | None:
    try:
        position = stream.tell()
        end = stream.seek(0, 2)
        stream.seek(position)
        return int(end - position)
    except (AttributeError, OSError, ValueError):
        return None


_APP_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")
"""What an application id in the User-Agent may hold (the AWS SDKs' guide); others become ``-``."""


def user_agent(retry_mode: str | None, extra: str | None, app_id: str | None = None) -> str:
    """The User-Agent value for a client's configuration (an ``app_id`` as ``app/<id>``)."""
    import platform  # here, not at start-up: UserAgent builds each value once

    parts = [
        f"smruntime/{__version__}",
        "ua/2.1",
        f"os/{platform.system().lower()}#{platform.release()}",
        f"lang/python#{platform.python_version()}",
        f"api/sagemakerruntime#{__version__}",
        f"cfg/retry-mode#{retry_mode or 'standard'}",
    ]
    if app_id:
        parts.append("app/" + "".join(c if c in _APP_ID_CHARACTERS else "-" for c in app_id))
    if extra:
        parts.append(extra)
    return " ".join(parts)


class UserAgent(Transform[BuildInput, BuildOutput]):
    """Identifies the client; not signed (as in every AWS SDK)."""

    id = "UserAgent"
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = lru_cache(maxsize=32)(user_agent)  # built once per configuration, not per call

    def before(self, ctx: Context, in_: BuildInput) -> BuildInput:
        options = ctx.options
        in_.request.headers["User-Agent"] = self._value(options.retry_mode, options.user_agent_extra, options.app_id)
        return in_


class ErrorCloseResponseBody(Transform[DeserializeInput, DeserializeOutput]):
    """On any error (cancellation included), releases the response so no connection leaks.

    On an asyncio chain the responses here are in memory, except a live event stream, which
    the event-stream deserializer owns and releases itself (releasing it is awaited).
    """

    id = "ErrorCloseResponseBody"

    def failed(self, ctx: Context, in_: DeserializeInput, error: BaseException) -> None:
        response = ctx.get(keys.RAW_RESPONSE)
        close = getattr(response, "close", None)
        if close is not None:
            close()


class CloseResponseBody(Transform[DeserializeInput, DeserializeOutput]):
    """After success, releases the response unless the caller now owns a live stream.

    On an asyncio chain only a live stream reaches here unread, so closing is never a wait.
    """

    id = "CloseResponseBody"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        if not ctx.get(keys.STREAM_RESPONSE, False) and out.raw_response is not None:
            out.raw_response.close()
        return out


class ResponseErrorWrapper(Transform[DeserializeInput, DeserializeOutput]):
    """Gives every error the operation name and, for service errors, the HTTP facts."""

    id = "ResponseErrorWrapper"

    def failed(self, ctx: Context, in_: DeserializeInput, error: BaseException) -> None:
        if isinstance(error, errors.SageMakerRuntimeError) and error.operation is None:
            error.operation = ctx.operation_name


class RequestIDRetriever(Transform[DeserializeInput, DeserializeOutput]):
    """Records the service's request id (``x-amzn-RequestId``) in the result metadata."""

    id = "RequestIDRetriever"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        if out.raw_response is not None:
            found = request_id(out.raw_response)
            if found:
                ctx.metadata.set(keys.REQUEST_ID, found)
        return out

    def failed(self, ctx: Context, in_: DeserializeInput, error: BaseException) -> None:
        if isinstance(error, errors.APIError) and error.request_id:
            ctx.metadata.set(keys.REQUEST_ID, error.request_id)
