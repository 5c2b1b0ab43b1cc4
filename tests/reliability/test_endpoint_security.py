"""The local endpoint's defences, over raw sockets: the body is the one that was signed,
nothing is read for a caller that is not authenticated, every connection has a deadline,
connections are bounded, the Host header names this server, and the public example key pair
is never served to the network by accident.

Limits are set small here so that "it did not hang" is proved in well under the socket
timeouts; no assertion is a timing other than those generous bounds.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smruntime.local import EXAMPLE_CREDENTIALS, LocalEndpoint, ServerLimits
from smruntime.local.credentials import resolve_credentials
from smruntime.local.hosts import HostPolicy, is_loopback
from smruntime.local.server import refuse_exposed_example_credentials
from tests.reliability.support import (
    CREDENTIALS,
    MIB,
    exchange,
    raw_request,
    read_response,
    signed_headers,
    signed_request,
)

ECHO = "/endpoints/echo/invocations"
STREAM = "/endpoints/tokens/invocations-response-stream"
TIMEOUT = 10.0
SIX_MIB = 6 * MIB


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=CREDENTIALS) as running:
        yield running


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def head_only(data: bytes) -> bytes:
    """The request's head (through the blank line), without its body."""
    return data[: data.index(b"\r\n\r\n") + 4]


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (EOF or reset) before the socket timeout."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# --- the payload hash: the body must be the one that was signed -----------------------------

def test_a_replayed_request_with_another_body_and_the_original_hash_is_refused(endpoint: LocalEndpoint) -> None:
    original = b'{"numbers": [1, 2]}'
    lines = signed_headers(endpoint.port, ECHO, body=original, headers=[("X-Amz-Content-Sha256", sha256(original))])
    runs = endpoint.counters("echo").model_runs
    answer = exchange(endpoint.port, raw_request(ECHO, lines, b'{"evil": true}'), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.error_type) == (403, "InvalidSignatureException")
    assert b"X-Amz-Content-SHA256" in answer.body
    assert endpoint.counters("echo").model_runs == runs


def test_an_unsigned_declared_hash_cannot_vouch_for_another_body(endpoint: LocalEndpoint) -> None:
    # Captured without the header (as boto3 signs), replayed with the original hash added unsigned.
    original = b"signed body"
    lines = signed_headers(endpoint.port, ECHO, body=original)
    lines.append(("X-Amz-Content-Sha256", sha256(original)))
    answer = exchange(endpoint.port, raw_request(ECHO, lines, b"attacker body"), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.error_type) == (403, "InvalidSignatureException")


def test_a_declared_hash_that_matches_the_body_is_accepted(endpoint: LocalEndpoint) -> None:
    body = b"declared and right"
    lines = signed_headers(endpoint.port, ECHO, body=body, headers=[("X-Amz-Content-Sha256", sha256(body))])
    answer = exchange(endpoint.port, raw_request(ECHO, lines, body), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.body) == (200, body)


@pytest.mark.parametrize("declared", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                      "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-EVENTS",
                                      "not-a-hash", "A" * 64])
@pytest.mark.parametrize("path", [ECHO, STREAM, "/endpoints/echo/async-invocations"])
def test_these_operations_take_no_unsigned_or_streaming_payload(endpoint: LocalEndpoint, path: str,
                                                                 declared: str) -> None:
    lines = signed_headers(endpoint.port, path, body=b"a b", headers=[("X-Amz-Content-Sha256", declared)])
    answer = exchange(endpoint.port, raw_request(path, lines, b"a b"), timeout=TIMEOUT)
    assert answer is not None and (answer.status, answer.error_type) == (403, "InvalidSignatureException")
    assert b"X-Amz-Content-SHA256" in answer.body


# --- nothing is read before the headers are authenticated -----------------------------------

def test_an_unauthenticated_request_is_refused_before_its_body_is_sent(endpoint: LocalEndpoint) -> None:
    head = raw_request(ECHO, [("Host", f"127.0.0.1:{endpoint.port}")], content_length=SIX_MIB - 1)
    with connect(endpoint.port) as sock:
        sock.sendall(head)  # the 6 MiB body never comes
        answer = read_response(sock)
    assert answer is not None and (answer.status, answer.error_type) == (403, "MissingAuthenticationToken")


@pytest.mark.parametrize("how", ["unknown-key", "expired", "wrong-region"])
def test_headers_that_fail_authentication_are_refused_before_the_body(endpoint: LocalEndpoint, how: str) -> None:
    change: dict[str, Any] = {
        "unknown-key": {"credentials": ("AKIDUNKNOWN", "x")},
        "expired": {"when": datetime.now(UTC) - timedelta(minutes=10)},
        "wrong-region": {"region": "eu-west-1"},
    }[how]
    lines = signed_headers(endpoint.port, ECHO, body=b"x" * 100, **change)
    with connect(endpoint.port) as sock:
        sock.sendall(raw_request(ECHO, lines, content_length=SIX_MIB - 1))
        answer = read_response(sock)
    assert answer is not None and answer.status == 403


def test_a_declared_hash_lets_a_forged_signature_be_refused_before_the_body(endpoint: LocalEndpoint) -> None:
    body = b"x" * 1000
    lines = signed_headers(endpoint.port, ECHO, body=body, credentials=(CREDENTIALS[0], "not-the-secret"),
                           headers=[("X-Amz-Content-Sha256", sha256(body))])
    with connect(endpoint.port) as sock:
        sock.sendall(raw_request(ECHO, lines, content_length=len(body)))
        answer = read_response(sock)
    assert answer is not None and (answer.status, answer.error_type) == (403, "InvalidSignatureException")


def test_many_stalled_unauthenticated_uploads_are_all_answered_at_once(endpoint: LocalEndpoint) -> None:
    # The reported attack: connections with no credentials declaring 6 MiB and stalling.
    head = raw_request(ECHO, [("Host", f"127.0.0.1:{endpoint.port}")], content_length=SIX_MIB)
    sockets = [connect(endpoint.port) for _ in range(40)]
    try:
        for sock in sockets:
            sock.sendall(head + b"x" * 1000)
        answers = [read_response(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert all(answer is not None and answer.status == 403 for answer in answers)


def test_a_declared_length_over_6_mib_is_answered_413_at_once(endpoint: LocalEndpoint) -> None:
    lines = signed_headers(endpoint.port, ECHO, body=b"")
    with connect(endpoint.port) as sock:
        sock.sendall(raw_request(ECHO, lines, content_length=SIX_MIB + 1))  # no body sent at all
        answer = read_response(sock)
    assert answer is not None and answer.status == 413
    assert b"HTTP content length exceeded 6291456 bytes." in answer.body


def test_a_body_larger_than_declared_in_chunks_is_cut_at_the_limit(endpoint: LocalEndpoint) -> None:
    lines = signed_headers(endpoint.port, ECHO, body=b"")
    chunk = b"x" * MIB
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7))
    data = raw_request(ECHO, [*lines, ("Transfer-Encoding", "chunked")], framed, content_length=-1)
    answer = exchange(endpoint.port, data, timeout=TIMEOUT)  # the terminating chunk never comes
    assert answer is not None and answer.status == 413


# --- deadlines and the connection limit -----------------------------------------------------

@pytest.fixture(scope="module")
def strict() -> Iterator[LocalEndpoint]:
    limits = ServerLimits(max_connections=8, header_timeout=0.5, body_timeout=0.5)
    with LocalEndpoint(credentials=CREDENTIALS, limits=limits) as running:
        yield running


def test_a_stalled_body_is_dropped_after_the_body_timeout(strict: LocalEndpoint) -> None:
    runs = strict.counters("echo").model_runs
    data = signed_request(strict.port, ECHO, body=b"0123456789")
    with connect(strict.port) as sock:
        sock.sendall(data[:-1])  # one byte short, for ever
        answer = read_response(sock)
        assert answer is not None and answer.status == 408
        assert closed_by_server(sock)
    assert strict.counters("echo").model_runs == runs


def test_a_body_trickled_past_the_deadline_is_dropped(strict: LocalEndpoint) -> None:
    # Every byte arrives well within any per-read timeout; the deadline is for the whole body.
    runs = strict.counters("echo").model_runs
    data = signed_request(strict.port, ECHO, body=b"0123456789" * 10)
    head = head_only(data)
    with connect(strict.port) as sock:
        sock.sendall(head)
        for byte in data[len(head):]:  # 100 bytes at 20 a second, past the 0.5 s deadline
            try:
                sock.send(bytes([byte]))
            except OSError:
                break  # dropped
            time.sleep(0.05)
        answer = read_response(sock)
    assert answer is None or answer.status == 408
    assert strict.counters("echo").model_runs == runs


def test_a_slowloris_header_is_dropped(strict: LocalEndpoint) -> None:
    with connect(strict.port) as sock:
        sock.sendall(b"POST /endpoints/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        assert closed_by_server(sock)


def test_an_idle_connection_is_dropped(strict: LocalEndpoint) -> None:
    with connect(strict.port) as sock:
        assert closed_by_server(sock)


def test_connections_over_the_limit_are_refused_with_503(strict: LocalEndpoint) -> None:
    held = [connect(strict.port) for _ in range(8)]
    try:
        with connect(strict.port) as extra:
            extra.sendall(signed_request(strict.port, ECHO, body=b"one too many"))
            answer = read_response(extra)
        assert answer is not None and (answer.status, answer.error_type) == (503, "ServiceUnavailable")
    finally:
        for sock in held:
            sock.close()
    # Once they are gone (the server notices the close), calls are served again.
    for _ in range(200):
        answer = exchange(strict.port, signed_request(strict.port, ECHO, body=b"served"), timeout=TIMEOUT)
        if answer is not None and answer.status == 200:
            break
    assert answer is not None and (answer.status, answer.body) == (200, b"served")


def test_a_keep_alive_connection_serves_requests_one_after_another(strict: LocalEndpoint) -> None:
    with connect(strict.port) as sock:
        for index in range(3):
            body = f"call {index}".encode()
            sock.sendall(signed_request(strict.port, ECHO, body=body))
            answer = read_response(sock)
            assert answer is not None and (answer.status, answer.body) == (200, body)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        ServerLimits(max_connections=0)
    with pytest.raises(ValueError, match="body_timeout"):
        ServerLimits(body_timeout=0)


# --- the Host header ------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example"])
@pytest.mark.parametrize("path", [ECHO, "/ping"])
def test_a_host_this_endpoint_does_not_serve_is_refused(endpoint: LocalEndpoint, host: str, path: str) -> None:
    # What a web page reaching a loopback endpoint through DNS rebinding sends.
    lines = [(name, host if name == "Host" else value) for name, value in signed_headers(endpoint.port, path, body=b"x")]
    method = "GET" if path == "/ping" else "POST"
    answer = exchange(endpoint.port, raw_request(path, lines, b"x", method=method), timeout=TIMEOUT)
    assert answer is not None and answer.status == 400
    assert "is not a name this endpoint serves" in json.loads(answer.body)["message"]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.0.0.2", "[::1]"])
def test_loopback_hosts_are_served(endpoint: LocalEndpoint, host: str) -> None:
    data = raw_request("/ping", [("Host", f"{host}:{endpoint.port}")], method="GET")
    answer = exchange(endpoint.port, data, timeout=TIMEOUT)
    assert answer is not None and answer.status == 200


def test_extra_host_names_can_be_allowed() -> None:
    with LocalEndpoint(credentials=CREDENTIALS, allowed_hosts=["sm.internal"]) as running:
        data = raw_request("/ping", [("Host", f"sm.internal:{running.port}")], method="GET")
        answer = exchange(running.port, data, timeout=TIMEOUT)
    assert answer is not None and answer.status == 200


def test_the_host_policy() -> None:
    loopback = HostPolicy.serving("127.0.0.1")
    assert loopback.allows(None)  # HTTP/1.0 without Host: no browser sends that
    assert not loopback.allows("")
    assert not loopback.allows("10.0.0.5")
    wildcard = HostPolicy.serving("0.0.0.0", ["build-box"])
    assert wildcard.allows("10.0.0.5:8080") and wildcard.allows("[fe80::1]:8080")  # an address is no rebinding
    assert wildcard.allows("BUILD-BOX:8080") and not wildcard.allows("evil.example")
    assert HostPolicy.serving("192.168.1.5").allows("192.168.1.5:8080")
    assert HostPolicy.serving("127.0.0.1", ["*"]).allows("anything.example")


# --- the example key pair is never served to the network by accident ------------------------

def test_loopback_addresses() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.8.9.1", "::1", "localhost", "LocalHost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.5", "example.com", ""))


def test_the_example_pair_is_refused_on_a_non_loopback_address() -> None:
    example = resolve_credentials(EXAMPLE_CREDENTIALS)
    with pytest.raises(ValueError, match="--allow-example-credentials") as caught:
        refuse_exposed_example_credentials("0.0.0.0", example, allow=False)
    assert "\n" not in str(caught.value)
    refuse_exposed_example_credentials("0.0.0.0", example, allow=True)
    refuse_exposed_example_credentials("127.0.0.1", example, allow=False)
    refuse_exposed_example_credentials("0.0.0.0", resolve_credentials(("AKIDREAL", "secret")), allow=False)


def test_local_endpoint_refuses_the_example_pair_on_all_interfaces_before_binding() -> None:
    with pytest.raises(ValueError, match="example"):
        LocalEndpoint(host="0.0.0.0", credentials=EXAMPLE_CREDENTIALS)


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    return env


def test_serve_on_all_interfaces_without_credentials_refuses_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smruntime", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, env=_no_credentials_env(tmp_path), text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "--allow-example-credentials" in done.stderr
    assert "AKIDEXAMPLE" in done.stderr and "wJalrXUtnFEMI" not in done.stderr
