"""InvokeEndpointWithResponseStream: ``POST /endpoints/{EndpointName}/invocations-response-stream``.

The response body is an event stream. The stack returns once the first message is in,
so an error that arrives before any event takes the normal error path (retries
included); after that the caller owns the stream and nothing is retried. Reading up to the
first message waits, so the event-stream deserializer has a sync and an async shell; what
the messages mean is shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, cast

from smruntime import errors
from smruntime import validation as v
from smruntime.eventstream import EventStreamDecoder, Message
from smruntime.middleware import AsyncNext, Next, Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status, request_id
from smruntime.operations.spec import Operation
from smruntime.stack_types import AsyncDeserializeOutput, Context, DeserializeInput, DeserializeOutput
from smruntime.streaming import AsyncResponseStream, ResponseStream, message_error, stream_cut_off
from smruntime.types import InvokeEndpointWithResponseStreamInput, ResultMetadata

if TYPE_CHECKING:
    from smruntime.http import HTTPResponse
    from smruntime.transport.async_protocol import AsyncHTTPResponse

NAME = "InvokeEndpointWithResponseStream"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

HEADERS = (
    ("accept", "X-Amzn-SageMaker-Accept"),
    ("custom_attributes", "X-Amzn-SageMaker-Custom-Attributes"),
    ("target_variant", "X-Amzn-SageMaker-Target-Variant"),
    ("target_container_hostname", "X-Amzn-SageMaker-Target-Container-Hostname"),
    ("inference_id", "X-Amzn-SageMaker-Inference-Id"),
    ("inference_component_name", "X-Amzn-SageMaker-Inference-Component"),
    ("session_id", "X-Amzn-SageMaker-Session-Id"),
    ("prefix_aware_id", "X-Amzn-SageMaker-Prefix-Aware-Id"),
)


MEMBERS = (
    "endpoint_name",
    "body",
    "content_type",
    "accept",
    "custom_attributes",
    "target_variant",
    "target_container_hostname",
    "inference_id",
    "inference_component_name",
    "session_id",
    "prefix_aware_id",
)
"""The input's members in the service model's order, the order problems are reported in."""

# As for InvokeEndpoint: the repeated members are checked once per distinct combination.
_PASSED = v.PassedValues()


def validate(params: InvokeEndpointWithResponseStreamInput, operation: str) -> None:
    problems: list[errors.FieldProblem] = []
    repeated = (
        params.endpoint_name,
        params.content_type,
        params.accept,
        params.target_variant,
        params.target_container_hostname,
        params.inference_component_name,
    )
    if repeated not in _PASSED:
        fields.endpoint_name(problems, params.endpoint_name)
        fields.content_type(problems, "content_type", params.content_type)
        fields.content_type(problems, "accept", params.accept)
        fields.name_field(problems, "target_variant", params.target_variant)
        fields.name_field(problems, "target_container_hostname", params.target_container_hostname)
        fields.inference_component_name(problems, params.inference_component_name)
        if not problems:
            _PASSED.add(repeated)
    fields.body(problems, params.body)
    fields.custom_attributes(problems, params.custom_attributes)
    fields.inference_id(problems, params.inference_id)
    fields.prefix_aware_id(problems, params.prefix_aware_id)
    fields.session_id(problems, params.session_id, allow_new=False)
    if problems:
        fields.in_member_order(problems, MEMBERS)
        raise errors.InvalidParamsError(problems, operation=operation)


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
    headers = response.headers
    return stream_type(
        response,
        operation=ctx.operation_name,
        content_type=headers.get("X-Amzn-SageMaker-Content-Type"),
        invoked_production_variant=headers.get("x-Amzn-Invoked-Production-Variant"),
        custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
        metadata=ResultMetadata(ctx.metadata),
        request_id=rid,
        first=first.messages,
        decoder=first.decoder,
        chunks=chunks,
    )


OPERATION: Operation[InvokeEndpointWithResponseStreamInput, ResponseStream | AsyncResponseStream] = Operation(
    name=NAME,
    input_type=InvokeEndpointWithResponseStreamInput,
    validate=validate,
    serializer=OperationSerializer[InvokeEndpointWithResponseStreamInput]("invocations-response-stream", HEADERS, default_content_type=DEFAULT_CONTENT_TYPE),
    deserializer=Deserializer(),
    event_stream_deserializer=EventStreamDeserializer(),
    streams_response=True,
)
