"""``smruntime invoke-endpoint-with-bidirectional-stream`` in-process, above the transport seam:
each line of stdin goes out as an event, each answer that comes back is printed on a line."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smruntime import cli
from smruntime.http import HTTPRequest
from smruntime.transport import AsyncHTTP2MockClient
from smruntime.types import RequestPayloadPart, ResponsePayloadPart

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


async def shout(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[ResponsePayloadPart]:
    async for event in events:
        yield ResponsePayloadPart(event.bytes.upper(), event.data_type)


class Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


@pytest.fixture
def http2(monkeypatch: pytest.MonkeyPatch) -> AsyncHTTP2MockClient:
    made = AsyncHTTP2MockClient(shout, secret_access_key=SECRET)
    monkeypatch.setattr("smruntime.transport.default_http2_client", lambda options: made)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2", raising=False)
    return made


def test_each_line_goes_out_as_an_event_and_each_answer_is_printed(
    http2: AsyncHTTP2MockClient, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(b"hello\nworld\r\n"))

    status = cli.main([
        "invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep",
        "--model-invocation-path", "v1/listen", "--http2-endpoint-url", "http://127.0.0.1:9",
    ])

    assert status == 0
    assert capfdbinary.readouterr().out == b"HELLO\nWORLD\n"
    (opened,) = http2.streams
    assert [event.bytes for event in opened.events] == [b"hello", b"world"]
    assert {event.data_type for event in opened.events} == {"UTF8"}
    assert opened.end_frame and opened.verify_error is None
    assert opened.request.url == "http://127.0.0.1:9/endpoints/ep/invocations-bidirectional-stream"
    assert opened.request.headers["x-amzn-sagemaker-model-invocation-path"] == "v1/listen"


def test_partial_parts_are_printed_on_the_line_their_complete_part_ends(
    http2: AsyncHTTP2MockClient, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    async def word_by_word(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[ResponsePayloadPart]:
        async for event in events:
            *first, last = event.bytes.split(b" ")
            for word in first:
                yield ResponsePayloadPart(word + b" ", "UTF8", "PARTIAL")
            yield ResponsePayloadPart(last, "UTF8", "COMPLETE")
        yield ResponsePayloadPart(b"bye", "UTF8")  # no completion state: a line of its own

    monkeypatch.setattr("smruntime.transport.default_http2_client",
                        lambda options: AsyncHTTP2MockClient(word_by_word, secret_access_key=SECRET))
    monkeypatch.setattr(sys, "stdin", Stdin(b"hello there world\nagain\n"))

    assert cli.main(["invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep"]) == 0

    assert capfdbinary.readouterr().out == b"hello there world\nagain\nbye\n"


def test_a_stream_that_ends_on_a_partial_part_still_ends_its_line(
    monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes], http2: Any
) -> None:
    async def never_complete(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[ResponsePayloadPart]:
        async for _ in events:
            yield ResponsePayloadPart(b"thinking...", "UTF8", "PARTIAL")

    monkeypatch.setattr("smruntime.transport.default_http2_client",
                        lambda options: AsyncHTTP2MockClient(never_complete, secret_access_key=SECRET))
    monkeypatch.setattr(sys, "stdin", Stdin(b"a\nb\n"))

    assert cli.main(["invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep"]) == 0

    assert capfdbinary.readouterr().out == b"thinking...thinking...\n"  # a shell's next prompt starts a line


def test_a_refused_stream_prints_one_line_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], http2: Any
) -> None:
    refusing = AsyncHTTP2MockClient(shout, status=424, headers={"x-amzn-errortype": "ModelError"},
                                    body=b'{"Message": "the container refused the connection"}')
    monkeypatch.setattr("smruntime.transport.default_http2_client", lambda options: refusing)
    monkeypatch.setattr(sys, "stdin", Stdin(b"hello\n"))

    status = cli.main(["invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep"])

    assert status == cli.EXIT_ERROR
    error = capsys.readouterr().err
    assert "ModelError" in error and "the container refused the connection" in error and len(error.splitlines()) == 1


def test_the_stack_command_prints_the_event_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stack", "invoke-endpoint-with-bidirectional-stream"]) == 0

    printed = capsys.readouterr().out
    assert printed.startswith("InvokeEndpointWithBidirectionalStream\n\tInitialize stack step\n")
    assert printed.endswith("\tSendEvent stack step\n\tReceiveEvent stack step\n")


def test_a_line_the_stream_refuses_ends_the_command_with_that_error_not_a_wait(
    http2: AsyncHTTP2MockClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The line over the event limit is refused before it is sent; the reader, waiting for answers
    # to input that would never end, used to wait for ever.
    monkeypatch.setattr(sys, "stdin", Stdin(b"hello\n" + b"x" * (16 * 1024 * 1024 + 1) + b"\n"))

    status = cli.main(["invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep"])

    assert status == cli.EXIT_ERROR
    error = capsys.readouterr().err
    assert "data: must be at most 16777216 bytes" in error and len(error.splitlines()) == 1


def test_a_line_that_is_not_utf8_is_refused_unless_the_data_type_is_binary(
    http2: AsyncHTTP2MockClient, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["invoke-endpoint-with-bidirectional-stream", "--region", "us-west-2", "--endpoint-name", "ep"]
    monkeypatch.setattr(sys, "stdin", Stdin(b"ok\n\xff\xfe\n"))
    assert cli.main(argv) == cli.EXIT_ERROR
    assert b"--data-type: line 2 of stdin is not UTF-8" in capfdbinary.readouterr().err

    binary = AsyncHTTP2MockClient(shout, secret_access_key=SECRET)  # a client closes its HTTP/2 client
    monkeypatch.setattr("smruntime.transport.default_http2_client", lambda options: binary)
    monkeypatch.setattr(sys, "stdin", Stdin(b"ok\n\xff\xfe\n"))
    assert cli.main([*argv, "--data-type", "BINARY"]) == 0
    assert [event.bytes for event in binary.streams[0].events] == [b"ok", b"\xff\xfe"]
    assert capfdbinary.readouterr().out == b"OK\n\xff\xfe\n"
