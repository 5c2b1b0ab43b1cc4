"""Hostile input to the local endpoint, over raw sockets: it answers with the right error,
never crashes, never hangs, and keeps serving the next request.

After every test an autouse fixture checks that a correctly signed request is still answered
and that nothing was logged at ERROR (an exception escaping a request handler is logged there).
Every socket has a timeout, so a server that hung would fail the test rather than stall it.
"""

from __future__ import annotations

import json
import logging
import random
import re
import resource
import socket
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smruntime import Client
from smruntime.errors import (
    APIError,
    ClientClosedError,
    DeserializationError,
    ModelStreamError,
    ReadTimeoutError,
    ResponseTooLargeError,
    SageMakerRuntimeError,
)
from smruntime.eventstream import InvalidLengthError, TruncatedStreamError, encode_message
from smruntime.local import LocalEndpoint
from smruntime.transport import FastHTTPClient
from tests.reliability.support import (
    CREDENTIALS,
    MIB,
    RawResponse,
    exchange,
    make_client,
    raw_request,
    read_response,
    signed_headers,
    signed_request,
    wait_until,
)
from tests.servers import HTTPTestServer, Wait, chunked, respond

ECHO = "/endpoints/echo/invocations"
TIMEOUT = 10.0
Lines = list[tuple[str, str]]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=CREDENTIALS) as running:
        yield running


@pytest.fixture(autouse=True)
def still_serving(endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    answer = exchange(endpoint.port, signed_request(endpoint.port, ECHO, body=b"still there?"), timeout=TIMEOUT)
    assert answer is not None and answer.status == 200 and answer.body == b"still there?"
    assert endpoint.running
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], "the server logged errors"


def echo_runs(endpoint: LocalEndpoint) -> int:
    return endpoint.counters("echo").model_runs


# --- malformed HTTP ------------------------------------------------------------------------

MALFORMED = {
    "garbage": (b"\x00\x01\x02 hello\r\n\r\n", 400),
    "no-version": (b"POST /endpoints/echo/invocations\r\n\r\n", 400),
    "content-length-not-a-number": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    "content-length-negative": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "two-content-lengths": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    "unknown-transfer-encoding": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "bad-chunk-size": (b"POST /endpoints/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400),
    "no-host": (b"POST /endpoints/echo/invocations HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
    "non-ascii-target": ("POST /endpoints/é/invocations HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "space-in-target": (b"POST /endpoints/a b/invocations HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "header-without-colon": (b"POST / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
    "nul-in-header-value": (b"POST / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", 400),
    "header-of-one-mib": (b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MIB + b"\r\n\r\n", 400),
    "unsigned": (b"POST /endpoints/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 403),
    "http-1.0-unsigned": (b"POST /endpoints/echo/invocations HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 403),
    "get-an-operation": (b"GET /endpoints/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
    "unknown-path": (b"POST /admin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 404),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 404),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_http_is_answered_with_a_client_error(endpoint: LocalEndpoint, kind: str) -> None:
    data, status = MALFORMED[kind]
    runs = echo_runs(endpoint)
    answer = exchange(endpoint.port, data, timeout=TIMEOUT)
    assert answer is not None
    assert answer.status == status
    assert echo_runs(endpoint) == runs


def test_many_headers_and_expect_continue_are_handled(endpoint: LocalEndpoint) -> None:
    many = [(f"X-Extra-{index}", "1") for index in range(2000)]
    answer = exchange(endpoint.port, signed_request(endpoint.port, ECHO, body=b"many", unsigned=many), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.body) == (200, b"many")
    expect = signed_request(endpoint.port, ECHO, body=b"go on", unsigned=[("Expect", "100-continue")])
    answer = exchange(endpoint.port, expect, timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.body) == (200, b"go on")


# --- authentication ------------------------------------------------------------------------


def _authorization(lines: Lines, change: Callable[[str], str | None]) -> Lines:
    out: Lines = []
    for name, value in lines:
        if name == "Authorization":
            changed = change(value)
            if changed is not None:
                out.append((name, changed))
        else:
            out.append((name, value))
    return out


def _drop(header: str) -> Callable[[Lines], Lines]:
    return lambda lines: [(name, value) for name, value in lines if name != header]


def _set(header: str, new: str) -> Callable[[Lines], Lines]:
    return lambda lines: [(name, new if name == header else value) for name, value in lines]


def _edit(pattern: str, replacement: str) -> Callable[[Lines], Lines]:
    return lambda lines: _authorization(lines, lambda value: re.sub(pattern, replacement, value))


def _keep(lines: Lines) -> Lines:
    return lines


NOW = datetime.now(UTC)
AUTH_CASES: dict[str, tuple[dict[str, object], Callable[[Lines], Lines], str]] = {
    # name: (how to sign, what to change afterwards, the expected error code)
    "no-authorization": ({}, _drop("Authorization"), "MissingAuthenticationToken"),
    "empty-authorization": ({}, _set("Authorization", ""), "MissingAuthenticationToken"),
    "other-scheme": ({}, _set("Authorization", "Bearer abc"), "IncompleteSignature"),
    "garbage-authorization": ({}, _set("Authorization", "AWS4-HMAC-SHA256 \x7f\x01=="), "IncompleteSignature"),
    "no-credential": ({}, _edit(r"Credential=[^,]*, ", ""), "IncompleteSignature"),
    "no-signed-headers": ({}, _edit(r"SignedHeaders=[^,]*, ", ""), "IncompleteSignature"),
    "no-signature": ({}, _edit(r", Signature=\w+", ""), "IncompleteSignature"),
    "short-signature": ({}, _edit(r"Signature=\w+", "Signature=abc"), "IncompleteSignature"),
    "upper-case-signature": ({}, _edit(r"Signature=(\w+)", "Signature=" + "A" * 64), "IncompleteSignature"),
    "signature-twice": ({}, _edit(r"(Signature=\w+)", r"\1, \1"), "IncompleteSignature"),
    "credential-missing-a-part": ({}, _edit(r"/sagemaker/", "/"), "IncompleteSignature"),
    "bad-terminator": ({}, _edit("aws4_request", "aws5_request"), "IncompleteSignature"),
    "host-not-signed": ({}, _edit(r";host;", ";"), "IncompleteSignature"),
    "no-x-amz-date": ({}, _drop("X-Amz-Date"), "IncompleteSignature"),
    "bad-x-amz-date": ({}, _set("X-Amz-Date", "yesterday"), "IncompleteSignature"),
    "x-amz-date-month-13": ({}, _set("X-Amz-Date", NOW.strftime("%Y13%dT%H%M%SZ")), "IncompleteSignature"),
    "x-amz-date-short-day": ({}, _set("X-Amz-Date", NOW.strftime("%Y%m1T%H%M%SZ")), "IncompleteSignature"),
    "x-amz-date-no-z": ({}, _set("X-Amz-Date", NOW.strftime("%Y%m%dT%H%M%S")), "IncompleteSignature"),
    "unknown-access-key": ({"credentials": ("AKIDUNKNOWN", CREDENTIALS[1])}, _keep, "UnrecognizedClientException"),
    "wrong-secret": ({"credentials": (CREDENTIALS[0], "not-the-secret")}, _keep, "InvalidSignatureException"),
    "wrong-region": ({"region": "eu-west-1"}, _keep, "InvalidSignatureException"),
    "wrong-service": ({"service": "s3"}, _keep, "InvalidSignatureException"),
    "expired": ({"when": NOW - timedelta(minutes=10)}, _keep, "InvalidSignatureException"),
    "from-the-future": ({"when": NOW + timedelta(minutes=10)}, _keep, "InvalidSignatureException"),
    "scope-date-mismatch": ({}, _set("X-Amz-Date", (NOW - timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")),
                            "InvalidSignatureException"),
    "tampered-signed-header": ({}, _set("Content-Type", "application/evil"), "InvalidSignatureException"),
}


@pytest.mark.parametrize("kind", list(AUTH_CASES))
def test_bad_or_missing_authentication_gets_the_service_error(endpoint: LocalEndpoint, kind: str) -> None:
    how, change, code = AUTH_CASES[kind]
    lines = signed_headers(endpoint.port, ECHO, body=b"x", headers=[("Content-Type", "text/plain")], **how)  # type: ignore[arg-type]
    runs = echo_runs(endpoint)
    answer = exchange(endpoint.port, raw_request(ECHO, change(lines), b"x"), timeout=TIMEOUT)
    assert answer is not None
    assert (answer.status, answer.error_type) == (403, code)
    assert echo_runs(endpoint) == runs


def test_tampered_body_is_rejected(endpoint: LocalEndpoint) -> None:
    lines = signed_headers(endpoint.port, ECHO, body=b"signed body")
    answer = exchange(endpoint.port, raw_request(ECHO, lines, b"other body"), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.error_type) == (403, "InvalidSignatureException")


def test_signature_mismatch_message_shows_no_secret_values(endpoint: LocalEndpoint) -> None:
    lines = signed_headers(
        endpoint.port, ECHO, body=b"x", headers=[("X-Amzn-SageMaker-Custom-Attributes", "customer-data")]
    )
    lines = _set("X-Amzn-SageMaker-Custom-Attributes", "customer-data-2")(lines)
    answer = exchange(endpoint.port, raw_request(ECHO, lines, b"x"), timeout=TIMEOUT)
    assert answer is not None and answer.error_type == "InvalidSignatureException"
    signature = dict(lines)["Authorization"].rsplit("Signature=", 1)[1]
    assert signature not in answer.body.decode()
    assert "customer-data" not in answer.body.decode()


# --- input the service validates -----------------------------------------------------------

INVALID_INPUT = {
    "encoded-slash-in-name": ("/endpoints/a%2Fb/invocations", []),
    "dot-dot-in-name": ("/endpoints/..%2F..%2Fetc/invocations", []),
    "over-long-name": ("/endpoints/" + "a" * 64 + "/invocations", []),
    "unknown-endpoint": ("/endpoints/nobody/invocations", []),
    "bad-target-variant": (ECHO, [("X-Amzn-SageMaker-Target-Variant", "a b")]),
    "over-long-inference-id": (ECHO, [("X-Amzn-SageMaker-Inference-Id", "i" * 65)]),
    "bad-session-id": (ECHO, [("X-Amzn-SageMaker-Session-Id", "-")]),
    "non-ascii-content-type": (ECHO, [("Content-Type", "text/\xe9")]),
}


@pytest.mark.parametrize("kind", list(INVALID_INPUT))
def test_signed_but_invalid_input_is_a_validation_error(endpoint: LocalEndpoint, kind: str) -> None:
    path, headers = INVALID_INPUT[kind]
    runs = echo_runs(endpoint)
    answer = exchange(endpoint.port, signed_request(endpoint.port, path, body=b"x", headers=headers), timeout=TIMEOUT)
    assert answer is not None
    assert (answer.status, answer.error_type) == (400, "ValidationError")
    assert echo_runs(endpoint) == runs


# --- the built-in sum model: bad numbers are a 400 from the model, never a crash -----------------

SUM_INPUTS = {
    "finite-overflowing": (b'{"numbers": [1e308, 1e308]}', "overflows"),
    "int-too-large-for-a-float": (b'{"numbers": [1' + b"0" * 400 + b']}', "finite numbers"),
    "int-sum-too-large-for-a-float": (b'{"numbers": [' + b", ".join([b"9" * 308] * 20) + b']}', "overflows"),
    "deeply-nested": (b'{"numbers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "infinity": (b'{"numbers": [Infinity]}', "finite numbers"),
}


@pytest.mark.parametrize("kind", list(SUM_INPUTS))
def test_bad_numbers_for_the_sum_model_are_a_400_model_error(endpoint: LocalEndpoint, kind: str) -> None:
    body, reason = SUM_INPUTS[kind]
    request = signed_request(endpoint.port, "/endpoints/sum/invocations", body=body,
                             headers=[("Content-Type", "application/json")])
    answer = exchange(endpoint.port, request, timeout=TIMEOUT)
    assert answer is not None
    assert (answer.status, answer.error_type) == (424, "ModelError")
    document = json.loads(answer.body)
    assert document["OriginalStatusCode"] == 400
    assert reason in document["OriginalMessage"]


def test_the_sum_model_answers_strict_json(endpoint: LocalEndpoint) -> None:
    request = signed_request(endpoint.port, "/endpoints/sum/invocations", body=b'{"numbers": [1e308, -1e308, 5]}',
                             headers=[("Content-Type", "application/json")])
    answer = exchange(endpoint.port, request, timeout=TIMEOUT)
    assert answer is not None and answer.status == 200
    assert json.loads(answer.body, parse_constant=_no_constants)["sum"] == 5


def _no_constants(name: str) -> object:
    raise AssertionError(f"{name} is not JSON")


# --- fuzzing -------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100)) + " \t"


def _random_value(rng: random.Random) -> str:
    value = "".join(rng.choice(VALUE_CHARS) for _ in range(rng.randint(0, 120)))
    return value.strip(" \t")


def test_random_unsigned_headers_do_not_disturb_a_signed_request(endpoint: LocalEndpoint) -> None:
    rng = random.Random(1)
    for index in range(200):
        extra = [
            ("X-Fuzz-" + "".join(rng.choice(TCHAR) for _ in range(rng.randint(1, 30))), _random_value(rng))
            for _ in range(rng.randint(1, 20))
        ]
        body = f"request {index}".encode()
        answer = exchange(endpoint.port, signed_request(endpoint.port, ECHO, body=body, unsigned=extra), timeout=TIMEOUT)
        assert answer is not None
        assert (answer.status, answer.body) == (200, body), extra


API_HEADERS = [
    "Accept",
    "Content-Type",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Target-Model",
    "X-Amzn-SageMaker-Target-Variant",
    "X-Amzn-SageMaker-Target-Container-Hostname",
    "X-Amzn-SageMaker-Inference-Id",
    "X-Amzn-SageMaker-Enable-Explanations",
    "X-Amzn-SageMaker-Inference-Component",
    "X-Amzn-SageMaker-Session-Id",
]


def test_random_signed_api_headers_are_answered_or_rejected_as_validation_errors(endpoint: LocalEndpoint) -> None:
    rng = random.Random(2)
    seen: set[int] = set()
    for _ in range(200):
        headers = [(name, _random_value(rng)) for name in rng.sample(API_HEADERS, rng.randint(1, 4))]
        answer = exchange(endpoint.port, signed_request(endpoint.port, ECHO, body=b"x", headers=headers), timeout=TIMEOUT)
        assert answer is not None
        assert (answer.status, answer.error_type) in {(200, None), (400, "ValidationError")}, (headers, answer)
        seen.add(answer.status)
    assert seen == {200, 400}


def test_random_bytes_never_get_a_server_error(endpoint: LocalEndpoint) -> None:
    rng = random.Random(3)
    for _ in range(150):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
        if rng.random() < 0.5:
            junk += b"\r\n\r\n"
        answer = exchange(endpoint.port, junk, timeout=TIMEOUT, half_close=True)
        assert answer is None or 400 <= answer.status < 500, answer


def test_mutated_signed_requests_never_get_a_server_error(endpoint: LocalEndpoint) -> None:
    rng = random.Random(4)
    runs = echo_runs(endpoint)
    accepted = 0
    for index in range(300):
        data = bytearray(signed_request(endpoint.port, ECHO, body=f"mutant {index}".encode()))
        for _ in range(rng.randint(1, 4)):
            what = rng.random()
            at = rng.randrange(len(data))
            if what < 0.5:
                data[at] = rng.getrandbits(8)
            elif what < 0.75:
                del data[at]
            else:
                data.insert(at, rng.getrandbits(8))
        answer = exchange(endpoint.port, bytes(data), timeout=TIMEOUT, half_close=True)
        assert answer is None or answer.status < 500, answer
        accepted += answer is not None and answer.status == 200
    # A mutant that still verifies (a byte changed where the signature does not look) is
    # served; every other one was refused before the model ran.
    assert echo_runs(endpoint) - runs == accepted


# --- lengths, slow senders, sizes ----------------------------------------------------------


def test_content_length_shorter_than_the_body(endpoint: LocalEndpoint) -> None:
    data = signed_request(endpoint.port, ECHO, body=b"abcdef", content_length=2)
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        first = read_response(sock)
        assert first is not None and (first.status, first.error_type) == (403, "InvalidSignatureException")
        sock.sendall(b"\r\n\r\n")  # the left-over "cdef" now ends like a request head
        second = read_response(sock)
    assert second is not None and second.status == 400


def _stalled(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if data:
        sock.sendall(data)
    return sock


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("ending", ["half-close", "reset"])
def test_a_body_cut_short_by_the_client(endpoint: LocalEndpoint, ending: str) -> None:
    runs = echo_runs(endpoint)
    sock = _stalled(endpoint.port, signed_request(endpoint.port, ECHO, body=b"abc", content_length=100))
    if ending == "reset":
        _reset(sock)
    else:
        sock.shutdown(socket.SHUT_WR)
        with sock:
            assert read_response(sock) is None  # nothing to answer: the request never ended
    assert echo_runs(endpoint) == runs


def test_slow_senders_do_not_hold_up_other_requests(endpoint: LocalEndpoint) -> None:
    port = endpoint.port
    head = signed_request(port, ECHO, body=b"0123456789", content_length=1000)
    stalled = [_stalled(port, b"") for _ in range(10)]  # connected, nothing sent
    stalled += [_stalled(port, b"POST /endpoints/echo/invoc") for _ in range(10)]  # half a request line
    stalled += [_stalled(port, head[: head.index(b"\r\n\r\n")]) for _ in range(10)]  # headers never end
    stalled += [_stalled(port, head) for _ in range(10)]  # body 990 bytes short
    try:
        for index in range(5):
            body = f"meanwhile {index}".encode()
            answer = exchange(port, signed_request(port, ECHO, body=body), timeout=TIMEOUT)
            assert answer is not None and (answer.status, answer.body) == (200, body)
    finally:
        for sock in stalled:
            sock.close()


def test_a_request_sent_one_byte_at_a_time(endpoint: LocalEndpoint) -> None:
    data = signed_request(endpoint.port, ECHO, body=b"trickle")
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in data:
            sock.send(bytes([byte]))
        answer = read_response(sock)
    assert answer is not None and (answer.status, answer.body) == (200, b"trickle")


def test_a_body_over_6_mib_is_refused_with_413(endpoint: LocalEndpoint) -> None:
    runs = echo_runs(endpoint)
    signed = signed_request(endpoint.port, ECHO, body=b"x" * (6 * MIB + 1))
    answer = exchange(endpoint.port, signed, timeout=TIMEOUT)
    assert answer is not None
    assert answer.status == 413
    assert answer.error_type is None  # as the service answers: a message and no error code
    assert b"HTTP content length exceeded 6291456 bytes." in answer.body
    unsigned = raw_request(ECHO, [("Host", "127.0.0.1")], b"y" * (20 * MIB))
    answer = exchange(endpoint.port, unsigned, timeout=TIMEOUT)
    assert answer is not None and answer.status == 413
    assert echo_runs(endpoint) == runs


def test_a_chunked_signed_upload_is_accepted(endpoint: LocalEndpoint) -> None:
    body = b"chunked body"
    lines = signed_headers(endpoint.port, ECHO, body=body)
    chunks = b"5\r\nchunk\r\n7\r\ned body\r\n0\r\n\r\n"
    data = raw_request(ECHO, [*lines, ("Transfer-Encoding", "chunked")], chunks, content_length=-1)
    answer: RawResponse | None = exchange(endpoint.port, data, timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.body) == (200, body)


def test_a_broken_body_on_a_route_that_does_not_read_it(endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    data = b"POST /not-an-operation HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"
    answer = exchange(endpoint.port, data, timeout=TIMEOUT)
    assert answer is not None and answer.status == 400
    # uvicorn answers the broken body with its own 400 and closes; the app, running for the
    # good head, must not try to answer too (that used to fail in h11 and be logged at ERROR).
    assert exchange(endpoint.port, signed_request(endpoint.port, ECHO, body=b"after"), timeout=TIMEOUT) is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.clear()  # reported here; the autouse check after the test must not fail on it too
    assert errors == []


# --- hostile servers, seen from the client -------------------------------------------------
# The tests above attack the local endpoint; these turn it around: a server that answers the
# client with hostile bytes. The client must fail with a SageMakerRuntimeError, early, bounded
# in memory, and drop the connection.

CLIENT_KINDS = ("requests", "fast")


_HTTP_CLIENT_FIELDS = ("connect_timeout", "read_timeout", "max_pool_connections", "max_response_body_size")


def _client_for(url: str, kind: str, **fields: Any) -> Client:
    """A client on the default HTTP client ("requests") or on FastHTTPClient ("fast"); the
    fields that configure an HTTP client go to the FastHTTPClient's constructor for "fast"."""
    fields.setdefault("read_timeout", TIMEOUT)
    if kind == "fast":
        settings = {name: fields.pop(name) for name in _HTTP_CLIENT_FIELDS if name in fields}
        fields["http_client"] = FastHTTPClient(**settings)
    return make_client(url, max_attempts=1, **fields)


class FloodingServer:
    """Answers one request with ``head``, then sends filler until the client hangs up (or
    ``cap`` bytes went out); ``sent`` counts the bytes the kernel took after the head."""

    def __init__(self, head: bytes, cap: int) -> None:
        self.head = head
        self.cap = cap
        self.sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self._listener:
            connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(TIMEOUT)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += connection.recv(65536)
            filler = b"\0" * 65536
            try:
                connection.sendall(self.head)
                while self.sent < self.cap:
                    self.sent += connection.send(filler)
            except OSError:
                pass  # the client hung up: what the test waits for

    def join(self) -> int:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        return self.sent


def _prelude(total_length: int, headers_length: int = 0) -> bytes:
    fields = struct.pack(">II", total_length, headers_length)
    return fields + struct.pack(">I", zlib.crc32(fields))


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_an_oversized_frame_in_a_huge_http_chunk_fails_before_the_chunk_is_buffered(kind: str) -> None:
    # One 1 GiB HTTP chunk whose first bytes are a frame prelude claiming 2 GiB: the decoder
    # must see the prelude as it arrives, not once the client has buffered the chunk.
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n40000000\r\n" + _prelude(2**31)
    )
    server = FloodingServer(head, cap=256 * MIB)
    with (
        _client_for(server.url, kind) as client,
        pytest.raises(InvalidLengthError, match=r"payload length \d+ is over the \d+-byte limit"),
        client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"{}") as stream,
    ):
        list(stream)
    assert server.join() < 16 * MIB  # socket buffers, not the chunk


_MANY_FDS_CHILD = """
import os, resource, sys
from smruntime.http import HTTPRequest
from smruntime.transport import FastHTTPClient

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # every new socket's fd is >= 1024
with FastHTTPClient(read_timeout=10) as client:
    for _ in range(3):
        assert client.send(HTTPRequest("POST", sys.argv[1], {}, b"x")).body.read() == b"ok"
"""


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] not in (resource.RLIM_INFINITY,)
    and resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1200,
    reason="the hard RLIMIT_NOFILE is too low to open 1100 files",
)
def test_the_fast_client_reuses_connections_in_a_process_with_over_1024_open_files() -> None:
    # select() cannot watch an fd >= 1024: the liveness check before reuse must not depend on it.
    with HTTPTestServer(default=respond(200, b"ok")) as server:
        result = subprocess.run(
            [sys.executable, "-c", _MANY_FDS_CHILD, server.url + "/x"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert len(server.requests) == 3
        assert server.connections_accepted == 1


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError on it


def _exception_frame(payload: bytes) -> bytes:
    headers = {":message-type": "exception", ":exception-type": "ModelStreamError", ":content-type": "application/json"}
    return encode_message(headers, payload)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("error body", DeserializationError),
        ("async-inference body", DeserializationError),
        ("ModelStreamError frame", ModelStreamError),
    ],
)
def test_deeply_nested_json_from_the_server_is_mapped_like_any_malformed_body(
    where: str, expected: type[SageMakerRuntimeError]
) -> None:
    with HTTPTestServer() as server:
        if where == "error body":
            server.enqueue(respond(400, DEEP_JSON, headers=[("Content-Type", "application/json")]))
        elif where == "async-inference body":
            server.enqueue(respond(202, DEEP_JSON, headers=[("Content-Type", "application/json")]))
        else:
            server.enqueue(chunked([_exception_frame(DEEP_JSON)], headers=[("Content-Type", "application/vnd.amazon.eventstream")]))
        with _client_for(server.url, "requests") as client, pytest.raises(expected):
            if where == "async-inference body":
                client.invoke_endpoint_async(endpoint_name="echo", input_location="s3://bucket/key")
            elif where == "error body":
                client.invoke_endpoint(endpoint_name="echo", body=b"{}")
            else:
                with client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"{}") as stream:
                    list(stream)


def _blocked_in(thread: threading.Thread, function: str) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return bool(names) and names[0] == "wait" and function in names


@pytest.mark.parametrize(("kind", "waits_in"), [("requests", "_get_conn"), ("fast", "acquire")])
def test_closing_the_client_wakes_calls_waiting_for_a_pooled_connection(kind: str, waits_in: str) -> None:
    # More threads than pooled connections: the extra ones wait for one. Closing the client
    # must fail them at once with a clear error, not after the whole connect timeout.
    release = threading.Event()
    outcomes: dict[int, object] = {}
    with HTTPTestServer(default=respond(200, b"ok", wait=release)) as server:
        client = _client_for(server.url, kind, connect_timeout=60.0, max_pool_connections=1)
        # The client closes only an HTTP client it created: close a FastHTTPClient directly.
        close = client.close if kind == "requests" else client.options.http_client.close

        def call(index: int) -> None:
            try:
                outcomes[index] = client.invoke_endpoint(endpoint_name="echo", body=b"{}").body
            except Exception as exc:
                outcomes[index] = exc

        threads = [threading.Thread(target=call, args=(index,)) for index in range(3)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(server.requests) == 1, what="the first call to reach the server")
        wait_until(lambda: sum(_blocked_in(thread, waits_in) for thread in threads) == 2, what="two calls waiting")
        waiting = [thread for thread in threads if _blocked_in(thread, waits_in)]
        close()
        for thread in waiting:
            thread.join(TIMEOUT)  # far less than the connect timeout
            assert not thread.is_alive()
        release.set()
        for thread in threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive()
        client.close()
    closed = [outcome for outcome in outcomes.values() if isinstance(outcome, ClientClosedError)]
    assert len(closed) == 2, outcomes
    assert all("closed" in str(error) and not error.retryable for error in closed)
    assert b"ok" in outcomes.values()


HOSTILE_TEXT = "\x1b[2J\r\nFAKE LOG LINE\x00\u202e" + "A" * 10_000_000


@pytest.mark.parametrize("where", ["error body", "ModelStreamError frame"])
def test_a_huge_service_error_message_is_capped_and_its_control_characters_escaped(where: str) -> None:
    body = json.dumps({"message": HOSTILE_TEXT}).encode()
    with HTTPTestServer() as server:
        if where == "error body":
            server.enqueue(respond(400, body, headers=[("X-Amzn-ErrorType", "ValidationError")]))
        else:
            server.enqueue(chunked([_exception_frame(body)], headers=[("Content-Type", "application/vnd.amazon.eventstream")]))
        with _client_for(server.url, "requests") as client, pytest.raises(APIError) as caught:
            if where == "error body":
                client.invoke_endpoint(endpoint_name="echo", body=b"{}")
            else:
                with client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"{}") as stream:
                    list(stream)
    for text in (str(caught.value), caught.value.message, repr(caught.value)):
        assert len(text) < 4096
        assert not re.search("[\x00-\x1f\x7f\u202e]", text)
    assert caught.value.message.startswith("\\x1b[2J\\r\\nFAKE LOG LINE\\x00\\u202eAAA")
    assert "characters more" in caught.value.message


@pytest.mark.parametrize("kind", CLIENT_KINDS)
@pytest.mark.parametrize("framing", ["content-length", "chunked", "until close"])
def test_a_response_body_over_the_limit_is_refused_naming_the_option(kind: str, framing: str) -> None:
    limit = 64 * 1024
    replies = {
        "content-length": lambda size: respond(200, b"x" * size),
        "chunked": lambda size: chunked([b"x" * (size // 2), b"x" * (size - size // 2)]),
        "until close": lambda size: respond(200, b"x" * size, omit_content_length=True),
    }
    with HTTPTestServer() as server:
        server.enqueue(replies[framing](limit), replies[framing](limit + 1))
        with _client_for(server.url, kind, max_response_body_size=limit) as client:
            assert len(client.invoke_endpoint(endpoint_name="echo", body=b"{}").body) == limit  # the limit itself is fine
            with pytest.raises(ResponseTooLargeError, match=f"max_response_body_size \\({limit} bytes\\)") as caught:
                client.invoke_endpoint(endpoint_name="echo", body=b"{}")
    assert not caught.value.retryable


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_the_error_body_of_a_stream_call_is_bounded_too(kind: str) -> None:
    limit = 64 * 1024
    with HTTPTestServer() as server:
        server.enqueue(chunked([b"{" + b" " * limit, b"}"], status=400))
        with (
            _client_for(server.url, kind, max_response_body_size=limit) as client,
            pytest.raises(ResponseTooLargeError, match="max_response_body_size"),
        ):
            client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"{}")


# --- error messages that say where the answer came from -------------------------------------


def test_a_404_from_a_server_that_is_not_sagemaker_names_its_url_and_scheme() -> None:
    with HTTPTestServer() as server:
        server.enqueue(respond(404, b"<html>Not Found</html>", headers=[("Content-Type", "text/html")]))
        server.enqueue(respond(404, b"", headers=[("Content-Type", "text/html")]))
        with _client_for(server.url, "requests") as client:
            with pytest.raises(DeserializationError) as not_json:
                client.invoke_endpoint(endpoint_name="echo", body=b"{}")
            with pytest.raises(APIError) as no_code:
                client.invoke_endpoint(endpoint_name="echo", body=b"{}")
    assert f"error body of an HTTP 404 response from {server.url} as a JSON object (no request ID: is this a " \
        "SageMaker Runtime endpoint?)" in str(not_json.value)
    assert not_json.value.snapshot.startswith(b"<html>")
    assert str(no_code.value) == (
        f"operation error SageMaker Runtime: InvokeEndpoint, http response error StatusCode: 404, URL: {server.url}, "
        "UnknownError (the answer names no error code: is this a SageMaker Runtime endpoint?)"
    )


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_a_stream_that_stalls_past_the_read_timeout_says_it_stalled(kind: str) -> None:
    part = encode_message({":message-type": "event", ":event-type": "PayloadPart"}, b"first")
    resume = threading.Event()
    with HTTPTestServer() as server:
        server.enqueue(chunked([part, Wait(resume), part], headers=[("Content-Type", "application/vnd.amazon.eventstream")]))
        with (
            _client_for(server.url, kind, read_timeout=0.2) as client,
            client.invoke_endpoint_with_response_stream(endpoint_name="echo", body=b"{}") as stream,
        ):
            assert next(stream).bytes == b"first"
            with pytest.raises(TruncatedStreamError, match="stalled") as caught:
                next(stream)
        resume.set()
    assert caught.value.timeout
    assert isinstance(caught.value.__cause__, ReadTimeoutError)
