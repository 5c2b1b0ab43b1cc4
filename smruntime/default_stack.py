"""The default stack every operation starts from: the SDK's middleware, by step, in order.

The listing is a contract (the middleware guide shows it): the IDs, their steps and their order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smruntime import errors
from smruntime.auth import ComputePayloadHash, Signing
from smruntime.endpoints import ResolveEndpoint
from smruntime.http import HTTPRequest
from smruntime.logs import RequestResponseLogger
from smruntime.middleware import Stack
from smruntime.operations.common import (
    CloseResponseBody,
    ComputeContentLength,
    ErrorCloseResponseBody,
    OperationInputValidation,
    RegisterServiceMetadata,
    RequestIDRetriever,
    ResponseErrorWrapper,
    UserAgent,
)
from smruntime.retry import ClientRequestID, ClockOffset, Retry, RetryMetricsHeader

if TYPE_CHECKING:
    from smruntime.operations.spec import Operation

__all__ = ["new_stack"]


def new_stack(operation: Operation[Any, Any], *, clock_offset: ClockOffset | None = None) -> Stack:
    """The operation's default stack (as listed in the middleware guide), before any api option runs.

    ``clock_offset`` is the client's, shared by its operations (a fresh one without).
    """
    stack = Stack(operation.name, HTTPRequest, error_type=errors.StackError)
    stack.initialize.add(RegisterServiceMetadata())
    stack.initialize.add(OperationInputValidation(operation.validate))
    stack.serialize.add(ResolveEndpoint())
    stack.serialize.add(operation.new_serializer())  # its own: it memoizes the client's URLs
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
