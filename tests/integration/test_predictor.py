"""The Predictor against the local endpoint over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import smruntime.otel
from smruntime import Client
from smruntime.deserializers import CSVDeserializer, JSONDeserializer, NumpyDeserializer, StringDeserializer
from smruntime.errors import ValidationError
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelRequest, ModelResponse
from smruntime.predictor import Predictor
from smruntime.serializers import CSVSerializer, JSONSerializer, NumpySerializer, StringSerializer

KEY_ID, SECRET = "AKIDPREDICTOR", "predictor-secret/xyz"


def media(request: ModelRequest) -> ModelResponse:
    """Answers with what the model was sent: content type, accept and body."""
    seen = {"content_type": request.content_type, "accept": request.accept, "body": request.body.decode()}
    return ModelResponse(body=json.dumps(seen).encode(), content_type="application/json")


def events(request: ModelRequest) -> Iterator[bytes]:
    """JSON lines split across parts, with blank separator lines, the last one unterminated."""
    yield b'{"token": "Hel'
    yield b'lo"}\n\n{"tok'
    yield b'en": " world"}\n'
    yield b'{"token": "!"}'


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("sum", "sum"),
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("tokens", "tokens"),
        EndpointConfig.serving("media", media),
        EndpointConfig.serving("events", events),
    ))
    with LocalEndpoint(config, credentials=(KEY_ID, SECRET)) as running:
        yield running


@pytest.fixture
def client(endpoint: LocalEndpoint) -> Iterator[Client]:
    with Client(region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET)) as made:
        yield made


def test_predict_serializes_sets_the_media_types_and_deserializes(client: Client) -> None:
    predictor = Predictor(client, "sum", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    assert predictor.predict({"numbers": np.array([1, 2, 3])})["sum"] == 6

    seen = Predictor(client, "media", serializer=CSVSerializer(), deserializer=JSONDeserializer()).predict([[1, 2], [3, 4]])
    assert seen == {"content_type": "text/csv", "accept": "application/json", "body": "1,2\n3,4"}


def test_the_defaults_send_bytes_and_return_bytes_like_the_sagemaker_sdk(client: Client) -> None:
    predictor = Predictor(client, "media")
    assert json.loads(predictor.predict(b"raw")) == {
        "content_type": "application/octet-stream", "accept": "*/*", "body": "raw"}


def test_a_call_keyword_overrides_the_media_types_and_reaches_the_call(client: Client) -> None:
    predictor = Predictor(client, "media", serializer=StringSerializer(), deserializer=JSONDeserializer())
    seen = predictor.predict("hi", content_type="text/x-custom", target_variant="AllTraffic")
    assert seen["content_type"] == "text/x-custom"
    with pytest.raises(ValidationError):
        predictor.predict("hi", target_variant="NoSuchVariant")


def test_numpy_round_trip(client: Client) -> None:
    predictor = Predictor(client, "echo", serializer=NumpySerializer(), deserializer=NumpyDeserializer())
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = predictor.predict(array)
    assert back.dtype == np.float32 and back.tolist() == array.tolist()


def test_csv_round_trip(client: Client) -> None:
    predictor = Predictor(client, "echo", serializer=CSVSerializer(), deserializer=CSVDeserializer())
    assert predictor.predict([[1, 2], [3, 4]]) == [["1", "2"], ["3", "4"]]


def test_predict_stream_lines_are_rejoined_across_parts_and_decoded(client: Client) -> None:
    predictor = Predictor(client, "events", stream_deserializer=JSONDeserializer())
    assert [item["token"] for item in predictor.predict_stream(b"go")] == ["Hello", " world", "!"]


def test_predict_stream_parts(client: Client) -> None:
    predictor = Predictor(client, "tokens", serializer=StringSerializer(), stream_deserializer=StringDeserializer())
    assert list(predictor.predict_stream("one two", split="parts")) == ["one", " two"]


def test_predict_stream_raises_at_the_call_and_refuses_a_bad_split(client: Client) -> None:
    with pytest.raises(ValidationError):
        Predictor(client, "no-such-endpoint").predict_stream(b"x")
    with pytest.raises(ValueError, match="split must be 'lines' or 'parts', got 'words'"):
        Predictor(client, "tokens").predict_stream(b"x", split="words")  # type: ignore[arg-type]


def test_closing_a_stream_iterator_early_closes_the_stream(endpoint: LocalEndpoint) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with Client(region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET),
                api_options=[smruntime.otel.instrument(tracer_provider=provider)]) as client:
        items = Predictor(client, "tokens").predict_stream(b"a b c d", split="parts")
        assert next(items) == b"a"
        items.close()
    [span] = spans.get_finished_spans()
    assert span.attributes is not None
    assert (span.attributes["smruntime.stream.outcome"], span.attributes["smruntime.stream.events"]) == ("closed", 1)
