"""The local endpoint against real clients: boto3 (and botocore's signer) over loopback HTTP.

One LocalEndpoint and one container-contract server (a separate process) serve the module;
tests that change server-wide settings (clock offset, faults) put them back.
"""

from __future__ import annotations

import asyncio
import calendar
import email.utils
import functools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
import httpx
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from smruntime.local import (
    EXAMPLE_CREDENTIALS,
    EndpointConfig,
    FaultConfig,
    InferenceComponentConfig,
    LocalConfig,
    LocalEndpoint,
    ModelFailure,
    ModelRequest,
    ModelResponse,
    VariantConfig,
    create_app,
    default_config,
    load_config,
)
from smruntime.local.credentials import AcceptedKey, resolve_credentials
from smruntime.local.state import EndpointRuntime

KEY_ID, SECRET = "AKIDLOCALTEST", "local-test-secret/abc"
REPO = Path(__file__).resolve().parents[2]
SIX_MIB = 6 * 1024 * 1024


# --- models defined in code -----------------------------------------------------------------

def upper(request: ModelRequest) -> ModelResponse:
    return ModelResponse(body=request.body.upper(), content_type="text/plain")


def crash(request: ModelRequest) -> bytes:
    raise RuntimeError("the model fell over")


def slow(request: ModelRequest) -> bytes:
    time.sleep(0.5)
    return b"too late"


def stateful(request: ModelRequest) -> ModelResponse:
    """Reports the session it is called in; the body ``close`` ends the session."""
    answer = json.dumps({"session": request.session_id, "variant": request.variant_name}).encode()
    return ModelResponse(body=answer, content_type="application/json", custom_attributes="model-set=1",
                         close_session=request.body == b"close")


def teapot(request: ModelRequest) -> bytes:
    raise ModelFailure(418, "x" * 5000)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def container_url() -> Iterator[str]:
    """The container-contract server, in its own process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.container_server", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


class _UnhashableModel:
    """A callable model object that defines ``__eq__`` and so has no hash."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _UnhashableModel)

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, request: ModelRequest) -> bytes:
        return b"answered: " + request.body


def _config(container_url: str) -> LocalConfig:
    serving = EndpointConfig.serving
    return LocalConfig(
        endpoints=(
            *default_config().endpoints,
            serving("inspect", "inspect"),
            serving("faulty", "echo"),
            serving("crash", crash),
            serving("slow", slow, container_timeout=0.2),
            serving("teapot", teapot),
            serving("stateful", stateful),
            serving("unhashable", _UnhashableModel()),
            serving("container", container_url),
            serving("armed", "echo", faults=FaultConfig(fail_next=1, fail_status=500)),
            EndpointConfig("ab", variants=(VariantConfig("a", model="echo", weight=1),
                                           VariantConfig("b", model="inspect", weight=0))),
            EndpointConfig("mme", variants=(VariantConfig(models={"sum.tar.gz": "sum", "echo.tar.gz": "echo"}),)),
            EndpointConfig("multi", variants=(VariantConfig(containers={"first": "echo", "second": "inspect"},
                                                            inference_execution="Direct"),)),
            EndpointConfig("pipeline", variants=(VariantConfig(containers={"one": "echo", "two": upper}),)),
            EndpointConfig("ic", variants=(VariantConfig("hosting"),), inference_components=(
                InferenceComponentConfig("ic-sum", "sum"), InferenceComponentConfig("ic-inspect", "inspect"))),
        ),
        seed=1,
    )


@pytest.fixture(scope="module")
def endpoint(container_url: str) -> Iterator[LocalEndpoint]:
    with LocalEndpoint(_config(container_url), credentials=(KEY_ID, SECRET)) as started:
        yield started


@functools.cache
def _boto_session() -> boto3.session.Session:
    # One session for every client: the first client of a session costs ~100 ms, the next ~2 ms.
    return boto3.session.Session()


def _client(url: str, *, key: str = KEY_ID, secret: str = SECRET, region: str = "us-east-1",
            **config: Any) -> Any:
    settings = {"retries": {"total_max_attempts": 1}, "connect_timeout": 2, "read_timeout": 5, **config}
    return _boto_session().client(
        "sagemaker-runtime", endpoint_url=url, region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret, config=Config(**settings),
    )


@pytest.fixture(scope="module")
def client(endpoint: LocalEndpoint) -> Iterator[Any]:
    made = _client(endpoint.url)
    yield made
    made.close()


@pytest.fixture
def clients() -> Iterator[Callable[..., Any]]:
    """Makes boto3 clients (``_client``'s arguments) and closes their pooled connections afterwards."""
    made: list[Any] = []

    def make(url: str, **kwargs: Any) -> Any:
        made.append(_client(url, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _call(client: Any, **kwargs: Any) -> dict[str, Any]:
    """invoke_endpoint with the body read, so the connection goes back to the pool."""
    out: dict[str, Any] = client.invoke_endpoint(**kwargs)
    out["Body"] = out["Body"].read()
    return out


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


# --- InvokeEndpoint through boto3 -----------------------------------------------------------

def test_sum_does_real_arithmetic(client: Any) -> None:
    out = _call(client, EndpointName="sum", Body=json.dumps({"numbers": [1, 2, 3, 4.5]}),
                                 ContentType="application/json")
    assert json.loads(out["Body"]) == {"sum": 10.5, "mean": 2.625, "count": 4, "min": 1, "max": 4.5}
    assert out["ContentType"] == "application/json"
    assert out["InvokedProductionVariant"] == "AllTraffic"
    request_id = out["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == request_id


def test_a_model_object_without_a_hash_serves_calls(client: Any) -> None:
    out = _call(client, EndpointName="unhashable", Body=b"hi", ContentType="text/plain")
    assert out["Body"] == b"answered: hi"


def test_every_input_header_reaches_the_model(client: Any) -> None:
    out = _call(
        client, EndpointName="inspect", Body=b"payload", ContentType="text/csv", Accept="application/json",
        CustomAttributes="trace=abc", TargetModel="m.tar.gz", TargetVariant="AllTraffic",
        InferenceId="inf-1", EnableExplanations="`true`", SessionId="NEW_SESSION", PrefixAwareId="chat-app-1",
    )
    seen = json.loads(out["Body"])
    assert {key: seen[key] for key in ("content_type", "accept", "custom_attributes", "target_model",
                                       "target_variant", "inference_id", "enable_explanations", "session_id",
                                       "prefix_aware_id", "endpoint_name", "variant_name", "container", "body")} == {
        "content_type": "text/csv", "accept": "application/json", "custom_attributes": "trace=abc",
        "target_model": "m.tar.gz", "target_variant": "AllTraffic", "inference_id": "inf-1",
        "enable_explanations": "`true`", "session_id": "NEW_SESSION", "prefix_aware_id": "chat-app-1",
        "endpoint_name": "inspect",
        "variant_name": "AllTraffic", "container": "primary", "body": "payload",
    }
    assert out["CustomAttributes"] == "trace=abc"
    assert "NewSessionId" in out


def test_echo_and_tokens_answer_in_one_piece(client: Any) -> None:
    echoed = _call(client, EndpointName="echo", Body=b"\x00binary\xff", ContentType="application/x-thing")
    assert echoed["Body"] == b"\x00binary\xff"
    assert echoed["ContentType"] == "application/x-thing"
    text = " streams  one word at a time \n"
    tokens = _call(client, EndpointName="tokens", Body=text.encode(), ContentType="text/plain")
    assert tokens["Body"].decode() == text


def test_model_failure_is_model_error_with_original_status(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        _call(client, EndpointName="sum", Body=b"{not json", ContentType="application/json")
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert "not valid JSON" in response["OriginalMessage"]
    assert response["LogStreamArn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/sum"
    assert response["Error"]["Message"].startswith("Received client error (400) from primary with message ")
    assert response["Message"] == response["Error"]["Message"]  # the modeled member: spelled ``Message``


def test_long_container_message_is_truncated_to_2048(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        _call(client, EndpointName="teapot", Body=b"")
    response = excinfo.value.response
    assert response["OriginalStatusCode"] == 418
    assert response["OriginalMessage"] == "x" * 2048
    assert len(response["Error"]["Message"]) <= 2048


def test_crashing_python_model_is_a_server_error_500(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        _call(client, EndpointName="crash", Body=b"x")
    assert excinfo.value.response["OriginalStatusCode"] == 500
    assert "RuntimeError: the model fell over" in excinfo.value.response["OriginalMessage"]


def test_container_timeout_is_model_error_with_status_0(client: Any, endpoint: LocalEndpoint) -> None:
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        _call(client, EndpointName="slow", Body=b"x")
    response = excinfo.value.response
    assert response["OriginalStatusCode"] == 0
    assert response["OriginalMessage"].startswith(
        "Your invocation timed out while waiting for a response from container primary.")
    assert "Received server error (0) from primary" in response["Error"]["Message"]
    assert endpoint.counters("slow").model_runs == 1


def test_unknown_endpoint_is_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="nope", Body=b"x")
    assert _error(excinfo) == (400, "ValidationError", "Endpoint nope of account 123456789012 not found.")
    assert excinfo.value.response["Message"] == "Endpoint nope of account 123456789012 not found."


def test_invalid_names_and_headers_are_validated_like_the_service(client: Any) -> None:
    # The label is percent-encoded on the wire and signed that way: the signature still verifies.
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="bad name!", Body=b"x")
    assert _error(excinfo)[2] == (
        "1 validation error detected: Value 'bad name!' at 'endpointName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*")
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="echo", Body=b"x", CustomAttributes="a" * 1025, TargetVariant="_x")
    message = _error(excinfo)[2]
    assert message.startswith("2 validation errors detected: Value at 'customAttributes' failed")
    assert "a" * 1025 not in message  # a sensitive member's value is never echoed
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="echo", Body=b"x", PrefixAwareId="p" * 65)  # boto3 checks only the minimum
    assert _error(excinfo)[2] == (
        f"1 validation error detected: Value '{'p' * 65}' at 'prefixAwareId' failed to satisfy constraint: "
        "Member must have length less than or equal to 64")


def test_body_limit_is_6_mib(client: Any) -> None:
    assert len(_call(client, EndpointName="echo", Body=b"a" * SIX_MIB)["Body"]) == SIX_MIB
    with pytest.raises(ClientError) as excinfo:
        _call(client, EndpointName="echo", Body=b"a" * (SIX_MIB + 1))
    assert _error(excinfo) == (413, "413", "HTTP content length exceeded 6291456 bytes.")


# --- routing --------------------------------------------------------------------------------

def test_weights_and_target_variant(client: Any) -> None:
    variants = {_call(client, EndpointName="ab", Body=b"x")["InvokedProductionVariant"] for _ in range(5)}
    assert variants == {"a"}  # b has weight 0
    out = _call(client, EndpointName="ab", Body=b"x", TargetVariant="b")
    assert out["InvokedProductionVariant"] == "b"
    assert json.loads(out["Body"])["variant_name"] == "b"
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="ab", Body=b"x", TargetVariant="c")
    assert "Variant c not found for endpoint ab" in _error(excinfo)[2]


def test_seeded_weighted_routing_is_repeatable_and_follows_weights() -> None:
    config = EndpointConfig("w", variants=(VariantConfig("a", model="echo", weight=3),
                                           VariantConfig("b", model="echo", weight=1)))
    runtimes = [EndpointRuntime(config, seed=7) for _ in range(2)]
    draws = [[runtime.pick_variant().name for _ in range(400)] for runtime in runtimes]
    assert draws[0] == draws[1]
    assert 240 < draws[0].count("a") < 360  # 300 expected; a fixed seed makes this exact every run


def test_multi_model_endpoint_routes_by_target_model(client: Any) -> None:
    summed = _call(client, EndpointName="mme", Body=b'{"numbers": [2, 3]}', TargetModel="sum.tar.gz")
    assert json.loads(summed["Body"])["sum"] == 5
    echoed = _call(client, EndpointName="mme", Body=b"hi", TargetModel="echo.tar.gz")
    assert echoed["Body"] == b"hi"
    for kwargs in ({"TargetModel": "other.tar.gz"}, {}):
        with pytest.raises(client.exceptions.ValidationError):
            _call(client, EndpointName="mme", Body=b"hi", **kwargs)


def test_inference_components(client: Any) -> None:
    out = _call(client, EndpointName="ic", Body=b"x", InferenceComponentName="ic-inspect")
    assert json.loads(out["Body"])["inference_component"] == "ic-inspect"
    assert out["InvokedProductionVariant"] == "hosting"
    summed = _call(client, EndpointName="ic", Body=b'{"numbers": [4]}', InferenceComponentName="ic-sum")
    assert json.loads(summed["Body"])["mean"] == 4
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        _call(client, EndpointName="ic", Body=b"x")
    assert "Inference Component Name header is required" in _error(excinfo)[2]
    with pytest.raises(client.exceptions.ValidationError):
        _call(client, EndpointName="ic", Body=b"x", InferenceComponentName="ic-none")
    with pytest.raises(client.exceptions.ValidationError):
        _call(client, EndpointName="echo", Body=b"x", InferenceComponentName="ic-sum")


def test_target_container_hostname_routes_to_that_container(client: Any) -> None:
    out = _call(client, EndpointName="multi", Body=b"x", TargetContainerHostname="second")
    seen = json.loads(out["Body"])
    assert (seen["container"], seen["target_container_hostname"]) == ("second", "second")
    assert _call(client, EndpointName="multi", Body=b"x", TargetContainerHostname="first")["Body"] == b"x"
    for kwargs in ({"TargetContainerHostname": "third"}, {}):
        with pytest.raises(client.exceptions.ValidationError):
            _call(client, EndpointName="multi", Body=b"x", **kwargs)


def test_serial_pipeline_feeds_each_container_the_previous_answer(client: Any, endpoint: LocalEndpoint) -> None:
    before = endpoint.counters("pipeline").model_runs
    out = _call(client, EndpointName="pipeline", Body=b"shout", ContentType="text/plain")
    assert out["Body"] == b"SHOUT"
    assert endpoint.counters("pipeline").model_runs == before + 2


# --- sessions and custom attributes ---------------------------------------------------------

NEW_SESSION_ID = re.compile(r"^([a-zA-Z0-9](-*[a-zA-Z0-9])*);\sExpires=(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$")


def test_sessions_open_route_and_close(client: Any) -> None:
    opened = _call(client, EndpointName="stateful", Body=b"hello", SessionId="NEW_SESSION")
    match = NEW_SESSION_ID.match(opened["NewSessionId"])
    assert match, opened["NewSessionId"]
    session_id = match.group(1)
    expires = calendar.timegm(time.strptime(match.group(3), "%Y-%m-%dT%H:%M:%SZ"))
    assert 19 * 60 < expires - time.time() <= 20 * 60 + 1

    reused = _call(client, EndpointName="stateful", Body=b"again", SessionId=session_id)
    assert json.loads(reused["Body"]) == {"session": session_id, "variant": "AllTraffic"}
    assert "NewSessionId" not in reused and "ClosedSessionId" not in reused

    closed = _call(client, EndpointName="stateful", Body=b"close", SessionId=session_id)
    assert closed["ClosedSessionId"] == session_id
    for stale in (session_id, "never-opened"):
        with pytest.raises(client.exceptions.ValidationError) as excinfo:
            _call(client, EndpointName="stateful", Body=b"x", SessionId=stale)
        assert f"Session id {stale} is not valid" in _error(excinfo)[2]


def test_custom_attributes_round_trip(client: Any) -> None:
    assert _call(client, EndpointName="echo", Body=b"x", CustomAttributes="k=v;x=y")["CustomAttributes"] \
        == "k=v;x=y"
    out = _call(client, EndpointName="stateful", Body=b"x", CustomAttributes="from=caller")
    assert out["CustomAttributes"] == "model-set=1"  # the model's own answer wins
    assert "CustomAttributes" not in _call(client, EndpointName="echo", Body=b"x")


# --- fault injection ------------------------------------------------------------------------

def test_fail_next_then_success(client: Any, endpoint: LocalEndpoint) -> None:
    counters = endpoint.counters("faulty")
    counters.reset()
    endpoint.faults("faulty").fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(client.exceptions.ServiceUnavailable):
            _call(client, EndpointName="faulty", Body=b"x")
    assert _call(client, EndpointName="faulty", Body=b"x")["Body"] == b"x"
    snapshot = counters.snapshot()
    assert (snapshot.requests, snapshot.model_runs, snapshot.statuses) == (3, 1, {503: 2, 200: 1})


def test_boto3_standard_retries_ride_out_a_fault(endpoint: LocalEndpoint, clients: Callable[..., Any]) -> None:
    endpoint.counters("faulty").reset()
    endpoint.faults("faulty").fail_next(1, status=500)
    retrying = clients(endpoint.url, retries={"mode": "standard", "total_max_attempts": 2})
    out = _call(retrying, EndpointName="faulty", Body=b"x")
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert (endpoint.counters("faulty").requests, endpoint.counters("faulty").model_runs) == (2, 1)


def test_throttling_and_other_scheduled_errors(client: Any, endpoint: LocalEndpoint) -> None:
    faults = endpoint.faults("faulty")
    faults.throttle_next()
    with pytest.raises(ClientError) as excinfo:
        _call(client, EndpointName="faulty", Body=b"x")
    assert _error(excinfo)[:2] == (400, "ThrottlingException")
    for status, error in ((500, client.exceptions.InternalFailure), (429, client.exceptions.ModelNotReadyException),
                          (530, client.exceptions.InternalDependencyException)):
        faults.fail_next(status=status)
        with pytest.raises(error):
            _call(client, EndpointName="faulty", Body=b"x")


def test_faults_armed_by_config(client: Any) -> None:
    with pytest.raises(client.exceptions.InternalFailure):
        _call(client, EndpointName="armed", Body=b"x")
    assert _call(client, EndpointName="armed", Body=b"x")["Body"] == b"x"


def test_latency(endpoint: LocalEndpoint, client: Any, clients: Callable[..., Any]) -> None:
    faults = endpoint.faults("faulty")
    faults.delay_next(0.6)
    impatient = clients(endpoint.url, read_timeout=0.2)
    with pytest.raises(ReadTimeoutError):
        _call(impatient, EndpointName="faulty", Body=b"x")
    faults.set_latency(0.15)
    try:
        started = time.monotonic()
        assert _call(client, EndpointName="faulty", Body=b"x")["Body"] == b"x"
        assert time.monotonic() - started >= 0.15  # a lower bound: never flaky
    finally:
        faults.clear()


def test_reset_is_a_connection_error_then_service_resumes(client: Any, endpoint: LocalEndpoint) -> None:
    endpoint.counters("faulty").reset()
    endpoint.faults("faulty").reset_next()
    with pytest.raises(ConnectionClosedError):
        _call(client, EndpointName="faulty", Body=b"x")
    assert _call(client, EndpointName="faulty", Body=b"x")["Body"] == b"x"
    snapshot = endpoint.counters("faulty").snapshot()
    assert (snapshot.model_runs, snapshot.statuses) == (1, {0: 1, 200: 1})


def test_unknown_endpoint_has_no_faults_or_counters(endpoint: LocalEndpoint) -> None:
    with pytest.raises(KeyError, match="no endpoint 'nope'"):
        endpoint.faults("nope")
    with pytest.raises(ValueError, match="no service error for status 418"):
        endpoint.faults("faulty").fail_next(status=418)


def test_a_fault_count_past_the_limit_is_refused_in_code_as_in_a_file(endpoint: LocalEndpoint) -> None:
    with pytest.raises(ValueError, match=r"count must be a number >= 0 and <= 1000000, got 1000001"):
        endpoint.faults("faulty").throttle_next(1_000_001)
    with pytest.raises(ValueError, match=r"count must be a number >= 0 and <= 1000000, got -1"):
        endpoint.faults("faulty").break_stream_after(1, count=-1)


# --- a model in a separate process, through the container contract --------------------------

def test_remote_container_gets_the_api_headers_only(client: Any) -> None:
    out = _call(client, EndpointName="container", Body=b"to the container", ContentType="text/plain",
                                 Accept="application/json", CustomAttributes="c=1", InferenceId="i-9")
    document = json.loads(out["Body"])
    received = document["received"]
    assert document["body"] == "to the container"
    assert (received["Content-Type"], received["Accept"], received["X-Amzn-SageMaker-Custom-Attributes"],
            received["X-Amzn-SageMaker-Inference-Id"]) == ("text/plain", "application/json", "c=1", "i-9")
    # Nothing of the client's signature or SDK headers reaches the model.
    others = received["Other-Headers"]
    assert not {"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "amz-sdk-invocation-id"} & set(others)
    assert "Boto3" not in others.get("User-Agent", "")
    assert out["CustomAttributes"] == "container-saw=c=1"
    assert out["ContentType"] == "application/json"


def test_remote_container_errors_and_sessions(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        _call(client, EndpointName="container", Body=json.dumps({"fail": 503, "message": "overloaded"}))
    response = excinfo.value.response
    assert (response["OriginalStatusCode"], response["OriginalMessage"]) == (503, "overloaded")
    assert response["Error"]["Message"].startswith('Received server error (503) from primary with message "overloaded"')
    opened = _call(client, EndpointName="container", Body=b"x", SessionId="NEW_SESSION")
    session_id = opened["NewSessionId"].split(";")[0]
    assert session_id.startswith("ctr-")  # the container named its session
    reused = _call(client, EndpointName="container", Body=b"x", SessionId=session_id)
    assert json.loads(reused["Body"])["received"]["X-Amzn-SageMaker-Session-Id"] == session_id


# --- signature checks -----------------------------------------------------------------------

def test_wrong_secret_is_signature_mismatch(endpoint: LocalEndpoint, clients: Callable[..., Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        _call(clients(endpoint.url, secret="wrong"), EndpointName="echo", Body=b"x")
    status, code, message = _error(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match the signature you provided.")
    assert "POST\n/endpoints/echo/invocations\n" in message  # the canonical request, to debug with


def test_unknown_access_key(endpoint: LocalEndpoint, clients: Callable[..., Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        _call(clients(endpoint.url, key="AKIDUNKNOWN"), EndpointName="echo", Body=b"x")
    assert _error(excinfo) == (403, "UnrecognizedClientException",
                               "The security token included in the request is invalid.")


@pytest.mark.parametrize(("offset", "start"), [(600, "Signature expired: "), (-600, "Signature not yet current: ")])
def test_stale_or_future_date(endpoint: LocalEndpoint, client: Any, offset: int, start: str) -> None:
    endpoint.set_clock_offset(offset)
    try:
        with pytest.raises(ClientError) as excinfo:
            _call(client, EndpointName="echo", Body=b"x")
    finally:
        endpoint.set_clock_offset(0)
    status, code, message = _error(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    sign = "-" if offset > 0 else "+"
    pattern = rf"{start}\d{{8}}T\d{{6}}Z is (now earlier|still later) than \d{{8}}T\d{{6}}Z \(\d{{8}}T\d{{6}}Z \{sign} 5 min\.\)"
    assert re.fullmatch(pattern, message), message
    # The Date header carries the server's clock, so a client can correct its skew.
    server_date = excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["date"]
    skew = email.utils.parsedate_to_datetime(server_date).timestamp() - time.time()
    assert abs(skew - offset) < 5


def test_wrong_region(endpoint: LocalEndpoint, clients: Callable[..., Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        _call(clients(endpoint.url, region="us-west-2"), EndpointName="echo", Body=b"x")
    status, code, message = _error(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Credential should be scoped to a valid region, not 'us-west-2'. ")
    assert re.search(r"expects the scope '\d{8}/us-east-1/sagemaker/aws4_request'", message)


def _signed(url: str, service: str = "sagemaker", body: bytes = b"x", endpoint_name: str = "echo") -> requests.Response:
    request = AWSRequest("POST", f"{url}/endpoints/{endpoint_name}/invocations", data=body)
    SigV4Auth(BotoCredentials(KEY_ID, SECRET), service, "us-east-1").add_auth(request)
    return requests.post(request.url, data=body, headers=dict(request.headers.items()), timeout=5)


def test_wrong_service(endpoint: LocalEndpoint) -> None:
    assert _signed(endpoint.url).status_code == 200  # the same request, signed for sagemaker, passes
    response = _signed(endpoint.url, service="execute-api")
    assert response.status_code == 403
    assert response.headers["X-Amzn-ErrorType"] == "InvalidSignatureException"
    assert response.json() == {"message": "Credential should be scoped to correct service: 'sagemaker'. "}


def test_error_bodies_have_the_service_shape(endpoint: LocalEndpoint) -> None:
    """The service's errors spell ``Message`` as its model does; a ModelError also says ``ErrorCode``."""
    failed = _signed(endpoint.url, body=b"{not json", endpoint_name="sum")
    assert (failed.status_code, failed.headers["X-Amzn-ErrorType"]) == (424, "ModelError")
    document = failed.json()
    assert list(document) == ["Message", "ErrorCode", "OriginalStatusCode", "OriginalMessage", "LogStreamArn"]
    assert document["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL"
    assert document["Message"].startswith("Received client error (400) from primary with message ")
    crashed = _signed(endpoint.url, endpoint_name="crash").json()
    assert (crashed["ErrorCode"], crashed["OriginalStatusCode"]) == ("SERVER_ERROR_FROM_MODEL", 500)
    unknown = _signed(endpoint.url, endpoint_name="nope")
    assert unknown.json() == {"Message": "Endpoint nope of account 123456789012 not found."}


@pytest.mark.parametrize("tamper", ["body", "header"])
def test_tampering_after_signing(endpoint: LocalEndpoint, tamper: str, clients: Callable[..., Any]) -> None:
    tampering = clients(endpoint.url)

    def change(request: Any, **_: Any) -> None:
        if tamper == "body":
            request.body = b"y"
        else:
            request.headers["X-Amzn-SageMaker-Custom-Attributes"] = "changed"

    tampering.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", change)
    with pytest.raises(ClientError) as excinfo:
        _call(tampering, EndpointName="echo", Body=b"x", CustomAttributes="original")
    status, code, message = _error(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")
    assert "changed" not in message and "original" not in message  # custom attributes are sensitive


def test_missing_and_malformed_authorization(endpoint: LocalEndpoint, clients: Callable[..., Any]) -> None:
    url = f"{endpoint.url}/endpoints/echo/invocations"
    missing = requests.post(url, data=b"x", timeout=5)
    assert (missing.status_code, missing.headers["X-Amzn-ErrorType"]) == (403, "MissingAuthenticationToken")
    assert missing.json() == {"message": "Missing Authentication Token"}
    malformed = requests.post(url, data=b"x", timeout=5, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert (malformed.status_code, malformed.headers["X-Amzn-ErrorType"]) == (403, "IncompleteSignature")
    unsigned = clients(endpoint.url, signature_version=botocore.UNSIGNED)
    with pytest.raises(ClientError) as excinfo:
        _call(unsigned, EndpointName="echo", Body=b"x")
    assert _error(excinfo)[:2] == (403, "MissingAuthenticationToken")


# --- configuration, credentials, lifecycle --------------------------------------------------

TOML = """
region = "eu-west-1"
verify_signatures = false
seed = 3

[[endpoints]]
name = "adder"
model = "sum"
container_timeout = 2.5
[endpoints.faults]
fail_next = 1
fail_status = 503

[[endpoints]]
name = "split"
[[endpoints.variants]]
name = "one"
model = "echo"
weight = 0
[[endpoints.variants]]
name = "two"
model = "tests.integration.test_local_endpoint:upper"
weight = 2
"""


def test_toml_config_served_without_signature_checks(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert (config.region, config.verify_signatures, config.endpoint("adder").container_timeout) == (  # type: ignore[union-attr]
        "eu-west-1", False, 2.5)
    with LocalEndpoint(path, credentials=(KEY_ID, SECRET)) as local:
        url = f"{local.url}/endpoints/split/invocations"
        response = requests.post(url, data=b"abc", timeout=5)  # unsigned: verification is off
        assert (response.status_code, response.content) == (200, b"ABC")
        assert response.headers["x-Amzn-Invoked-Production-Variant"] == "two"
        adder = f"{local.url}/endpoints/adder/invocations"
        assert requests.post(adder, data=b'{"numbers": [1]}', timeout=5).status_code == 503
        assert requests.post(adder, data=b'{"numbers": [1]}', timeout=5).json()["sum"] == 1


@pytest.mark.parametrize("bad", [
    "[[endpoints]]\nname = 'x'\nmodle = 'echo'\n",
    "[[endpoints]]\nname = 'bad name'\nmodel = 'echo'\n",
    "[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\nname = 'v'\n",
    "[[endpoints]]\nname = 'x'\nmodel = 'no-such-model'\n",
])
def test_bad_config_fails_loudly(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(ValueError):
        LocalEndpoint(path, credentials=(KEY_ID, SECRET))


ENDPOINT_X = "[[endpoints]]\nname = 'x'\nmodel = 'echo'\n"
VARIANT_V = "[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\nname = 'v'\n"


@pytest.mark.parametrize(("bad", "message"), [
    ("region = 5\n", "configuration: region must be a string, got 5"),
    ("verify_signatures = 'no'\n", "configuration: verify_signatures must be true or false, got 'no'"),
    ("seed = 1.5\n", "configuration: seed must be an integer, got 1.5"),
    ("[[endpoints]]\nmodel = 'echo'\n", "endpoint #1: name is required"),
    ("region = 'eu-west-1'\n", "configuration: no endpoints; add an [[endpoints]] table with a name and a model"),
    ("[[endpoints]]\nname = 'ab'\n",
     "endpoint 'ab': give model = … (a built-in model, module:function or a URL), or [[endpoints.variants]] tables"),
    (ENDPOINT_X.replace("model", "container_timeout = 'x'\nmodel"), "endpoint 'x': container_timeout must be a number, got 'x'"),
    ("[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\nmodel = 'echo'\nweight = true\n",
     "endpoint 'x': variant 'AllTraffic': weight must be a number, got True"),
    (ENDPOINT_X + "[endpoints.faults]\nlatency = -1\n",
     "endpoint 'x': faults: latency must be a number of seconds >= 0 and <= 1000000000, got -1"),
    (ENDPOINT_X + "[endpoints.faults]\nfail_next = '2'\n", "endpoint 'x': faults: fail_next must be an integer, got '2'"),
    (ENDPOINT_X + "[endpoints.faults]\nfail_status = 200\n",
     "endpoint 'x': faults: fail_status must be an HTTP error status (400-599), got 200"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 'file:///tmp/out'\nmax_concurrent_invocations = '4'\n",
     "endpoint 'x': async_inference: max_concurrent_invocations must be an integer, got '4'"),
    (ENDPOINT_X + "[endpoints.async_inference]\nmax_concurrent_invocations = 4\n",
     "endpoint 'x': async_inference: s3_output_path is required"),
    ("[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\nmodel = 'echo'\n[[endpoints.inference_components]]\nname = 'c'\n",
     "endpoint 'x': inference component 'c': model is required"),
    # the shape of a table or array of tables
    ("endpoints = 'x'\n", "configuration: endpoints must be an array of tables ([[endpoints]]), got 'x'"),
    ("endpoints = [1]\n", "configuration: endpoints must be an array of tables ([[endpoints]]), got [1]"),
    ("[endpoints]\nname = 'x'\n", "configuration: endpoints must be an array of tables ([[endpoints]]), got {'name': 'x'}"),
    ("[[endpoints]]\nname = 'x'\nvariants = 'v'\n",
     "endpoint 'x': variants must be an array of tables ([[endpoints.variants]]), got 'v'"),
    ("[[endpoints]]\nname = 'x'\nvariants = ['v']\n",
     "endpoint 'x': variants must be an array of tables ([[endpoints.variants]]), got ['v']"),
    (ENDPOINT_X + "inference_components = 3\n",
     "endpoint 'x': inference_components must be an array of tables ([[endpoints.inference_components]]), got 3"),
    (ENDPOINT_X + "faults = 3\n", "endpoint 'x': faults must be a table ([endpoints.faults]), got 3"),
    (ENDPOINT_X + "faults = [{ latency = 1 }]\n",
     "endpoint 'x': faults must be a table ([endpoints.faults]), got [{'latency': 1}]"),
    (ENDPOINT_X + "async_inference = 's3://b'\n",
     "endpoint 'x': async_inference must be a table ([endpoints.async_inference]), got 's3://b'"),
    (VARIANT_V + "models = 3\n", "endpoint 'x': variant 'v': models must be a table ({ TargetModel = model, ... }), got 3"),
    (VARIANT_V + "containers = { a = ['echo'] }\n",
     "endpoint 'x': variant 'v': containers.a must be a string (a built-in model, module:function or a URL), got ['echo']"),
    (VARIANT_V + "containers = 'echo'\n",
     "endpoint 'x': variant 'v': containers must be a table ({ hostname = model, ... }), got 'echo'"),
    (VARIANT_V + "model = 5\n",
     "endpoint 'x': variant 'v': model must be a string (a built-in model, module:function or a URL), got 5"),
    # numbers: finite, and in range
    (ENDPOINT_X + "[endpoints.faults]\nlatency = inf\n", "endpoint 'x': faults: latency must be a finite number, got inf"),
    (ENDPOINT_X + "[endpoints.faults]\nlatency = 1e300\n",
     "endpoint 'x': faults: latency must be a number of seconds >= 0 and <= 1000000000, got 1e+300"),
    (ENDPOINT_X + "[endpoints.faults]\nfail_next = -1\n",
     "endpoint 'x': faults: fail_next must be a number >= 0 and <= 1000000, got -1"),
    (ENDPOINT_X + "[endpoints.faults]\nfail_next = 10000000000000000000000\n",  # each would be held in memory
     "endpoint 'x': faults: fail_next must be a number >= 0 and <= 1000000, got 10000000000000000000000"),
    (ENDPOINT_X + "[endpoints.faults]\nthrottle_above = 0\n",
     "endpoint 'x': faults: throttle_above must be a number > 0 (requests/s), got 0"),
    (ENDPOINT_X + "container_timeout = 0\n",
     "endpoint 'x': container_timeout must be a number of seconds > 0 and <= 1000000000, got 0.0"),
    (ENDPOINT_X + "container_timeout = -inf\n", "endpoint 'x': container_timeout must be a finite number, got -inf"),
    ("max_body_bytes = -5\n", "configuration: max_body_bytes must be >= 1, got -5"),
    ("region = ''\n", "configuration: region must be a region name such as 'us-east-1', got ''"),
    ("account_id = '1234'\n", "configuration: account_id must be 12 digits, got '1234'"),
    ("max_event_bytes = 0\n", "configuration: max_event_bytes must be >= 1, got 0"),
    ("session_ttl_seconds = -1\n",
     "configuration: session_ttl_seconds must be a number of seconds > 0 and <= 1000000000, got -1"),
    ("clock_offset_seconds = -1e12\n",
     "configuration: clock_offset_seconds must be a number of seconds between -1000000000 and 1000000000, got -1000000000000.0"),
    ("session_ttl_seconds = nan\n", "configuration: session_ttl_seconds must be a finite number, got nan"),
    (VARIANT_V + "model = 'echo'\nweight = -1\n", "endpoint 'x': variant 'v': weight must be a number >= 0, got -1.0"),
    (VARIANT_V + "model = 'echo'\nweight = nan\n", "endpoint 'x': variant 'v': weight must be a finite number, got nan"),
    (VARIANT_V + "model = 'echo'\nweight = 1e308\n[[endpoints.variants]]\nname = 'w'\nmodel = 'echo'\nweight = 1e308\n",
     "endpoint 'x': the variant weights must add up to a finite number, got inf"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 's3://b'\ntime_scale = 0\n",
     "endpoint 'x': async_inference: time_scale must be a number > 0 and <= 1000, got 0.0"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 's3://b'\ntime_scale = 1e6\n",
     "endpoint 'x': async_inference: time_scale must be a number > 0 and <= 1000, got 1000000.0"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 's3://b'\nmax_input_bytes = 0\n",
     "endpoint 'x': async_inference: max_input_bytes must be >= 1, got 0"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 's3://b'\nmax_concurrent_invocations = 0\n",
     "endpoint 'x': async_inference: max_concurrent_invocations must be >= 1, got 0"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 's3://b'\ns3_endpoint_url = 'localhost:5000'\n",
     "endpoint 'x': async_inference: s3_endpoint_url must be an http:// or https:// URL, got 'localhost:5000'"),
    # every complaint below an endpoint names it, once
    (VARIANT_V + "containers = { 'bad host' = 'echo' }\n",
     "endpoint 'x': variant 'v': invalid container hostname 'bad host': 1-63 characters matching "
     "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"),
    (VARIANT_V + "model = 'echo'\ninference_execution = 'Parallel'\n",
     "endpoint 'x': variant 'v': inference_execution must be 'Serial' or 'Direct', got 'Parallel'"),
    ("[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\nname = 'v'\nmodel = 'echo'\n"
     "[[endpoints.inference_components]]\nname = 'c'\nmodel = 'echo'\nvariant = 'w'\n",
     "endpoint 'x': inference component 'c': unknown variant 'w'"),
    (ENDPOINT_X + "[endpoints.async_inference]\ns3_output_path = 'ftp://x'\n",
     "endpoint 'x': async_inference: s3_output_path must be an s3:// or file:// location, got 'ftp://x'"),
])
def test_a_bad_value_in_a_config_file_is_named_with_the_file_and_the_rule(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(ValueError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


_BAD_MODULES = {
    "broken": "def predict(request)\n    return b''\n",
    "raising": "raise RuntimeError('no GPU here')\n",
    "exiting": "import sys\nsys.exit(3)\n",
    "multiline": "raise RuntimeError('first line\\nsecond line')\n",
    "silent": "raise ValueError()\n",
}


@pytest.mark.parametrize(("model", "message"), [
    ("broken:predict", "model 'broken:predict': importing broken failed: SyntaxError: expected ':' (broken.py, line 1)"),
    ("raising:predict", "model 'raising:predict': importing raising failed: RuntimeError: no GPU here"),
    ("exiting:predict", "model 'exiting:predict': importing exiting failed: SystemExit: 3"),
    ("multiline:predict", "model 'multiline:predict': importing multiline failed: RuntimeError: first line second line"),
    ("silent:predict", "model 'silent:predict': importing silent failed: ValueError"),
    (":predict", "model ':predict': give both a module and a function (module:function)"),
    ("ftp://models.example/predict",
     "model 'ftp://models.example/predict': URL scheme 'ftp' is not supported (a container URL is http:// or https://)"),
    ("s3://bucket/model.tar.gz",
     "model 's3://bucket/model.tar.gz': URL scheme 's3' is not supported (a container URL is http:// or https://)"),
    ("http://", "model 'http://': a container URL needs a host (http://host:port)"),
    ("http://h x:80/", "model 'http://h x:80/': a URL has no spaces or control characters"),
    ("http://127.0.0.1:port/", "model 'http://127.0.0.1:port/': not a valid URL: "
                               "Port could not be cast to integer value as 'port'"),
])
def test_a_model_that_cannot_be_loaded_is_one_line_naming_the_file_and_the_endpoint(
    tmp_path: Path, model: str, message: str
) -> None:
    for name, source in _BAD_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    path = tmp_path / "bad.toml"
    path.write_text(f"[[endpoints]]\nname = 'x'\n[[endpoints.variants]]\ncontainers = {{ first = {model!r} }}\n")
    with pytest.raises(ValueError) as caught:
        LocalEndpoint(path, credentials=(KEY_ID, SECRET))
    assert str(caught.value) == f"{path}: endpoint 'x': {message}"


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_credentials_fall_back_to_the_chain_then_the_example_pair(no_aws_environment: pytest.MonkeyPatch) -> None:
    assert resolve_credentials() == (AcceptedKey(*EXAMPLE_CREDENTIALS),)
    no_aws_environment.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    no_aws_environment.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert resolve_credentials() == (AcceptedKey("AKIDFROMENV", "env-secret"),)
    several = resolve_credentials([("A1", "s1"), ("A2", "s2", "token")])
    assert [key.access_key_id for key in several] == ["A1", "A2"]
    assert "s1" not in repr(several) and "token" not in repr(several)


def test_default_endpoint_accepts_the_example_pair(no_aws_environment: pytest.MonkeyPatch, clients: Callable[..., Any]) -> None:
    with LocalEndpoint() as local:
        assert local.access_key_ids == ("AKIDEXAMPLE",)
        example = clients(local.url, key=EXAMPLE_CREDENTIALS[0], secret=EXAMPLE_CREDENTIALS[1])
        out = _call(example, EndpointName="sum", Body=b'{"numbers": [1, 2, 3]}')
        assert json.loads(out["Body"])["mean"] == 2
        assert EXAMPLE_CREDENTIALS[1] not in repr(local)


def test_session_token_must_match(clients: Callable[..., Any]) -> None:
    with LocalEndpoint(default_config(), credentials=[("ASIATEMP", "temp-secret", "the-token")]) as local:
        good = _boto_session().client(
            "sagemaker-runtime", endpoint_url=local.url, region_name="us-east-1", aws_access_key_id="ASIATEMP",
            aws_secret_access_key="temp-secret", aws_session_token="the-token",
            config=Config(retries={"total_max_attempts": 1}))
        try:
            assert _call(good, EndpointName="echo", Body=b"ok")["Body"] == b"ok"
        finally:
            good.close()
        with pytest.raises(ClientError) as excinfo:
            _call(clients(local.url, key="ASIATEMP", secret="temp-secret"), EndpointName="echo", Body=b"x")
        assert _error(excinfo)[1] == "UnrecognizedClientException"


def test_other_paths(endpoint: LocalEndpoint) -> None:
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200
    unknown = requests.post(f"{endpoint.url}/foo", timeout=5)
    assert (unknown.status_code, unknown.headers["X-Amzn-ErrorType"]) == (404, "UnknownOperationException")
    assert "x-amzn-RequestId" in unknown.headers


def test_stop_releases_the_port_and_the_thread() -> None:
    local = LocalEndpoint(credentials=(KEY_ID, SECRET)).start()
    port = local.port
    assert requests.get(f"{local.url}/ping", timeout=5).status_code == 200
    local.stop()
    local.stop()  # idempotent
    assert not local.running
    assert not [thread for thread in threading.enumerate() if thread.name == f"smruntime-local-endpoint-{port}"]
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_app_mounts_in_process_without_a_server() -> None:
    app = create_app(LocalConfig(endpoints=default_config().endpoints, verify_signatures=False))

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://local") as http:
            return await http.post("/endpoints/sum/invocations", content=b'{"numbers": [5, 7]}')

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.json()["sum"] == 12
