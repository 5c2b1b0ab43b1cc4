"""Tracing and the Predictor on the AsyncClient, against the local endpoint over real sockets.

The same middleware serve both clients: these tests check the asyncio shells (the span current
in the calling task, each retry an event, a stream's span ended by ``async for`` or ``aclose``).
They run where the package has its AsyncClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import smruntime
import smruntime.otel
from smruntime.deserializers import JSONDeserializer, StringDeserializer
from smruntime.errors import ModelError
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelFailure, ModelRequest
from smruntime.predictor import AsyncPredictor
from smruntime.retry import new_retryer
from smruntime.serializers import JSONSerializer, StringSerializer

AsyncClient: Any = getattr(smruntime, "AsyncClient", None)
pytestmark = pytest.mark.skipif(AsyncClient is None, reason="this build of smruntime has no AsyncClient")

KEY_ID, SECRET = "AKIDOTELASYNC", "otel-async-secret/xyz"


def failing(request: ModelRequest) -> bytes:
    raise ModelFailure(500, "the model fell over")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("sum", "sum"),
        EndpointConfig.serving("tokens", "tokens"),
        EndpointConfig.serving("failing", failing),
    ))
    with LocalEndpoint(config, credentials=(KEY_ID, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(endpoint: LocalEndpoint) -> None:
    for name in endpoint.state.endpoints:
        endpoint.faults(name).clear()


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, provider
    provider.shutdown()


@contextlib.asynccontextmanager
async def client(endpoint: LocalEndpoint, provider: TracerProvider, **instrument: Any) -> AsyncIterator[Any]:
    """An instrumented AsyncClient on real sockets; it and its transport are closed on leaving."""
    from smruntime.transport import AsyncFastHTTPClient  # with the AsyncClient

    async def no_wait(seconds: float) -> None:
        return None

    transport = AsyncFastHTTPClient()
    made = AsyncClient(
        region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET), http_client=transport,
        retryer=new_retryer("standard", 3, asleep=no_wait),
        api_options=[smruntime.otel.instrument(tracer_provider=provider, **instrument)],
    )
    try:
        async with made:
            yield made
    finally:
        await transport.aclose()


def test_a_call_with_retries_has_one_span_with_its_attempts(
    endpoint: LocalEndpoint, spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    exporter, provider = spans
    endpoint.faults("sum").fail_next(2, status=503)

    async def run() -> Any:
        async with client(endpoint, provider, propagate=True) as made:
            with provider.get_tracer("app").start_as_current_span("handler") as parent:
                out = await made.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [2, 3]}')
        return out, parent

    out, parent = asyncio.run(run())

    assert json.loads(out.body)["sum"] == 5
    call = next(span for span in exporter.get_finished_spans() if span.name == "SageMaker Runtime.InvokeEndpoint")
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    attributes = dict(call.attributes or {})
    assert (attributes["smruntime.attempts"], attributes["http.response.status_code"]) == (3, 200)
    assert attributes["aws.request_id"] == out.metadata.request_id
    assert [event.name for event in call.events] == ["attempt failed", "retry", "attempt failed", "retry"]


def test_a_model_error_fails_the_span(endpoint: LocalEndpoint, spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    exporter, provider = spans

    async def run() -> None:
        async with client(endpoint, provider) as made:
            await made.invoke_endpoint(endpoint_name="failing", body=b"x")

    with pytest.raises(ModelError):
        asyncio.run(run())
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ModelError"


def test_an_async_stream_ends_its_span_when_exhausted_or_closed(
    endpoint: LocalEndpoint, spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    exporter, provider = spans

    async def run() -> list[bytes]:
        async with client(endpoint, provider) as made:
            stream = await made.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c")
            async with stream:
                assert not exporter.get_finished_spans()
                parts = [part.bytes async for part in stream]
            early = await made.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"x y z")
            assert (await early.__anext__()).bytes == b"x"
            await early.aclose()
        return parts

    assert asyncio.run(run()) == [b"a", b" b", b" c"]
    exhausted, closed = exporter.get_finished_spans()
    assert {k: v for k, v in (exhausted.attributes or {}).items() if k.startswith("smruntime.stream.")
            and k != "smruntime.stream.time_to_first_event"} == {
        "smruntime.stream.events": 3, "smruntime.stream.outcome": "exhausted"}
    assert (closed.attributes or {})["smruntime.stream.outcome"] == "closed"
    assert (closed.attributes or {})["smruntime.stream.events"] == 1


def test_async_predictor(endpoint: LocalEndpoint, spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    _, provider = spans

    async def run() -> tuple[Any, list[str]]:
        async with client(endpoint, provider) as made:
            answer = await AsyncPredictor(made, "sum", serializer=JSONSerializer(),
                                          deserializer=JSONDeserializer()).predict({"numbers": [1, 2]})
            streamed = AsyncPredictor(made, "tokens", serializer=StringSerializer(),
                                      stream_deserializer=StringDeserializer())
            words = [word async for word in await streamed.predict_stream("one two", split="parts")]
        return answer, words

    answer, words = asyncio.run(run())
    assert answer["sum"] == 3
    assert words == ["one", " two"]
