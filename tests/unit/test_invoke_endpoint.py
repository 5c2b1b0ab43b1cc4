"""InvokeEndpoint: validation, wire format and output, through the real default stack.

The HTTP client is a MockHTTPClient, so nothing here opens a socket.
"""

from __future__ import annotations

import io
import json

import pytest

from smruntime import Client, InvokeEndpointInput
from smruntime.errors import (
    APIError,
    DeserializationError,
    InternalDependencyException,
    InvalidParamsError,
    ModelError,
    ModelNotReadyException,
    ValidationError,
)
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.transport import MockHTTPClient

OK_HEADERS = {
    "Content-Type": "application/json",
    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
    "X-Amzn-SageMaker-Custom-Attributes": "c=1",
    "X-Amzn-SageMaker-New-Session-Id": "sess-1; Expires=2026-11-24T18:00:00Z",
    "X-Amzn-SageMaker-Closed-Session-Id": "sess-0",
    "x-amzn-RequestId": "req-123",
}


def make_client(handler, **fields) -> tuple[Client, MockHTTPClient]:
    http = MockHTTPClient(handler)
    fields.setdefault("region", "us-east-1")
    fields.setdefault("credentials", ("AKIDEXAMPLE", "SECRET"))
    fields.setdefault("retry_mode", "none")
    return Client(http_client=http, **fields), http


def ok(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse(200, OK_HEADERS, b'{"ok": true}')


def test_every_input_member_reaches_the_wire_and_every_output_member_comes_back():
    client, http = make_client(ok)
    out = client.invoke_endpoint(
        endpoint_name="my-endpoint",
        body=b'{"x": 1}',
        content_type="application/json",
        accept="application/json",
        custom_attributes="trace=1",
        target_model="model-a.tar.gz",
        target_variant="variant-1",
        target_container_hostname="container-1",
        inference_id="inf-1",
        enable_explanations="`true`",
        inference_component_name="component-1",
        session_id="NEW_SESSION",
        prefix_aware_id="chat-app-1",
    )
    (sent,) = http.requests
    assert sent.method == "POST"
    assert sent.url == "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations"
    assert sent.body == b'{"x": 1}'
    expected = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Target-Model": "model-a.tar.gz",
        "X-Amzn-SageMaker-Target-Variant": "variant-1",
        "X-Amzn-SageMaker-Target-Container-Hostname": "container-1",
        "X-Amzn-SageMaker-Inference-Id": "inf-1",
        "X-Amzn-SageMaker-Enable-Explanations": "`true`",
        "X-Amzn-SageMaker-Inference-Component": "component-1",
        "X-Amzn-SageMaker-Session-Id": "NEW_SESSION",
        "X-Amzn-SageMaker-Prefix-Aware-Id": "chat-app-1",
        "Content-Length": "8",
    }
    for name, value in expected.items():
        assert sent.headers[name] == value, name
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/sagemaker/aws4_request" in sent.headers["Authorization"]
    assert out.body == b'{"ok": true}'
    assert out.content_type == "application/json"
    assert out.invoked_production_variant == "AllTraffic"
    assert out.custom_attributes == "c=1"
    assert out.new_session_id == "sess-1; Expires=2026-11-24T18:00:00Z"
    assert out.closed_session_id == "sess-0"
    assert out.metadata.request_id == "req-123"
    assert out.metadata.http_status == 200
    assert out.metadata.attempts == 1


def test_missing_content_type_is_sent_as_octet_stream_and_unset_members_are_not_sent():
    client, http = make_client(ok)
    client.invoke_endpoint(endpoint_name="ep", body=b"x")
    headers = http.requests[0].headers
    assert headers["Content-Type"] == "application/octet-stream"
    assert not any(name.lower().startswith("x-amzn-sagemaker") for name in headers)
    assert "Accept" not in headers


def test_the_input_object_is_accepted_too():
    client, http = make_client(ok)
    client.invoke_endpoint(InvokeEndpointInput(endpoint_name="ep", body="héllo"))
    assert http.requests[0].body == "héllo".encode()


@pytest.mark.parametrize(
    "body, expected",
    [(b"raw", b"raw"), (bytearray(b"arr"), b"arr"), ("text", b"text"), (memoryview(b"mv"), b"mv")],
)
def test_body_kinds(body, expected):
    client, http = make_client(ok)
    client.invoke_endpoint(endpoint_name="ep", body=body)
    assert http.requests[0].body == expected


def test_a_seekable_file_is_sent_from_its_position_with_its_length():
    client, http = make_client(ok)
    stream = io.BytesIO(b"skip-payload")
    stream.seek(5)
    client.invoke_endpoint(endpoint_name="ep", body=stream)
    assert http.requests[0].body == b"payload"
    assert http.requests[0].headers["Content-Length"] == "7"


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_an_unseekable_stream_is_read_into_memory_within_the_limit():
    client, http = make_client(ok)
    client.invoke_endpoint(endpoint_name="ep", body=Unseekable(b"piped"))
    assert http.requests[0].body == b"piped"


def test_a_label_is_percent_encoded_once_when_validation_is_removed():
    def drop_validation(stack):
        stack.initialize.remove("OperationInputValidation")

    client, http = make_client(ok, api_options=[drop_validation])
    client.invoke_endpoint(endpoint_name="a b/c%", body=b"x")
    assert http.requests[0].url.endswith("/endpoints/a%20b%2Fc%25/invocations")


def never(request: HTTPRequest) -> HTTPResponse:
    raise AssertionError("no request may be sent for invalid input")


@pytest.mark.parametrize(
    "fields, field, rule",
    [
        ({"endpoint_name": None}, "endpoint_name", "required"),
        ({"endpoint_name": ""}, "endpoint_name", "length"),
        ({"endpoint_name": "a" * 64}, "endpoint_name", "length"),
        ({"endpoint_name": "bad name"}, "endpoint_name", "pattern"),
        ({"endpoint_name": "a/b"}, "endpoint_name", "pattern"),
        ({"endpoint_name": ".."}, "endpoint_name", "pattern"),
        ({"endpoint_name": "a%2Fb"}, "endpoint_name", "pattern"),
        ({"endpoint_name": "ünïcode"}, "endpoint_name", "pattern"),
        ({"endpoint_name": "-lead"}, "endpoint_name", "pattern"),
        ({"body": None}, "body", "required"),
        ({"body": 12}, "body", "type"),
        ({"body": b"x" * (6 * 1024 * 1024 + 1)}, "body", "size"),
        ({"body": io.StringIO("text")}, "body", "type"),
        ({"content_type": "a\r\nX-Injected: 1"}, "content_type", "pattern"),
        ({"content_type": "x" * 1025}, "content_type", "length"),
        ({"accept": "text/\x00plain"}, "accept", "pattern"),
        ({"custom_attributes": "é"}, "custom_attributes", "pattern"),
        ({"custom_attributes": "line\nbreak"}, "custom_attributes", "pattern"),
        ({"custom_attributes": "x" * 1025}, "custom_attributes", "length"),
        ({"target_model": ""}, "target_model", "length"),
        ({"target_model": " leading-space"}, "target_model", "pattern"),
        ({"target_variant": "bad_variant"}, "target_variant", "pattern"),
        ({"target_container_hostname": "h" * 64}, "target_container_hostname", "length"),
        ({"inference_id": ""}, "inference_id", "length"),
        ({"inference_id": "x" * 65}, "inference_id", "length"),
        ({"enable_explanations": ""}, "enable_explanations", "length"),
        ({"inference_component_name": "ends-"}, "inference_component_name", "pattern"),
        ({"session_id": "NEW_SESSION2"}, "session_id", "pattern"),
        ({"session_id": "s" * 257}, "session_id", "length"),
        ({"prefix_aware_id": ""}, "prefix_aware_id", "length"),
        ({"prefix_aware_id": "p" * 65}, "prefix_aware_id", "length"),
        ({"prefix_aware_id": " app"}, "prefix_aware_id", "pattern"),
        ({"prefix_aware_id": "app\n1"}, "prefix_aware_id", "pattern"),
        ({"endpoint_name": 5}, "endpoint_name", "type"),
    ],
)
def test_invalid_input_is_rejected_before_any_io_naming_the_field_and_rule(fields, field, rule):
    client, http = make_client(never)
    kwargs = {"endpoint_name": "ep", "body": b"x", **fields}
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(**kwargs)
    assert [(p.field, p.rule) for p in caught.value.problems] == [(field, rule)]
    assert field in str(caught.value)
    assert http.requests == []


def test_every_problem_is_listed_in_one_error():
    client, _ = make_client(never)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(endpoint_name="bad name", body=None, target_variant="x_y", inference_id="")
    assert caught.value.fields == ("endpoint_name", "body", "target_variant", "inference_id")
    assert "InvokeEndpoint" in str(caught.value)


def test_sensitive_values_are_not_quoted_in_validation_errors():
    client, _ = make_client(never)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x", custom_attributes="secret-token-é")
    assert "secret-token" not in str(caught.value)


def error_response(status: int, body: object, headers: dict[str, str] | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(status, {"x-amzn-RequestId": "req-err", **(headers or {})}, data)

    return handler


def test_model_error_carries_its_modeled_fields():
    body = {
        "message": "Received client error (400) from model",
        "OriginalStatusCode": 400,
        "OriginalMessage": "bad input",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep",
    }
    client, _ = make_client(error_response(424, body, {"X-Amzn-ErrorType": "ModelError:http://internal.amazon.com/"}))
    with pytest.raises(ModelError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    error = caught.value
    assert (error.code, error.http_status, error.request_id, error.fault) == ("ModelError", 424, "req-err", "client")
    assert error.original_status_code == 400
    assert error.original_message == "bad input"
    assert error.log_stream_arn.endswith("/Endpoints/ep")
    assert error.operation == "InvokeEndpoint"
    assert "operation error SageMaker Runtime: InvokeEndpoint" in str(error)


@pytest.mark.parametrize("key", ["Message", "message"])
def test_the_message_is_read_whichever_way_it_is_spelled(key):
    """The service spells it ``Message``; other servers in front of it (and older ones) ``message``."""
    body = {key: "Received client error (400) from primary", "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "OriginalStatusCode": 400}
    client, _ = make_client(error_response(424, body, {"X-Amzn-ErrorType": "ModelError"}))
    with pytest.raises(ModelError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.message == "Received client error (400) from primary"
    assert caught.value.fields == {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": 400}


@pytest.mark.parametrize(
    "status, header, body, cls, code",
    [
        (400, "ValidationError", {"message": "bad"}, ValidationError, "ValidationError"),
        (400, None, {"__type": "com.amazon#ValidationError:extra", "message": "bad"}, ValidationError, "ValidationError"),
        (400, None, {"code": "validationerror"}, ValidationError, "ValidationError"),
        (429, "ModelNotReadyException", {"message": "wait"}, ModelNotReadyException, "ModelNotReadyException"),
        (530, "InternalDependencyException", {}, InternalDependencyException, "InternalDependencyException"),
        (400, "ThrottlingException", {"message": None}, APIError, "ThrottlingException"),
        (403, "AccessDeniedException", b"", APIError, "AccessDeniedException"),
        (400, "ValidationError", {"__type": "ModelError"}, ValidationError, "ValidationError"),  # header wins
        (502, None, b"", APIError, "UnknownError"),
    ],
)
def test_error_codes_header_first_then_body_cleaned_and_case_insensitive(status, header, body, cls, code):
    headers = {"X-Amzn-ErrorType": header} if header else {}
    client, _ = make_client(error_response(status, body, headers))
    with pytest.raises(APIError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert caught.value.http_status == status


def test_throttling_codes_are_marked_for_the_retryer():
    client, _ = make_client(error_response(400, {"message": None}, {"X-Amzn-ErrorType": "ThrottlingException"}))
    with pytest.raises(APIError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.throttling and caught.value.retryable


def test_an_unparseable_error_body_is_a_deserialization_error_with_a_snapshot():
    client, _ = make_client(error_response(500, b"<html>oops</html>"))
    with pytest.raises(DeserializationError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.snapshot == b"<html>oops</html>"
    assert caught.value.http_status == 500
    assert caught.value.retryable  # a gateway's HTML 5xx page is as transient as a JSON one
