"""OpenTelemetry tracing and metrics against the local endpoint over real sockets.

Spans go to the OpenTelemetry SDK's in-memory exporter and metrics to its in-memory reader,
both private to each test (no global provider is set).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import smruntime.otel
from smruntime import Client, Options
from smruntime.errors import InvalidParamsError, MaxAttemptsExceededError, ModelError
from smruntime.eventstream import TruncatedStreamError
from smruntime.local import (
    AsyncInferenceConfig,
    EndpointConfig,
    LocalConfig,
    LocalEndpoint,
    ModelFailure,
    ModelRequest,
    ModelResponse,
)
from smruntime.middleware import Stack
from smruntime.otel.xray import HEADER
from smruntime.retry import new_retryer
from tests.servers import HTTPTestServer, respond

KEY_ID, SECRET = "AKIDOTELTEST", "otel-test-secret/xyz"


def failing(request: ModelRequest) -> bytes:
    raise ModelFailure(500, "the model fell over")


def llm(request: ModelRequest) -> ModelResponse:
    """An OpenAI-style chat answer with token usage."""
    answer = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    return ModelResponse(body=json.dumps(answer).encode(), content_type="application/json")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    results = tmp_path_factory.mktemp("async-results")
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("sum-async", "sum", async_inference=AsyncInferenceConfig(s3_output_path=results.as_uri())),
        EndpointConfig.serving("sum", "sum"),
        EndpointConfig.serving("tokens", "tokens"),
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("failing", failing),
        EndpointConfig.serving("llm", llm),
    ))
    with LocalEndpoint(config, credentials=(KEY_ID, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(endpoint: LocalEndpoint) -> None:
    for name in endpoint.state.endpoints:
        endpoint.faults(name).clear()


class Telemetry:
    """An SDK tracer and meter provider with in-memory exporters, and a client instrumented with them."""

    def __init__(self, endpoint: LocalEndpoint, **instrument: Any) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        option = smruntime.otel.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **instrument
        )
        self.client = Client(
            region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET),
            retryer=new_retryer("standard", 3, sleep=lambda seconds: None), api_options=[option],
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.finished()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def close(self) -> None:
        self.client.close()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def telemetry(endpoint: LocalEndpoint) -> Iterator[Telemetry]:
    made = Telemetry(endpoint)
    yield made
    made.close()


def test_one_client_span_per_call_with_the_aws_sdk_conventions_and_sagemaker_facts(
    telemetry: Telemetry, endpoint: LocalEndpoint
) -> None:
    out = telemetry.client.invoke_endpoint(
        endpoint_name="sum", body=b'{"numbers": [1, 2]}', content_type="application/json",
        target_variant="AllTraffic", inference_id="req-1",
    )

    span = telemetry.only_span()
    assert span.name == "SageMaker Runtime.InvokeEndpoint"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    port = int(endpoint.url.rsplit(":", 1)[1])
    assert attributes == {
        "rpc.system": "aws-api",
        "rpc.service": "SageMaker Runtime",
        "rpc.method": "InvokeEndpoint",
        "aws.sagemaker.endpoint_name": "sum",
        "aws.sagemaker.target_variant": "AllTraffic",
        "aws.sagemaker.inference_id": "req-1",
        "aws.sagemaker.invoked_production_variant": "AllTraffic",
        "aws.request_id": out.metadata.request_id,
        "server.address": "127.0.0.1",
        "server.port": port,
        "cloud.region": "us-east-1",
        "http.response.status_code": 200,
        "smruntime.attempts": 1,
    }
    assert not span.events
    assert "smruntime.request.body" not in attributes  # bodies are never recorded unless asked


def test_an_async_inference_call_has_its_span_with_the_inference_id(telemetry: Telemetry) -> None:
    out = telemetry.client.invoke_endpoint_async(endpoint_name="sum-async", body=b'{"numbers": [1]}',
                                                 content_type="application/json")

    span = telemetry.only_span()
    assert span.name == "SageMaker Runtime.InvokeEndpointAsync"
    attributes = dict(span.attributes or {})
    assert (attributes["rpc.method"], attributes["http.response.status_code"]) == ("InvokeEndpointAsync", 202)
    assert attributes["aws.sagemaker.inference_id"] == out.inference_id
    assert attributes["aws.sagemaker.endpoint_name"] == "sum-async"


def test_metrics_duration_attempts_and_no_errors(telemetry: Telemetry) -> None:
    for _ in range(2):
        telemetry.client.invoke_endpoint(endpoint_name="echo", body=b"x")

    expected = {"rpc.system": "aws-api", "rpc.service": "SageMaker Runtime", "rpc.method": "InvokeEndpoint",
                "aws.sagemaker.endpoint_name": "echo"}
    [duration] = telemetry.points(smruntime.otel.CALL_DURATION)
    assert dict(duration.attributes) == expected
    assert duration.count == 2
    span_seconds = sum((span.end_time - span.start_time) for span in telemetry.finished()) / 1e9  # type: ignore[operator]
    assert 0 < duration.sum <= span_seconds  # measured inside the span
    [attempts] = telemetry.points(smruntime.otel.CALL_ATTEMPTS)
    assert (dict(attempts.attributes), attempts.value) == (expected, 2)
    assert telemetry.points(smruntime.otel.CALL_ERRORS) == []


def test_each_retry_is_a_span_event_and_attempts_are_counted(telemetry: Telemetry, endpoint: LocalEndpoint) -> None:
    endpoint.faults("sum").fail_next(2, status=503)

    out = telemetry.client.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [1]}')

    assert out.metadata.attempts == 3
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None and span.attributes["smruntime.attempts"] == 3
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    failed = {"error.type": "ServiceUnavailable", "http.response.status_code": 503}
    assert [(name, {k: v for k, v in found.items() if k != "aws.request_id"}) for name, found in events] == [
        ("attempt failed", {**failed, "smruntime.attempts": 1}),
        ("retry", {"smruntime.attempts": 2}),
        ("attempt failed", {**failed, "smruntime.attempts": 2}),
        ("retry", {"smruntime.attempts": 3}),
    ]
    [attempts] = telemetry.points(smruntime.otel.CALL_ATTEMPTS)
    assert attempts.value == 3
    assert telemetry.points(smruntime.otel.CALL_ERRORS) == []


def test_retries_exhausted_name_the_last_error(telemetry: Telemetry, endpoint: LocalEndpoint) -> None:
    endpoint.faults("sum").fail_next(3, status=503)

    with pytest.raises(MaxAttemptsExceededError):
        telemetry.client.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [1]}')

    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ServiceUnavailable"
    attributes = dict(span.attributes or {})
    assert (attributes["error.type"], attributes["smruntime.attempts"], attributes["http.response.status_code"]) == (
        "ServiceUnavailable", 3, 503)
    assert [event.name for event in span.events].count("attempt failed") == 3
    [errors] = telemetry.points(smruntime.otel.CALL_ERRORS)
    assert (errors.attributes["error.type"], errors.value) == ("ServiceUnavailable", 1)
    [attempts] = telemetry.points(smruntime.otel.CALL_ATTEMPTS)
    assert attempts.value == 3


def test_a_model_error_fails_the_span_with_its_type_status_and_request_id(telemetry: Telemetry) -> None:
    with pytest.raises(ModelError) as raised:
        telemetry.client.invoke_endpoint(endpoint_name="failing", body=b"x")

    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "ModelError"
    assert attributes["http.response.status_code"] == 424
    assert attributes["aws.request_id"] == raised.value.request_id
    assert "fell over" not in json.dumps(attributes) + str(span.status.description)  # messages may echo input
    [duration] = telemetry.points(smruntime.otel.CALL_DURATION)
    assert duration.attributes["error.type"] == "ModelError"


def test_a_call_refused_before_any_io_still_has_its_span(telemetry: Telemetry) -> None:
    with pytest.raises(InvalidParamsError):
        telemetry.client.invoke_endpoint(endpoint_name="bad name!", body=b"x")

    span = telemetry.only_span()
    assert span.attributes is not None and span.attributes["error.type"] == "InvalidParamsError"
    assert span.attributes["smruntime.attempts"] == 0
    assert "server.address" not in span.attributes
    [attempts] = telemetry.points(smruntime.otel.CALL_ATTEMPTS)
    assert attempts.value == 0


def test_the_callers_span_is_the_parent(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        telemetry.client.invoke_endpoint(endpoint_name="echo", body=b"x")

    call = next(span for span in telemetry.finished() if span.name.startswith("SageMaker Runtime."))
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert call.context is not None and call.context.trace_id == parent.get_span_context().trace_id


# --- streams -----------------------------------------------------------------------------


def test_a_stream_span_ends_when_the_stream_is_exhausted(telemetry: Telemetry) -> None:
    stream = telemetry.client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"one two three")
    with stream:
        assert telemetry.finished() == []  # still open: the answer is being read
        parts = list(stream.payloads())

    assert parts == [b"one", b" two", b" three"]
    span = telemetry.only_span()
    assert span.name == "SageMaker Runtime.InvokeEndpointWithResponseStream"
    attributes = dict(span.attributes or {})
    assert (attributes["smruntime.stream.events"], attributes["smruntime.stream.outcome"]) == (3, "exhausted")
    ttfe = attributes["smruntime.stream.time_to_first_event"]
    assert isinstance(ttfe, float)
    assert 0 < ttfe * 1e9 <= span.end_time - span.start_time  # type: ignore[operator]
    assert [event.name for event in span.events] == ["first event"]
    assert span.status.status_code is StatusCode.UNSET
    [first] = telemetry.points(smruntime.otel.TIME_TO_FIRST_EVENT)
    assert (first.count, first.sum) == (1, ttfe)
    assert dict(first.attributes)["rpc.method"] == "InvokeEndpointWithResponseStream"
    [attempts] = telemetry.points(smruntime.otel.CALL_ATTEMPTS)
    assert attempts.value == 1


def test_a_stream_read_by_its_lines_ends_its_span_when_they_end(telemetry: Telemetry) -> None:
    with telemetry.client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"one\ntwo") as stream:
        assert list(stream.lines()) == [b"one", b"two"]
        (span,) = telemetry.finished()  # ended by the lines' end, before the with block's
    recorded = dict(span.attributes or {})
    assert recorded["smruntime.stream.outcome"] == "exhausted"
    assert recorded["smruntime.stream.events"] >= 2


def test_a_broken_stream_fails_its_span(telemetry: Telemetry, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").break_stream_after(2)

    stream = telemetry.client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c d")
    with stream, pytest.raises(TruncatedStreamError):
        for _ in stream:
            pass

    span = telemetry.only_span()
    attributes = dict(span.attributes or {})
    assert (attributes["smruntime.stream.events"], attributes["smruntime.stream.outcome"]) == (2, "failed")
    assert attributes["error.type"] == "TruncatedStreamError"
    assert span.status.status_code is StatusCode.ERROR
    [errors] = telemetry.points(smruntime.otel.CALL_ERRORS)
    assert errors.attributes["error.type"] == "TruncatedStreamError"


def test_a_stream_closed_early_ends_its_span_once(telemetry: Telemetry) -> None:
    stream = telemetry.client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c d")
    assert next(stream).bytes == b"a"
    stream.close()
    stream.close()

    span = telemetry.only_span()
    attributes = dict(span.attributes or {})
    assert (attributes["smruntime.stream.events"], attributes["smruntime.stream.outcome"]) == (1, "closed")
    assert span.status.status_code is StatusCode.UNSET
    [duration] = telemetry.points(smruntime.otel.CALL_DURATION)
    assert duration.count == 1


# --- GenAI and bodies --------------------------------------------------------------------


def test_genai_attributes_are_opt_in_with_the_endpoint_as_the_model(endpoint: LocalEndpoint) -> None:
    telemetry = Telemetry(endpoint, genai=True)
    try:
        telemetry.client.invoke_endpoint(endpoint_name="llm", body=b'{"messages": []}', content_type="application/json")
    finally:
        telemetry.close()

    attributes = dict(telemetry.only_span().attributes or {})
    genai = {key: value for key, value in attributes.items() if key.startswith("gen_ai.")}
    assert genai == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "aws.sagemaker",
        "gen_ai.request.model": "llm",
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 2,
    }
    assert "smruntime.request.body" not in attributes


def test_bodies_are_recorded_only_when_asked_and_redacted(endpoint: LocalEndpoint) -> None:
    telemetry = Telemetry(endpoint, capture_bodies=True, max_body_chars=60)
    body = json.dumps({"prompt": "hello", "api_key": "sk-SECRET", "max_tokens": 5, "pad": "x" * 100})
    try:
        telemetry.client.invoke_endpoint(endpoint_name="echo", body=body, content_type="application/json")
        streamed_body = b'{"text": "a b"}\n{"access_token": "tok-SECRET"}'
        with telemetry.client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=streamed_body) as stream:
            list(stream)
    finally:
        telemetry.close()

    invoke, streamed = telemetry.finished()
    recorded = dict(invoke.attributes or {})
    for name in ("smruntime.request.body", "smruntime.response.body"):
        text = recorded[name]
        assert isinstance(text, str)
        assert "sk-SECRET" not in text
        assert text.startswith('{"prompt":"hello","api_key":"<redacted>","max_tokens":5')
        assert re.search(r"…<\d+ more chars>$", text)
    assert dict(streamed.attributes or {})["smruntime.response.body"] == (
        '{"text": "a b"}\n{"access_token":"<redacted>"}')  # parts joined, then redacted line by line


def test_a_bidirectional_stream_s_span_records_no_body_it_does_not_have(endpoint: LocalEndpoint) -> None:
    telemetry = Telemetry(endpoint, capture_bodies=True)
    client = Client(region="us-east-1", http2_endpoint_url=endpoint.http2_url, credentials=(KEY_ID, SECRET),
                    api_options=telemetry.client.options.api_options)
    try:
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
            stream.send(b"hello")
            stream.end_input()
            assert [part.bytes for part in stream] == [b"hello"]
    finally:
        client.close()
        telemetry.close()

    recorded = dict(telemetry.only_span().attributes or {})
    assert recorded["rpc.method"] == "InvokeEndpointWithBidirectionalStream"
    assert "smruntime.request.body" not in recorded and "smruntime.response.body" not in recorded


# --- trace context propagation ----------------------------------------------------------


def test_trace_context_goes_to_the_model_in_the_xray_header_unsigned() -> None:
    telemetry_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(telemetry_spans))
    with HTTPTestServer() as server:
        server.default = respond(200, b"ok", headers=[("Content-Type", "text/plain")])
        with Client(region="us-east-1", endpoint_url=server.url, credentials=(KEY_ID, SECRET),
                    api_options=[smruntime.otel.instrument(tracer_provider=provider, propagate=True)]) as client:
            client.invoke_endpoint(endpoint_name="echo", body=b"x")
        [request] = server.requests

    span = telemetry_spans.get_finished_spans()[0]
    context = span.get_span_context()
    trace_hex = f"{context.trace_id:032x}"
    assert request.header(HEADER) == f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent={context.span_id:016x};Sampled=1"
    authorization = request.header("Authorization") or ""
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "x-amzn-trace-id" not in signed and "host" in signed


def test_no_header_without_propagate(telemetry: Telemetry) -> None:
    assert "OTelXRayTraceHeader" not in telemetry.client.stack("InvokeEndpoint").build


@pytest.mark.parametrize("placement", ["build", "after signing"])
def test_the_service_accepts_the_signature_wherever_the_header_is_added(endpoint: LocalEndpoint, placement: str) -> None:
    def move_after_signing(stack: Stack) -> None:
        stack.finalize.add(stack.build.remove("OTelXRayTraceHeader"))  # type: ignore[arg-type]

    def call_options(options: Options) -> None:
        if placement == "after signing":
            options.api_options = [*options.api_options, move_after_signing]

    telemetry = Telemetry(endpoint, propagate=True)
    try:
        stack = telemetry.client.stack("InvokeEndpoint", options=[call_options])
        assert ("OTelXRayTraceHeader" in stack.finalize) is (placement == "after signing")
        telemetry.client.invoke_endpoint(endpoint_name="tokens", body=b"signed fine", options=[call_options])
        with telemetry.client.invoke_endpoint_with_response_stream(
            endpoint_name="tokens", body=b"signed fine", options=[call_options]
        ) as stream:
            list(stream)
    finally:
        telemetry.close()
    assert [span.status.status_code for span in telemetry.finished()] == [StatusCode.UNSET] * 2


# --- zero cost when unused -----------------------------------------------------------------


def test_no_opentelemetry_import_when_unused() -> None:
    program = textwrap.dedent("""
        import sys
        from smruntime import Client, Options
        from smruntime.local import LocalEndpoint

        with LocalEndpoint() as endpoint:
            with Client(region="us-east-1", endpoint_url=endpoint.url,
                        credentials=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")) as client:
                assert client.invoke_endpoint(endpoint_name="echo", body=b"x").body == b"x"
                with client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b") as stream:
                    assert len(list(stream)) == 2
        print(sorted(name for name in sys.modules if name.startswith(("opentelemetry", "smruntime.otel"))))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          env={"PATH": "", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_missing_opentelemetry_api_says_which_extra_to_install() -> None:
    program = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "try:\n"
        "    import smruntime.otel\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "smruntime.otel needs the OpenTelemetry API: pip install 'smruntime[otel]'"
