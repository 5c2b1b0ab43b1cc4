"""The public contracts, pinned: each operation's default stack (every ID, its step, the
order) on both clients, and the names ``smruntime`` exports."""

from __future__ import annotations

import asyncio

import pytest

import smruntime
from smruntime import AsyncClient, Client
from tests.unit.async_fake import FakeAsyncHTTPClient

CREDENTIALS = ("AKIDEXAMPLE", "secret")

INVOKE_ENDPOINT = """InvokeEndpoint
\tInitialize stack step
\t\tRegisterServiceMetadata
\t\tOperationInputValidation
\tSerialize stack step
\t\tResolveEndpoint
\t\tOperationSerializer
\tBuild stack step
\t\tClientRequestID
\t\tComputeContentLength
\t\tComputePayloadHash
\t\tUserAgent
\tFinalize stack step
\t\tRetry
\t\tRetryMetricsHeader
\t\tSigning
\tDeserialize stack step
\t\tErrorCloseResponseBody
\t\tCloseResponseBody
\t\tResponseErrorWrapper
\t\tRequestIDRetriever
\t\tOperationDeserializer
\t\tRequestResponseLogger
"""

STACKS = {
    "InvokeEndpoint": INVOKE_ENDPOINT,
    "InvokeEndpointWithResponseStream": INVOKE_ENDPOINT.replace(
        "InvokeEndpoint\n", "InvokeEndpointWithResponseStream\n", 1
    ).replace("\t\tOperationDeserializer\n", "\t\tOperationEventStreamDeserializer\n\t\tOperationDeserializer\n"),
    "InvokeEndpointAsync": INVOKE_ENDPOINT.replace("InvokeEndpoint\n", "InvokeEndpointAsync\n", 1),
}


BIDIRECTIONAL_STREAM = """InvokeEndpointWithBidirectionalStream
\tInitialize stack step
\t\tRegisterServiceMetadata
\t\tOperationInputValidation
\tSerialize stack step
\t\tResolveEndpoint
\t\tOperationSerializer
\tBuild stack step
\t\tClientRequestID
\t\tComputePayloadHash
\t\tUserAgent
\tFinalize stack step
\t\tRetry
\t\tRetryMetricsHeader
\t\tSigning
\tDeserialize stack step
\t\tErrorCloseResponseBody
\t\tResponseErrorWrapper
\t\tOperationEventStreamDeserializer
\t\tRequestResponseLogger
\tSendEvent stack step
\tReceiveEvent stack step
"""
"""The bidirectional stream's stack: the five steps open the stream (no body to measure, no
response to close or read yet); the event steps are empty until a user adds to them."""


def clients() -> list[Client | AsyncClient]:
    sync = Client(region="us-east-1", credentials=CREDENTIALS)
    fake = FakeAsyncHTTPClient(lambda request: (200, {}, b""))
    return [sync, AsyncClient(region="us-east-1", credentials=CREDENTIALS, http_client=fake)]


@pytest.mark.parametrize("operation", sorted(STACKS))
def test_each_operations_default_stack_is_pinned_for_both_clients(operation: str) -> None:
    for client in clients():
        stack = client.stack(operation)
        assert str(stack) == STACKS[operation], type(client).__name__
        steps = [step.name for step in stack.steps]
        assert steps == ["Initialize stack step", "Serialize stack step", "Build stack step",
                         "Finalize stack step", "Deserialize stack step"]


def test_the_bidirectional_streams_stack_is_pinned_for_both_clients() -> None:
    for client in clients():
        stack = client.stack("InvokeEndpointWithBidirectionalStream")
        assert str(stack) == BIDIRECTIONAL_STREAM, type(client).__name__
        assert [step.name for step in stack.steps] == ["Initialize stack step", "Serialize stack step", "Build stack step",
                                                       "Finalize stack step", "Deserialize stack step"]
        stack.async_handler(lambda ctx, request: asyncio.sleep(0))  # composed as an asyncio chain on both


def test_every_default_middleware_composes_into_both_chains() -> None:
    sync, async_ = clients()
    for operation in STACKS:
        sync.stack(operation).handler(lambda ctx, request: None)
        async_.stack(operation).async_handler(lambda ctx, request: asyncio.sleep(0))


def test_the_public_names_are_pinned() -> None:
    assert smruntime.__all__ == [
        "ANONYMOUS",
        "AsyncBidirectionalStream",
        "AsyncClient",
        "AsyncResponseStream",
        "BidirectionalStream",
        "Client",
        "Credentials",
        "FastHTTPClient",
        "InvokeEndpointAsyncInput",
        "InvokeEndpointAsyncOutput",
        "InvokeEndpointInput",
        "InvokeEndpointOutput",
        "InvokeEndpointWithResponseStreamInput",
        "LogMode",
        "MockHTTPClient",
        "Options",
        "PayloadPart",
        "RequestPayloadPart",
        "RequestsHTTPClient",
        "ResponsePayloadPart",
        "ResponseStream",
        "ResultMetadata",
        "StaticEndpointResolver",
        "__version__",
    ]
    for name in smruntime.__all__:
        assert getattr(smruntime, name) is not None, name
