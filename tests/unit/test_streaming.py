"""The response stream, fed by an in-memory body: events, errors, lines, closing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from smruntime import PayloadPart, ResultMetadata
from smruntime.errors import (
    APIError,
    EventStreamError,
    InternalStreamFailure,
    ModelStreamError,
    SageMakerRuntimeError,
)
from smruntime.eventstream import encode_message
from smruntime.http import HTTPResponse
from smruntime.streaming import ResponseStream


class ChunkedBody:
    """A body that yields the given chunks; records whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.closed = False

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def iter_chunks(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        self.closed = True


def part(data: bytes) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart", ":content-type": "application/octet-stream"}, data)


def exception(kind: str, document: dict[str, str]) -> bytes:
    return encode_message(
        {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
        json.dumps(document).encode(),
    )


def stream_of(*frames: bytes, split: int | None = None) -> tuple[ResponseStream, ChunkedBody]:
    data = b"".join(frames)
    chunks = [data[i : i + split] for i in range(0, len(data), split)] if split else [data]
    body = ChunkedBody(chunks)
    response = HTTPResponse(200, {"X-Amzn-SageMaker-Content-Type": "text/plain"}, body)
    stream = ResponseStream(
        response,
        operation="InvokeEndpointWithResponseStream",
        content_type="text/plain",
        invoked_production_variant="AllTraffic",
        custom_attributes=None,
        metadata=ResultMetadata(),
    )
    return stream, body


@pytest.mark.parametrize("split", [None, 1, 7, 64])
def test_parts_come_out_in_order_whatever_the_chunking(split):
    stream, body = stream_of(part(b"Hel"), part(b"lo"), part(b""), part(b" world"), split=split)
    assert list(stream) == [PayloadPart(b"Hel"), PayloadPart(b"lo"), PayloadPart(b""), PayloadPart(b" world")]
    assert body.closed


def test_lines_are_rejoined_across_parts_and_a_last_unterminated_line_is_yielded():
    stream, _ = stream_of(part(b'{"token": "Hel'), part(b'lo"}\n{"tok'), part(b'en": "!"}\r\n\nlast'))
    assert list(stream.lines()) == [b'{"token": "Hello"}', b'{"token": "!"}', b"", b"last"]


def test_lines_read_again_after_a_loop_left_early_go_on_where_it_stopped():
    stream, _ = stream_of(part(b"a\nb\nc"), part(b"d\r\ne\r"), part(b"\nf"))
    seen = []
    for line in stream.lines():
        seen.append(line)
        break
    assert seen == [b"a"]
    assert list(stream.lines()) == [b"b", b"cd", b"e", b"f"]


def test_reading_parts_directly_while_a_line_is_unfinished_stops_lines_rather_than_make_one_up():
    stream, _ = stream_of(part(b"a\nhel"), part(b"PART\n"), part(b"lo\nz"))
    lines = stream.lines()
    assert next(lines) == b"a"  # "hel" waits for the rest of its line
    assert next(stream) == PayloadPart(b"PART\n")  # ... which this part was not
    with pytest.raises(SageMakerRuntimeError, match="parts were read from the stream directly while a line was"):
        next(lines)


def test_reading_parts_directly_between_whole_lines_is_fine():
    stream, _ = stream_of(part(b"a\n"), part(b"b\n"), part(b"c\n"))
    assert next(stream.lines()) == b"a"
    assert next(stream) == PayloadPart(b"b\n")
    assert list(stream.lines()) == [b"c"]


def test_lines_of_a_stream_closed_before_its_end_are_refused_as_its_parts_are():
    stream, _ = stream_of(part(b"a\nb\n"), part(b"c"))
    lines = stream.lines()
    assert next(lines) == b"a"
    stream.close()
    with pytest.raises(SageMakerRuntimeError, match="closed before its end"):
        next(lines)  # b"b" came in before the close, but the stream was abandoned


def test_payloads_are_the_raw_bytes():
    stream, _ = stream_of(part(b"a"), part(b"b"))
    assert list(stream.payloads()) == [b"a", b"b"]


def test_model_stream_error_keeps_its_error_code_and_closes_the_stream():
    stream, body = stream_of(
        part(b"first"), exception("ModelStreamError", {"Message": "model timed out", "ErrorCode": "ModelInvocationTimeExceeded"})
    )
    iterator = iter(stream)
    assert next(iterator) == PayloadPart(b"first")
    with pytest.raises(ModelStreamError) as caught:
        next(iterator)
    assert caught.value.error_code == "ModelInvocationTimeExceeded"
    assert caught.value.message == "model timed out"
    assert body.closed and stream.closed


def test_internal_stream_failure_is_raised():
    stream, _ = stream_of(exception("InternalStreamFailure", {"Message": "try again"}))
    with pytest.raises(InternalStreamFailure, match="try again"):
        list(stream)


def test_an_error_frame_is_an_api_error_with_its_code():
    frame = encode_message({":message-type": "error", ":error-code": "Boom", ":error-message": "it broke"}, b"")
    stream, _ = stream_of(frame)
    with pytest.raises(APIError) as caught:
        list(stream)
    assert (caught.value.code, caught.value.message) == ("Boom", "it broke")


def test_unknown_event_types_are_skipped():
    other = encode_message({":message-type": "event", ":event-type": "SomethingNew"}, b"?")
    stream, _ = stream_of(part(b"a"), other, part(b"b"))
    assert list(stream.payloads()) == [b"a", b"b"]


def test_a_stream_cut_mid_frame_is_an_error_not_a_silent_end():
    data = part(b"whole") + part(b"cut off")[:-3]
    stream, body = stream_of(data)
    with pytest.raises(EventStreamError):
        list(stream)
    assert body.closed


def test_close_is_idempotent_and_the_context_manager_closes():
    stream, body = stream_of(part(b"a"))
    with stream:
        pass
    assert body.closed
    stream.close()
    stream.close()
    assert stream.closed
