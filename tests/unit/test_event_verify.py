"""EventVerifier: the local endpoint's check of a signed input stream (sans-IO)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smruntime.auth import Credentials, SigningKeyCache
from smruntime.event_signing import EventSigner, chained_signature
from smruntime.eventstream import EventStreamDecoder, Message, Timestamp, encode_message
from smruntime.local.event_verify import EventSignatureError, EventVerifier

WHEN = datetime(2025, 1, 1, tzinfo=UTC)
SEED = "ab" * 32


def _frames(*payloads: bytes, end: bool = True) -> list[Message]:
    signer = EventSigner(Credentials("AKID", "SECRET"), region="us-east-1", service="sagemaker", seed=SEED)
    wire = [signer.sign(p, WHEN + timedelta(seconds=i)) for i, p in enumerate(payloads)]
    if end:
        wire.append(signer.sign_end(WHEN + timedelta(seconds=len(payloads))))
    return [EventStreamDecoder().feed(w)[0] for w in wire]


def _verifier() -> EventVerifier:
    return EventVerifier("SECRET", region="us-east-1", service="sagemaker", seed=SEED)


def test_a_well_signed_stream_yields_its_events_then_ends() -> None:
    verifier = _verifier()
    got = [verifier.verify(frame) for frame in _frames(b"one", b"two")]
    assert got == [b"one", b"two", None]
    verifier.finish()


@pytest.mark.parametrize(
    ("mangle", "rule"),
    [
        (lambda f: [f[1], f[0], f[2]], "does not match"),  # reordered
        (lambda f: [f[0], f[2]], "does not match"),  # dropped
        (lambda f: [f[0], f[0], f[1], f[2]], "does not match"),  # replayed
        (lambda f: [Message(f[0].headers, b"evil"), *f[1:]], "does not match"),  # tampered
        (lambda f: [*f, f[2]], "after the signed end frame"),
        (lambda f: [Message({":date": f[0].headers[":date"]}, f[0].payload)], "exactly the :date"),
        (
            lambda f: [Message({**f[0].headers, ":date": Timestamp(f[0].headers[":date"].millis + 1)}, b"one")],
            "does not match",
        ),
        (lambda f: [Message({**f[0].headers, ":chunk-signature": "hex"}, b"x")], "byte array"),
    ],
)
def test_a_broken_stream_is_refused(mangle: object, rule: str) -> None:
    verifier = _verifier()
    with pytest.raises(EventSignatureError, match=rule):
        for frame in mangle(_frames(b"one", b"two")):  # type: ignore[operator]
            verifier.verify(frame)


def test_a_stream_without_the_end_frame_is_incomplete() -> None:
    verifier = _verifier()
    for frame in _frames(b"one", end=False):
        verifier.verify(frame)
    with pytest.raises(EventSignatureError, match="without the signed end frame"):
        verifier.finish()


def test_a_wrong_seed_or_secret_is_refused() -> None:
    frame = _frames(b"one")[0]
    with pytest.raises(EventSignatureError, match="does not match"):
        EventVerifier("OTHER", region="us-east-1", service="sagemaker", seed=SEED).verify(frame)
    with pytest.raises(EventSignatureError, match="does not match"):
        EventVerifier("SECRET", region="us-east-1", service="sagemaker", seed="cd" * 32).verify(frame)


def test_unsigned_inner_events_are_refused() -> None:
    inner = EventStreamDecoder().feed(encode_message({":event-type": "PayloadPart"}, b"raw"))[0]
    with pytest.raises(EventSignatureError, match="exactly the :date"):
        _verifier().verify(inner)


def test_a_date_with_milliseconds_as_some_sdks_send_it_is_accepted() -> None:
    # The string to sign shows whole seconds; the hashed :date header keeps the milliseconds.
    date = Timestamp(Timestamp.from_datetime(WHEN).millis + 291)
    signature = chained_signature(
        SigningKeyCache(),
        "SECRET",
        region="us-east-1",
        service="sagemaker",
        date=date,
        prior_signature=SEED,
        payload=b"",
    )
    verifier = _verifier()
    assert verifier.verify(Message({":date": date, ":chunk-signature": signature}, b"")) is None
    verifier.finish()


def test_events_within_one_second_verify_whatever_their_milliseconds() -> None:
    # What the verifier works out once per :date must not carry over to another date of the same second.
    keys, prior, verifier = SigningKeyCache(), SEED, _verifier()
    for offset, payload in ((0, b"one"), (0, b"two"), (291, b"three"), (999, b"")):
        date = Timestamp(Timestamp.from_datetime(WHEN).millis + offset)
        signature = chained_signature(keys, "SECRET", region="us-east-1", service="sagemaker", date=date,
                                      prior_signature=prior, payload=payload)
        assert verifier.verify(Message({":date": date, ":chunk-signature": signature}, payload)) == (payload or None)
        prior = signature.hex()
    verifier.finish()
