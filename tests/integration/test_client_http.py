"""The whole default stack against a real HTTP server on loopback (DESIGN §2, issue "Core").

The server is the raw-socket test server: it records every request byte for byte and
answers from a script, so each test states what the server saw. Each test runs on Client and
on AsyncClient (behind Client's API, see tests/async_clients.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smruntime import Client
from smruntime.errors import (
    APIError,
    ConnectError,
    MaxAttemptsExceededError,
    ModelError,
    ReadTimeoutError,
    ServiceUnavailable,
)
from smruntime.middleware import Position, build_middleware, finalize_middleware
from smruntime.retry import StandardRetryer
from tests.async_clients import KINDS, make_client
from tests.servers import HTTPTestServer, RecordedRequest, make_certificate, respond

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as running:
        yield running


def sync_client_for(url: str, **fields: Any) -> Client:
    fields.setdefault("retryer", StandardRetryer(sleep=lambda seconds: None))
    return Client(region="us-east-1", endpoint_url=url, credentials=CREDENTIALS, **fields)


async def _no_wait(seconds: float) -> None:
    """The asyncio retryer's sleep in these tests."""


@pytest.fixture(params=KINDS)
def client_for(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Makes a Client, or an AsyncClient behind Client's API: each test that uses it runs on both."""

    def make(url: str, **fields: Any) -> Any:
        fields.setdefault("retryer", StandardRetryer(sleep=lambda seconds: None, asleep=_no_wait))
        return make_client(request.param, region="us-east-1", endpoint_url=url, credentials=CREDENTIALS, **fields)

    return make


def signed_headers(request: RecordedRequest) -> list[str]:
    authorization = request.header("Authorization") or ""
    return authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


def signature(request: RecordedRequest) -> str:
    return (request.header("Authorization") or "").rsplit("Signature=", 1)[1]


def test_success_with_every_header_and_output(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    server.enqueue(
        respond(
            200,
            b'{"sum": 6}',
            headers=[
                ("Content-Type", "application/json"),
                ("x-Amzn-Invoked-Production-Variant", "AllTraffic"),
                ("X-Amzn-SageMaker-Custom-Attributes", "seen=1"),
                ("X-Amzn-SageMaker-New-Session-Id", "s-1; Expires=2026-11-24T20:00:00Z"),
                ("X-Amzn-SageMaker-Closed-Session-Id", "s-0"),
                ("x-amzn-RequestId", "rid-1"),
            ],
        )
    )
    with client_for(server.url) as client:
        out = client.invoke_endpoint(
            endpoint_name="sum",
            body=b'{"numbers": [1, 2, 3]}',
            content_type="application/json",
            accept="application/json",
            custom_attributes="a=1",
            target_model="m.tar.gz",
            target_variant="v1",
            target_container_hostname="c1",
            inference_id="i-1",
            enable_explanations="`true`",
            inference_component_name="ic-1",
            session_id="NEW_SESSION",
        )
    (seen,) = server.requests
    assert (seen.method, seen.target) == ("POST", "/endpoints/sum/invocations")
    assert seen.body == b'{"numbers": [1, 2, 3]}'
    assert seen.headers["content-length"] == str(len(seen.body))
    for name, value in {
        "content-type": "application/json",
        "accept": "application/json",
        "x-amzn-sagemaker-custom-attributes": "a=1",
        "x-amzn-sagemaker-target-model": "m.tar.gz",
        "x-amzn-sagemaker-target-variant": "v1",
        "x-amzn-sagemaker-target-container-hostname": "c1",
        "x-amzn-sagemaker-inference-id": "i-1",
        "x-amzn-sagemaker-enable-explanations": "`true`",
        "x-amzn-sagemaker-inference-component": "ic-1",
        "x-amzn-sagemaker-session-id": "NEW_SESSION",
    }.items():
        assert seen.headers[name] == value
        assert name in signed_headers(seen)
    assert seen.headers["amz-sdk-request"] == "attempt=1; max=3"
    assert seen.headers["user-agent"].startswith("smruntime/")
    assert "user-agent" not in signed_headers(seen)
    assert out.body == b'{"sum": 6}'
    assert (out.content_type, out.invoked_production_variant, out.custom_attributes) == (
        "application/json",
        "AllTraffic",
        "seen=1",
    )
    assert out.new_session_id == "s-1; Expires=2026-11-24T20:00:00Z"
    assert out.closed_session_id == "s-0"
    assert (out.metadata.request_id, out.metadata.attempts, out.metadata.http_status) == ("rid-1", 1, 200)


def test_503_503_200_succeeds_on_the_third_attempt_resigned_each_time(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    unavailable = respond(503, b'{"message": "busy"}', headers=[("X-Amzn-ErrorType", "ServiceUnavailable")])
    server.enqueue(unavailable, unavailable, respond(200, b"ok"))
    with client_for(server.url) as client:
        out = client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert out.body == b"ok"
    assert out.metadata.attempts == 3
    attempts = server.requests
    assert len(attempts) == 3
    assert len({signature(r) for r in attempts}) == 3
    assert len({r.headers["amz-sdk-invocation-id"] for r in attempts}) == 1
    assert [r.headers["amz-sdk-request"] for r in attempts] == [f"attempt={n}; max=3" for n in (1, 2, 3)]
    assert all(r.body == b"x" for r in attempts)


def test_500_three_times_is_max_attempts_exceeded_with_the_500_as_cause(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    failure = respond(500, b'{"message": "boom"}', headers=[("X-Amzn-ErrorType", "InternalFailure")])
    server.enqueue(failure, failure, failure)
    with client_for(server.url) as client, pytest.raises(MaxAttemptsExceededError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, APIError)
    assert caught.value.__cause__.http_status == 500
    assert caught.value.__cause__.code == "InternalFailure"
    assert len(server.requests) == 3


def test_a_read_timeout_sends_the_request_once(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    server.enqueue(respond(200, b"late", delay=1.0))
    with client_for(server.url, read_timeout=0.2) as client, pytest.raises(ReadTimeoutError):
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert len(server.requests) == 1


def test_a_read_timeout_is_resent_only_when_opted_in(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    server.enqueue(respond(200, b"late", delay=1.0), respond(200, b"ok"))
    with client_for(server.url, read_timeout=0.2, retry_read_timeouts=True,
                    retryer=StandardRetryer(sleep=lambda s: None, retry_read_timeouts=True, asleep=_no_wait)) as client:
        out = client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert out.body == b"ok"
    assert len(server.requests) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_a_connect_error_after_the_retries(client_for: Callable[..., Any]) -> None:
    delays: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    async def record(seconds: float) -> None:
        delays.append(seconds)

    with client_for(url, retryer=StandardRetryer(sleep=delays.append, asleep=record)) as client, pytest.raises(
        MaxAttemptsExceededError
    ) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert isinstance(caught.value.__cause__, ConnectError)
    assert caught.value.attempts == 3
    assert len(delays) == 2


def test_424_is_a_model_error_with_its_fields_and_is_not_retried(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    body = {
        "message": "Received client error (400) from primary with message \"bad\".",
        "OriginalStatusCode": 400,
        "OriginalMessage": "bad",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep",
    }
    server.enqueue(
        respond(424, json.dumps(body).encode(), headers=[("X-Amzn-ErrorType", "ModelError"), ("x-amzn-RequestId", "r-424")])
    )
    with client_for(server.url) as client, pytest.raises(ModelError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    error = caught.value
    assert (error.http_status, error.request_id, error.original_status_code) == (424, "r-424", 400)
    assert error.original_message == "bad"
    assert error.log_stream_arn == body["LogStreamArn"]
    assert len(server.requests) == 1


def test_400_throttling_is_retried_then_raised_with_its_code(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    throttled = respond(400, b'{"message": null}', headers=[("X-Amzn-ErrorType", "ThrottlingException")])
    server.enqueue(throttled, throttled, throttled)
    with client_for(server.url) as client, pytest.raises(MaxAttemptsExceededError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    cause = caught.value.__cause__
    assert isinstance(cause, APIError) and cause.code == "ThrottlingException" and cause.throttling
    assert len(server.requests) == 3


def test_a_build_middleware_header_is_signed_and_one_after_signing_is_not(server: HTTPTestServer) -> None:
    """On Client: these middleware have only a sync handle (AsyncClient refuses them)."""
    def add_headers(stack):
        def traced(ctx, in_, next):
            in_.request.headers["X-Amzn-SageMaker-Custom-Attributes"] = "trace_id=abc"
            return next(ctx, in_)

        def late(ctx, in_, next):
            in_.request.headers["X-Late"] = "after-signing"
            return next(ctx, in_)

        stack.build.add(build_middleware("AddTrace", traced), Position.AFTER)
        stack.finalize.insert(finalize_middleware("AddLate", late), "Signing", Position.AFTER)

    with sync_client_for(server.url, api_options=[add_headers]) as client:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    (seen,) = server.requests
    assert seen.headers["x-amzn-sagemaker-custom-attributes"] == "trace_id=abc"
    assert "x-amzn-sagemaker-custom-attributes" in signed_headers(seen)
    assert seen.headers["x-late"] == "after-signing"
    assert "x-late" not in signed_headers(seen)


def test_an_api_option_that_raises_aborts_before_any_io(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    class Refused(Exception):
        pass

    def refuse(stack):
        raise Refused("policy says no")

    with client_for(server.url) as client, pytest.raises(Refused):
        client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[lambda o: o.api_options.append(refuse)])
    assert server.requests == []


def test_per_call_options_change_only_that_call(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    unavailable = respond(503, b"{}", headers=[("X-Amzn-ErrorType", "ServiceUnavailable")])
    server.enqueue(unavailable, unavailable)
    with client_for(server.url) as client:
        with pytest.raises(MaxAttemptsExceededError):
            client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[lambda o: setattr(o, "max_attempts", 2)])
        assert len(server.requests) == 2
        server.enqueue(unavailable)
        out = client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert out.metadata.attempts == 2
    assert server.requests[-1].headers["amz-sdk-request"] == "attempt=2; max=3"


def test_service_unavailable_once_without_retries(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    server.enqueue(respond(503, b"{}", headers=[("X-Amzn-ErrorType", "ServiceUnavailable")]))
    with client_for(server.url, retry_mode="none", retryer=None) as client, pytest.raises(ServiceUnavailable):
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert len(server.requests) == 1


def test_connections_are_reused_and_released_on_error_paths(server: HTTPTestServer, client_for: Callable[..., Any]) -> None:
    server.enqueue(
        respond(424, b'{"message": "m"}', headers=[("X-Amzn-ErrorType", "ModelError")]),
        respond(400, b'{"message": "v"}', headers=[("X-Amzn-ErrorType", "ValidationError")]),
        respond(200, b"ok"),
    )
    with client_for(server.url) as client:
        for _ in range(2):
            with pytest.raises(APIError):
                client.invoke_endpoint(endpoint_name="ep", body=b"x")
        assert client.invoke_endpoint(endpoint_name="ep", body=b"x").body == b"ok"
    assert server.connections_accepted == 1


@pytest.mark.parametrize("how", ["verify", "AWS_CA_BUNDLE", "profile ca_bundle"])
def test_https_endpoint_trusted_through_verify_or_the_aws_ca_bundle_settings(
    client_for: Callable[..., Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    certificate = make_certificate(tmp_path)
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text(f"[default]\nca_bundle = {certificate.ca_file}\n" if how == "profile ca_bundle" else "")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    if how == "AWS_CA_BUNDLE":
        monkeypatch.setenv("AWS_CA_BUNDLE", certificate.ca_file)
    fields = {"verify": certificate.ca_file} if how == "verify" else {}
    with HTTPTestServer(tls=certificate.server_context, default=respond(200, b"{}")) as server:
        with client_for(f"https://localhost:{server.port}", **fields) as client:
            assert client.invoke_endpoint(endpoint_name="ep", body=b"{}").body == b"{}"
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
        config.write_text("")
        untrusting = client_for(f"https://localhost:{server.port}", max_attempts=1)  # certifi's bundle
        with untrusting, pytest.raises(ConnectError, match="certificate"):
            untrusting.invoke_endpoint(endpoint_name="ep", body=b"{}")
