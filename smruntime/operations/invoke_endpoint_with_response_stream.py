"""InvokeEndpointWithResponseStream: ``POST /endpoints/{EndpointName}/invocations-response-stream``.

The response body is an event stream. The stack returns once the first message is in,
so an error that arrives before any event takes the normal error path (retries
included); after that the caller owns the stream and nothing is retried. Reading up to the
first message waits, so the event-stream deserializer has a sync and an async shell; what
the messages mean is shared.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, cast

from smruntime import errors, service_model
from smruntime.eventstream import EventStreamDecoder, Message
from smruntime.middleware import AsyncNext, Next, Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status, header_bindings, read_headers, request_id
from smruntime.operations.spec import Operation
from smruntime.stack_types import AsyncDeserializeOutput, Context, DeserializeInput, DeserializeOutput
from smruntime.streaming import AsyncResponseStream, ResponseStream, message_error, stream_cut_off
from smruntime.types import InvokeEndpointWithResponseStreamInput, ResultMetadata

if TYPE_CHECKING:
    from smruntime.http import HTTPResponse
    from smruntime.transport.async_protocol import AsyncHTTPResponse

NAME = "InvokeEndpointWithResponseStream"

validate = fields.validator(service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM)


class Deserializer(Transform[DeserializeInput, DeserializeOutput]):
    """Checks the status; a non-2xx response becomes a service error."""

    id = "OperationDeserializer"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        check_status(ctx, out)
        return out


class EventStreamDeserializer:
    """Takes ownership of the body: reads up to the first message, then hands out the stream."""

    id = "OperationEventStreamDeserializer"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        out = next(ctx, in_)
        first = _First()
        chunks = iter(out.raw_response.body.iter_chunks())
        try:
            if not any(first.feed(chunk) for chunk in chunks):  # stops at the first message
                first.end()
        except errors.TransportError as error:
            raise stream_cut_off(error) from error
        out.result = _opened(ResponseStream, ctx, out.raw_response, first, chunks)
        return out

    async def ahandle(
        self, ctx: Context, in_: DeserializeInput, next: AsyncNext[DeserializeInput, AsyncDeserializeOutput]
    ) -> AsyncDeserializeOutput:
        out = await next(ctx, in_)
        response = cast("AsyncHTTPResponse", out.raw_response)  # the asyncio terminal leaves a 2xx stream live
        first = _First()
        chunks = response.body.aiter_chunks()
        try:
            async for chunk in chunks:
                if first.feed(chunk):
                    break
            else:
                first.end()
            out.result = _opened(AsyncResponseStream, ctx, response, first, chunks)
        except BaseException as error:
            # The live body is this middleware's until the stream is handed out: releasing
            # it is awaited, so it is released here rather than by ErrorCloseResponseBody.
            await response.aclose()
            if isinstance(error, errors.TransportError):
                raise stream_cut_off(error) from error
            raise
        return out


class _First:
    """Decodes chunks until the first message is complete (the sans-IO part of both shells)."""

    __slots__ = ("decoder", "messages")

    def __init__(self) -> None:
        self.decoder = EventStreamDecoder()
        self.messages: list[Message] = []

    def feed(self, chunk: bytes) -> bool:
        self.messages = self.decoder.feed(chunk)
        return bool(self.messages)

    def end(self) -> None:
        self.decoder.end()  # raises on a stream cut off mid-message


def _opened(
    stream_type: type[Any],
    ctx: Context,
    response: HTTPResponse | AsyncHTTPResponse,
    first: _First,
    chunks: Iterator[bytes] | AsyncIterator[bytes],
) -> Any:
    """The stream handed to the caller, once the first message is known not to be an error."""
    rid = request_id(response)
    for message in first.messages[:1]:
        error = message_error(message, ctx.operation_name, rid)
        if error is not None:
            raise error
    return stream_type(
        response,
        operation=ctx.operation_name,
        **{**_ABSENT, **read_headers(_HEADERS, response.headers)},
        metadata=ResultMetadata(ctx.metadata),
        request_id=rid,
        first=first.messages,
        decoder=first.decoder,
        chunks=chunks,
    )


_HEADERS = header_bindings(service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM_OUTPUT)
_ABSENT: dict[str, str | None] = dict.fromkeys(name for name, _ in _HEADERS)
"""Every header member as absent: the stream takes each of them."""

OPERATION: Operation[InvokeEndpointWithResponseStreamInput, ResponseStream | AsyncResponseStream] = Operation(
    name=NAME,
    input_type=InvokeEndpointWithResponseStreamInput,
    input=service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM,
    output=service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM_OUTPUT,
    validate=validate,
    new_serializer=partial(OperationSerializer[InvokeEndpointWithResponseStreamInput], "invocations-response-stream", service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM),
    deserializer=Deserializer(),
    event_stream_deserializer=EventStreamDeserializer(),
    streams_response=True,
)
