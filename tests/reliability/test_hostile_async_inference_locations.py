"""Hostile async inference locations against the local endpoint, over real sockets.

A caller names InputLocation; the endpoint reads only inside the folders its config declares,
only regular files, never more than its limit and never for longer than the invocation
timeout, on disk and on S3 alike. Results on disk are readable by their owner only.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smruntime import Client
from smruntime.errors import AsyncInferenceFailedError, ValidationError
from smruntime.file_locations import MAX_ASYNC_PAYLOAD_BYTES
from smruntime.local import LocalEndpoint
from smruntime.local.config import AsyncInferenceConfig, EndpointConfig, LocalConfig
from tests.integration.aws_env import isolate_aws_env
from tests.reliability.support import CREDENTIALS, REGION
from tests.servers import HTTPTestServer, Reply, Send, Wait, respond


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-async")
    for name in ("inputs", "out", "failed"):
        (root / name).mkdir()
    (root / "secret.txt").write_text("AWS_SECRET_ACCESS_KEY=do-not-leak")
    return root


@pytest.fixture(scope="module")
def s3_server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def endpoint(tree: Path, s3_server: HTTPTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    on_disk = AsyncInferenceConfig(s3_output_path=(tree / "out").as_uri(), s3_failure_path=(tree / "failed").as_uri(),
                                   input_root=(tree / "inputs").as_uri())
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("echo-file", "echo", async_inference=on_disk),
        EndpointConfig.serving("echo-small", "echo", async_inference=AsyncInferenceConfig(
            s3_output_path=(tree / "out").as_uri(), input_root=(tree / "inputs").as_uri(), max_input_bytes=1024)),
        # Results on the disk, inputs from the raw test server standing in for S3; InvocationTimeoutSeconds
        # x 0.5 is the budget for reading the input.
        EndpointConfig.serving("echo-s3-in", "echo", async_inference=AsyncInferenceConfig(
            s3_output_path=(tree / "out").as_uri(), s3_endpoint_url=s3_server.url, max_input_bytes=1024,
            time_scale=0.5)),
        EndpointConfig.serving("echo-s3-only", "echo", async_inference=AsyncInferenceConfig(
            s3_output_path="s3://results/out", s3_endpoint_url=s3_server.url)),
    ))
    with pytest.MonkeyPatch.context() as patch:
        isolate_aws_env(patch, tmp_path_factory.mktemp("aws"))
        with LocalEndpoint(config, credentials=CREDENTIALS) as running:
            yield running


@pytest.fixture(scope="module")
def client(endpoint: LocalEndpoint, tree: Path) -> Iterator[Client]:
    with Client(region=REGION, endpoint_url=endpoint.url, credentials=CREDENTIALS, retry_mode="none") as made:
        yield made


def _queue(client: Client, endpoint: str, location: str, **params: Any) -> Any:
    return client.invoke_endpoint_async(endpoint_name=endpoint, input_location=location, **params)


def _failure(client: Client, out: Any, tree: Path) -> str:
    with pytest.raises(AsyncInferenceFailedError) as caught:
        client.wait_for_async_inference(out, timeout=20, poll_interval=0.02, file_root=tree)
    return str(json.loads(caught.value.body)["Message"])


# --- confinement: refused before anything is read ----------------------------------------------

@pytest.mark.parametrize("where", ["absolute", "dot-dot", "symlink", "symlinked-folder", "proc", "dev-zero"])
def test_a_file_input_outside_the_declared_folders_is_a_validation_error(client: Client, tree: Path,
                                                                         where: str) -> None:
    inputs = tree / "inputs"
    name = uuid.uuid4().hex
    if where == "symlink":
        (inputs / name).symlink_to(tree / "secret.txt")
    if where == "symlinked-folder":
        (inputs / name).symlink_to(tree, target_is_directory=True)
    location = {
        "absolute": (tree / "secret.txt").as_uri(),
        "dot-dot": f"{inputs.as_uri()}/../secret.txt",
        "symlink": (inputs / name).as_uri(),
        "symlinked-folder": f"{(inputs / name).as_uri()}/secret.txt",
        "proc": "file:///proc/self/environ",
        "dev-zero": "file:///dev/zero",
    }[where]
    before = set((tree / "out").iterdir())

    with pytest.raises(ValidationError) as caught:
        _queue(client, "echo-file", location)

    assert "outside the folders this endpoint reads file:// inputs from" in str(caught.value)
    assert set((tree / "out").iterdir()) == before  # nothing queued, nothing written


def test_an_endpoint_without_file_folders_refuses_file_inputs_as_the_service_does(client: Client, tree: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        _queue(client, "echo-s3-only", (tree / "secret.txt").as_uri())

    assert "at 'inputLocation' failed to satisfy constraint: Member must satisfy regular expression pattern: " \
           "^(https|s3)://([^/]+)/?(.*)$" in str(caught.value)


def test_a_file_inside_the_input_root_is_read_and_the_result_is_private(client: Client, tree: Path) -> None:
    source = tree / "inputs" / f"{uuid.uuid4().hex}.txt"
    source.write_bytes(b"fine")
    out = _queue(client, "echo-file", source.as_uri(), content_type="text/plain")

    assert client.wait_for_async_inference(out, timeout=20, poll_interval=0.02, file_root=tree) == b"fine"
    result = Path(str(out.output_location).removeprefix("file://"))
    assert stat.S_IMODE(result.stat().st_mode) == 0o600


def test_a_failure_document_is_private_too(client: Client, tree: Path) -> None:
    out = _queue(client, "echo-file", (tree / "inputs" / "missing.txt").as_uri())

    assert "No such file or directory" in _failure(client, out, tree)
    failure = Path(str(out.failure_location).removeprefix("file://"))
    assert stat.S_IMODE(failure.stat().st_mode) == 0o600


# --- what is inside the folders: regular files, bounded ----------------------------------------

def test_a_fifo_in_the_input_root_is_refused_without_waiting_for_a_writer(client: Client, tree: Path) -> None:
    fifo = tree / "inputs" / f"{uuid.uuid4().hex}.fifo"
    os.mkfifo(fifo)
    out = _queue(client, "echo-file", fifo.as_uri())

    assert "is not a regular file" in _failure(client, out, tree)


def test_a_device_linked_into_the_input_root_is_refused(client: Client, tree: Path) -> None:
    # The link is followed to /dev: outside the folders, refused at once.
    link = tree / "inputs" / f"{uuid.uuid4().hex}.bin"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValidationError):
        _queue(client, "echo-file", link.as_uri())


def test_an_input_over_the_limit_is_a_failure_and_never_read(client: Client, tree: Path) -> None:
    big = tree / "inputs" / f"{uuid.uuid4().hex}.bin"
    with big.open("wb") as handle:
        handle.truncate(2048)  # sparse: nothing to read, the size alone is over 1024
    out = _queue(client, "echo-small", big.as_uri())

    assert "holds 2048 bytes, more than the 1024 allowed" in _failure(client, out, tree)


def test_the_default_limit_is_the_services_1_gb(client: Client, tree: Path) -> None:
    huge = tree / "inputs" / f"{uuid.uuid4().hex}.bin"
    with huge.open("wb") as handle:
        handle.truncate(MAX_ASYNC_PAYLOAD_BYTES + 1)  # sparse: costs no disk
    try:
        out = _queue(client, "echo-file", huge.as_uri())
        assert f"more than the {MAX_ASYNC_PAYLOAD_BYTES} allowed" in _failure(client, out, tree)
    finally:
        huge.unlink()


def test_an_s3_object_over_the_limit_is_a_failure(client: Client, tree: Path, s3_server: HTTPTestServer) -> None:
    s3_server.enqueue(respond(200, b"x" * 4096, headers=[("Content-Type", "application/octet-stream")]))
    out = _queue(client, "echo-s3-in", "s3://inputs/big.bin")

    assert "more than the 1024 allowed" in _failure(client, out, tree)


def test_an_s3_object_streamed_past_the_limit_is_refused(client: Client, tree: Path,
                                                                 s3_server: HTTPTestServer) -> None:
    body = b"y" * 4096
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    s3_server.enqueue(Reply([Send(head + chunk)]))
    out = _queue(client, "echo-s3-in", "s3://inputs/chunked.bin")

    assert "more than the 1024 bytes allowed" in _failure(client, out, tree)


def test_a_stalled_s3_read_gives_up_within_the_invocation_timeout(client: Client, tree: Path,
                                                                 s3_server: HTTPTestServer) -> None:
    release = threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nabc"
    s3_server.enqueue(Reply([Send(head), Wait(release, timeout=30)]))
    started = time.monotonic()
    try:
        # InvocationTimeoutSeconds 2 x time_scale 0.5 = 1 s, far less than botocore's 60 s read timeout.
        out = _queue(client, "echo-s3-in", "s3://inputs/stalled.bin", invocation_timeout_seconds=2)
        message = _failure(client, out, tree)
    finally:
        release.set()
    assert "no answer within 1 s" in message
    assert time.monotonic() - started < 20


# --- serve stops on Ctrl-C whatever the reads are doing ----------------------------------------

def _serve(tmp_path: Path, async_inference: str) -> subprocess.Popen[str]:
    config = tmp_path / "endpoints.toml"
    config.write_text(f'[[endpoints]]\nname = "echo-async"\nmodel = "echo"\n[endpoints.async_inference]\n'
                      f's3_output_path = "{(tmp_path / "out").as_uri()}"\n{async_inference}')
    env = {**os.environ, "AWS_ACCESS_KEY_ID": CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    return subprocess.Popen([sys.executable, "-m", "smruntime", "serve", "--port", "0", "--config", str(config)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)


def _interrupt_while_reading(process: subprocess.Popen[str], location: str,
                             reading: Callable[[], bool] | None = None) -> None:
    try:
        assert process.stderr is not None
        url = process.stderr.readline().split(" on ", 1)[1].split(" ", 1)[0]
        with Client(region=REGION, endpoint_url=url, credentials=CREDENTIALS, retry_mode="none") as caller:
            caller.invoke_endpoint_async(endpoint_name="echo-async", input_location=location)
        time.sleep(0.5)  # the worker has started reading
        deadline = time.monotonic() + 30  # a loaded machine can take longer to get there
        while reading is not None and not reading() and time.monotonic() < deadline:
            time.sleep(0.05)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) is not None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_serve_stops_on_sigint_with_an_async_read_of_a_fifo_pending(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    os.mkfifo(inputs / "stuck.fifo")
    process = _serve(tmp_path, f'input_root = "{inputs.as_uri()}"\n')
    _interrupt_while_reading(process, (inputs / "stuck.fifo").as_uri())


def test_serve_stops_on_sigint_while_an_s3_read_is_stuck(tmp_path: Path) -> None:
    release = threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nabc"
    with HTTPTestServer(default=Reply([Send(head), Wait(release, timeout=30)])) as stalling_s3:
        process = _serve(tmp_path, f's3_endpoint_url = "{stalling_s3.url}"\n')
        try:
            _interrupt_while_reading(process, "s3://inputs/stalled.bin", lambda: len(stalling_s3.requests) == 1)
            assert len(stalling_s3.requests) == 1  # the read had started and was stuck
        finally:
            release.set()
