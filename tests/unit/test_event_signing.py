"""EventSigner: the outer frames it writes, their chaining and the end of input (sans-IO)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smruntime.auth import Credentials, SigV4Signer, compute_signature
from smruntime.event_signing import EventSigner, EventStreamClosedError, seed_signature, sign_initial_request
from smruntime.eventstream import EventStreamDecoder, Timestamp, encode_message
from smruntime.http import HTTPRequest

WHEN = datetime(2025, 1, 1, tzinfo=UTC)
SEED = "ab" * 32


def _signer() -> EventSigner:
    return EventSigner(Credentials("AKID", "SECRET"), region="us-east-1", service="sagemaker", seed=SEED)


def _payload_part() -> bytes:
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":message-type": "event",
            "DataType": "UTF8",
            ":content-type": "application/octet-stream",
        },
        b"hello",
    )


def test_a_sagemaker_event_and_end_frame_sign_as_derived_independently() -> None:
    signer = _signer()
    inner = _payload_part()
    assert len(inner) == 126
    frame = signer.sign(inner, WHEN)
    assert len(frame) == 209
    (outer,) = EventStreamDecoder().feed(frame)
    assert outer.payload == inner
    assert outer.headers[":date"] == Timestamp.from_datetime(WHEN)
    assert outer.headers[":chunk-signature"] == bytes.fromhex(
        "917ea23378b8d31da5055711128735c3110757141721062a9e9d583ca5a6a6c6"
    )
    end = signer.sign_end(WHEN)
    assert len(end) == 83
    assert end[:12].hex() == "0000005300000043f5447a58"
    (closing,) = EventStreamDecoder().feed(end)
    assert closing.payload == b""
    assert closing.headers[":chunk-signature"] == bytes.fromhex(
        "a4092ad74e649a140b1988df608fcbdcff4ad577dcc8cc51a4af03e5e227d298"
    )


def test_sub_second_time_is_truncated_in_date_and_signature() -> None:
    precise = _signer().sign(_payload_part(), WHEN.replace(microsecond=987_654))
    assert precise == _signer().sign(_payload_part(), WHEN)


def test_signatures_chain_so_the_same_event_signs_differently_each_time() -> None:
    signer = _signer()
    first = signer.sign(b"x", WHEN)
    second = signer.sign(b"x", WHEN)
    assert first != second
    chunk_signature = EventStreamDecoder().feed(second)[0].headers[":chunk-signature"]
    assert chunk_signature == bytes.fromhex(signer.prior_signature)


def test_nothing_is_signed_after_the_end_frame() -> None:
    signer = _signer()
    signer.sign_end(WHEN)
    assert signer.ended
    with pytest.raises(EventStreamClosedError, match="after the end of input"):
        signer.sign(b"late", WHEN)


def test_the_seed_is_the_authorization_signature() -> None:
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature="
        + SEED
    )
    assert seed_signature(auth) == SEED
    with pytest.raises(ValueError, match="Signature="):
        seed_signature("AWS4-HMAC-SHA256 Credential=AKID")


def test_repr_shows_no_secret() -> None:
    assert "SECRET" not in repr(_signer())


def test_the_initial_request_is_signed_for_streaming_events_and_seeds_the_chain() -> None:
    request = HTTPRequest(
        "POST",
        "https://runtime.sagemaker.us-east-1.amazonaws.com:8443/endpoints/e/invocations-bidirectional-stream",
        {"content-type": "application/vnd.amazon.eventstream"},
    )
    credentials = Credentials("AKID", "SECRET")
    seed = sign_initial_request(
        SigV4Signer(), request, credentials, region="us-east-1", service="sagemaker", signing_time=WHEN
    )
    assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-AWS4-HMAC-SHA256-EVENTS"
    assert request.headers["Authorization"].endswith(f"Signature={seed}")
    expected = compute_signature(
        secret_key="SECRET",
        method="POST",
        raw_path="/endpoints/e/invocations-bidirectional-stream",
        raw_query="",
        headers=[*request.headers.items(), ("host", "runtime.sagemaker.us-east-1.amazonaws.com:8443")],
        signed_headers=["content-type", "host", "x-amz-content-sha256", "x-amz-date"],
        payload_hash="STREAMING-AWS4-HMAC-SHA256-EVENTS",
        amz_date="20250101T000000Z",
        region="us-east-1",
        service="sagemaker",
    )
    assert seed == expected


def test_events_signed_within_and_across_seconds_chain_as_chained_signature_computes() -> None:
    from datetime import timedelta

    from smruntime.auth import SigningKeyCache
    from smruntime.event_signing import chained_signature

    signer = _signer()
    prior = SEED
    for offset_ms in (0, 10, 999, 1000, 1500, 86_400_000, 86_400_001):
        when = WHEN + timedelta(milliseconds=offset_ms)
        payload = b"event %d" % offset_ms
        (outer,) = EventStreamDecoder().feed(signer.sign(payload, when))
        date = outer.headers[":date"]
        assert isinstance(date, Timestamp) and date.millis % 1000 == 0
        expected = chained_signature(SigningKeyCache(), "SECRET", region="us-east-1", service="sagemaker",
                                     date=date, prior_signature=prior, payload=payload)
        assert outer.headers[":chunk-signature"] == expected
        prior = expected.hex()
