"""InvokeEndpointWithResponseStream through the real default stack: validation, the wire
request, and how the stack reads up to the first message before handing out the stream.

The HTTP client is a MockHTTPClient answering with bodies that yield chunks, so nothing here
opens a socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smruntime import Client, InvokeEndpointWithResponseStreamInput, PayloadPart
from smruntime.errors import (
    EventStreamError,
    InvalidParamsError,
    MaxAttemptsExceededError,
    ModelError,
    ModelStreamError,
    ServiceUnavailable,
)
from smruntime.eventstream import encode_message
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.retry import new_retryer
from smruntime.transport import MockHTTPClient

STREAM_HEADERS = {
    "Content-Type": "application/vnd.amazon.eventstream",
    "X-Amzn-SageMaker-Content-Type": "text/plain",
    "x-Amzn-Invoked-Production-Variant": "variant-1",
    "X-Amzn-SageMaker-Custom-Attributes": "c=1",
    "x-amzn-RequestId": "req-42",
}


def part(data: bytes) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart",
                           ":content-type": "application/octet-stream"}, data)


def model_stream_error(code: str, message: str = "boom") -> bytes:
    return encode_message(
        {":message-type": "exception", ":exception-type": "ModelStreamError", ":content-type": "application/json"},
        json.dumps({"Message": message, "ErrorCode": code}).encode(),
    )


class ChunkBody:
    """A live-looking body: yields its chunks one at a time and records how far it was read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.closed = False

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def iter_chunks(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


Handler = Callable[[HTTPRequest], HTTPResponse]


def make_client(handler: Handler, **fields: Any) -> tuple[Client, MockHTTPClient]:
    http = MockHTTPClient(handler)
    fields.setdefault("region", "us-east-1")
    fields.setdefault("credentials", ("AKIDEXAMPLE", "SECRET"))
    fields.setdefault("retryer", new_retryer("standard", 3, sleep=lambda seconds: None))
    return Client(http_client=http, **fields), http


def streaming(*bodies: ChunkBody, status: int = 200) -> Handler:
    """Answers each request with the next body, as a 200 event stream."""
    queue = list(bodies)

    def answer(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(status, STREAM_HEADERS, queue.pop(0))

    return answer


# --- validation --------------------------------------------------------------------------------

def refused(**inputs: Any) -> InvalidParamsError:
    client, http = make_client(streaming())
    inputs.setdefault("endpoint_name", "ep")
    inputs.setdefault("body", b"x")
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_with_response_stream(**inputs)
    assert http.requests == []  # before any I/O
    return caught.value


def test_new_session_cannot_be_started_by_a_stream() -> None:
    error = refused(session_id="NEW_SESSION")
    assert error.fields == ("session_id",)
    assert error.operation == "InvokeEndpointWithResponseStream"


def test_every_bad_field_is_reported_at_once() -> None:
    error = refused(endpoint_name="bad_name!", accept="caf\u00e9", target_variant="-x", inference_id="",
                    prefix_aware_id="x" * 65)
    assert set(error.fields) == {"endpoint_name", "accept", "target_variant", "inference_id", "prefix_aware_id"}


def test_there_is_no_target_model_or_enable_explanations() -> None:
    client, _ = make_client(streaming())
    with pytest.raises(TypeError):
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x", target_model="m")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        InvokeEndpointWithResponseStreamInput(endpoint_name="ep", body=b"x", enable_explanations="`true`")  # type: ignore[call-arg]


# --- the wire request --------------------------------------------------------------------------

def test_every_input_member_reaches_its_header() -> None:
    client, http = make_client(streaming(ChunkBody([part(b"a")])))
    with client.invoke_endpoint_with_response_stream(
        endpoint_name="my-endpoint", body='{"prompt": "hi"}', content_type="application/json",
        accept="application/jsonlines", custom_attributes="trace=1", target_variant="variant-1",
        target_container_hostname="container-1", inference_id="inf-1", inference_component_name="component-1",
        session_id="sess-1", prefix_aware_id="chat-app-1",
    ) as stream:
        assert list(stream) == [PayloadPart(b"a")]
    (sent,) = http.requests
    assert sent.method == "POST"
    assert sent.url == (
        "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations-response-stream"
    )
    assert sent.body == b'{"prompt": "hi"}'
    expected = {
        "Content-Type": "application/json",
        "X-Amzn-SageMaker-Accept": "application/jsonlines",  # not Accept, unlike InvokeEndpoint
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Target-Variant": "variant-1",
        "X-Amzn-SageMaker-Target-Container-Hostname": "container-1",
        "X-Amzn-SageMaker-Inference-Id": "inf-1",
        "X-Amzn-SageMaker-Inference-Component": "component-1",
        "X-Amzn-SageMaker-Session-Id": "sess-1",
        "X-Amzn-SageMaker-Prefix-Aware-Id": "chat-app-1",
    }
    for name, value in expected.items():
        assert sent.headers[name] == value
    assert "Accept" not in sent.headers
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


def test_content_type_defaults_to_octet_stream_and_the_name_is_one_encoded_label() -> None:
    client, http = make_client(streaming(ChunkBody([])))
    with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x"):
        pass
    (sent,) = http.requests
    assert sent.headers["Content-Type"] == "application/octet-stream"
    assert sent.url.endswith("/endpoints/ep/invocations-response-stream")


def test_the_output_headers_come_back_on_the_stream() -> None:
    client, _ = make_client(streaming(ChunkBody([part(b"a")])))
    with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x") as stream:
        assert stream.content_type == "text/plain"
        assert stream.invoked_production_variant == "variant-1"
        assert stream.custom_attributes == "c=1"
        assert stream.metadata.request_id == "req-42"


def test_the_stack_has_the_event_stream_deserializer_before_the_operation_deserializer() -> None:
    client, _ = make_client(streaming())
    steps = client.stack("InvokeEndpointWithResponseStream").list()
    at = steps.index("OperationEventStreamDeserializer")
    assert steps[at + 1] == "OperationDeserializer"


# --- reading up to the first message ------------------------------------------------------------

def test_the_call_returns_once_the_first_message_is_in() -> None:
    first = part(b"Hel")
    body = ChunkBody([first[:5], first[5:], part(b"lo"), part(b"!")])
    client, _ = make_client(streaming(body))
    stream = client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    assert body.pulled == 2  # the first frame came in two chunks; nothing more was read
    assert not body.closed
    with stream:
        assert next(stream) == PayloadPart(b"Hel")
        assert body.pulled == 2
        assert list(stream.payloads()) == [b"lo", b"!"]
    assert body.pulled == 4
    assert body.closed


def test_a_model_stream_error_as_first_message_raises_from_the_call_and_releases_the_body() -> None:
    body = ChunkBody([model_stream_error("ModelInvocationTimeExceeded")])
    client, http = make_client(streaming(body))
    with pytest.raises(ModelStreamError) as caught:
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    assert caught.value.error_code == "ModelInvocationTimeExceeded"
    assert caught.value.request_id == "req-42"
    assert body.closed
    assert len(http.requests) == 1  # a model error is not retried


def test_a_stream_cut_before_its_first_message_raises_event_stream_error() -> None:
    body = ChunkBody([part(b"abc")[:9]])
    client, http = make_client(streaming(body))
    with pytest.raises(EventStreamError):
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    assert body.closed
    assert len(http.requests) == 1


def test_an_empty_stream_has_no_events() -> None:
    client, _ = make_client(streaming(ChunkBody([])))
    with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x") as stream:
        assert list(stream) == []


def test_a_503_before_any_event_is_retried_then_the_stream_is_handed_out() -> None:
    bodies = [ChunkBody([b'{"message": "try again"}']), ChunkBody([part(b"a"), part(b"b")])]
    statuses = [503, 200]

    def answer(request: HTTPRequest) -> HTTPResponse:
        status = statuses.pop(0)
        headers = {"X-Amzn-ErrorType": "ServiceUnavailable"} if status == 503 else STREAM_HEADERS
        return HTTPResponse(status, headers, bodies.pop(0))

    client, http = make_client(answer)
    with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x") as stream:
        assert list(stream.payloads()) == [b"a", b"b"]
        assert stream.metadata.attempts == 2
    assert len(http.requests) == 2
    assert [request.headers["amz-sdk-request"] for request in http.requests] == [
        "attempt=1; max=3", "attempt=2; max=3"
    ]


def test_503s_until_the_attempts_run_out() -> None:
    def answer(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(503, {"X-Amzn-ErrorType": "ServiceUnavailable"}, ChunkBody([b'{"message": "no"}']))

    client, http = make_client(answer)
    with pytest.raises(MaxAttemptsExceededError) as caught:
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    assert isinstance(caught.value.__cause__, ServiceUnavailable)
    assert len(http.requests) == 3


def test_a_424_is_a_model_error_and_is_not_retried() -> None:
    document = {"message": "Received client error (400)", "OriginalStatusCode": 400, "OriginalMessage": "bad"}

    def answer(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(424, {"X-Amzn-ErrorType": "ModelError"}, ChunkBody([json.dumps(document).encode()]))

    client, http = make_client(answer)
    with pytest.raises(ModelError) as caught:
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    assert caught.value.original_status_code == 400
    assert len(http.requests) == 1


def test_nothing_is_retried_once_an_event_was_handed_out() -> None:
    body = ChunkBody([part(b"a"), model_stream_error("StreamBroken")])
    client, http = make_client(streaming(body))
    stream = client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
    received: list[bytes] = []
    with stream, pytest.raises(ModelStreamError) as caught:
        for event in stream:
            received.append(event.bytes)
    assert received == [b"a"]
    assert caught.value.error_code == "StreamBroken"
    assert len(http.requests) == 1
    assert body.closed
