"""moto's server as a second implementation of the API: our wire format against a server we did not write.

Results are queued through moto's own API (``/moto-api/static/sagemaker/endpoint-results`` and
``.../async-endpoint-results``); smruntime's calls must get exactly those back. moto answers
InvokeEndpointAsync with 200 (the service: 202) and puts async results in its own S3, which the
client's wait helper reads through the same server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from smruntime import Client
from smruntime.errors import AsyncInferenceFailedError
from tests.integration.async_support import REGION, isolate_aws_env, running_moto, s3_client


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_aws_env(patch, tmp_path_factory.mktemp("aws"))
        with running_moto() as url:
            yield url


@pytest.fixture(autouse=True)
def fresh_moto(moto_url: str) -> None:
    # Queued results and remembered answers live in moto's backends: start each test from nothing.
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()


@pytest.fixture
def client(moto_url: str) -> Iterator[Client]:
    with Client(region=REGION, endpoint_url=moto_url, credentials=("AKIDANY", "any-secret"), retry_mode="none") as made:
        yield made


def _queue(moto_url: str, api: str, results: list[dict[str, Any]]) -> None:
    answer = requests.post(f"{moto_url}/moto-api/static/sagemaker/{api}",
                           json={"account_id": "123456789012", "region": REGION, "results": results}, timeout=5)
    assert answer.status_code == 201


def test_invoke_endpoint_gets_the_queued_results_in_order(client, moto_url) -> None:
    _queue(moto_url, "endpoint-results", [
        {"Body": '{"prediction": 1}', "ContentType": "application/json", "InvokedProductionVariant": "blue",
         "CustomAttributes": "model=v1"},
        {"Body": "second", "ContentType": "text/plain", "InvokedProductionVariant": "green",
         "CustomAttributes": "model=v2"},
    ])

    first = client.invoke_endpoint(endpoint_name="peer", body=b'{"x": 1}', content_type="application/json")
    second = client.invoke_endpoint(endpoint_name="peer", body=b'{"x": 2}', content_type="application/json")

    assert (first.body, first.content_type, first.invoked_production_variant, first.custom_attributes) == (
        b'{"prediction": 1}', "application/json", "blue", "model=v1")
    assert (second.body, second.content_type, second.invoked_production_variant, second.custom_attributes) == (
        b"second", "text/plain", "green", "model=v2")
    assert first.metadata.http_status == 200


def test_invoke_endpoint_same_request_gets_the_same_answer(client, moto_url) -> None:
    # moto remembers an answer per request (headers + body): a retry-like repeat is idempotent there.
    _queue(moto_url, "endpoint-results", [{"Body": "a"}, {"Body": "b"}])

    repeated = [client.invoke_endpoint(endpoint_name="peer", body=b"same", custom_attributes="k=v").body
                for _ in range(2)]
    other = client.invoke_endpoint(endpoint_name="peer", body=b"different").body

    assert repeated == [b"a", b"a"]
    assert other == b"b"


def test_invoke_endpoint_async_result_is_read_back_from_moto_s3(client, moto_url) -> None:
    _queue(moto_url, "async-endpoint-results", [{"data": json.dumps({"answer": 42})}])

    out = client.invoke_endpoint_async(endpoint_name="peer", input_location="s3://in/one.json",
                                       inference_id="peer-1", content_type="application/json")

    assert out.metadata.http_status == 200  # moto's choice; the op accepts any 2xx
    assert out.inference_id == "peer-1"
    assert out.output_location is not None and out.output_location.startswith("s3://sagemaker-output-")
    assert out.output_location.endswith("/response.json")
    assert out.failure_location is not None and out.failure_location.endswith("/failure.json")
    answer = client.wait_for_async_inference(out, timeout=5, poll_interval=0.02, s3_endpoint_url=moto_url)
    assert json.loads(answer) == {"answer": 42}


def test_invoke_endpoint_async_failure_is_raised_by_the_wait_helper(client, moto_url) -> None:
    _queue(moto_url, "async-endpoint-results", [{"is_failure": True, "data": "second inference failed"}])

    out = client.invoke_endpoint_async(endpoint_name="peer", input_location="s3://in/two.json")

    assert out.inference_id  # moto made one up
    with pytest.raises(AsyncInferenceFailedError, match="second inference failed") as caught:
        client.wait_for_async_inference(out, timeout=5, poll_interval=0.02, s3_endpoint_url=moto_url)
    assert caught.value.body == b"second inference failed"
    assert caught.value.failure_location == out.failure_location


def test_invoke_endpoint_async_falls_back_to_the_endpoint_results_queue(client, moto_url) -> None:
    # With no async results queued, moto serves async calls from the InvokeEndpoint queue, as JSON.
    _queue(moto_url, "endpoint-results", [{"Body": "from the sync queue", "ContentType": "text/plain",
                                           "InvokedProductionVariant": "v", "CustomAttributes": "c"}])

    out = client.invoke_endpoint_async(endpoint_name="peer", input_location="s3://in/three.json")
    stored = json.loads(client.wait_for_async_inference(out, timeout=5, poll_interval=0.02, s3_endpoint_url=moto_url))

    assert stored == {"Body": "from the sync queue", "ContentType": "text/plain", "InvokedProductionVariant": "v",
                      "CustomAttributes": "c"}


def test_result_objects_are_plain_s3_objects(client, moto_url) -> None:
    _queue(moto_url, "async-endpoint-results", [{"data": "plain"}])
    out = client.invoke_endpoint_async(endpoint_name="peer", input_location="s3://in/four.json")
    assert out.output_location is not None
    bucket, _, key = out.output_location.removeprefix("s3://").partition("/")

    s3 = s3_client(moto_url)
    try:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"plain"
    finally:
        s3.close()
