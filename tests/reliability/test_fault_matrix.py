"""The fault matrix: one test per fault, the outcome asserted with what the server counted.

Every row states the attempts the client made, how many times the model ran (counted by the
local endpoint, not by the client) and what the caller got. Faults come from the local
endpoint's fault injection, from a gateway in front of it (what a load balancer does: 502s,
504s, closed and reset connections) or from the operating system (a refused connection).
Retry backoff is recorded, never slept.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any, cast

import pytest

from smruntime.errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    EventStreamError,
    MaxAttemptsExceededError,
    ModelStreamError,
    ReadTimeoutError,
    RetryQuotaExceededError,
    ServiceUnavailable,
)
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelRequest, ModelResponse, create_app
from smruntime.retry import RetryQuota
from tests.async_clients import KINDS
from tests.reliability.support import (
    CLIENT_KIND,
    CREDENTIALS,
    MIB,
    Action,
    Answer,
    Gateway,
    Sleeps,
    make_client,
    wait_until,
)

# --- models the matrix needs ---------------------------------------------------------------


class DigestModel:
    """Answers with the SHA-256 of the body it received, and remembers every one."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __call__(self, request: ModelRequest) -> ModelResponse:
        digest = hashlib.sha256(request.body).hexdigest()
        with self._lock:
            self.seen.append((len(request.body), digest))
        return ModelResponse(body=digest.encode(), content_type="text/plain")


class GateModel:
    """Holds its first call until ``release`` is set (a slow model); answers later calls at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.release.set()  # let a call still held from an earlier test finish
        with self._lock:
            self.calls = 0
        self.release = threading.Event()

    def __call__(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
            release = self.release
        if first:
            release.wait(30)
        return ModelResponse(body=request.body, content_type="text/plain")


def crashing_stream(request: ModelRequest) -> ModelResponse:
    """Streams two parts, then fails like a model that crashed while generating."""

    def parts() -> Iterator[bytes]:
        yield b"one "
        yield b"two "
        raise RuntimeError("the model crashed while generating")

    return ModelResponse(body=parts(), content_type="text/plain")


DIGEST = DigestModel()
GATE = GateModel()
CONFIG = LocalConfig(
    endpoints=(
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("tokens", "tokens"),
        EndpointConfig.serving("digest", DIGEST),
        EndpointConfig.serving("gate", GATE),
        EndpointConfig.serving("crash-stream", crashing_stream),
    )
)

STREAM_ROUTE = any("invocations-response-stream" in str(getattr(r, "path", "")) for r in create_app(CONFIG, CREDENTIALS).routes)
needs_stream_route = pytest.mark.skipif(not STREAM_ROUTE, reason="the local endpoint has no response-stream route yet")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(CONFIG, credentials=CREDENTIALS) as running:
        yield running


@pytest.fixture(autouse=True, params=KINDS)
def client_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every row runs on Client and on AsyncClient (``make_client`` reads the kind)."""
    token = CLIENT_KIND.set(request.param)
    yield request.param
    CLIENT_KIND.reset(token)


@pytest.fixture(autouse=True)
def clean(endpoint: LocalEndpoint) -> Iterator[None]:
    for name in endpoint.state.endpoints:
        endpoint.faults(name).clear()
        endpoint.counters(name).reset()
    endpoint.set_clock_offset(0)
    DIGEST.seen.clear()
    GATE.reset()
    yield
    GATE.release.set()
    endpoint.set_clock_offset(0)


def statuses(endpoint: LocalEndpoint, name: str = "echo") -> dict[int, int]:
    return endpoint.counters(name).snapshot().statuses


# --- retried server errors ---------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 500])
def test_server_error_twice_then_success(endpoint: LocalEndpoint, status: int) -> None:
    endpoint.faults("echo").fail_next(2, status=status)
    sleeps = Sleeps()
    with make_client(endpoint.url, sleeps=sleeps) as client:
        out = client.invoke_endpoint(endpoint_name="echo", body=b"payload")
    assert out.body == b"payload"
    assert out.metadata.attempts == 3
    assert len(sleeps.calls) == 2
    counters = endpoint.counters("echo")
    assert counters.requests == 3
    assert counters.model_runs == 1  # injected errors are answered before the model runs
    assert statuses(endpoint) == {status: 2, 200: 1}


@pytest.mark.parametrize(
    "answer",
    [
        Answer(502, b'{"message": "Bad Gateway"}', "application/json"),
        Answer(504, b'{"message": "Endpoint request timed out"}', "application/json"),
        Answer(502),
        Answer(504),
    ],
    ids=["502-json", "504-json", "502-empty", "504-empty"],
)
def test_gateway_error_twice_then_success(endpoint: LocalEndpoint, answer: Answer) -> None:
    sleeps = Sleeps()
    with Gateway(endpoint.url) as gateway, make_client(gateway.url, sleeps=sleeps) as client:
        gateway.plan(answer, answer)
        out = client.invoke_endpoint(endpoint_name="echo", body=b"through the gateway")
        assert len(gateway.requests) == 3
    assert out.body == b"through the gateway"
    assert out.metadata.attempts == 3
    assert len(sleeps.calls) == 2
    assert endpoint.counters("echo").requests == 1  # the gateway answered the first two itself
    assert endpoint.counters("echo").model_runs == 1


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_with_an_html_page_twice_then_success(endpoint: LocalEndpoint, status: int) -> None:
    page = Answer(status, f"<html><body><h1>{status}</h1></body></html>".encode(), "text/html")
    with Gateway(endpoint.url) as gateway, make_client(gateway.url) as client:
        gateway.plan(page, page)
        out = client.invoke_endpoint(endpoint_name="echo", body=b"through the gateway")
    assert out.body == b"through the gateway"
    assert out.metadata.attempts == 3
    assert endpoint.counters("echo").model_runs == 1


def test_throttling_twice_then_success(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").throttle_next(2)
    sleeps = Sleeps()
    with make_client(endpoint.url, sleeps=sleeps) as client:
        out = client.invoke_endpoint(endpoint_name="echo", body=b"slow down")
    assert out.body == b"slow down"
    assert out.metadata.attempts == 3
    assert len(sleeps.calls) == 2
    assert endpoint.counters("echo").model_runs == 1
    assert statuses(endpoint) == {400: 2, 200: 1}


def test_retry_quota_exhausted(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").fail_next(3, status=503)
    quota = RetryQuota(5)  # pays for exactly one retry
    sleeps = Sleeps()
    with make_client(endpoint.url, sleeps=sleeps, quota=quota) as client, pytest.raises(RetryQuotaExceededError) as caught:
        client.invoke_endpoint(endpoint_name="echo", body=b"x")
    assert isinstance(caught.value.__cause__, ServiceUnavailable)
    assert caught.value.attempts == 2  # type: ignore[attr-defined]
    assert quota.available == 0
    assert len(sleeps.calls) == 1
    assert endpoint.counters("echo").requests == 2
    assert endpoint.counters("echo").model_runs == 0
    assert "retry quota exceeded" in str(caught.value)


def test_every_attempt_failing_ends_with_max_attempts(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").fail_next(3, status=503)
    with make_client(endpoint.url) as client, pytest.raises(MaxAttemptsExceededError) as caught:
        client.invoke_endpoint(endpoint_name="echo", body=b"x")
    assert isinstance(caught.value.__cause__, ServiceUnavailable)
    assert caught.value.attempts == 3
    assert endpoint.counters("echo").requests == 3
    assert endpoint.counters("echo").model_runs == 0


# --- connection faults ---------------------------------------------------------------------


def test_connection_refused() -> None:
    with socket.socket() as bound:  # bound but not listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        sleeps = Sleeps()
        with make_client(f"http://127.0.0.1:{port}", sleeps=sleeps) as client, pytest.raises(MaxAttemptsExceededError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=b"x")
    cause = caught.value.__cause__
    assert type(cause) is ConnectError
    assert cause.request_sent is False
    assert caught.value.attempts == 3
    assert len(sleeps.calls) == 2


def test_reset_before_any_response_byte_on_a_fresh_connection(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").reset_next(1)
    with make_client(endpoint.url) as client:
        with pytest.raises(ConnectionClosedError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=b"x")
        # The request was written whole: the model may have run, so it is not re-sent.
        assert caught.value.request_sent is True
        assert caught.value.attempts == 1  # type: ignore[attr-defined]
        assert endpoint.counters("echo").model_runs == 0
        assert client.invoke_endpoint(endpoint_name="echo", body=b"next").body == b"next"
    assert endpoint.counters("echo").requests == 2
    assert endpoint.counters("echo").model_runs == 1
    assert statuses(endpoint) == {0: 1, 200: 1}


def test_reset_before_any_response_byte_on_a_reused_connection(endpoint: LocalEndpoint) -> None:
    """After the request was written, "no answer at all" is ambiguous (the server may have run
    the model), so it is reported, not re-sent; the next call succeeds on a new connection."""
    with make_client(endpoint.url) as client:
        client.invoke_endpoint(endpoint_name="echo", body=b"warm")
        endpoint.faults("echo").reset_next(1)
        with pytest.raises(ConnectionClosedError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=b"again")
        assert caught.value.request_sent is True
        assert client.invoke_endpoint(endpoint_name="echo", body=b"next").body == b"next"
    assert endpoint.counters("echo").requests == 3
    assert endpoint.counters("echo").model_runs == 2  # warm-up and the last call: never twice
    assert statuses(endpoint) == {200: 2, 0: 1}


def test_reset_after_the_model_ran_on_a_reused_connection(endpoint: LocalEndpoint) -> None:
    with Gateway(endpoint.url) as gateway, make_client(gateway.url) as client:
        client.invoke_endpoint(endpoint_name="echo", body=b"warm")
        gateway.plan(Action.RESET_AFTER_FORWARD)
        with pytest.raises(ConnectionClosedError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=b"runs once")
        assert caught.value.request_sent is True
    assert endpoint.counters("echo").model_runs == 2  # warm-up + one run of the reset call


def test_idle_keep_alive_connection_closed_by_the_server_between_calls(endpoint: LocalEndpoint) -> None:
    with Gateway(endpoint.url) as gateway, make_client(gateway.url) as client:
        assert client.invoke_endpoint(endpoint_name="echo", body=b"one").body == b"one"
        assert gateway.server.close_idle_connections() == 1
        gateway.server.wait_connections_closed()
        assert client.invoke_endpoint(endpoint_name="echo", body=b"two").body == b"two"
        assert gateway.connections_accepted == 2
        assert [r.body for r in gateway.requests] == [b"one", b"two"]
    assert endpoint.counters("echo").model_runs == 2  # once per call


def test_idle_close_racing_the_next_request(endpoint: LocalEndpoint) -> None:
    """The server closes the pooled connection just as the next request arrives: the client
    cannot tell that from a server that ran the model and died, so it reports the failure
    (request_sent=True) instead of sending the request again; the next call succeeds."""
    with Gateway(endpoint.url) as gateway, make_client(gateway.url) as client:
        client.invoke_endpoint(endpoint_name="echo", body=b"warm")
        gateway.plan(Action.CLOSE_BEFORE_FORWARD)
        with pytest.raises(ConnectionClosedError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=b"raced")
        assert caught.value.request_sent is True
        assert client.invoke_endpoint(endpoint_name="echo", body=b"after").body == b"after"
        assert [r.body for r in gateway.requests] == [b"warm", b"raced", b"after"]
    assert endpoint.counters("echo").model_runs == 2  # the raced request never reached the model


# --- read timeouts -------------------------------------------------------------------------


def test_read_timeout_is_not_retried(endpoint: LocalEndpoint) -> None:
    with make_client(endpoint.url, read_timeout=0.5) as client, pytest.raises(ReadTimeoutError) as caught:
        client.invoke_endpoint(endpoint_name="gate", body=b"slow")
    assert caught.value.request_sent is True
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    GATE.release.set()
    wait_until(lambda: endpoint.counters("gate").snapshot().statuses.get(200) == 1, what="the held call to finish")
    assert endpoint.counters("gate").requests == 1
    assert endpoint.counters("gate").model_runs == 1


def test_read_timeout_is_retried_when_opted_in(endpoint: LocalEndpoint) -> None:
    sleeps = Sleeps()
    with make_client(endpoint.url, sleeps=sleeps, read_timeout=0.5, retry_read_timeouts=True) as client:
        out = client.invoke_endpoint(endpoint_name="gate", body=b"slow")
    assert out.body == b"slow"
    assert out.metadata.attempts == 2
    assert len(sleeps.calls) == 1
    GATE.release.set()
    wait_until(lambda: endpoint.counters("gate").snapshot().statuses.get(200) == 2, what="the held call to finish")
    assert endpoint.counters("gate").requests == 2
    assert endpoint.counters("gate").model_runs == 2  # the opt-in's price: the model ran twice


# --- broken responses ----------------------------------------------------------------------


def test_truncated_response_body_is_an_error_not_partial_data(endpoint: LocalEndpoint) -> None:
    body = os.urandom(64 * 1024)
    with Gateway(endpoint.url) as gateway, make_client(gateway.url) as client:
        gateway.plan(Action.TRUNCATE_AFTER_FORWARD)
        with pytest.raises(ConnectionClosedError) as caught:
            client.invoke_endpoint(endpoint_name="echo", body=body)
        assert len(gateway.requests) == 1
    assert caught.value.request_sent is True
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert endpoint.counters("echo").model_runs == 1


@needs_stream_route
def test_stream_broken_mid_message(endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").break_stream_after(2)
    received: list[bytes] = []
    with make_client(endpoint.url) as client:
        stream = client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c d e f")
        with stream, pytest.raises(EventStreamError):
            for part in stream:
                received.append(part.bytes)
        assert stream.metadata.attempts == 1
    assert received == [b"a", b" b"]
    assert endpoint.counters("tokens").requests == 1
    assert endpoint.counters("tokens").model_runs == 1


@needs_stream_route
def test_stream_failing_before_its_first_event_is_retried(endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").fail_next(1, status=503)
    with make_client(endpoint.url) as client:
        stream = client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c")
        with stream:
            assert list(stream.payloads()) == [b"a", b" b", b" c"]
        assert stream.metadata.attempts == 2
    assert endpoint.counters("tokens").requests == 2
    assert endpoint.counters("tokens").model_runs == 1


@needs_stream_route
def test_model_stream_error_mid_stream(endpoint: LocalEndpoint) -> None:
    received: list[bytes] = []
    with make_client(endpoint.url) as client:
        stream = client.invoke_endpoint_with_response_stream(endpoint_name="crash-stream", body=b"go")
        with stream, pytest.raises(ModelStreamError) as caught:
            for part in stream:
                received.append(part.bytes)
    assert received == [b"one ", b"two "]
    assert caught.value.error_code == "StreamBroken"
    assert stream.metadata.attempts == 1
    assert endpoint.counters("crash-stream").requests == 1
    assert endpoint.counters("crash-stream").model_runs == 1


# --- clock skew ----------------------------------------------------------------------------


def _amz_date(value: str | None) -> float:
    assert value is not None
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("offset", [3600, -3600])
def test_server_clock_far_from_ours_is_corrected_by_one_retry(endpoint: LocalEndpoint, offset: int) -> None:
    endpoint.set_clock_offset(offset)
    sleeps = Sleeps()
    with Gateway(endpoint.url) as gateway, make_client(gateway.url, sleeps=sleeps) as client:
        now = time.time()
        out = client.invoke_endpoint(endpoint_name="echo", body=b"what time is it")
        first, second = (_amz_date(r.header("X-Amz-Date")) for r in gateway.requests)
        # The client keeps the correction: the next calls, of any operation, are signed with the
        # server's clock at once.
        again = client.invoke_endpoint(endpoint_name="echo", body=b"and now")
        third = _amz_date(gateway.requests[2].header("X-Amz-Date"))
        with client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b") as stream:
            streamed = b"".join(part.bytes for part in stream)
        assert stream.metadata.attempts == 1 and streamed.split() == [b"a", b"b"]
    assert out.body == b"what time is it"
    assert out.metadata.attempts == 2
    assert abs(first - now) < 60  # signed with our clock: rejected
    assert abs(second - (now + offset)) < 60  # signed with the server's clock (its Date header)
    assert again.metadata.attempts == 1
    assert abs(third - (now + offset)) < 60
    assert len(gateway.requests) == 4
    assert endpoint.counters("echo").model_runs == 2  # once per call
    assert statuses(endpoint) == {403: 1, 200: 2}
    assert statuses(endpoint, "tokens") == {200: 1}


# --- request bodies across retries ---------------------------------------------------------


def test_file_body_retried_after_503_arrives_whole(endpoint: LocalEndpoint, tmp_path: object) -> None:
    data = os.urandom(MIB + 123)
    path = os.path.join(str(tmp_path), "payload.bin")
    with open(path, "wb") as handle:
        handle.write(b"HEADER-TO-SKIP" + data)
    endpoint.faults("digest").fail_next(1, status=503)
    with open(path, "rb") as body, make_client(endpoint.url) as client:
        body.seek(len(b"HEADER-TO-SKIP"))  # the body starts where the file is, not at 0
        out = client.invoke_endpoint(endpoint_name="digest", body=body)
    expected = hashlib.sha256(data).hexdigest()
    assert out.body == expected.encode()
    assert out.metadata.attempts == 2
    assert DIGEST.seen == [(len(data), expected)]  # what the model got, once
    assert endpoint.counters("digest").requests == 2
    assert endpoint.counters("digest").model_runs == 1


class Unseekable(io.RawIOBase):
    """A binary stream that can only be read forward (a pipe, a socket, a generator)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self.reads += 1
        return self._data.readinto(buffer)


def test_unseekable_body_is_read_into_memory_and_retried(endpoint: LocalEndpoint) -> None:
    """An unseekable stream is read into memory once (it must be hashed to be signed, and it
    is at most 6 MiB), so a retry sends the same bytes again."""
    data = os.urandom(2 * MIB)
    endpoint.faults("digest").fail_next(1, status=503)
    with make_client(endpoint.url) as client:
        out = client.invoke_endpoint(endpoint_name="digest", body=cast(IO[bytes], Unseekable(data)))
    expected = hashlib.sha256(data).hexdigest()
    assert out.body == expected.encode()
    assert out.metadata.attempts == 2
    assert DIGEST.seen == [(len(data), expected)]
    assert endpoint.counters("digest").requests == 2
    assert endpoint.counters("digest").model_runs == 1


class NoRewind(io.BytesIO):
    """A seekable file whose seek fails once all of it has been read twice (hashed for the
    signature, then sent): a file that cannot be rewound for a retry. Bytes are counted, not
    reads at the end, because one HTTP client reads a body to its end and another reads
    exactly Content-Length bytes."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.consumed += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.consumed >= 2 * self.size:
            raise OSError("this stream cannot go back")
        return super().seek(offset, whence)


def test_file_body_that_cannot_be_rewound_is_not_retried_and_says_why(endpoint: LocalEndpoint) -> None:
    endpoint.faults("digest").fail_next(1, status=503)
    with make_client(endpoint.url) as client, pytest.raises(ServiceUnavailable) as caught:
        client.invoke_endpoint(endpoint_name="digest", body=NoRewind(b"read once"))
    notes = getattr(caught.value, "__notes__", [])
    assert any("not retried" in note and "could not be rewound" in note for note in notes), notes
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert endpoint.counters("digest").requests == 1
    assert endpoint.counters("digest").model_runs == 0


def test_service_error_that_is_not_retryable_runs_once(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").fail_next(1, status=424)  # ModelError: the container failed
    with make_client(endpoint.url) as client, pytest.raises(APIError) as caught:
        client.invoke_endpoint(endpoint_name="echo", body=b"x")
    assert caught.value.code == "ModelError"
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert endpoint.counters("echo").requests == 1
