"""Hostile input to the client: rejected before any I/O, naming the field; what is accepted
goes out byte for byte and correctly signed.

The server is the raw-socket test server: it records every connection and request, so "no
I/O" means it accepted no connection at all. The signature check recomputes SigV4 from what
arrived on the wire (the path, the header lines and the body as received).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smruntime import Client
from smruntime.auth import compute_signature, parse_authorization
from smruntime.errors import InvalidParamsError, SageMakerRuntimeError
from smruntime.retry import StandardRetryer
from tests.reliability.support import CREDENTIALS, MIB, Sleeps, make_client
from tests.servers import HTTPTestServer, RecordedRequest, respond

SIX_MIB = 6 * MIB

HEADER_FIELDS = {
    "invoke_endpoint": (
        "content_type",
        "accept",
        "custom_attributes",
        "target_model",
        "target_variant",
        "target_container_hostname",
        "inference_id",
        "enable_explanations",
        "inference_component_name",
        "session_id",
    ),
    "invoke_endpoint_with_response_stream": (
        "content_type",
        "accept",
        "custom_attributes",
        "target_variant",
        "target_container_hostname",
        "inference_id",
        "inference_component_name",
        "session_id",
    ),
    "invoke_endpoint_async": (
        "content_type",
        "accept",
        "custom_attributes",
        "inference_id",
        "input_location",
        "s3_output_path_extension",
        "filename",
    ),
}

# Characters that must never reach a header: CR/LF (header injection), other controls, and
# characters that are invisible or not US-ASCII (an HTTP header carries bytes, not text).
BAD_CHARACTERS = {
    "crlf-injection": "\r\nX-Injected: 1",
    "lf": "\n",
    "cr": "\r",
    "nul": "\x00",
    "escape": "\x1b",
    "vertical-tab": "\x0b",
    "form-feed": "\x0c",
    "del": "\x7f",
    "next-line": "\x85",
    "no-break-space": "\xa0",
    "zero-width-space": "\u200b",
    "line-separator": "\u2028",
    "byte-order-mark": "\ufeff",
    "rtl-override": "\u202e",
}


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer(default=respond(200, b"{}", headers=[("Content-Type", "application/json")])) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: HTTPTestServer) -> Iterator[Client]:
    with make_client(server.url) as running:
        yield running


@pytest.fixture
def no_io(server: HTTPTestServer) -> Iterator[None]:
    """Asserts the test made no connection and sent no request."""
    connections, requests = server.connections_accepted, len(server.requests)
    yield
    assert server.connections_accepted == connections, "a connection was opened"
    assert len(server.requests) == requests, "a request was sent"


def valid_input(operation: str) -> dict[str, Any]:
    if operation == "invoke_endpoint_async":
        return {"endpoint_name": "ep", "input_location": "s3://bucket/input.json"}
    return {"endpoint_name": "ep", "body": b"{}"}


def call(client: Client, operation: str, **params: Any) -> Any:
    method: Callable[..., Any] = getattr(client, operation)
    return method(**params)


def assert_rejected(error: InvalidParamsError, field: str) -> None:
    assert field in error.fields, error.fields
    assert f"{field}:" in str(error)


# --- header fields ------------------------------------------------------------------------

HEADER_CASES = [
    (operation, field, kind)
    for operation, fields in HEADER_FIELDS.items()
    for field in fields
    for kind in BAD_CHARACTERS
]


@pytest.mark.parametrize(("operation", "field", "kind"), HEADER_CASES)
@pytest.mark.usefixtures("no_io")
def test_bad_characters_in_a_header_field_are_rejected_before_any_io(
    client: Client, operation: str, field: str, kind: str
) -> None:
    params = valid_input(operation)
    base = params.get(field, "s3://bucket/in" if field == "input_location" else "value")
    params[field] = f"{base}{BAD_CHARACTERS[kind]}tail"
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, **params)
    assert_rejected(caught.value, field)


@pytest.mark.parametrize("operation", list(HEADER_FIELDS))
@pytest.mark.usefixtures("no_io")
def test_custom_attributes_are_never_quoted_in_the_error(client: Client, operation: str) -> None:
    params = valid_input(operation)
    params["custom_attributes"] = "secret-customer-data\r\nX-Injected: 1"
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, **params)
    assert "secret-customer-data" not in str(caught.value)
    assert "secret-customer-data" not in repr(caught.value)


LONGEST = {
    "content_type": 1024,
    "accept": 1024,
    "custom_attributes": 1024,
    "target_model": 1024,
    "target_variant": 63,
    "target_container_hostname": 63,
    "inference_id": 64,
    "enable_explanations": 64,
    "inference_component_name": 63,
    "session_id": 256,
}


@pytest.mark.parametrize("field", list(LONGEST))
def test_over_long_header_values_are_rejected_and_the_longest_is_sent_whole(
    client: Client, server: HTTPTestServer, field: str
) -> None:
    longest = "a" * LONGEST[field]
    before = server.connections_accepted, len(server.requests)
    with pytest.raises(InvalidParamsError) as caught:
        call(client, "invoke_endpoint", endpoint_name="ep", body=b"{}", **{field: longest + "a"})
    assert_rejected(caught.value, field)
    assert (server.connections_accepted, len(server.requests)) == before
    call(client, "invoke_endpoint", endpoint_name="ep", body=b"{}", **{field: longest})
    header = {
        "content_type": "Content-Type",
        "accept": "Accept",
        "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
        "target_model": "X-Amzn-SageMaker-Target-Model",
        "target_variant": "X-Amzn-SageMaker-Target-Variant",
        "target_container_hostname": "X-Amzn-SageMaker-Target-Container-Hostname",
        "inference_id": "X-Amzn-SageMaker-Inference-Id",
        "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
        "inference_component_name": "X-Amzn-SageMaker-Inference-Component",
        "session_id": "X-Amzn-SageMaker-Session-Id",
    }[field]
    assert server.requests[-1].header(header) == longest


# --- endpoint names -----------------------------------------------------------------------

BAD_NAMES = {
    "slash": "a/b",
    "dot-dot": "..",
    "dot-dot-path": "../other",
    "encoded-slash": "a%2Fb",
    "encoded-dot-dot": "%2E%2E",
    "space": "a b",
    "leading-space": " a",
    "unicode": "modèle",
    "cjk": "模型",
    "arabic-digit": "\u0661",
    "over-long": "a" * 64,
    "empty": "",
    "leading-hyphen": "-a",
    "trailing-hyphen": "a-",
    "underscore": "a_b",
    "query": "a?b=c",
    "fragment": "a#b",
    "crlf": "a\r\nb",
    "nul": "a\x00b",
}


@pytest.mark.parametrize("operation", list(HEADER_FIELDS))
@pytest.mark.parametrize("kind", list(BAD_NAMES))
@pytest.mark.usefixtures("no_io")
def test_bad_endpoint_names_are_rejected_before_any_io(client: Client, operation: str, kind: str) -> None:
    params = valid_input(operation)
    params["endpoint_name"] = BAD_NAMES[kind]
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, **params)
    assert_rejected(caught.value, "endpoint_name")


@pytest.mark.parametrize("operation", list(HEADER_FIELDS))
@pytest.mark.parametrize("value", [None, 7, b"ep", ["ep"]], ids=["none", "int", "bytes", "list"])
@pytest.mark.usefixtures("no_io")
def test_endpoint_name_of_the_wrong_type_is_rejected_before_any_io(client: Client, operation: str, value: Any) -> None:
    params = valid_input(operation)
    params["endpoint_name"] = value
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, **params)
    assert_rejected(caught.value, "endpoint_name")


def test_the_longest_endpoint_name_is_sent(client: Client, server: HTTPTestServer) -> None:
    name = "a-" * 31 + "b"  # 63 characters
    client.invoke_endpoint(endpoint_name=name, body=b"{}")
    assert server.requests[-1].target == f"/endpoints/{name}/invocations"


# --- bodies -------------------------------------------------------------------------------


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def _closed_file() -> Any:
    handle = open(os.devnull, "rb")  # noqa: SIM115 - closed on purpose
    handle.close()
    return handle


OVERSIZED: dict[str, Callable[[], Any]] = {
    "bytes": lambda: b"x" * (SIX_MIB + 1),
    "bytearray": lambda: bytearray(SIX_MIB + 1),
    "memoryview": lambda: memoryview(bytes(SIX_MIB + 1)),
    "str-utf8": lambda: "é" * (SIX_MIB // 2) + "x",  # 6 MiB + 1 bytes once encoded
    "seekable-file": lambda: io.BytesIO(bytes(SIX_MIB + 1)),
    "unseekable-stream": lambda: Unseekable(bytes(SIX_MIB + 1)),
}


@pytest.mark.parametrize("operation", ["invoke_endpoint", "invoke_endpoint_with_response_stream"])
@pytest.mark.parametrize("kind", list(OVERSIZED))
@pytest.mark.usefixtures("no_io")
def test_a_body_over_6_mib_is_rejected_before_any_io(client: Client, operation: str, kind: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, endpoint_name="ep", body=OVERSIZED[kind]())
    assert_rejected(caught.value, "body")
    assert caught.value.problems[0].rule == "size"


def test_a_body_of_exactly_6_mib_is_sent_whole(client: Client, server: HTTPTestServer) -> None:
    data = os.urandom(SIX_MIB)
    call(client, "invoke_endpoint", endpoint_name="ep", body=Unseekable(data))
    assert hashlib.sha256(server.requests[-1].body).digest() == hashlib.sha256(data).digest()


NOT_BYTES: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "int": lambda: 42,
    "float": lambda: 1.5,
    "bool": lambda: True,
    "dict": lambda: {"numbers": [1, 2]},
    "list": lambda: [b"a", b"b"],
    "tuple": lambda: (b"a",),
    "object": object,
    "generator": lambda: (chunk for chunk in [b"a"]),
    "text-file": lambda: io.StringIO("text"),
    "reader-of-str": lambda: type("Reader", (), {"read": lambda self, size=-1: "text"})(),
    "closed-file": _closed_file,
}


@pytest.mark.parametrize("operation", ["invoke_endpoint", "invoke_endpoint_with_response_stream"])
@pytest.mark.parametrize("kind", list(NOT_BYTES))
@pytest.mark.usefixtures("no_io")
def test_a_body_that_is_not_bytes_is_rejected_before_any_io(client: Client, operation: str, kind: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        call(client, operation, endpoint_name="ep", body=NOT_BYTES[kind]())
    assert_rejected(caught.value, "body")


@pytest.mark.usefixtures("no_io")
def test_a_body_whose_read_fails_propagates_that_error_before_any_io(client: Client) -> None:
    class Failing:
        def read(self, size: int = -1) -> bytes:
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        call(client, "invoke_endpoint", endpoint_name="ep", body=Failing())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_ttl_seconds", 59),
        ("request_ttl_seconds", 21601),
        ("request_ttl_seconds", "60"),
        ("request_ttl_seconds", True),
        ("invocation_timeout_seconds", 0),
        ("invocation_timeout_seconds", 3601),
        ("invocation_timeout_seconds", 1.5),
        ("input_location", "ftp://host/input.json"),
        ("input_location", "s3:/missing-slash"),
        ("s3_output_path_extension", "s3://elsewhere"),
        ("filename", "a..b"),
        ("filename", "../x"),
    ],
)
@pytest.mark.usefixtures("no_io")
def test_async_parameters_out_of_range_are_rejected_before_any_io(client: Client, field: str, value: Any) -> None:
    params = valid_input("invoke_endpoint_async")
    params[field] = value
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint_async(**params)
    assert_rejected(caught.value, field)


def test_every_problem_is_reported_at_once(client: Client, no_io: None) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        call(client, "invoke_endpoint", endpoint_name="a/b", body=42, content_type="x\r\n", target_variant="-")
    assert set(caught.value.fields) == {"endpoint_name", "body", "content_type", "target_variant"}


# --- client configuration that ends up in headers ------------------------------------------

HOSTILE_CONFIGURATION: dict[str, dict[str, Any]] = {
    "region": {"region": "us-east-1\r\nX-Injected: 1"},
    "user_agent_extra": {"user_agent_extra": "app/1.0\r\nX-Injected: 1"},
    "access_key_id": {"credentials": ("AKIDEXAMPLE\r\nX-Injected: 1", CREDENTIALS[1])},
    "session_token": {"credentials": (*CREDENTIALS, "token\r\nX-Injected: 1")},
}


def configuration(server: HTTPTestServer, kind: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": server.url,
        "credentials": CREDENTIALS,
        "retryer": StandardRetryer(sleep=Sleeps()),
    }
    fields.update(HOSTILE_CONFIGURATION[kind])
    return fields


@pytest.mark.parametrize("kind", list(HOSTILE_CONFIGURATION))
def test_configuration_that_cannot_be_sent_in_a_header_is_rejected_up_front(
    server: HTTPTestServer, kind: str
) -> None:
    before = server.connections_accepted, len(server.requests)
    fields = configuration(server, kind)
    try:
        with Client(**fields) as hostile:
            hostile.invoke_endpoint(endpoint_name="ep", body=b"{}")
    except InvalidParamsError:
        pass
    except SageMakerRuntimeError as error:
        raise AssertionError(f"not rejected up front: {type(error).__name__}") from error
    else:
        raise AssertionError("sent")
    assert (server.connections_accepted, len(server.requests)) == before


@pytest.mark.parametrize("kind", list(HOSTILE_CONFIGURATION))
def test_configuration_that_cannot_be_sent_in_a_header_never_reaches_the_wire(
    server: HTTPTestServer, kind: str
) -> None:
    """Whatever error it is, no header is injected: nothing with CR/LF reaches the server."""
    fields = configuration(server, kind)
    before = len(server.requests)
    with pytest.raises(SageMakerRuntimeError), Client(**fields) as hostile:
        hostile.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert len(server.requests) == before
    assert not any("x-injected" in r.headers for r in server.requests)


# --- property: anything accepted is sent byte-exact and signed correctly -------------------

ANY_TEXT = st.characters(codec="utf-8", exclude_categories=["Cs"])
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
NAMES = st.from_regex(r"\A[a-zA-Z0-9](-*[a-zA-Z0-9]){0,30}\Z")


def text_field(max_size: int) -> st.SearchStrategy[str]:
    return st.text(PRINTABLE, max_size=max_size) | st.text(ANY_TEXT, max_size=max_size) | NAMES


OPTIONAL = {
    "content_type": text_field(40),
    "accept": text_field(40),
    "custom_attributes": text_field(40),
    "target_model": text_field(40),
    "target_variant": NAMES | text_field(20),
    "target_container_hostname": NAMES | text_field(20),
    "inference_id": text_field(70),
    "enable_explanations": text_field(20),
    "inference_component_name": NAMES | text_field(20),
    "session_id": st.just("NEW_SESSION") | NAMES | text_field(20),
}
HEADER_OF = {
    "content_type": "Content-Type",
    "accept": "Accept",
    "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "target_model": "X-Amzn-SageMaker-Target-Model",
    "target_variant": "X-Amzn-SageMaker-Target-Variant",
    "target_container_hostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "inference_id": "X-Amzn-SageMaker-Inference-Id",
    "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
    "inference_component_name": "X-Amzn-SageMaker-Inference-Component",
    "session_id": "X-Amzn-SageMaker-Session-Id",
}
INPUTS = st.fixed_dictionaries(
    {
        "endpoint_name": NAMES | st.text(ANY_TEXT, max_size=70),
        "body": st.binary(max_size=2048) | st.text(ANY_TEXT, max_size=200),
    },
    optional=OPTIONAL,
)


def assert_signed(request: RecordedRequest) -> None:
    """Recompute the signature from the request as it arrived."""
    authorization = parse_authorization(request.header("Authorization") or "")
    assert authorization.access_key_id == CREDENTIALS[0]
    expected = compute_signature(
        secret_key=CREDENTIALS[1],
        method=request.method,
        raw_path=request.path,
        raw_query="",
        headers=request.header_lines,
        signed_headers=authorization.signed_headers,
        payload_hash=hashlib.sha256(request.body).hexdigest(),
        amz_date=request.header("X-Amz-Date") or "",
        region=authorization.region,
        service=authorization.service,
    )
    assert expected == authorization.signature
    unsigned = {name.lower() for name in request.header_names} - set(authorization.signed_headers)
    assert unsigned <= {"user-agent", "authorization"}, unsigned  # every API header is signed


@settings(max_examples=200, deadline=None)
@given(params=INPUTS)
def test_whatever_the_validators_accept_is_sent_byte_exact_and_signed(
    client: Client, server: HTTPTestServer, params: dict[str, Any]
) -> None:
    before = len(server.requests)
    try:
        client.invoke_endpoint(**params)
    except InvalidParamsError as error:
        assert len(server.requests) == before  # rejected before any I/O
        assert set(error.fields) <= set(params)
        return
    assert len(server.requests) == before + 1
    request = server.requests[-1]
    assert request.target == f"/endpoints/{quote(params['endpoint_name'], safe='')}/invocations"
    body = params["body"]
    assert request.body == (body.encode("utf-8") if isinstance(body, str) else body)
    for field, header in HEADER_OF.items():
        if field in params:
            # HTTP strips leading and trailing spaces and tabs from a field value (RFC 9110
            # §5.5); SigV4 trims them too, so the signature covers what arrives.
            assert request.header(header) == params[field].strip(" \t"), field
        elif field == "content_type":
            assert request.header(header) == "application/octet-stream"
        else:
            assert request.header(header) is None
    assert_signed(request)
