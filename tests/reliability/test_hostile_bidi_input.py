"""Hostile input to the local endpoint's bidirectional stream (HTTP/2), over real sockets.

Every event's chunk signature is checked in order, so a tampered, reordered, dropped or
replayed event, a missing or forged signature, an event after the end frame and an input
that ends without the signed end frame are refused with an ``InvalidSignatureException``
exception event; a frame that does not decode, an inner event that is not a PayloadPart and
an oversized event with a ``ValidationError`` one. Parts accepted before the bad one have
been answered. A bad opening request is refused before the stream starts (403/400 with
``X-Amzn-ErrorType``).

After every test an autouse fixture checks that a well-signed stream is still answered and
that nothing was logged at ERROR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smruntime.auth import Credentials
from smruntime.event_signing import EventSigner
from smruntime.eventstream import EventStreamDecoder, Message, Timestamp, encode_message
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ServerLimits
from tests.integration.h2_raw_client import CREDENTIALS, REGION, RawBidiStream, inner_part
from tests.reliability.support import wait_until

MAX_EVENT = 4096


def _config() -> LocalConfig:
    return LocalConfig(endpoints=(EndpointConfig.serving("echo", "echo"),), max_event_bytes=MAX_EVENT)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(_config(), credentials=CREDENTIALS) as running:
        yield running


def run(port: int, scenario: Callable[[int], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(port), 30))


async def _echo_once(port: int) -> list[bytes]:
    async with await RawBidiStream.open(port, "echo") as stream:
        await stream.send_part(b"still there?")
        await stream.end_input()
        return [m.payload for m in await stream.read_all()]


@pytest.fixture(autouse=True)
def still_serving(endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    assert run(endpoint.http2_port, _echo_once) == [b"still there?"]
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], "the server logged errors"


Act = Callable[[RawBidiStream], Awaitable[None]]


def refused(endpoint: LocalEndpoint, act: Act) -> tuple[list[bytes], str, str]:
    """Run ``act`` on a fresh echo stream: (parts answered, exception type, its message)."""
    async def scenario(port: int) -> tuple[list[bytes], str, str]:
        async with await RawBidiStream.open(port, "echo") as stream:
            await act(stream)
            assert await stream.response() == 200
            messages = await stream.read_all()
        *parts, last = messages
        assert all(m.message_type == "event" for m in parts)
        assert last.message_type == "exception", "the stream must end with an exception event"
        document = json.loads(last.payload)
        return [m.payload for m in parts], str(last.exception_type), document.get("message", document.get("Message"))

    result: tuple[list[bytes], str, str] = run(endpoint.http2_port, scenario)
    return result


def _outer(frame: bytes) -> Message:
    (message,) = EventStreamDecoder().feed(frame)
    return message


def _other_signer(stream: RawBidiStream, secret: str = "not-the-secret") -> EventSigner:
    assert stream.signer is not None
    return EventSigner(Credentials(CREDENTIALS[0], secret), region=REGION, service="sagemaker",
                       seed=stream.signer.prior_signature)


# --- chunk signatures -----------------------------------------------------------------------

def test_an_event_signed_with_the_wrong_key_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        await stream.send_part(b"good")
        await stream.send_raw(_other_signer(stream).sign(inner_part(b"forged")))

    assert refused(endpoint, act) == (
        [b"good"], "InvalidSignatureException",
        "the event's :chunk-signature does not match (tampered, reordered or dropped)",
    )


def test_an_event_without_a_chunk_signature_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        date = Timestamp.from_datetime(datetime.now(UTC).replace(microsecond=0))
        await stream.send_raw(encode_message({":date": date}, inner_part(b"unsigned")))

    parts, code, message = refused(endpoint, act)
    assert (parts, code) == ([], "InvalidSignatureException")
    assert "exactly the :date and :chunk-signature headers" in message


def test_an_unsigned_event_stream_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        await stream.send_raw(inner_part(b"no outer frame at all"))

    parts, code, _ = refused(endpoint, act)
    assert (parts, code) == ([], "InvalidSignatureException")


def test_a_tampered_event_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        frame = _outer(stream.signer.sign(inner_part(b"pay 10")))
        await stream.send_raw(encode_message(frame.headers, inner_part(b"pay 99")))  # CRCs redone, signature kept

    assert refused(endpoint, act)[:2] == ([], "InvalidSignatureException")


def test_a_tampered_date_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        frame = _outer(stream.signer.sign(inner_part(b"x")))
        date = frame.headers[":date"]
        assert isinstance(date, Timestamp)
        headers = {**frame.headers, ":date": Timestamp(date.millis + 1000)}
        await stream.send_raw(encode_message(headers, frame.payload))

    assert refused(endpoint, act)[:2] == ([], "InvalidSignatureException")


def test_reordered_events_are_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        first = stream.signer.sign(inner_part(b"first"))
        second = stream.signer.sign(inner_part(b"second"))
        await stream.send_raw(second)
        await stream.send_raw(first)

    assert refused(endpoint, act)[:2] == ([], "InvalidSignatureException")


def test_a_dropped_event_is_noticed(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        await stream.send_part(b"one")
        stream.signer.sign(inner_part(b"two"))  # signed, never sent
        await stream.send_part(b"three")

    assert refused(endpoint, act)[:2] == ([b"one"], "InvalidSignatureException")


def test_a_replayed_event_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        frame = stream.signer.sign(inner_part(b"transfer"))
        await stream.send_raw(frame)
        await stream.send_raw(frame)

    assert refused(endpoint, act)[:2] == ([b"transfer"], "InvalidSignatureException")


def test_an_input_without_the_signed_end_frame_is_incomplete(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        await stream.send_part(b"bye")
        await stream.close_input()  # END_STREAM, no signed empty frame

    assert refused(endpoint, act) == ([b"bye"], "InvalidSignatureException",
                                      "the input ended without the signed end frame")


def test_an_unsigned_end_frame_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        date = Timestamp.from_datetime(datetime.now(UTC).replace(microsecond=0))
        await stream.send_raw(encode_message({":date": date, ":chunk-signature": b"\0" * 32}), end_stream=True)

    assert refused(endpoint, act)[:2] == ([], "InvalidSignatureException")


def test_an_event_after_the_end_frame_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        end = stream.signer.sign_end()
        after = _other_signer(stream, CREDENTIALS[1]).sign(inner_part(b"one more"))  # chained on the end frame
        await stream.send_raw(end + after)  # one DATA frame: read together

    assert refused(endpoint, act) == ([], "InvalidSignatureException", "an event arrived after the signed end frame")


# --- malformed and oversized frames ---------------------------------------------------------

def _corrupt_crc(frame: bytes) -> bytes:
    return frame[:-4] + struct.pack(">I", (zlib.crc32(frame[:-4]) + 1) & 0xFFFFFFFF)


@pytest.mark.parametrize(("wire", "rule"), [
    (lambda signer: _corrupt_crc(signer.sign(inner_part(b"x"))), "CRC"),
    (lambda signer: b"\x00\x00\x00\x05garbage-garbage", "not a valid event stream"),
    (lambda signer: struct.pack(">II", 64 * 1024 * 1024, 0) + b"\0" * 8, "not a valid event stream"),
    (lambda signer: signer.sign(b"not an event"), "must be one encoded event"),
    (lambda signer: signer.sign(inner_part(b"a") + inner_part(b"b")), "not 2"),
    (lambda signer: signer.sign(inner_part(b"x", extra={":event-type": "Audio"})), "the only input event is PayloadPart"),
    (lambda signer: signer.sign(inner_part(b"x", extra={":message-type": "exception"})), "must have :message-type"),
    (lambda signer: signer.sign(inner_part(b"x", data_type="TEXT")), "at 'DataType' failed to satisfy constraint"),
    (lambda signer: signer.sign(inner_part(b"x", completion_state="DONE")), "at 'CompletionState' failed"),
])
def test_a_malformed_event_is_a_validation_error(endpoint: LocalEndpoint, wire: Callable[[EventSigner], bytes],
                                                 rule: str) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        await stream.send_part(b"fine")
        await stream.send_raw(wire(stream.signer))

    parts, code, message = refused(endpoint, act)
    assert (parts, code) == ([b"fine"], "ValidationError")
    assert rule in message


def test_an_oversized_event_is_refused(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        await stream.send_part(b"x" * (MAX_EVENT - 500))  # fits
        await stream.send_part(b"x" * MAX_EVENT)

    parts, code, message = refused(endpoint, act)
    assert (len(parts), code) == (1, "ValidationError")
    assert message == f"an input event is over the {MAX_EVENT}-byte limit"


def test_an_oversized_event_is_refused_before_it_is_whole(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        # A prelude announcing 1 MiB, then only a few KiB of it: refused without waiting for the rest.
        total, headers = 1024 * 1024, 0
        prelude = struct.pack(">II", total, headers)
        await stream.send_raw(prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\0" * (2 * MAX_EVENT))

    assert refused(endpoint, act)[1:] == ("ValidationError", f"an input event is over the {MAX_EVENT}-byte limit")


def test_a_client_that_resets_its_stream_leaves_the_server_serving(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> None:
        async with await RawBidiStream.open(port, "echo") as stream:
            await stream.send_part(b"one")
            assert await stream.next_message() is not None
            await stream.reset()
            await asyncio.sleep(0.05)

    run(endpoint.http2_port, scenario)


# --- the opening request --------------------------------------------------------------------

def opening(endpoint: LocalEndpoint, **kwargs: Any) -> tuple[int, str | None, dict[str, Any]]:
    async def scenario(port: int) -> tuple[int, str | None, dict[str, Any]]:
        async with await RawBidiStream.open(port, kwargs.pop("name", "echo"), **kwargs) as stream:
            status = await stream.response()
            await stream.read_all()
            return status, stream.headers.get("x-amzn-errortype"), json.loads(stream.body)

    result: tuple[int, str | None, dict[str, Any]] = run(endpoint.http2_port, scenario)
    return result


@pytest.mark.parametrize(("kwargs", "code", "text"), [
    ({"credentials": (CREDENTIALS[0], "wrong secret")}, "InvalidSignatureException", "does not match"),
    ({"credentials": None}, "MissingAuthenticationToken", "Missing Authentication Token"),
    ({"credentials": ("AKIDUNKNOWN", "secret")}, "UnrecognizedClientException", "security token"),
    ({"region": "eu-west-1"}, "InvalidSignatureException", "Credential should be scoped to a valid region"),
    ({"service": "sagemaker-runtime"}, "InvalidSignatureException", "Credential should be scoped to correct service"),
    ({"when": datetime.now(UTC) - timedelta(minutes=10)}, "InvalidSignatureException", "Signature expired"),
    ({"unsigned": [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]}, "InvalidSignatureException",
     "must be 'STREAMING-AWS4-HMAC-SHA256-EVENTS'"),
])
def test_a_bad_opening_signature_is_refused_before_the_stream(endpoint: LocalEndpoint, kwargs: dict[str, Any],
                                                             code: str, text: str) -> None:
    runs = endpoint.counters("echo").model_runs
    status, error_type, body = opening(endpoint, **kwargs)
    assert (status, error_type) == (403, code)
    assert text in body["message"]
    assert endpoint.counters("echo").model_runs == runs


def test_an_unknown_endpoint_is_refused_before_the_stream(endpoint: LocalEndpoint) -> None:
    assert opening(endpoint, name="missing")[:2] == (400, "ValidationError")


def test_a_bad_endpoint_name_is_refused_before_the_stream(endpoint: LocalEndpoint) -> None:
    status, code, body = opening(endpoint, name="bad_name")
    assert (status, code) == (400, "ValidationError")
    assert "at 'endpointName' failed to satisfy constraint" in body["Message"]


# --- connections ----------------------------------------------------------------------------

def test_connections_over_the_limit_are_answered_503() -> None:
    with LocalEndpoint(_config(), credentials=CREDENTIALS, limits=ServerLimits(max_connections=1)) as small:
        async def scenario(port: int) -> tuple[int, str]:
            async with await RawBidiStream.open(port, "echo") as first:
                await first.send_part(b"hold")
                assert await first.next_message() is not None
                async with await RawBidiStream.open(port, "echo") as second:
                    status = await second.response()
                    return status, second.headers["x-amzn-errortype"]

        assert run(small.http2_port, scenario) == (503, "ServiceUnavailable")
        # Once the server has seen both connections close, there is room again.
        wait_until(lambda: small.http2_connections == 0, what="the connections to close")
        assert run(small.http2_port, _echo_once) == [b"still there?"]


def test_a_connection_that_sends_nothing_is_closed() -> None:
    with LocalEndpoint(_config(), credentials=CREDENTIALS, limits=ServerLimits(header_timeout=0.2)) as strict:
        with socket.create_connection(("127.0.0.1", strict.http2_port), timeout=10) as idle:
            # The listener's own preface (SETTINGS) may come first; then the close.
            received = b""
            while chunk := idle.recv(65536):
                received += chunk
        assert received == b""  # closed without a word


def test_an_event_signed_long_ago_has_expired(endpoint: LocalEndpoint) -> None:
    async def act(stream: RawBidiStream) -> None:
        assert stream.signer is not None
        await stream.send_part(b"now")
        await stream.send_raw(stream.signer.sign(inner_part(b"stale"), datetime.now(UTC) - timedelta(minutes=6)))

    parts, code, message = refused(endpoint, act)
    assert (parts, code) == ([b"now"], "InvalidSignatureException")
    assert message.startswith("Signature expired: the event's :date ")
