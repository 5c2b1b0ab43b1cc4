"""InvokeEndpointAsync: validation of every member, wire format and output, through the real default stack.

The HTTP client is a MockHTTPClient, so nothing here opens a socket.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smruntime import Client, InvokeEndpointAsyncInput
from smruntime.errors import DeserializationError, InternalFailure, InvalidParamsError, ValidationError
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.transport import MockHTTPClient

ACCEPTED_HEADERS = {
    "Content-Type": "application/json",
    "X-Amzn-SageMaker-OutputLocation": "s3://bucket/out/inf-1.out",
    "X-Amzn-SageMaker-FailureLocation": "s3://bucket/failed/inf-1-error.out",
    "x-amzn-RequestId": "req-async-1",
}


def make_client(handler: Any) -> tuple[Client, MockHTTPClient]:
    http = MockHTTPClient(handler)
    return Client(region="us-east-1", credentials=("AKIDEXAMPLE", "SECRET"), retry_mode="none", http_client=http), http


def accepted(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse(202, ACCEPTED_HEADERS, b'{"InferenceId": "inf-1"}')


def never_called(request: HTTPRequest) -> HTTPResponse:
    raise AssertionError("validation must fail before any request is sent")


# --- wire format ------------------------------------------------------------------------------

def test_every_input_member_reaches_the_wire_as_its_header() -> None:
    client, http = make_client(accepted)
    client.invoke_endpoint_async(
        endpoint_name="my-endpoint",
        input_location="s3://bucket/in/payload.json",
        content_type="application/json",
        accept="text/csv",
        custom_attributes="trace=1",
        inference_id="inf-1",
        request_ttl_seconds=600,
        invocation_timeout_seconds=120,
        s3_output_path_extension="team/run-1",
        filename="result.json",
    )

    (sent,) = http.requests
    assert sent.method == "POST"
    assert sent.url == "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/async-invocations"
    assert sent.body == b""
    expected = {
        "X-Amzn-SageMaker-Content-Type": "application/json",
        "X-Amzn-SageMaker-Accept": "text/csv",
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Inference-Id": "inf-1",
        "X-Amzn-SageMaker-InputLocation": "s3://bucket/in/payload.json",
        "X-Amzn-SageMaker-RequestTTLSeconds": "600",
        "X-Amzn-SageMaker-InvocationTimeoutSeconds": "120",
        "X-Amzn-SageMaker-S3OutputPathExtension": "team/run-1",
        "X-Amzn-SageMaker-Filename": "result.json",
    }
    assert {name: sent.headers.get(name) for name in expected} == expected
    # ContentType and Accept travel in the SageMaker headers: the plain ones would describe the
    # (empty) HTTP body instead.
    assert "Content-Type" not in sent.headers
    assert "Accept" not in sent.headers
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/sagemaker/aws4_request" in sent.headers["Authorization"]


def test_only_the_members_given_are_sent() -> None:
    client, http = make_client(accepted)
    client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://bucket/key")

    (sent,) = http.requests
    assert [name for name in sent.headers if name.lower().startswith("x-amzn-sagemaker")] == [
        "X-Amzn-SageMaker-InputLocation"]


def test_the_input_object_form_sends_the_same_request() -> None:
    client, http = make_client(accepted)
    client.invoke_endpoint_async(InvokeEndpointAsyncInput(endpoint_name="ep", input_location="s3://b/k",
                                                          request_ttl_seconds=60))

    (sent,) = http.requests
    assert sent.headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "60"


def test_the_202_answer_gives_id_from_the_body_and_locations_from_the_headers() -> None:
    client, _ = make_client(accepted)
    out = client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://bucket/key")

    assert out.inference_id == "inf-1"
    assert out.output_location == "s3://bucket/out/inf-1.out"
    assert out.failure_location == "s3://bucket/failed/inf-1-error.out"
    assert out.metadata.http_status == 202
    assert out.metadata.request_id == "req-async-1"


@pytest.mark.parametrize("status", [200, 201, 202, 299])
def test_any_2xx_is_success(status: int) -> None:
    client, _ = make_client(lambda request: HTTPResponse(status, ACCEPTED_HEADERS, b'{"InferenceId": "x"}'))

    assert client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k").inference_id == "x"


def test_an_empty_2xx_body_means_no_inference_id() -> None:
    client, _ = make_client(lambda request: HTTPResponse(202, {"X-Amzn-SageMaker-OutputLocation": "s3://b/o"}, b""))

    out = client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")

    assert (out.inference_id, out.output_location, out.failure_location) == (None, "s3://b/o", None)


@pytest.mark.parametrize("body", [b"not json", b'["InferenceId"]', b'"inf-1"'])
def test_a_2xx_body_that_is_not_a_json_object_is_a_deserialization_error(body: bytes) -> None:
    client, _ = make_client(lambda request: HTTPResponse(202, ACCEPTED_HEADERS, body))

    with pytest.raises(DeserializationError, match="not a JSON object"):
        client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")


def test_service_errors_are_modeled_errors() -> None:
    def invalid(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(400, {"X-Amzn-ErrorType": "ValidationError:http://internal.amazon.com/",
                                  "Content-Type": "application/json", "x-amzn-RequestId": "req-bad"},
                            json.dumps({"message": "Endpoint ep is not an async endpoint."}).encode())

    client, _ = make_client(invalid)
    with pytest.raises(ValidationError) as caught:
        client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
    assert (caught.value.code, caught.value.http_status, caught.value.request_id) == ("ValidationError", 400, "req-bad")
    assert "Endpoint ep is not an async endpoint." in str(caught.value)

    client, _ = make_client(lambda request: HTTPResponse(500, {"X-Amzn-ErrorType": "InternalFailure"},
                                                         b'{"message": "oops"}'))
    with pytest.raises(InternalFailure):
        client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")


# --- validation -------------------------------------------------------------------------------

VALID: dict[str, Any] = {"endpoint_name": "ep", "input_location": "s3://bucket/key"}


def problems_for(**members: Any) -> list[tuple[str, str]]:
    """(field, rule) of every problem, checking that nothing was sent."""
    client, http = make_client(never_called)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(**{**VALID, **members})
    assert http.requests == []
    return [(problem.field, problem.rule) for problem in caught.value.problems]


def accepts(**members: Any) -> bool:
    client, http = make_client(accepted)
    client.invoke_endpoint_async(**{**VALID, **members})
    return len(http.requests) == 1


@pytest.mark.parametrize(("field", "minimum", "maximum"), [
    ("request_ttl_seconds", 60, 21600),
    ("invocation_timeout_seconds", 1, 3600),
])
def test_integer_members_accept_their_range_bounds_and_nothing_outside(field: str, minimum: int, maximum: int) -> None:
    assert accepts(**{field: minimum})
    assert accepts(**{field: maximum})
    assert problems_for(**{field: minimum - 1}) == [(field, "range")]
    assert problems_for(**{field: maximum + 1}) == [(field, "range")]
    assert problems_for(**{field: str(minimum)}) == [(field, "type")]
    assert problems_for(**{field: True}) == [(field, "type")]  # bool is an int, but not a number of seconds


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_request_ttl_is_valid_exactly_from_60_to_21600(ttl: int) -> None:
    client, http = make_client(accepted)
    if 60 <= ttl <= 21600:
        client.invoke_endpoint_async(**VALID, request_ttl_seconds=ttl)
        assert len(http.requests) == 1
    else:
        with pytest.raises(InvalidParamsError):
            client.invoke_endpoint_async(**VALID, request_ttl_seconds=ttl)
        assert http.requests == []


@pytest.mark.parametrize("location", [
    "s3://bucket/key",
    "s3://bucket",
    "s3://bucket/",
    "https://bucket.s3.us-east-1.amazonaws.com/key",
    "s3://bucket/" + "k" * (1024 - len("s3://bucket/")),
    "file:///tmp/input.json",  # a local-endpoint extension: the service itself rejects it
])
def test_input_location_accepted(location: str) -> None:
    assert accepts(input_location=location)


@pytest.mark.parametrize(("location", "rule"), [
    (None, "required"),
    ("", "length"),
    ("s3://bucket/" + "k" * (1025 - len("s3://bucket/")), "length"),
    ("ftp://host/key", "pattern"),
    ("s3://", "pattern"),
    ("s3:///key", "pattern"),
    ("bucket/key", "pattern"),
    ("file://", "pattern"),
    ("s3://bucket/key\r\nX-Injected: 1", "pattern"),
])
def test_input_location_rejected(location: str | None, rule: str) -> None:
    assert ("input_location", rule) in problems_for(input_location=location)


@pytest.mark.parametrize("extension", ["run-1", "a/b/c", "x" * 512, "odd!_.*'()-/chars", "s3-results"])
def test_s3_output_path_extension_accepted(extension: str) -> None:
    assert accepts(s3_output_path_extension=extension)


@pytest.mark.parametrize(("extension", "rule"), [
    ("", "length"),
    ("x" * 513, "length"),
    ("s3://bucket/x", "pattern"),
    ("s3:x", "pattern"),
    ("https:x", "pattern"),
    ("with space", "pattern"),
    ("per%cent", "pattern"),
])
def test_s3_output_path_extension_rejected(extension: str, rule: str) -> None:
    assert problems_for(s3_output_path_extension=extension) == [("s3_output_path_extension", rule)]


@pytest.mark.parametrize("filename", ["result.json", "r", "a-b_c.out", "A" * 32, "1.txt"])
def test_filename_accepted(filename: str) -> None:
    assert accepts(filename=filename)


@pytest.mark.parametrize(("filename", "rule"), [
    ("", "length"),
    ("a" * 33, "length"),
    ("a.b.c", "pattern"),  # at most one dot
    ("a..b", "pattern"),
    (".hidden", "pattern"),  # must start with a letter or digit
    ("-x", "pattern"),
    ("dir/name", "pattern"),
    ("name with space", "pattern"),
])
def test_filename_rejected(filename: str, rule: str) -> None:
    assert problems_for(filename=filename) == [("filename", rule)]


def test_shared_members_follow_the_invoke_endpoint_rules() -> None:
    assert problems_for(endpoint_name="bad_name") == [("endpoint_name", "pattern")]
    assert problems_for(endpoint_name=None) == [("endpoint_name", "required")]
    assert problems_for(content_type="x" * 1025) == [("content_type", "length")]
    assert problems_for(accept="caf\u00e9") == [("accept", "pattern")]
    assert problems_for(inference_id="") == [("inference_id", "length")]
    assert problems_for(inference_id=" leading-space") == [("inference_id", "pattern")]
    assert problems_for(inference_id="x" * 65) == [("inference_id", "length")]


def test_every_problem_is_listed_at_once_and_sensitive_values_are_not_shown() -> None:
    client, http = make_client(never_called)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(endpoint_name="ep", input_location="nowhere", request_ttl_seconds=10,
                                     invocation_timeout_seconds=0, s3_output_path_extension="s3:x",
                                     filename="a.b.c", custom_attributes="secret\u00e9value")

    assert http.requests == []
    assert caught.value.fields == ("input_location", "custom_attributes", "request_ttl_seconds",
                                   "invocation_timeout_seconds", "s3_output_path_extension", "filename")
    assert "secret" not in str(caught.value)
    assert "InvokeEndpointAsync" in str(caught.value)


# --- the inline payload (Body, exclusive with InputLocation) --------------------------------

def test_an_inline_body_is_sent_as_the_payload_without_an_input_location() -> None:
    client, http = make_client(accepted)
    out = client.invoke_endpoint_async(endpoint_name="ep", body=b'{"numbers": [1]}', content_type="application/json")
    (sent,) = http.requests
    assert sent.body == b'{"numbers": [1]}'
    assert sent.headers["Content-Length"] == "16"
    assert "X-Amzn-SageMaker-InputLocation" not in sent.headers
    assert sent.headers["X-Amzn-SageMaker-Content-Type"] == "application/json"
    assert out.inference_id == "inf-1"


def test_body_and_input_location_are_exclusive() -> None:
    client, http = make_client(never_called)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(endpoint_name="ep", body=b"x", input_location="s3://bucket/in")
    assert [(p.field, p.rule) for p in caught.value.problems] == [("input_location", "exclusive")]
    assert http.requests == []


def test_an_inline_body_is_at_most_128000_bytes() -> None:
    client, http = make_client(never_called)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(endpoint_name="ep", body=b"x" * 128_001)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("body", "size")]
    assert http.requests == []


def test_without_body_or_input_location_input_location_is_required() -> None:
    client, _ = make_client(never_called)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(endpoint_name="ep")
    assert [(p.field, p.rule) for p in caught.value.problems] == [("input_location", "required")]
