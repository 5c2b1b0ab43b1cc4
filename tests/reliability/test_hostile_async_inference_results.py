"""A hostile endpoint names the async result locations: the client reads only what it trusts.

The endpoint is the raw-socket test server answering InvokeEndpointAsync with whatever
``OutputLocation``/``FailureLocation`` a spoofed or compromised endpoint would send; the
client must not read local files it was not pointed at, nor anything unbounded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smruntime import Client
from smruntime.errors import AsyncInferenceFailedError, SageMakerRuntimeError, WaitTimeoutError
from smruntime.file_locations import MAX_ASYNC_PAYLOAD_BYTES
from tests.reliability.support import make_client
from tests.servers import HTTPTestServer, respond

NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
               b"<Message>The specified key does not exist.</Message></Error>")


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: HTTPTestServer) -> Iterator[Client]:
    with make_client(server.url, max_attempts=1) as made:
        yield made


def _queued(client: Client, server: HTTPTestServer, output: str, failure: str | None = None) -> Any:
    headers = [("Content-Type", "application/json"), ("X-Amzn-SageMaker-OutputLocation", output)]
    if failure is not None:
        headers.append(("X-Amzn-SageMaker-FailureLocation", failure))
    server.enqueue(respond(202, b'{"InferenceId": "spoofed"}', headers=headers))
    return client.invoke_endpoint_async(endpoint_name="any", input_location="s3://bucket/in.json")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("client-side secret")
    return path


def test_a_file_output_location_is_refused_without_a_file_root(client: Client, server: HTTPTestServer,
                                                               secret: Path) -> None:
    out = _queued(client, server, secret.as_uri())

    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=1, poll_interval=0.01)

    assert "Pass file_root=" in str(caught.value)
    assert "client-side secret" not in str(caught.value)


def test_a_file_failure_location_is_never_quoted_without_a_file_root(client: Client, server: HTTPTestServer,
                                                                     secret: Path, tmp_path: Path) -> None:
    out = _queued(client, server, "s3://results/never-there.out", secret.as_uri())

    # The output is not on S3 yet; the failure names the local secret.
    server.enqueue(respond(404, NO_SUCH_KEY, headers=[("Content-Type", "application/xml")]))
    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=1, poll_interval=0.01, s3_endpoint_url=server.url)
    assert not isinstance(caught.value, AsyncInferenceFailedError)
    assert "client-side secret" not in str(caught.value)


@pytest.mark.parametrize("where", ["outside", "dot-dot", "symlink"])
def test_a_file_location_outside_the_file_root_is_refused(client: Client, server: HTTPTestServer, secret: Path,
                                                          tmp_path: Path, where: str) -> None:
    root = tmp_path / "results"
    root.mkdir()
    (root / "link").symlink_to(secret)
    location = {"outside": secret.as_uri(), "dot-dot": f"{root.as_uri()}/../secret.txt",
                "symlink": (root / "link").as_uri()}[where]
    out = _queued(client, server, location)

    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=1, poll_interval=0.01, file_root=root)

    assert "outside the folders allowed" in str(caught.value)
    assert "client-side secret" not in str(caught.value)


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_a_file_location_that_is_not_a_regular_file_is_refused(client: Client, server: HTTPTestServer,
                                                                tmp_path: Path, device: str) -> None:
    if device == "fifo":
        os.mkfifo(tmp_path / "results.fifo")
        location, root = (tmp_path / "results.fifo").as_uri(), tmp_path
    else:
        location, root = "file:///dev/zero", Path("/dev")
    out = _queued(client, server, location)

    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=5, poll_interval=0.01, file_root=root)

    assert "is not a regular file" in str(caught.value)


def test_a_file_result_over_1_gb_is_refused_unread(client: Client, server: HTTPTestServer, tmp_path: Path) -> None:
    huge = tmp_path / "huge.out"
    with huge.open("wb") as handle:
        handle.truncate(MAX_ASYNC_PAYLOAD_BYTES + 1)  # sparse
    out = _queued(client, server, huge.as_uri())

    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=5, poll_interval=0.01, file_root=tmp_path)

    assert f"more than the {MAX_ASYNC_PAYLOAD_BYTES} allowed" in str(caught.value)


def test_a_file_result_inside_the_file_root_is_read(client: Client, server: HTTPTestServer, tmp_path: Path) -> None:
    result = tmp_path / f"{uuid.uuid4().hex}.out"
    result.write_bytes(b'{"sum": 3}')
    out = _queued(client, server, result.as_uri(), (tmp_path / "never.out").as_uri())

    assert client.wait_for_async_inference(out, timeout=5, poll_interval=0.01, file_root=tmp_path) == b'{"sum": 3}'


def test_a_missing_file_result_inside_the_file_root_waits_until_the_timeout(client: Client, server: HTTPTestServer,
                                                                            tmp_path: Path) -> None:
    out = _queued(client, server, (tmp_path / "later.out").as_uri(), (tmp_path / "later-error.out").as_uri())

    with pytest.raises(WaitTimeoutError):
        client.wait_for_async_inference(out, timeout=0.1, poll_interval=0.02, file_root=tmp_path)


def test_an_s3_result_over_1_gb_is_refused_unread(client: Client, server: HTTPTestServer) -> None:
    out = _queued(client, server, "s3://results/huge.out")

    # The test server stands in for S3: it declares more than 1 GB and sends a few bytes.
    server.enqueue(respond(200, b"x" * 16, content_length=MAX_ASYNC_PAYLOAD_BYTES + 1))
    with pytest.raises(SageMakerRuntimeError) as caught:
        client.wait_for_async_inference(out, timeout=5, poll_interval=0.01, s3_endpoint_url=server.url)

    assert f"more than the {MAX_ASYNC_PAYLOAD_BYTES} allowed" in str(caught.value)
