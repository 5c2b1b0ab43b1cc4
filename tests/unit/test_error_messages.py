"""Error messages say what happened and where, in terms a user knows: no internal class names,
the right scheme and URL, and a hint when the region is one the endpoint rules do not know."""

from __future__ import annotations

import socket

import pytest

from smruntime import Client
from smruntime.errors import ConnectError, MaxAttemptsExceededError, ModelStreamError, SageMakerRuntimeError
from smruntime.eventstream import decode_all, encode_message
from smruntime.http import HTTPRequest
from smruntime.retry import StandardRetryer
from smruntime.streaming import message_error
from smruntime.transport import MockHTTPClient
from smruntime.transport.error_mapping import map_transport_error

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def _unresolvable(request: HTTPRequest) -> tuple[int, dict[str, str], bytes]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _client(region: str, max_attempts: int) -> Client:
    retryer = StandardRetryer(max_attempts=max_attempts, sleep=lambda seconds: None)
    return Client(region=region, credentials=CREDENTIALS, http_client=MockHTTPClient(_unresolvable), retryer=retryer)


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_a_connect_failure_in_a_region_the_endpoint_rules_do_not_know_says_so(max_attempts: int) -> None:
    with pytest.raises((ConnectError, MaxAttemptsExceededError)) as caught:
        _client("us-fake-1", max_attempts).invoke_endpoint(endpoint_name="echo", body=b"{}")
    text = str(caught.value)
    assert text.count("region 'us-fake-1' is unknown to the endpoint rules") == 1
    assert "\n" not in text


def test_a_connect_failure_in_a_known_region_has_no_region_hint() -> None:
    with pytest.raises(ConnectError) as caught:
        _client("eu-west-1", 1).invoke_endpoint(endpoint_name="echo", body=b"{}")
    assert "unknown to the endpoint rules" not in str(caught.value)


def test_other_errors_in_an_unknown_region_get_no_region_hint() -> None:
    client = Client(
        region="us-fake-1", credentials=CREDENTIALS, http_client=MockHTTPClient(lambda request: (400, {}, b"{}"))
    )
    with pytest.raises(SageMakerRuntimeError) as caught:
        client.invoke_endpoint(endpoint_name="echo", body=b"{}")
    assert "unknown to the endpoint rules" not in str(caught.value)


@pytest.mark.parametrize(("host", "shown"), [("runtime.example.invalid", "runtime.example.invalid:443"), ("::1", "[::1]:443")])
def test_transport_errors_name_no_internal_class(host: str, shown: str) -> None:
    import urllib3.exceptions

    from smruntime.transport.requests_client import _TrackedHTTPSConnection

    connection = _TrackedHTTPSConnection(host, 443)
    failure = urllib3.exceptions.NewConnectionError(connection, "Failed to establish a new connection: refused")
    text = str(map_transport_error(failure))
    assert "_Tracked" not in text and "_HTTP" not in text
    assert f"NewConnectionError: {shown}: Failed" in text  # an IPv6 address in brackets, as in its URL


def test_a_connect_timeout_shows_urllib3s_message_not_its_connection_object() -> None:
    import urllib3.exceptions

    from smruntime.transport.requests_client import _TrackedHTTPSConnection

    connection = _TrackedHTTPSConnection("runtime.example.invalid", 443)
    failure = urllib3.exceptions.ConnectTimeoutError(connection, "Connection to runtime.example.invalid timed out.")
    text = str(map_transport_error(failure))
    assert text == "timed out connecting: ConnectTimeoutError: Connection to runtime.example.invalid timed out."


@pytest.mark.parametrize("fast", [False, True], ids=["requests", "fast"])
def test_a_refused_connection_names_the_address_not_a_class(fast: bool) -> None:
    from smruntime.transport import FastHTTPClient

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: the connection is refused
    fields: dict[str, object] = {"http_client": FastHTTPClient()} if fast else {}
    client = Client(
        region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}", credentials=CREDENTIALS, max_attempts=1, **fields
    )
    with client, pytest.raises(ConnectError) as caught:
        client.invoke_endpoint(endpoint_name="echo", body=b"{}")
    text = str(caught.value)
    assert "_Tracked" not in text and "_HTTP" not in text and " object at 0x" not in text
    assert "refused" in text and f"127.0.0.1:{port}" in text


@pytest.mark.parametrize(("min_len", "detail"), [(1, "must be at least 1 character, got 0"), (3, "must be at least 3 characters, got 0")])
def test_a_too_short_string_counts_its_characters_in_words(min_len: int, detail: str) -> None:
    from smruntime.validation import string

    problems: list = []
    string(problems, "field", "", min_len=min_len)
    assert [problem.detail for problem in problems] == [detail]


def test_an_error_event_of_a_stream_reads_as_one_and_not_as_an_http_status() -> None:
    frame = encode_message(
        {":message-type": "exception", ":exception-type": "ModelStreamError", ":content-type": "application/json"},
        b'{"Message": "the model stopped", "ErrorCode": "StreamBroken"}',
    )
    (message,) = decode_all(frame)
    error = message_error(message, "InvokeEndpointWithResponseStream", "req-1")
    assert isinstance(error, ModelStreamError)
    assert str(error) == (
        "operation error SageMaker Runtime: InvokeEndpointWithResponseStream, event stream error, "
        "RequestID: req-1, ModelStreamError: the model stopped"
    )
