"""The local endpoint's bidirectional stream, sans-IO: the inbound frame checks, the wire
encoding of parts, and how a variant's model becomes a bidirectional one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from smruntime.auth import Credentials
from smruntime.event_signing import EventSigner
from smruntime.eventstream import EventStreamDecoder, encode_message
from smruntime.local.bidi_models import BidiOutput, BidiRequest, TurnTaking, bidirectional_model, echo_parts
from smruntime.local.bidi_wire import InboundEvents, InputRejected, Part, decode_part, exception_frame, part_frame
from smruntime.local.builtins import TokenStreamer, echo, sum_model
from smruntime.local.event_verify import EventVerifier
from smruntime.local.models import ModelRequest, ModelResponse

SEED = "ab" * 32
WHEN = datetime(2025, 1, 1, tzinfo=UTC)


def _signer() -> EventSigner:
    return EventSigner(Credentials("AKID", "SECRET"), region="us-east-1", service="sagemaker", seed=SEED)


def _inbound(*, signed: bool = True, max_frame_bytes: int = 1024 * 1024) -> InboundEvents:
    verifier = EventVerifier("SECRET", region="us-east-1", service="sagemaker", seed=SEED) if signed else None
    return InboundEvents(verifier, max_frame_bytes=max_frame_bytes)


def _event(data: bytes, **headers: str) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart",
                           ":content-type": "application/octet-stream", **headers}, data)


# --- inbound --------------------------------------------------------------------------------

def test_parts_come_out_as_their_frames_complete_whatever_the_chunking() -> None:
    signer = _signer()
    wire = (signer.sign(_event(b"one", DataType="UTF8", CompletionState="PARTIAL", P="pad"), WHEN)
            + signer.sign(_event(b"two"), WHEN + timedelta(seconds=1))
            + signer.sign_end(WHEN + timedelta(seconds=2)))
    inbound = _inbound()
    parts = [part for byte in range(len(wire)) for part in inbound.feed(wire[byte:byte + 1])]
    assert parts == [Part(b"one", "UTF8", "PARTIAL", "pad"), Part(b"two", "BINARY", "COMPLETE")]
    assert inbound.ended
    inbound.finish()


def test_without_signatures_the_outer_payloads_are_taken_as_they_are() -> None:
    inbound = _inbound(signed=False)
    plain = encode_message({":date": "whenever"}, _event(b"x"))
    assert inbound.feed(plain) == [Part(b"x")]
    assert inbound.feed(encode_message({})) == []
    assert inbound.ended
    with pytest.raises(InputRejected, match="after the end frame"):
        inbound.feed(plain)


def test_an_input_cut_inside_a_frame_is_invalid() -> None:
    inbound = _inbound()
    inbound.feed(_signer().sign(_event(b"x"), WHEN)[:-3])
    with pytest.raises(InputRejected, match="ended inside a frame") as caught:
        inbound.finish()
    assert caught.value.code == "ValidationError"


def test_an_input_without_the_end_frame_is_an_invalid_signature() -> None:
    inbound = _inbound()
    inbound.feed(_signer().sign(_event(b"x"), WHEN))
    with pytest.raises(InputRejected) as caught:
        inbound.finish()
    assert (caught.value.code, caught.value.message) == ("InvalidSignatureException",
                                                         "the input ended without the signed end frame")


def test_a_frame_over_the_limit_is_refused_while_it_still_arrives() -> None:
    inbound = _inbound(max_frame_bytes=100)
    frame = _signer().sign(_event(b"x" * 200), WHEN)
    with pytest.raises(InputRejected, match="over the 100-byte limit"):
        inbound.feed(frame[:150])  # the frame is not whole yet


@pytest.mark.parametrize(("headers", "rule"), [
    ({":message-type": "error"}, ":message-type 'event'"),
    ({":event-type": "Other"}, "the only input event is PayloadPart"),
    ({"DataType": "JSON"}, "'DataType' failed"),
    ({"CompletionState": "MAYBE"}, "'CompletionState' failed"),
])
def test_decode_part_names_the_rule_broken(headers: dict[str, str], rule: str) -> None:
    (message,) = EventStreamDecoder().feed(_event(b"x", **headers))
    with pytest.raises(InputRejected, match=rule) as caught:
        decode_part(message)
    assert caught.value.code == "ValidationError"


def test_a_rejection_becomes_an_exception_event() -> None:
    (frame,) = EventStreamDecoder().feed(InputRejected("InvalidSignatureException", "nope").frame())
    assert (frame.message_type, frame.exception_type, frame.content_type) == (
        "exception", "InvalidSignatureException", "application/json")
    assert json.loads(frame.payload) == {"message": "nope"}


# --- outbound -------------------------------------------------------------------------------

def test_a_part_frame_spells_out_its_headers() -> None:
    (frame,) = EventStreamDecoder().feed(part_frame(Part(b"hi", "UTF8", "PARTIAL", "__")))
    assert frame.headers == {":message-type": "event", ":event-type": "PayloadPart",
                             ":content-type": "application/octet-stream", "DataType": "UTF8",
                             "CompletionState": "PARTIAL", "P": "__"}
    assert frame.payload == b"hi"


def test_an_exception_frame_carries_its_document() -> None:
    (frame,) = EventStreamDecoder().feed(exception_frame("ModelStreamError", {"Message": "m", "ErrorCode": "E"}))
    assert frame.exception_type == "ModelStreamError"
    assert json.loads(frame.payload) == {"Message": "m", "ErrorCode": "E"}


def test_a_part_checks_its_headers() -> None:
    with pytest.raises(ValueError, match=r"Part\.data_type"):
        Part(b"", data_type="utf8")
    with pytest.raises(ValueError, match=r"Part\.completion_state"):
        Part(b"", completion_state="complete")


# --- models ---------------------------------------------------------------------------------

async def _parts(*parts: Part) -> AsyncIterator[Part]:
    for part in parts:
        yield part


def _converse(model: object, *parts: Part) -> list[Part]:
    async def collect() -> list[Part]:
        answers = bidirectional_model(model)(BidiRequest(parts=_parts(*parts), endpoint_name="ep"))
        return [answer async for answer in answers]  # type: ignore[misc]

    return asyncio.run(collect())


async def _an_async_generator(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    yield "x"


def test_which_model_serves_the_stream() -> None:
    assert bidirectional_model(echo) is echo_parts
    assert bidirectional_model(_an_async_generator) is _an_async_generator
    turns = TurnTaking(echo)
    assert bidirectional_model(turns) == turns.converse
    assert isinstance(bidirectional_model(sum_model).__self__, TurnTaking)  # type: ignore[attr-defined]


def test_turn_taking_answers_each_complete_turn_chunk_by_chunk() -> None:
    answers = _converse(TurnTaking(TokenStreamer()), Part(b"a b", "UTF8", "PARTIAL"), Part(b" c"),
                        Part(b"d", "UTF8"))
    assert answers == [Part(b"a", "UTF8", "PARTIAL"), Part(b" b", "UTF8", "PARTIAL"), Part(b" c", "UTF8", "COMPLETE"),
                       Part(b"d", "UTF8", "COMPLETE")]


def test_turn_taking_holds_an_unfinished_turn() -> None:
    assert _converse(TurnTaking(TokenStreamer()), Part(b"never finished", completion_state="PARTIAL")) == []


def test_turn_taking_sends_the_turn_as_the_body_and_keeps_binary_answers_binary() -> None:
    seen: list[ModelRequest] = []

    def model(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return ModelResponse(body=iter([b"\x01", b"\x02"]), content_type="application/octet-stream")

    answers = _converse(model, Part(b"\x00", completion_state="PARTIAL"), Part(b"\xff"))
    assert answers == [Part(b"\x01", "BINARY", "PARTIAL"), Part(b"\x02", "BINARY", "COMPLETE")]
    assert [(r.body, r.operation, r.endpoint_name) for r in seen] == [
        (b"\x00\xff", "InvokeEndpointWithBidirectionalStream", "ep")]


def test_turn_taking_passes_a_model_failure_on() -> None:
    def broken(request: ModelRequest) -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("gone")

    with pytest.raises(RuntimeError, match="gone"):
        _converse(broken, Part(b"go"))


def test_the_docs_model_example_runs() -> None:
    from tests.docs.test_doc_examples import python_block

    namespace: dict[str, object] = {}
    exec(compile(python_block("local-endpoint.md", "## Bidirectional streaming (HTTP/2)"), "local-endpoint.md",
                 "exec"), namespace)
    answers = _converse(namespace["shout"], Part(b"hi ", completion_state="PARTIAL"), Part(b"there"))
    assert answers == ["ready", Part(b"THERE", "UTF8")]
