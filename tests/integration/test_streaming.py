"""Response streaming end to end: the local endpoint's stream route, smruntime and boto3 as clients.

Everything runs against real servers on 127.0.0.1: one LocalEndpoint for the module, a small
container-contract server (chunked replies) started here, and the raw-socket HTTPTestServer of
``tests.servers`` where the test needs to craft frames or count connections.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from smruntime import Client
from smruntime.cli import main
from smruntime.errors import (
    APIError,
    EventStreamError,
    InternalStreamFailure,
    ModelError,
    ModelStreamError,
    SageMakerRuntimeError,
    ValidationError,
)
from smruntime.eventstream import decode_all, encode_message
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelFailure, ModelRequest, ModelResponse
from smruntime.middleware import Position, build_middleware, finalize_middleware
from smruntime.retry import new_retryer
from tests.async_clients import KINDS, make_client
from tests.servers import HTTPTestServer, chunked

E = TypeVar("E", bound=BaseException)

KEY_ID, SECRET = "AKIDSTREAMTEST", "stream-test-secret/xyz"
EVENT_STREAM = "application/vnd.amazon.eventstream"
RELEASE_TIMEOUT = 10.0
"""How long a blocking test model waits for the test before giving up (it then fails loudly)."""

# --- models ---------------------------------------------------------------------------------

def generated(request: ModelRequest) -> ModelResponse:
    """A generator model: one part per input line, upper-cased, with custom attributes."""

    def parts() -> Iterator[bytes]:
        for line in request.body.splitlines(keepends=True):
            yield line.upper()

    return ModelResponse(body=parts(), content_type="text/x-upper", custom_attributes="generated=1")


def received(request: ModelRequest) -> Iterator[bytes]:
    """Streams, as one JSON part, what the model was given (a bare generator: no ModelResponse)."""
    yield json.dumps({
        "accept": request.accept,
        "content_type": request.content_type,
        "custom_attributes": request.custom_attributes,
        "target_model": request.target_model,
        "enable_explanations": request.enable_explanations,
        "inference_id": request.inference_id,
        "operation": request.operation,
    }).encode()


def json_lines(request: ModelRequest) -> Iterator[bytes]:
    """JSON lines split across parts; the last line has no newline."""
    yield b'{"token": "Hel'
    yield b'lo"}\n{"tok'
    yield b'en": " world"}\r\n{"token": "!"'
    yield b"}"


def text_chunks(request: ModelRequest) -> Iterator[Any]:
    """Yields str chunks (sent as UTF-8), an empty one (skipped), then something that is not bytes."""
    yield "caf\u00e9"
    yield ""
    yield " ok"
    yield 42


def crash_midway(request: ModelRequest) -> Iterator[bytes]:
    yield b"one "
    yield b"two "
    raise RuntimeError("the model crashed while generating")


def fail_first(request: ModelRequest) -> Iterator[bytes]:
    raise ModelFailure(400, "bad prompt")
    yield b"never"  # pragma: no cover  (makes this a generator: it fails at its first chunk)


class Gate:
    """A generator model that blocks after its first part until the test opens the gate.

    Opened too late (the server held the first part back), it fails, and the test with it.
    """

    def __init__(self) -> None:
        self.open = threading.Event()

    def __call__(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(body=self._parts(), content_type="text/plain")

    def _parts(self) -> Iterator[bytes]:
        yield b"first"
        if not self.open.wait(RELEASE_TIMEOUT):
            raise RuntimeError("the test never saw the first part")
        yield b" second"
        yield b" third"


class Stuck:
    """Streams one part, then blocks past the endpoint's time budget until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, request: ModelRequest) -> Iterator[bytes]:
        yield b"started"
        self.release.wait(RELEASE_TIMEOUT)
        yield b" too late"


class Endless:
    """Streams parts for as long as it is asked (bounded, so a failing test still ends)."""

    def __init__(self) -> None:
        self.closed_early = threading.Event()
        self.finished = False

    def __call__(self, request: ModelRequest) -> Iterator[bytes]:
        try:
            for _ in range(100_000):
                yield b"x"
            self.finished = True
        except GeneratorExit:
            self.closed_early.set()
            raise


GATE = Gate()
STUCK = Stuck()
ENDLESS = Endless()


# --- a container-contract server that streams with chunked transfer encoding ------------------

class ContainerHandler(BaseHTTPRequestHandler):
    """``GET /ping`` 200; ``POST /invocations`` streams the body's words as HTTP chunks.

    The body ``gate`` streams ``first``, then waits for ``server.gate`` (set by the test once it
    has that part); if it is never set, the reply is cut off, which fails the test. The body
    ``unchunked-gate`` does the same in a reply delimited by closing the connection.
    """

    protocol_version = "HTTP/1.1"
    server: ContainerServer

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if body == b"unchunked-gate":
            self._unchunked_gate()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-words")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if body == b"gate":
            self._chunk(b"first")
            if not self.server.gate.wait(RELEASE_TIMEOUT):
                self.close_connection = True
                return  # no terminating chunk: the endpoint sees a broken stream
            self._chunk(b" second")
        else:
            for word in body.split(b" "):
                self._chunk(word + b"|")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _unchunked_gate(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-words")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"first")
        self.wfile.flush()
        if not self.server.gate.wait(RELEASE_TIMEOUT):
            # A reset, not a close: the endpoint must see a failure, not the end of the reply.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        self.wfile.write(b" second")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


class ContainerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ContainerHandler)
        self.gate = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def container() -> Iterator[ContainerServer]:
    server = ContainerServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stream-container",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def endpoint(container: ContainerServer) -> Iterator[LocalEndpoint]:
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("tokens", "tokens"),
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("generated", generated),
        EndpointConfig.serving("received", received),
        EndpointConfig.serving("lines", json_lines),
        EndpointConfig.serving("crash", crash_midway),
        EndpointConfig.serving("text", text_chunks),
        EndpointConfig.serving("fail-first", fail_first),
        EndpointConfig.serving("gate", GATE),
        EndpointConfig.serving("stuck", STUCK, container_timeout=0.5),
        EndpointConfig.serving("endless", ENDLESS),
        EndpointConfig.serving("container", container.url),
    ))
    with LocalEndpoint(config, credentials=(KEY_ID, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(endpoint: LocalEndpoint) -> Iterator[None]:
    for name in endpoint.state.endpoints:
        endpoint.faults(name).clear()
        endpoint.counters(name).reset()
    yield
    GATE.open.set()
    GATE.open = threading.Event()
    STUCK.release.set()
    STUCK.release = threading.Event()


async def _no_wait(seconds: float) -> None:
    """Backoff is not waited for in these tests."""


@pytest.fixture(params=KINDS)
def client(endpoint: LocalEndpoint, request: pytest.FixtureRequest) -> Iterator[Client]:
    """Client, and AsyncClient behind Client's API: every test that uses it runs on both."""
    retryer = new_retryer("standard", 3, sleep=lambda seconds: None, asleep=_no_wait)
    with make_client(request.param, region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET),
                     retryer=retryer) as made:
        yield made


@pytest.fixture
def boto3_client(endpoint: LocalEndpoint) -> Iterator[Any]:
    made = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    yield made
    made.close()


def boto3_parts(response: dict[str, Any]) -> list[bytes]:
    """The payload bytes of a boto3 stream; the stream is closed whatever happens."""
    try:
        return [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    finally:
        response["Body"].close()


def payloads(client: Client, endpoint_name: str, body: bytes, **inputs: Any) -> list[bytes]:
    with client.invoke_endpoint_with_response_stream(endpoint_name=endpoint_name, body=body, **inputs) as stream:
        return list(stream.payloads())


# --- boto3 and smruntime agree ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("tokens", b"the quick  brown fox\n", [b"the", b" quick", b"  brown", b" fox\n"]),
        ("generated", b"line one\nline two\nlast", [b"LINE ONE\n", b"LINE TWO\n", b"LAST"]),
    ],
)
def test_boto3_and_smruntime_yield_the_same_payload_bytes(boto3_client: Any, client: Client, name: str,
                                                          body: bytes, expected: list[bytes]) -> None:
    response = boto3_client.invoke_endpoint_with_response_stream(EndpointName=name, Body=body)
    from_boto3 = boto3_parts(response)
    with client.invoke_endpoint_with_response_stream(endpoint_name=name, body=body) as stream:
        ours = list(stream.payloads())
        assert stream.content_type == response["ContentType"]
        assert stream.invoked_production_variant == response["InvokedProductionVariant"] == "AllTraffic"
        assert stream.custom_attributes == response.get("CustomAttributes")
    assert ours == from_boto3 == expected


def test_the_stream_headers_reach_the_model_and_its_answer_comes_back(client: Client) -> None:
    with client.invoke_endpoint_with_response_stream(
        endpoint_name="received", body=b"{}", content_type="application/json", accept="application/jsonlines",
        custom_attributes="trace=7", inference_id="inf-1",
    ) as stream:
        (part,) = list(stream)
        assert stream.content_type == "application/octet-stream"  # the model named none
    seen = json.loads(part.bytes)
    assert seen == {
        "accept": "application/jsonlines",  # sent as X-Amzn-SageMaker-Accept
        "content_type": "application/json",
        "custom_attributes": "trace=7",
        "target_model": None,
        "enable_explanations": None,
        "inference_id": "inf-1",
        "operation": "InvokeEndpointWithResponseStream",
    }


def test_the_wire_format_is_one_payload_part_frame_per_http_chunk(endpoint: LocalEndpoint) -> None:
    head, chunks = raw_stream_call(endpoint, "generated", b"a\nb\nc", {"X-Amzn-SageMaker-Custom-Attributes": "x=1"})
    status_line, *header_lines = head.split("\r\n")
    assert status_line == "HTTP/1.1 200 OK"
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert headers["Content-Type"] == EVENT_STREAM
    assert headers["X-Amzn-SageMaker-Content-Type"] == "text/x-upper"
    assert headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "generated=1"
    assert headers["x-amzn-RequestId"]
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers
    messages = [decode_all(chunk) for chunk in chunks]
    assert all(len(found) == 1 for found in messages)  # each chunk holds exactly one whole frame
    assert [found[0].payload for found in messages] == [b"A\n", b"B\n", b"C"]
    for (message,) in messages:
        assert message.headers == {
            ":message-type": "event", ":event-type": "PayloadPart", ":content-type": "application/octet-stream"
        }


def raw_stream_call(endpoint: LocalEndpoint, name: str, body: bytes,
                    extra: dict[str, str]) -> tuple[str, list[bytes]]:
    """Sign with botocore, send over a plain socket; the response head and its HTTP chunks as sent."""
    url = f"{endpoint.url}/endpoints/{name}/invocations-response-stream"
    request = AWSRequest("POST", url, data=body, headers=extra)
    SigV4Auth(BotoCredentials(KEY_ID, SECRET), "sagemaker", "us-east-1").add_auth(request)
    lines = [f"POST /endpoints/{name}/invocations-response-stream HTTP/1.1", f"Host: 127.0.0.1:{endpoint.port}",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{key}: {value}" for key, value in request.headers.items()]
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        data = b""
        while block := sock.recv(65536):
            data += block
    head, _, rest = data.partition(b"\r\n\r\n")
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2:]
    return head.decode("latin-1"), chunks


# --- parts arrive as they are produced --------------------------------------------------------

def test_a_part_arrives_while_the_model_is_still_generating(client: Client, endpoint: LocalEndpoint) -> None:
    with client.invoke_endpoint_with_response_stream(endpoint_name="gate", body=b"go") as stream:
        parts = iter(stream)
        assert next(parts).bytes == b"first"
        GATE.open.set()  # only now may the model go on
        assert [part.bytes for part in parts] == [b" second", b" third"]
    assert endpoint.counters("gate").model_runs == 1


@pytest.mark.parametrize("body", [b"gate", b"unchunked-gate"])
def test_a_container_reply_is_streamed_as_it_arrives(client: Client, container: ContainerServer, body: bytes) -> None:
    container.gate.clear()
    try:
        with client.invoke_endpoint_with_response_stream(endpoint_name="container", body=body) as stream:
            parts = iter(stream)
            assert next(parts).bytes == b"first"
            container.gate.set()
            assert [part.bytes for part in parts] == [b" second"]
            assert stream.content_type == "text/event-words"
    finally:
        container.gate.set()


def test_each_container_chunk_becomes_one_part_for_both_clients(client: Client, boto3_client: Any) -> None:
    expected = [b"a|", b"bb|", b"ccc|"]
    assert payloads(client, "container", b"a bb ccc") == expected
    response = boto3_client.invoke_endpoint_with_response_stream(EndpointName="container", Body=b"a bb ccc")
    assert boto3_parts(response) == expected


# --- failures after the first part ------------------------------------------------------------

def parts_before_error(client: Client, error: type[E], endpoint_name: str, body: bytes) -> tuple[list[bytes], E, Any]:
    """What a stream handed out before it raised ``error``; the error; the stream."""
    received: list[bytes] = []
    stream = client.invoke_endpoint_with_response_stream(endpoint_name=endpoint_name, body=body)
    with stream, pytest.raises(error) as caught:
        for part in stream:
            received.append(part.bytes)
    return received, caught.value, stream


def test_a_stream_cut_mid_message_raises_and_the_next_call_succeeds(client: Client, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").break_stream_after(2)
    received, _, stream = parts_before_error(client, EventStreamError, "tokens", b"a b c d")
    assert received == [b"a", b" b"]
    assert stream.closed
    assert payloads(client, "tokens", b"x y") == [b"x", b" y"]  # same client, a sound connection
    assert endpoint.counters("tokens").model_runs == 2


def test_an_injected_stream_failure_ends_the_stream_with_internal_stream_failure_for_both_clients(
        client: Client, boto3_client: Any, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").fail_stream_after(2, count=2)
    received, failure, _ = parts_before_error(client, InternalStreamFailure, "tokens", b"a b c d")
    assert received == [b"a", b" b"]
    assert failure.code == "InternalStreamFailure" and "injected fault" in failure.message
    response = boto3_client.invoke_endpoint_with_response_stream(EndpointName="tokens", Body=b"a b c d")
    with pytest.raises(ClientError) as boto3_caught:  # botocore's EventStreamError
        boto3_parts(response)
    assert boto3_caught.value.response["Error"]["Code"] == "InternalStreamFailure"
    assert payloads(client, "tokens", b"x y") == [b"x", b" y"]  # spent: the next stream is whole


def test_an_injected_stream_failure_after_the_last_part_takes_the_place_of_the_end(
        client: Client, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").fail_stream_after(2)
    received, _, _ = parts_before_error(client, InternalStreamFailure, "tokens", b"a b")
    assert received == [b"a", b" b"]


def test_a_break_before_the_first_part_raises_from_the_call(client: Client, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").break_stream_after(0)
    with pytest.raises(EventStreamError):
        client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b")
    assert payloads(client, "tokens", b"a b") == [b"a", b" b"]


def test_a_model_failing_mid_stream_raises_model_stream_error_and_the_next_call_succeeds(
        client: Client, endpoint: LocalEndpoint) -> None:
    received, failure, _ = parts_before_error(client, ModelStreamError, "crash", b"go")
    assert received == [b"one ", b"two "]
    assert failure.error_code == "StreamBroken"
    assert "RuntimeError: the model crashed while generating" in failure.message
    assert payloads(client, "tokens", b"still fine") == [b"still", b" fine"]


def test_a_whole_answer_is_one_part(client: Client) -> None:
    with client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"in one piece",
                                                     content_type="text/plain") as stream:
        assert list(stream.payloads()) == [b"in one piece"]
        assert stream.content_type == "text/plain"


def test_str_chunks_go_out_as_utf8_and_a_chunk_that_is_not_bytes_breaks_the_stream(client: Client) -> None:
    received, failure, _ = parts_before_error(client, ModelStreamError, "text", b"go")
    assert received == ["caf\u00e9".encode(), b" ok"]
    assert failure.error_code == "StreamBroken"
    assert "must be bytes, not int" in failure.message


def test_boto3_sees_the_model_stream_error_code_too(boto3_client: Any) -> None:
    response = boto3_client.invoke_endpoint_with_response_stream(EndpointName="crash", Body=b"go")
    with pytest.raises(ClientError) as caught:
        boto3_parts(response)
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"


def test_running_past_the_time_budget_ends_with_model_invocation_time_exceeded(client: Client) -> None:
    received, failure, _ = parts_before_error(client, ModelStreamError, "stuck", b"go")
    assert received == [b"started"]
    assert failure.error_code == "ModelInvocationTimeExceeded"


def test_a_client_going_away_stops_the_model(client: Client) -> None:
    stream = client.invoke_endpoint_with_response_stream(endpoint_name="endless", body=b"go")
    assert next(iter(stream)).bytes == b"x"
    stream.close()  # drops the connection: the server sees the client leave
    assert ENDLESS.closed_early.wait(RELEASE_TIMEOUT), "the server kept pulling parts nobody reads"
    assert not ENDLESS.finished


# --- connections ------------------------------------------------------------------------------

def part_frame(data: bytes) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart",
                           ":content-type": "application/octet-stream"}, data)


STREAM_REPLY_HEADERS = [("Content-Type", EVENT_STREAM), ("X-Amzn-SageMaker-Content-Type", "text/plain"),
                        ("x-amzn-RequestId", "req-1")]


def raw_client(url: str) -> Client:
    return Client(region="us-east-1", endpoint_url=url, credentials=(KEY_ID, SECRET), retry_mode="none")


def test_a_fully_read_stream_returns_its_connection_to_the_pool() -> None:
    with HTTPTestServer() as server, raw_client(server.url) as client:
        for _ in range(3):
            server.enqueue(chunked([part_frame(b"a"), part_frame(b"b")], headers=STREAM_REPLY_HEADERS))
        for _ in range(3):
            assert payloads(client, "ep", b"x") == [b"a", b"b"]
        assert [request.connection for request in server.requests] == [1, 1, 1]
        assert server.connections_accepted == 1


def test_a_broken_or_abandoned_stream_never_goes_back_to_the_pool() -> None:
    with HTTPTestServer() as server, raw_client(server.url) as client:
        first = part_frame(b"a")
        server.enqueue(
            chunked([first, part_frame(b"b")[:10]], headers=STREAM_REPLY_HEADERS, end=False),  # cut mid-frame
            chunked([first, part_frame(b"b")], headers=STREAM_REPLY_HEADERS),  # left after one part
            chunked([first], headers=STREAM_REPLY_HEADERS),
        )
        stream = client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
        with stream, pytest.raises(EventStreamError):
            list(stream)
        with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x") as stream:
            assert next(iter(stream)).bytes == b"a"
        assert payloads(client, "ep", b"x") == [b"a"]
        assert [request.connection for request in server.requests] == [1, 2, 3]


def test_unknown_event_types_are_skipped() -> None:
    metrics = encode_message({":message-type": "event", ":event-type": "Metrics"}, b'{"tokens": 3}')
    with HTTPTestServer() as server, raw_client(server.url) as client:
        server.enqueue(chunked([metrics, part_frame(b"a"), metrics + part_frame(b"b"), metrics],
                               headers=STREAM_REPLY_HEADERS))
        assert payloads(client, "ep", b"x") == [b"a", b"b"]


# --- lines ------------------------------------------------------------------------------------

def test_lines_rejoin_json_split_across_parts_and_keep_a_last_unterminated_line(client: Client) -> None:
    with client.invoke_endpoint_with_response_stream(endpoint_name="lines", body=b"go") as stream:
        lines = list(stream.lines())
    assert [json.loads(line) for line in lines] == [{"token": "Hello"}, {"token": " world"}, {"token": "!"}]


# --- errors before the first event ------------------------------------------------------------

def test_an_unknown_endpoint_is_a_validation_error(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.invoke_endpoint_with_response_stream(endpoint_name="nope", body=b"x")
    assert caught.value.http_status == 400
    assert "Endpoint nope of account 123456789012 not found." in caught.value.message


def test_a_model_failing_before_its_first_part_is_a_model_error(client: Client, endpoint: LocalEndpoint) -> None:
    with pytest.raises(ModelError) as caught:
        client.invoke_endpoint_with_response_stream(endpoint_name="fail-first", body=b"x")
    assert caught.value.http_status == 424
    assert caught.value.original_status_code == 400
    assert caught.value.original_message == "bad prompt"
    assert endpoint.counters("fail-first").snapshot().statuses == {424: 1}


def test_a_503_before_the_first_event_is_retried_and_nothing_is_handed_out_twice(
        client: Client, endpoint: LocalEndpoint) -> None:
    endpoint.faults("tokens").fail_next(1, status=503)
    with client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c") as stream:
        assert list(stream.payloads()) == [b"a", b" b", b" c"]
        assert stream.metadata.attempts == 2
    counters = endpoint.counters("tokens").snapshot()
    assert counters.statuses == {503: 1, 200: 1}
    assert counters.model_runs == 1


def test_new_session_is_refused_by_the_server_for_streams(endpoint: LocalEndpoint, boto3_client: Any) -> None:
    # smruntime refuses it before sending; boto3 does not check patterns, so the server must.
    with pytest.raises(ClientError) as caught:
        boto3_client.invoke_endpoint_with_response_stream(
            EndpointName="tokens", Body=b"x", SessionId="NEW_SESSION")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert "Value 'NEW_SESSION' at 'sessionId' failed to satisfy constraint" in error["Message"]
    assert caught.value.response["Message"] == error["Message"]  # the modeled member, spelled ``Message``
    assert endpoint.counters("tokens").model_runs == 0


def test_invoke_endpoint_answers_a_streaming_model_in_one_piece(boto3_client: Any) -> None:
    answer = boto3_client.invoke_endpoint(EndpointName="generated", Body=b"a\nb")
    assert answer["Body"].read() == b"A\nB"


# --- signatures with a declared payload hash ---------------------------------------------------

def declare_payload_hash(value: str) -> Any:
    def add(stack: Any) -> None:
        def handle(ctx: Any, in_: Any, next: Any) -> Any:
            in_.request.headers["X-Amz-Content-Sha256"] = value
            return next(ctx, in_)

        stack.build.insert(build_middleware("DeclarePayloadHash", handle), "ComputePayloadHash", Position.BEFORE)

    return add


def test_a_declared_payload_hash_is_verified_against_the_body(endpoint: LocalEndpoint) -> None:
    import hashlib

    body = b"a b"
    with Client(region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET),
                api_options=[declare_payload_hash(hashlib.sha256(body).hexdigest())]) as declared:
        assert payloads(declared, "tokens", body) == [b"a", b" b"]
        assert declared.invoke_endpoint(endpoint_name="echo", body=body).body == body


def test_an_unsigned_payload_is_refused_as_the_service_does(endpoint: LocalEndpoint) -> None:
    # Only S3-style operations take UNSIGNED-PAYLOAD; SageMaker Runtime's sign their payload.
    runs = endpoint.counters("echo").model_runs + endpoint.counters("tokens").model_runs
    with Client(region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET), retry_mode="none",
                api_options=[declare_payload_hash("UNSIGNED-PAYLOAD")]) as unsigned:
        for call in (lambda: payloads(unsigned, "tokens", b"a b"),
                     lambda: unsigned.invoke_endpoint(endpoint_name="echo", body=b"hello")):
            with pytest.raises(APIError) as caught:
                call()
            assert (caught.value.code, caught.value.http_status) == ("InvalidSignatureException", 403)
    assert endpoint.counters("echo").model_runs + endpoint.counters("tokens").model_runs == runs


def test_a_declared_hash_that_is_not_the_signed_one_fails_verification(endpoint: LocalEndpoint) -> None:
    def tamper(stack: Any) -> None:
        def handle(ctx: Any, in_: Any, next: Any) -> Any:
            in_.request.headers["X-Amz-Content-Sha256"] = "0" * 64  # after signing
            return next(ctx, in_)

        stack.finalize.add(finalize_middleware("Tamper", handle))

    with Client(region="us-east-1", endpoint_url=endpoint.url, credentials=(KEY_ID, SECRET), retry_mode="none",
                api_options=[declare_payload_hash("UNSIGNED-PAYLOAD"), tamper]) as tampered, \
            pytest.raises(APIError) as caught:
        tampered.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b")
    assert caught.value.code == "InvalidSignatureException"
    assert caught.value.http_status == 403


# --- the CLI ----------------------------------------------------------------------------------

def test_the_cli_prints_the_parts(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch,
                                  capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    code = main(["invoke-endpoint-with-response-stream", "--endpoint-url", endpoint.url, "--endpoint-name", "tokens",
                 "--body", "a b c", "--region", "us-east-1"])
    out = capfdbinary.readouterr().out
    assert code == 0
    assert out == b"a b c\n"


def test_the_cli_prints_whole_lines(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch,
                                    capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    code = main(["invoke-endpoint-with-response-stream", "--endpoint-url", endpoint.url, "--endpoint-name", "lines",
                 "--body", "go", "--region", "us-east-1", "--lines"])
    out = capfdbinary.readouterr().out
    assert code == 0
    assert out == b'{"token": "Hello"}\n{"token": " world"}\n{"token": "!"}\n'


def test_reading_a_stream_closed_before_its_end_raises_whatever_was_read(client: Client) -> None:
    for read_first in (0, 1):
        stream = client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c")
        parts = iter(stream)
        for _ in range(read_first):
            next(parts)
        stream.close()
        with pytest.raises(SageMakerRuntimeError, match="closed before its end"):
            next(parts)
    # A stream read to its end is closed too, and simply has nothing more.
    done = client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"a b c")
    assert [part.bytes for part in done] == [b"a", b" b", b" c"]
    assert list(done) == []
