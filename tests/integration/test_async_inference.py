"""Async inference end to end: the local endpoint's queue, S3 (moto's server) and file:// results.

moto's server plays S3 for the local endpoint (``s3_endpoint_url``) and for the client's
``wait_for_async_inference``. Models that sleep keep their sleeps short, and the endpoints that
test RequestTTLSeconds and InvocationTimeoutSeconds shrink time with ``time_scale``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from smruntime import Client
from smruntime.cli import main
from smruntime.errors import (
    AsyncInferenceFailedError,
    SageMakerRuntimeError,
    ServiceUnavailable,
    ValidationError,
    WaitTimeoutError,
)
from smruntime.local import (
    AsyncInferenceConfig,
    EndpointConfig,
    LocalConfig,
    LocalEndpoint,
    ModelFailure,
    ModelRequest,
    ModelResponse,
    default_config,
)
from smruntime.local.async_inference import result_locations
from smruntime.local.config import config_from_dict, demo_config
from smruntime.local.storage import join_location, parse_location
from smruntime.types import InvokeEndpointAsyncOutput
from tests.async_clients import KINDS, make_client
from tests.integration.async_support import REGION, isolate_aws_env, running_moto, s3_client

EXAMPLE = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
RESULTS, INPUTS = "results", "inputs"

# --- models -----------------------------------------------------------------------------------

def explode(request: ModelRequest) -> bytes:
    raise ModelFailure(500, "the model exploded")


def napping(seconds: float) -> Any:
    def model(request: ModelRequest) -> ModelResponse:
        time.sleep(seconds)
        return ModelResponse(body=b"rested: " + request.body, content_type="text/plain")

    return model


# --- servers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_aws_env(patch, tmp_path_factory.mktemp("aws"))
        yield


@pytest.fixture(scope="module")
def moto_url(aws_env: None) -> Iterator[str]:
    with running_moto() as url:
        s3 = s3_client(url)
        try:
            s3.create_bucket(Bucket=RESULTS)
            s3.create_bucket(Bucket=INPUTS)
        finally:
            s3.close()
        yield url


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Iterator[Any]:
    client = s3_client(moto_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("async")


def _on_s3(moto_url: str) -> AsyncInferenceConfig:
    return AsyncInferenceConfig(s3_output_path=f"s3://{RESULTS}/async-out", s3_failure_path=f"s3://{RESULTS}/async-failed",
                                s3_endpoint_url=moto_url)


def _on_disk(root: Path, **kwargs: Any) -> AsyncInferenceConfig:
    # Inputs are written to <scratch>/inputs, beside every endpoint's own folder.
    return AsyncInferenceConfig(s3_output_path=(root / "out").as_uri(), s3_failure_path=(root / "failed").as_uri(),
                                input_root=(root.parent / "inputs").as_uri(), **kwargs)


@pytest.fixture(scope="module")
def endpoint(moto_url: str, scratch: Path) -> Iterator[LocalEndpoint]:
    config = LocalConfig(endpoints=(
        *default_config().endpoints,
        EndpointConfig.serving("sum-s3", "sum", async_inference=_on_s3(moto_url)),
        EndpointConfig.serving("fail-s3", explode, async_inference=_on_s3(moto_url)),
        EndpointConfig.serving("no-output-bucket", "sum", async_inference=AsyncInferenceConfig(
            s3_output_path="s3://no-such-bucket/out", s3_failure_path=f"s3://{RESULTS}/async-failed",
            s3_endpoint_url=moto_url)),
        EndpointConfig.serving("sum-file", "sum", async_inference=_on_disk(scratch / "sum")),
        EndpointConfig.serving("inspect-file", "inspect",
                               async_inference=AsyncInferenceConfig(s3_output_path=(scratch / "inspect").as_uri(),
                                                                    input_root=(scratch / "inputs").as_uri())),
        EndpointConfig.serving("slow-file", napping(0.4), async_inference=_on_disk(scratch / "slow")),
        # 60 s (the least RequestTTLSeconds) x 0.005 = 0.3 s, less than the model takes.
        EndpointConfig.serving("ttl", napping(0.5), async_inference=_on_disk(
            scratch / "ttl", max_concurrent_invocations=1, time_scale=0.005)),
        # 1 s (the least InvocationTimeoutSeconds) x 0.01 = 10 ms.
        EndpointConfig.serving("timeout", napping(0.3), async_inference=_on_disk(scratch / "timeout", time_scale=0.01)),
    ))
    with LocalEndpoint(config, credentials=EXAMPLE) as running:
        yield running


@pytest.fixture(scope="module", params=KINDS)
def client(endpoint: LocalEndpoint, request: pytest.FixtureRequest) -> Iterator[Client]:
    """Client, and AsyncClient behind Client's API: every test that uses it runs on both."""
    with make_client(request.param, region=REGION, endpoint_url=endpoint.url, credentials=EXAMPLE, retry_mode="none") as made:
        yield made


@pytest.fixture(scope="module")
def boto_client(endpoint: LocalEndpoint) -> Iterator[Any]:
    made = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name=REGION,
                        aws_access_key_id=EXAMPLE[0], aws_secret_access_key=EXAMPLE[1],
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))
    yield made
    made.close()


def _put_input(s3: Any, document: object) -> str:
    key = f"requests/{uuid.uuid4()}.json"
    s3.put_object(Bucket=INPUTS, Key=key, Body=json.dumps(document).encode())
    return f"s3://{INPUTS}/{key}"


def _write_input(directory: Path, data: bytes) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4()}.json"
    path.write_bytes(data)
    return path.as_uri()


# --- S3 through moto's server -----------------------------------------------------------------

def test_s3_round_trip_the_sum_model_answers_what_was_put_in_s3(client, s3, moto_url) -> None:
    location = _put_input(s3, {"numbers": [4, 8, 15, 16, 23, 42]})
    out = client.invoke_endpoint_async(endpoint_name="sum-s3", input_location=location,
                                       content_type="application/json", inference_id="round-trip-1")
    assert out.inference_id == "round-trip-1"
    assert out.output_location == f"s3://{RESULTS}/async-out/round-trip-1.out"
    assert out.failure_location == f"s3://{RESULTS}/async-failed/round-trip-1-error.out"
    assert out.metadata.http_status == 202

    answer = client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)

    assert json.loads(answer) == {"sum": 108, "mean": 18.0, "count": 6, "min": 4, "max": 42}
    stored = s3.get_object(Bucket=RESULTS, Key="async-out/round-trip-1.out")
    assert stored["ContentType"] == "application/json"
    assert stored["Body"].read() == answer


def test_s3_failing_model_writes_the_error_and_the_helper_raises_it(client, s3, moto_url) -> None:
    location = _put_input(s3, {"numbers": [1]})
    out = client.invoke_endpoint_async(endpoint_name="fail-s3", input_location=location)

    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)

    error = caught.value
    assert error.failure_location == out.failure_location == f"s3://{RESULTS}/async-failed/{out.inference_id}-error.out"
    assert error.inference_id == out.inference_id
    assert "the model exploded" in str(error)
    stored = s3.get_object(Bucket=RESULTS, Key=f"async-failed/{out.inference_id}-error.out")["Body"].read()
    assert stored == error.body
    document = json.loads(stored)
    assert document["OriginalStatusCode"] == 500
    assert document["OriginalMessage"] == "the model exploded"
    assert document["Message"].startswith('Received server error (500) from primary with message "the model exploded"')
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"async-out/{out.inference_id}")
    assert listed["KeyCount"] == 0  # no output next to the failure


def test_s3_input_that_does_not_exist_is_a_failure_not_a_request_error(client, moto_url) -> None:
    out = client.invoke_endpoint_async(endpoint_name="sum-s3", input_location=f"s3://{INPUTS}/no/such/key.json")

    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)

    message = json.loads(caught.value.body)["Message"]
    assert message.startswith(f"Could not read the input of inference {out.inference_id}: could not read s3://{INPUTS}")
    assert "NoSuchKey" in message


def test_a_result_that_cannot_be_written_is_recorded_as_a_failure(client, s3, moto_url) -> None:
    out = client.invoke_endpoint_async(endpoint_name="no-output-bucket", input_location=_put_input(s3, {"numbers": []}))
    failure_only = InvokeEndpointAsyncOutput(inference_id=out.inference_id, failure_location=out.failure_location)

    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(failure_only, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)
    # Waiting on the output itself stops at once: its bucket does not exist, so it never will.
    with pytest.raises(SageMakerRuntimeError, match="NoSuchBucket"):
        client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)

    message = json.loads(caught.value.body)["Message"]
    assert message.startswith(f"Could not write the result of inference {out.inference_id}: could not write "
                              f"s3://no-such-bucket/out/{out.inference_id}.out")
    assert "NoSuchBucket" in message


def test_s3_https_url_input_is_read_from_the_bucket_it_names(client, s3, moto_url) -> None:
    key = f"requests/{uuid.uuid4()}.json"
    s3.put_object(Bucket=INPUTS, Key=key, Body=b'{"numbers": [2, 3]}')
    out = client.invoke_endpoint_async(endpoint_name="sum-s3",
                                       input_location=f"https://{INPUTS}.s3.{REGION}.amazonaws.com/{key}")

    answer = client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, s3_endpoint_url=moto_url)

    assert json.loads(answer)["sum"] == 5


def test_extension_and_filename_place_the_result(client, s3, moto_url) -> None:
    location = _put_input(s3, {"numbers": [1, 2]})
    out = client.invoke_endpoint_async(endpoint_name="sum-s3", input_location=location,
                                       s3_output_path_extension="team-a/2026", filename="result.json")

    assert out.output_location == f"s3://{RESULTS}/async-out/team-a/2026/result.json"
    assert out.failure_location == f"s3://{RESULTS}/async-failed/team-a/2026/result.json-error.out"
    assert json.loads(client.wait_for_async_inference(out, timeout=10, poll_interval=0.02,
                                                      s3_endpoint_url=moto_url))["sum"] == 3


def test_wait_times_out_when_nothing_appears_on_s3(client, moto_url) -> None:
    never = InvokeEndpointAsyncOutput(inference_id="ghost", output_location=f"s3://{RESULTS}/nowhere/ghost.out",
                                      failure_location=f"s3://{RESULTS}/nowhere/ghost-error.out")
    started = time.monotonic()

    with pytest.raises(WaitTimeoutError, match=r"no result for async inference ghost after 0\.3 s"):
        client.wait_for_async_inference(never, timeout=0.3, poll_interval=0.05, s3_endpoint_url=moto_url)

    assert 0.3 <= time.monotonic() - started < 5


# --- file:// locations ------------------------------------------------------------------------

def test_file_round_trip_like_the_demo(tmp_path) -> None:
    source = tmp_path / "input.json"
    source.write_text(json.dumps({"numbers": [10, 20, 30]}))
    with LocalEndpoint(demo_config(tmp_path), credentials=EXAMPLE) as local, \
            Client(region=REGION, endpoint_url=local.url, credentials=EXAMPLE) as demo_client:
        out = demo_client.invoke_endpoint_async(endpoint_name="sum-async", input_location=source.as_uri(),
                                                content_type="application/json")
        answer = demo_client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=tmp_path)

    assert json.loads(answer) == {"sum": 60, "mean": 20.0, "count": 3, "min": 10, "max": 30}
    assert out.output_location == (tmp_path / "async-output" / f"{out.inference_id}.out").as_uri()
    assert out.failure_location == (tmp_path / "async-failures" / f"{out.inference_id}-error.out").as_uri()
    assert (tmp_path / "async-output" / f"{out.inference_id}.out").read_bytes() == answer
    assert not any((tmp_path / "async-output").glob(".*partial"))  # written whole, then renamed


def test_an_inline_body_round_trip(tmp_path) -> None:
    with LocalEndpoint(demo_config(tmp_path), credentials=EXAMPLE) as local, \
            Client(region=REGION, endpoint_url=local.url, credentials=EXAMPLE) as inline_client:
        out = inline_client.invoke_endpoint_async(endpoint_name="sum-async", body=b'{"numbers": [1, 2, 3, 4]}',
                                                  content_type="application/json")
        answer = inline_client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=tmp_path)
    assert json.loads(answer)["sum"] == 10


def test_the_model_gets_content_type_accept_custom_attributes_and_the_inference_id(client, scratch) -> None:
    location = _write_input(scratch / "inputs", b"hello async")
    out = client.invoke_endpoint_async(endpoint_name="inspect-file", input_location=location, content_type="text/plain",
                                       accept="application/json", custom_attributes="trace=7", inference_id="seen-1")

    seen = json.loads(client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch))

    assert {key: seen[key] for key in ("body", "content_type", "accept", "custom_attributes", "inference_id",
                                       "operation", "endpoint_name")} == {
        "body": "hello async", "content_type": "text/plain", "accept": "application/json",
        "custom_attributes": "trace=7", "inference_id": "seen-1", "operation": "InvokeEndpointAsync",
        "endpoint_name": "inspect-file",
    }
    # No failure path configured: failures would go next to the results.
    assert out.failure_location == (scratch / "inspect" / "seen-1-error.out").as_uri()


def test_request_ttl_expires_a_request_that_waited_too_long_in_the_queue(client, endpoint, scratch) -> None:
    before = endpoint.counters("ttl").model_runs
    first = client.invoke_endpoint_async(endpoint_name="ttl", input_location=_write_input(scratch / "inputs", b"one"))
    second = client.invoke_endpoint_async(endpoint_name="ttl", input_location=_write_input(scratch / "inputs", b"two"),
                                          request_ttl_seconds=60)

    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(second, timeout=10, poll_interval=0.02, file_root=scratch)
    assert client.wait_for_async_inference(first, timeout=10, poll_interval=0.02, file_root=scratch) == b"rested: one"

    message = json.loads(caught.value.body)["Message"]
    assert message.startswith(f"Inference {second.inference_id} expired: it waited ")
    assert "RequestTTLSeconds (60 s x time_scale 0.005)" in message
    assert endpoint.counters("ttl").model_runs - before == 1  # the expired one never ran


def test_invocation_timeout_fails_a_model_that_runs_too_long(client, scratch) -> None:
    # Inline: reading an input also counts against the 10 ms, and this test is about the model.
    out = client.invoke_endpoint_async(endpoint_name="timeout", body=b"x", invocation_timeout_seconds=1)

    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch)

    document = json.loads(caught.value.body)
    assert document["OriginalStatusCode"] == 0
    assert "Your invocation timed out while waiting for a response from container primary" in document["Message"]
    assert not Path(parse_location(str(out.output_location)).key).exists()


def test_default_invocation_timeout_lets_the_same_model_finish(client, scratch) -> None:
    # 900 s x 0.01 = 9 s: plenty for a 0.3 s model.
    out = client.invoke_endpoint_async(endpoint_name="timeout", input_location=_write_input(scratch / "inputs", b"ok"))

    assert client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch) == b"rested: ok"


def test_wait_times_out_then_the_result_arrives(client, scratch) -> None:
    out = client.invoke_endpoint_async(endpoint_name="slow-file", input_location=_write_input(scratch / "inputs", b"z"))

    with pytest.raises(WaitTimeoutError):
        client.wait_for_async_inference(out, timeout=0.05, poll_interval=0.01, file_root=scratch)
    assert client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch) == b"rested: z"


def _cli_wait_for_sum(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch, location: str, *options: str) -> int:
    """``smruntime invoke-endpoint-async --wait`` on the file-backed sum endpoint, signed with the example pair."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EXAMPLE[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EXAMPLE[1])
    return main(["invoke-endpoint-async", "--endpoint-url", endpoint.url, "--region", REGION,
                 "--endpoint-name", "sum-file", "--input-location", location, "--content-type", "application/json",
                 "--wait", "--timeout", "10", "--poll-interval", "0.02", *options])


def test_cli_invoke_endpoint_async_wait_prints_the_locations_then_the_result(endpoint, scratch, monkeypatch,
                                                                             capsysbinary) -> None:
    location = _write_input(scratch / "inputs", b'{"numbers": [1, 2, 3, 4]}')

    status = _cli_wait_for_sum(endpoint, monkeypatch, location, "--inference-id", "from-the-cli",
                               "--file-root", str(scratch))

    assert status == 0
    printed = capsysbinary.readouterr().out.decode()
    summary, _, result = printed.partition("}\n")
    assert json.loads(summary + "}") == {
        "InferenceId": "from-the-cli",
        "OutputLocation": (scratch / "sum" / "out" / "from-the-cli.out").as_uri(),
        "FailureLocation": (scratch / "sum" / "failed" / "from-the-cli-error.out").as_uri(),
    }
    assert json.loads(result)["sum"] == 10


def test_cli_wait_without_file_root_says_which_option_reads_a_file_result(endpoint, scratch, monkeypatch,
                                                                           capsys) -> None:
    location = _write_input(scratch / "inputs", b'{"numbers": [1]}')

    status = _cli_wait_for_sum(endpoint, monkeypatch, location)

    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("smruntime: error: the endpoint named the local file ")
    assert error.endswith("Pass --file-root FOLDER (a folder you trust) to read file:// results from it.\n")


# --- boto3 as a second client -----------------------------------------------------------------

def test_boto3_gets_the_same_inference_id_and_locations_as_smruntime(client, boto_client, scratch) -> None:
    location = _write_input(scratch / "inputs", b'{"numbers": [5]}')
    ours = client.invoke_endpoint_async(endpoint_name="sum-file", input_location=location, inference_id="same-id",
                                        s3_output_path_extension="shape")
    theirs = boto_client.invoke_endpoint_async(EndpointName="sum-file", InputLocation=location, InferenceId="same-id",
                                               S3OutputPathExtension="shape")

    assert theirs["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (theirs["InferenceId"], theirs["OutputLocation"], theirs["FailureLocation"]) == (
        ours.inference_id, ours.output_location, ours.failure_location)
    generated = boto_client.invoke_endpoint_async(EndpointName="sum-file", InputLocation=location)
    assert str(uuid.UUID(generated["InferenceId"])) == generated["InferenceId"]
    assert generated["OutputLocation"] == (scratch / "sum" / "out" / f"{generated['InferenceId']}.out").as_uri()
    assert json.loads(client.wait_for_async_inference(
        InvokeEndpointAsyncOutput(inference_id=generated["InferenceId"], output_location=generated["OutputLocation"],
                                  failure_location=generated["FailureLocation"]),
        timeout=10, poll_interval=0.02, file_root=scratch))["sum"] == 5


def test_boto3_inline_body_is_used_instead_of_an_input_location(client, boto_client, scratch) -> None:
    theirs = boto_client.invoke_endpoint_async(EndpointName="sum-file", Body=b'{"numbers": [7, 7]}',
                                               ContentType="application/json")
    out = InvokeEndpointAsyncOutput(inference_id=theirs["InferenceId"], output_location=theirs["OutputLocation"],
                                    failure_location=theirs["FailureLocation"])

    assert json.loads(client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch))["sum"] == 14


# --- request errors ---------------------------------------------------------------------------

def test_endpoint_without_async_config_is_a_validation_error(client, scratch) -> None:
    with pytest.raises(ValidationError, match="Endpoint sum of account 123456789012 is not configured for asynchronous"):
        client.invoke_endpoint_async(endpoint_name="sum", input_location=_write_input(scratch / "inputs", b"{}"))


def test_unknown_endpoint_is_a_validation_error(client) -> None:
    with pytest.raises(ValidationError, match="Endpoint nope of account 123456789012 not found"):
        client.invoke_endpoint_async(endpoint_name="nope", input_location="s3://bucket/key")


def test_bad_headers_are_one_validation_error_listing_each(endpoint) -> None:
    unchecked = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name=REGION,
                             aws_access_key_id=EXAMPLE[0], aws_secret_access_key=EXAMPLE[1],
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    try:
        with pytest.raises(unchecked.exceptions.ValidationError) as caught:
            unchecked.invoke_endpoint_async(EndpointName="sum-file", InputLocation="ftp://host/key",
                                            RequestTTLSeconds=59, InvocationTimeoutSeconds=3601,
                                            S3OutputPathExtension="s3:bad", Filename="a.b.c")
    finally:
        unchecked.close()
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("5 validation errors detected: ")
    for part in (
        "Value 'ftp://host/key' at 'inputLocation' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: ^(https|s3)://([^/]+)/?(.*)$",
        "Value '59' at 'requestTTLSeconds' failed to satisfy constraint: Member must have value greater than or "
        "equal to 60",
        "Value '3601' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must have value less than "
        "or equal to 3600",
        "Value 's3:bad' at 's3OutputPathExtension' failed to satisfy constraint",
        "Value 'a.b.c' at 'filename' failed to satisfy constraint",
    ):
        assert part in message
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, "Either InputLocation or Body is required."),
    ({"InputLocation": "s3://bucket/key", "Body": b"{}"}, "InputLocation and Body are mutually exclusive"),
    ({"InputLocation": "https://example.com/data.json"}, "is not an Amazon S3 URL"),
    ({"InputLocation": "s3://bucket/key", "S3OutputPathExtension": "a/../../etc"},
     "may not contain '.' or '..' segments"),
    ({"InputLocation": "s3://bucket/key", "RequestTTLSeconds": "soon"}, "Member must be an integer"),
])
def test_local_endpoint_rejects_what_it_cannot_queue(endpoint, kwargs, expected) -> None:
    unchecked = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name=REGION,
                             aws_access_key_id=EXAMPLE[0], aws_secret_access_key=EXAMPLE[1],
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    try:
        with pytest.raises(unchecked.exceptions.ValidationError, match=expected.replace(".", r"\.")):
            unchecked.invoke_endpoint_async(EndpointName="sum-file", **kwargs)
    finally:
        unchecked.close()


def test_scheduled_faults_apply_to_async_requests(client, endpoint, scratch) -> None:
    endpoint.faults("sum-file").fail_next(1, status=503)
    location = _write_input(scratch / "inputs", b'{"numbers": [1]}')

    with pytest.raises(ServiceUnavailable):
        client.invoke_endpoint_async(endpoint_name="sum-file", input_location=location)
    out = client.invoke_endpoint_async(endpoint_name="sum-file", input_location=location)
    assert json.loads(client.wait_for_async_inference(out, timeout=10, poll_interval=0.02, file_root=scratch))["sum"] == 1


# --- shutdown ---------------------------------------------------------------------------------

def test_stopping_the_endpoint_drops_queued_requests_and_ends_cleanly(tmp_path) -> None:
    config = LocalConfig(endpoints=(EndpointConfig.serving(
        "slow", napping(0.3), async_inference=_on_disk(tmp_path / "slow", max_concurrent_invocations=1)),))
    local = LocalEndpoint(config, credentials=EXAMPLE).start()
    with Client(region=REGION, endpoint_url=local.url, credentials=EXAMPLE) as queue_client:
        queued = [queue_client.invoke_endpoint_async(endpoint_name="slow",
                                                     input_location=_write_input(tmp_path / "inputs", str(n).encode()))
                  for n in range(3)]
    deadline = time.monotonic() + 5
    while local.counters("slow").model_runs < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first job's model is running
    started = time.monotonic()
    local.stop()

    assert time.monotonic() - started < 5
    assert not local.running
    assert not [thread for thread in threading.enumerate() if thread.name.endswith(f"-{local.port}")]
    assert local.counters("slow").model_runs == 1
    for out in queued[1:]:
        assert not Path(parse_location(str(out.output_location)).key).exists()
        assert not Path(parse_location(str(out.failure_location)).key).exists()


# --- configuration and naming -----------------------------------------------------------------

def test_async_inference_from_toml_shaped_config() -> None:
    config = config_from_dict({"endpoints": [{"name": "a", "model": "sum", "async_inference": {
        "s3_output_path": "s3://b/out", "s3_endpoint_url": "http://127.0.0.1:9", "max_concurrent_invocations": 2,
        "time_scale": 0.5}}]})
    assert config.endpoints[0].async_inference == AsyncInferenceConfig(
        s3_output_path="s3://b/out", s3_endpoint_url="http://127.0.0.1:9", max_concurrent_invocations=2, time_scale=0.5)
    with pytest.raises(ValueError, match=r"unknown keys \['s3_output'\]"):
        config_from_dict({"endpoints": [{"name": "a", "model": "sum", "async_inference": {"s3_output": "s3://b"}}]})
    with pytest.raises(ValueError, match="must be an s3:// or file:// location"):
        AsyncInferenceConfig(s3_output_path="/tmp/out")
    with pytest.raises(ValueError, match="time_scale must be a number > 0 and <= 1000, got 0"):
        AsyncInferenceConfig(s3_output_path="s3://b", time_scale=0)


def test_result_locations_naming() -> None:
    config = AsyncInferenceConfig(s3_output_path="s3://b/out/", s3_failure_path="s3://b/failed")
    assert result_locations(config, "abc-1") == ("s3://b/out/abc-1.out", "s3://b/failed/abc-1-error.out")
    assert result_locations(config, "abc-1", "x/y/", "r.json") == ("s3://b/out/x/y/r.json",
                                                                  "s3://b/failed/x/y/r.json-error.out")
    # An inference id that is not a plain file name ("/" would make folders) is not used as one.
    output, failure = result_locations(config, "a/b c")
    name = output.rsplit("/", 1)[1].removesuffix(".out")
    assert str(uuid.UUID(name)) == name
    assert failure == f"s3://b/failed/{name}-error.out"
    only_output = AsyncInferenceConfig(s3_output_path="s3://b")
    assert result_locations(only_output, "i") == ("s3://b/i.out", "s3://b/i-error.out")


def test_locations_parse_s3_https_and_file() -> None:
    assert parse_location("s3://bucket/a b/%41?x").key == "a b/%41?x"  # verbatim, as S3 URIs are
    assert parse_location("s3://bucket").key == ""
    virtual = parse_location("https://my.bucket.s3.eu-west-1.amazonaws.com/k/v.json")
    assert (virtual.scheme, virtual.bucket, virtual.key) == ("s3", "my.bucket", "k/v.json")
    path_style = parse_location("https://s3.us-east-1.amazonaws.com/bkt/k.json")
    assert (path_style.bucket, path_style.key) == ("bkt", "k.json")
    assert parse_location("file:///tmp/a%20b.json").key == "/tmp/a b.json"
    for bad in ("s3:///key", "file://host/x", "https://example.com/x", "ftp://x/y", "file:relative"):
        with pytest.raises(ValueError):
            parse_location(bad)
    assert join_location("file:///r/", "", "/ext/", "n.out") == "file:///r/ext/n.out"
