"""Middleware every operation registers, and the default stack they form."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

import attrs

from smruntime import errors, keys
from smruntime.http import HTTPRequest
from smruntime.middleware import (
    BuildInput,
    BuildOutput,
    Context,
    DeserializeInput,
    DeserializeOutput,
    InitializeInput,
    InitializeOutput,
    Next,
    Stack,
)
from smruntime.operations.protocol import request_id
from smruntime.version import __version__

if TYPE_CHECKING:
    from smruntime.operations.spec import Operation
    from smruntime.retry import ClockOffset

SERVICE_ID = "SageMaker Runtime"
SIGNING_NAME = "sagemaker"

# A middleware that is only an ID and a ``handle`` method is a plain class throughout the SDK:
# attrs generates (compiles) its methods when the module is imported, ~0.7 ms per class,
# which across the default stack was a tenth of the client's cold start. Middleware with
# configuration (OperationInputValidation, Retry, Signing) stay attrs classes.


class RegisterServiceMetadata:
    """Records the service and default signing name for the rest of the call."""

    id = "RegisterServiceMetadata"

    def handle(self, ctx: Context, in_: InitializeInput, next: Next[InitializeInput, InitializeOutput]) -> InitializeOutput:
        if not ctx.has(keys.SIGNING_NAME):
            ctx.set(keys.SIGNING_NAME, SIGNING_NAME)
        ctx.service_id = SERVICE_ID
        return next(ctx, in_)


@attrs.frozen
class OperationInputValidation:
    """Checks the input against the service model before any I/O."""

    validate: Callable[[Any, str], None]
    id: str = "OperationInputValidation"

    def handle(self, ctx: Context, in_: InitializeInput, next: Next[InitializeInput, InitializeOutput]) -> InitializeOutput:
        self.validate(in_.parameters, ctx.operation_name)
        return next(ctx, in_)


class ComputeContentLength:
    """Sets Content-Length from the body, so files are sent whole rather than chunked."""

    id = "ComputeContentLength"

    def handle(self, ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
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
        return next(ctx, in_)


def _stream_size(stream: Any) -> int | None:
    try:
        position = stream.tell()
        end = stream.seek(0, 2)
        stream.seek(position)
        return int(end - position)
    except (AttributeError, OSError, ValueError):
        return None


@lru_cache(maxsize=32)
def user_agent(retry_mode: str | None, extra: str | None) -> str:
    """The User-Agent value; built once per configuration, not per call."""
    import platform  # here, not at start-up: this runs once per configuration

    parts = [
        f"smruntime/{__version__}",
        "ua/2.1",
        f"os/{platform.system().lower()}#{platform.release()}",
        f"lang/python#{platform.python_version()}",
        f"api/sagemakerruntime#{__version__}",
        f"cfg/retry-mode#{retry_mode or 'standard'}",
    ]
    if extra:
        parts.append(extra)
    return " ".join(parts)


class UserAgent:
    """Identifies the client; not signed (as in every AWS SDK)."""

    id = "UserAgent"

    def handle(self, ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
        options = ctx.options
        in_.request.headers["User-Agent"] = user_agent(options.retry_mode, options.user_agent_extra)
        return next(ctx, in_)


class ErrorCloseResponseBody:
    """On any error, releases the response so no connection leaks."""

    id = "ErrorCloseResponseBody"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        try:
            return next(ctx, in_)
        except BaseException:
            response = ctx.get(keys.RAW_RESPONSE)
            if response is not None:
                response.close()
            raise


class CloseResponseBody:
    """After success, releases the response unless the caller now owns a live stream."""

    id = "CloseResponseBody"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        out = next(ctx, in_)
        if not ctx.get(keys.STREAM_RESPONSE, False) and out.raw_response is not None:
            out.raw_response.close()
        return out


class ResponseErrorWrapper:
    """Gives every error the operation name and, for service errors, the HTTP facts."""

    id = "ResponseErrorWrapper"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        try:
            return next(ctx, in_)
        except errors.SageMakerRuntimeError as error:
            if error.operation is None:
                error.operation = ctx.operation_name
            raise


class RequestIDRetriever:
    """Records the service's request id (``x-amzn-RequestId``) in the result metadata."""

    id = "RequestIDRetriever"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        try:
            out = next(ctx, in_)
        except errors.APIError as error:
            if error.request_id:
                ctx.metadata.set(keys.REQUEST_ID, error.request_id)
            raise
        if out.raw_response is not None:
            found = request_id(out.raw_response)
            if found:
                ctx.metadata.set(keys.REQUEST_ID, found)
        return out


def new_stack(operation: Operation, *, clock_offset: ClockOffset | None = None) -> Stack:
    """The operation's default stack (as listed in the middleware guide), before any api option runs.

    ``clock_offset`` is the client's, shared by its operations (a fresh one without).
    """
    from smruntime.auth import ComputePayloadHash, Signing
    from smruntime.endpoints import ResolveEndpoint
    from smruntime.logs import RequestResponseLogger
    from smruntime.retry import ClientRequestID, ClockOffset, Retry, RetryMetricsHeader

    stack = Stack(operation.name, HTTPRequest)
    stack.initialize.add(RegisterServiceMetadata())
    stack.initialize.add(OperationInputValidation(operation.validate))
    stack.serialize.add(ResolveEndpoint())
    stack.serialize.add(operation.serializer)
    stack.build.add(ClientRequestID())
    stack.build.add(ComputeContentLength())
    stack.build.add(ComputePayloadHash())
    stack.build.add(UserAgent())
    stack.finalize.add(Retry(clock_offset=clock_offset or ClockOffset()))
    stack.finalize.add(RetryMetricsHeader())
    stack.finalize.add(Signing())
    stack.deserialize.add(ErrorCloseResponseBody())
    stack.deserialize.add(CloseResponseBody())
    stack.deserialize.add(ResponseErrorWrapper())
    stack.deserialize.add(RequestIDRetriever())
    if operation.event_stream_deserializer is not None:
        stack.deserialize.add(operation.event_stream_deserializer)
    stack.deserialize.add(operation.deserializer)
    stack.deserialize.add(RequestResponseLogger())
    return stack
