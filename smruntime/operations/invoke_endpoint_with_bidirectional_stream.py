"""InvokeEndpointWithBidirectionalStream: ``POST /endpoints/{EndpointName}/invocations-bidirectional-stream``
on the HTTP/2 service (SageMaker Runtime HTTP2).

The stack opens the stream: it validates the input, resolves the HTTP/2 service's endpoint,
builds the request (its payload hash ``STREAMING-AWS4-HMAC-SHA256-EVENTS``), signs it and
sends its HEADERS, retrying only what fails before the stream is open. It returns without
waiting for the answer (some models answer only once they have input), handing over the open
stream and an event signer seeded with the request's signature. Events then flow through the
stack's two event steps (see :mod:`smruntime.middleware.events`), driven by
:class:`~smruntime.bidirectional.AsyncBidirectionalStream`.
"""

from __future__ import annotations

from typing import Any

from smruntime import errors, keys
from smruntime.auth import ComputePayloadHash, Credentials, Signing
from smruntime.bidirectional import OpenedStream
from smruntime.client import transport_failure
from smruntime.endpoints import EndpointResolver, ResolveEndpoint, resolve_with
from smruntime.event_signing import STREAMING_EVENTS_PAYLOAD, EventSigner, seed_signature
from smruntime.http import HTTPRequest
from smruntime.http2_endpoints import Http2EndpointResolver
from smruntime.logs import RequestResponseLogger
from smruntime.middleware import AsyncNext, DeserializeOutput, StackKey, Transform
from smruntime.middleware import SerializeInput as SerializeInput_
from smruntime.middleware.events import EventStreamStack, ReceiveEventStep, SendEventStep, compose_events
from smruntime.operations.bidirectional_stream_input import OPERATION as NAME
from smruntime.operations.bidirectional_stream_input import BidirectionalStreamInput, request_headers
from smruntime.operations.bidirectional_stream_input import validate as validate_input
from smruntime.operations.common import (
    OperationInputValidation,
    RegisterServiceMetadata,
    ResponseErrorWrapper,
    UserAgent,
)
from smruntime.operations.duplex import DuplexChain, DuplexOperation
from smruntime.operations.protocol import operation_url
from smruntime.resolved_endpoint import Endpoint
from smruntime.retry import ClientRequestID, ClockOffset, Retry, RetryMetricsHeader
from smruntime.stack_types import Context, DeserializeInput, SerializeOutput

OpenedOutput = DeserializeOutput[Any, object]
"""What the Deserialize step passes up: the open HTTP/2 stream, then the OpenedStream."""

__all__ = ["EVENT_SIGNER", "OPERATION", "TRANSPORT_STREAM"]

ACTION = "invocations-bidirectional-stream"
CONTENT_TYPE = "application/vnd.amazon.eventstream"

EVENT_SIGNER: StackKey[EventSigner] = StackKey("event_signer")
"""The signer of the stream's events, seeded with the signature of the attempt that opened it."""
TRANSPORT_STREAM: StackKey[Any] = StackKey("transport_stream")
"""The HTTP/2 stream the terminal handler opened (an ``HTTP2Stream``)."""


def validate(params: Any, operation: str) -> None:
    if not isinstance(params, BidirectionalStreamInput):
        raise errors.InvalidParamsError(
            [errors.FieldProblem("input", "type", f"must be a BidirectionalStreamInput, got {type(params).__name__}")],
            operation=operation,
        )
    validate_input(params)


class ResolveHttp2Endpoint(ResolveEndpoint):
    """``ResolveEndpoint`` for the HTTP/2 service: ``http2_endpoint_url``, else
    ``endpoint_url``, else the HTTP/2 service's rules (port 8443)."""

    __slots__ = ()

    def new_default_resolver(self) -> EndpointResolver:
        return Http2EndpointResolver()

    def resolve(self, options: Any, region: str | None, operation: str) -> Endpoint:
        # endpoint_resolver resolves the HTTP/1.1 service's endpoints and is not used here.
        url = options.http2_endpoint_url or options.endpoint_url
        return resolve_with(None, url, self._default, options, region, operation, self._static)


StreamSerializeInput = SerializeInput_[BidirectionalStreamInput, HTTPRequest]


class Serializer(Transform[StreamSerializeInput, SerializeOutput]):
    """The opening request: the endpoint name as a path label, the header bindings, no body
    (the events follow on the open stream), and the event-stream payload hash."""

    id = "OperationSerializer"

    def before(self, ctx: Context, in_: StreamSerializeInput) -> StreamSerializeInput:
        params = in_.parameters
        request: HTTPRequest = in_.request
        request.method = "POST"
        request.url = operation_url(request.url, params.endpoint_name, ACTION)
        request.headers.update(request_headers(params))
        request.headers["X-Amz-Content-SHA256"] = STREAMING_EVENTS_PAYLOAD  # ComputePayloadHash keeps it
        request.body = None
        return in_


class EventStreamSigning(Signing):
    """``Signing`` that also seeds the event signer with the signature it made."""

    def sign(self, ctx: Context, request: HTTPRequest, credentials: Credentials) -> None:
        super().sign(ctx, request, credentials)
        try:
            seed = seed_signature(request.headers.get("Authorization") or "")
        except ValueError:
            raise errors.SigningError(
                "the signer left no SigV4 Signature= in the Authorization header: the events cannot be chained on it",
                operation=ctx.operation_name,
            ) from None
        region = ctx.get(keys.SIGNING_REGION) or ctx.options.region or ""  # Signing refused to sign without one
        service = ctx.get(keys.SIGNING_NAME) or "sagemaker"
        ctx.set(EVENT_SIGNER, EventSigner(credentials, region=region, service=service, seed=seed))


class ReleaseStreamOnError:
    """``ErrorCloseResponseBody`` for a stream: on any error after the stream opened
    (cancellation included), release it."""

    id = "ErrorCloseResponseBody"

    async def ahandle(
        self, ctx: Context, in_: DeserializeInput, next: AsyncNext[DeserializeInput, OpenedOutput]
    ) -> OpenedOutput:
        try:
            return await next(ctx, in_)
        except BaseException:
            stream = ctx.get(TRANSPORT_STREAM)
            if stream is not None:
                await stream.aclose()
            raise


class EventStreamOpener(Transform[DeserializeInput, OpenedOutput]):
    """``OperationEventStreamDeserializer``: hands over the open stream and its event signer."""

    id = "OperationEventStreamDeserializer"

    def after(self, ctx: Context, in_: DeserializeInput, out: OpenedOutput) -> OpenedOutput:
        out.result = OpenedStream(out.raw_response, ctx.get(EVENT_SIGNER))
        return out


class OpeningLogger(RequestResponseLogger):
    """``RequestResponseLogger`` for a stream: logs the opening request; the answer comes later."""

    def after(self, ctx: Context, in_: DeserializeInput, out: OpenedOutput) -> OpenedOutput:
        return out


def new_stack(clock_offset: ClockOffset | None = None) -> EventStreamStack:
    """The operation's default stack, as listed in the bidirectional-streaming guide."""
    stack = EventStreamStack(NAME, HTTPRequest, error_type=errors.StackError)
    stack.initialize.add(RegisterServiceMetadata())
    stack.initialize.add(OperationInputValidation(validate))
    stack.serialize.add(ResolveHttp2Endpoint())
    stack.serialize.add(Serializer())
    stack.build.add(ClientRequestID())
    stack.build.add(ComputePayloadHash())
    stack.build.add(UserAgent())
    stack.finalize.add(Retry(clock_offset=clock_offset or ClockOffset()))
    stack.finalize.add(RetryMetricsHeader())
    stack.finalize.add(EventStreamSigning())
    stack.deserialize.add(ReleaseStreamOnError())
    stack.deserialize.add(ResponseErrorWrapper())
    stack.deserialize.add(EventStreamOpener())
    stack.deserialize.add(OpeningLogger())
    return stack


async def open_stream(ctx: Context, request: HTTPRequest) -> Any:
    """The terminal handler: send the request's HEADERS with the call's HTTP/2 client."""
    client = ctx.options.http2_client
    if client is None:  # the client makes one before it opens a stream
        raise errors.SageMakerRuntimeError("no HTTP/2 client to open the stream with", operation=ctx.operation_name)
    try:
        stream = await client.open_stream(request)
    except errors.SageMakerRuntimeError:
        raise
    except Exception as error:  # a user's HTTP/2 client: map its failure at this one boundary
        raise transport_failure(error) from error
    ctx.set(TRANSPORT_STREAM, stream)
    return stream


def compose(stack: EventStreamStack) -> DuplexChain:
    """The asyncio chain that opens the stream, and a snapshot of the event steps."""
    send_event, receive_event = SendEventStep(error_type=stack.error_type), ReceiveEventStep(error_type=stack.error_type)
    for source, copy in ((stack.send_event, send_event), (stack.receive_event, receive_event)):
        for middleware in source:
            copy.add(middleware)
        compose_events(copy, _nothing)  # refuses an async-only event middleware now, not at the first event
    return DuplexChain(stack.async_handler(open_stream), send_event, receive_event)


def _nothing(ctx: Context, event: Any) -> None:
    """A terminal for checking that an event step composes."""


OPERATION = DuplexOperation(NAME, BidirectionalStreamInput, validate, new_stack, compose)
