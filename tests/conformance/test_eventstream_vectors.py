"""The public event-stream vectors in ``vectors/eventstream/`` (four sources).

Valid vectors must decode to the expected headers and payload, fed whole, byte by byte and in
random chunkings, and re-encode to the same bytes. Invalid ones must fail with an
EventStreamError; the exact class is asserted only where it does not depend on the order of
checks (see the folder's README): a bad prelude CRC, a bad message CRC with nothing else
wrong, and the structural cases whose CRCs are all valid.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import uuid
import zlib
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

from smruntime.errors import EventStreamError
from smruntime.eventstream import (
    EventStreamDecoder,
    HeaderValue,
    Int8,
    Int16,
    Int32,
    Int64,
    InvalidHeaderError,
    InvalidLengthError,
    Message,
    MessageChecksumError,
    PreludeChecksumError,
    Timestamp,
    TruncatedStreamError,
    decode_all,
    encode_message,
)

VECTORS = Path(__file__).resolve().parent / "vectors" / "eventstream"


class Valid(NamedTuple):
    id: str
    data: bytes
    headers: list[tuple[str, HeaderValue]]  # in wire order
    payload: bytes
    total_length: int
    headers_length: int
    prelude_crc: int
    message_crc: int


class Invalid(NamedTuple):
    id: str
    load: Callable[[], bytes]  # lazy: one of these vectors is 24 MiB
    error: type[EventStreamError]

    @property
    def data(self) -> bytes:
        return self.load()


# Invalid vectors whose CRCs are all valid: one structural check fails, whatever the order.
STRUCTURAL = {
    "botocore:DUPLICATE_HEADER": InvalidHeaderError,
    "botocore:INVALID_HEADERS_LENGTH": InvalidLengthError,
    # Prelude CRC valid; the implied payload (24 MiB + 17) is over the limit: rejected at 12 bytes.
    "botocore:INVALID_PAYLOAD_LENGTH": InvalidLengthError,
    "aws-c-event-stream:illegal_header_length_relationship_fails": InvalidLengthError,
    "aws-c-event-stream:message_too_short": InvalidLengthError,
}


def _value(type_code: int, value: Any) -> HeaderValue:
    """A JSON header value (already decoded from base64/hex) as our typed value."""
    if type_code in (0, 1):
        assert value is (type_code == 0)
        return bool(value)
    wrappers: dict[int, Callable[[int], HeaderValue]] = {2: Int8, 3: Int16, 4: Int32, 5: Int64, 8: Timestamp}
    if type_code in wrappers:
        return wrappers[type_code](value)
    if type_code == 6:
        return bytes(value)
    if type_code == 7:
        return str(value)
    if type_code == 9:
        return uuid.UUID(bytes=bytes(value))
    raise AssertionError(f"unknown type {type_code}")


def _json_header(header: dict[str, Any]) -> tuple[str, HeaderValue]:
    """A header in the JSON convention shared by smithy-rs, botocore and aws-c-event-stream."""
    raw = bytes.fromhex(header["value_hex"]) if "value_hex" in header else header["value"]
    return header["name"], _value(header["type"], raw)


def _smithy_go_header(header: dict[str, Any]) -> tuple[str, HeaderValue]:
    """smithy-go's convention: base64 for byte_array, string and uuid values."""
    value = header["value"]
    if header["type"] in (6, 9):
        value = base64.b64decode(value)
    elif header["type"] == 7:
        value = base64.b64decode(value).decode("utf-8")
    return header["name"], _value(header["type"], value)


def _encoded(entry: dict[str, Any]) -> bytes:
    if "encoded_hex" in entry:
        return bytes.fromhex(entry["encoded_hex"])
    parts = []
    for part in entry["encoded_parts"]:
        parts.append(bytes.fromhex(part["hex"]) if "hex" in part else bytes.fromhex(part["repeat_hex"]) * part["count"])
    data = b"".join(parts)
    assert len(data) == entry["encoded_length"]
    return data


def _valid_from_json(vid: str, data: bytes, decoded: dict[str, Any]) -> Valid:
    return Valid(
        vid,
        data,
        [_json_header(h) for h in decoded["headers"]],
        bytes.fromhex(decoded["payload_hex"]),
        decoded["total_length"],
        decoded["headers_length"],
        decoded["prelude_crc"],
        decoded["message_crc"],
    )


def _crc_error(entry: dict[str, Any]) -> type[EventStreamError]:
    """The class a CRC defect pins down whatever the order of checks, else the base class.

    A bad prelude CRC is always found first. A bad message CRC is only certain when it is the
    upstream's own verdict too: smithy-rs's header-level vectors also have a stale message CRC
    (``defects_observed``), but what upstream reports for them depends on its check order.
    """
    defects = entry["defects_observed"]
    upstream = entry.get("upstream_error_kind") or entry.get("botocore_exception") or entry.get("upstream_error", "")
    if any(d.startswith("prelude CRC does not match") for d in defects):
        return PreludeChecksumError
    if defects == ["message CRC does not match"] and "checksum" in upstream.lower():
        return MessageChecksumError
    return EventStreamError


def _load() -> tuple[list[Valid], list[Invalid], dict[str, dict[str, Any]]]:
    valid: list[Valid] = []
    invalid: list[Invalid] = []
    streaming: dict[str, dict[str, Any]] = {}
    go = VECTORS / "smithy-go" / "testdata"
    for path in sorted((go / "encoded" / "positive").iterdir()):
        d = json.loads((go / "decoded" / "positive" / path.name).read_text())
        valid.append(
            Valid(
                f"smithy-go:{path.name}",
                path.read_bytes(),
                [_smithy_go_header(h) for h in d["headers"]],
                base64.b64decode(d["payload"]),
                d["total_length"],
                d["headers_length"],
                d["prelude_crc"] & 0xFFFFFFFF,  # smithy-go writes the CRCs as signed int32
                d["message_crc"] & 0xFFFFFFFF,
            )
        )
    go_errors = {"Prelude checksum mismatch": PreludeChecksumError, "Message checksum mismatch": MessageChecksumError}
    for path in sorted((go / "encoded" / "negative").iterdir()):
        text = (go / "decoded" / "negative" / path.name).read_text().strip()
        invalid.append(Invalid(f"smithy-go:{path.name}", path.read_bytes, go_errors[text]))

    rs_dir = VECTORS / "smithy-rs"
    rs = json.loads((rs_dir / "expected.json").read_text())
    for entry in rs["positive"]:
        name = Path(entry["file"]).name
        valid.append(_valid_from_json(f"smithy-rs:{name}", (rs_dir / entry["file"]).read_bytes(), entry["decoded"]))
    for entry in rs["negative"]:
        name = Path(entry["file"]).name
        invalid.append(
            Invalid(f"smithy-rs:{name}", (rs_dir / entry["file"]).read_bytes, _crc_error(entry))
        )
    for entry in rs["streaming"]:
        streaming[f"smithy-rs:{entry['name']}"] = {**entry, "dir": rs_dir}

    for source, filename in (
        ("botocore", "botocore/test_eventstream_vectors.json"),
        ("aws-c-event-stream", "aws-c-event-stream/streaming_decoder_vectors.json"),
    ):
        doc = json.loads((VECTORS / filename).read_text())
        for entry in doc["positive"]:
            valid.append(_valid_from_json(f"{source}:{entry['name']}", _encoded(entry), entry["decoded"]))
        for entry in doc["negative"]:
            vid = f"{source}:{entry['name']}"
            error = STRUCTURAL.get(vid) or _crc_error(entry)
            invalid.append(Invalid(vid, partial(_encoded, entry), error))
        for entry in doc["streaming"]:
            streaming[f"{source}:{entry['name']}"] = entry
    return valid, invalid, streaming


VALID, INVALID, STREAMING = _load()
VALID_BY_ID = {v.id: v for v in VALID}


def _expected(vector: Valid) -> Message:
    return Message(dict(vector.headers), vector.payload)


def _feed_all(chunks: list[bytes]) -> list[Message]:
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    for chunk in chunks:
        messages += decoder.feed(chunk)
    decoder.end()
    return messages


def _random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, i = [], 0
    while i < len(data):
        size = rng.choice((1, 2, 3, rng.randint(1, 16), rng.randint(1, max(1, len(data)))))
        chunks.append(data[i : i + size])
        i += size
    return chunks


def test_conformance_vectors_are_present() -> None:
    sources = {v.id.split(":")[0] for v in VALID} | {v.id.split(":")[0] for v in INVALID}
    assert sources == {"smithy-go", "smithy-rs", "botocore", "aws-c-event-stream"}
    # The README's counts: 5 + 3 + 9 + 7 valid, 4 + 8 + 7 + 2 invalid.
    assert (len(VALID), len(INVALID)) == (24, 21)


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.id)
class TestValid:
    def test_frame_facts(self, vector: Valid) -> None:
        total, headers_length, prelude_crc = struct.unpack_from(">III", vector.data)
        assert (total, headers_length, prelude_crc) == (
            vector.total_length,
            vector.headers_length,
            vector.prelude_crc,
        )
        assert len(vector.data) == total
        assert struct.unpack_from(">I", vector.data, total - 4)[0] == vector.message_crc

    def test_decodes_whole(self, vector: Valid) -> None:
        [message] = decode_all(vector.data)
        assert message == _expected(vector)
        assert list(message.headers) == [name for name, _ in vector.headers]  # wire order kept

    def test_reencodes_byte_identical(self, vector: Valid) -> None:
        [message] = decode_all(vector.data)
        assert message.encode() == vector.data
        assert encode_message(dict(vector.headers), vector.payload) == vector.data

    def test_byte_by_byte(self, vector: Valid) -> None:
        decoder = EventStreamDecoder()
        for i in range(len(vector.data) - 1):
            assert decoder.feed(vector.data[i : i + 1]) == []
        assert decoder.feed(vector.data[-1:]) == [_expected(vector)]
        decoder.end()

    def test_random_chunkings(self, vector: Valid) -> None:
        rng = random.Random(vector.id)
        twice = vector.data * 2
        for _ in range(25):
            assert _feed_all(_random_chunks(twice, rng)) == [_expected(vector)] * 2

    def test_every_proper_prefix_is_truncated(self, vector: Valid) -> None:
        for cut in range(1, len(vector.data)):
            decoder = EventStreamDecoder()
            assert decoder.feed(vector.data[:cut]) == []
            with pytest.raises(TruncatedStreamError):
                decoder.end()


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v.id)
class TestInvalid:
    def test_fails_whole(self, vector: Invalid) -> None:
        with pytest.raises(vector.error):
            decode_all(vector.data)

    def test_fails_in_small_chunks(self, vector: Invalid) -> None:
        data = vector.data
        decoder = EventStreamDecoder()
        with pytest.raises(vector.error):
            # Every one of these is rejected within its first frame, so this stops early even
            # for the 24 MiB vector.
            for i in range(0, len(data), 3):
                decoder.feed(data[i : i + 3])
            decoder.end()

    def test_decoder_stays_failed(self, vector: Invalid) -> None:
        decoder = EventStreamDecoder()
        with pytest.raises(EventStreamError):
            decoder.feed(vector.data)
            decoder.end()
        with pytest.raises(EventStreamError):
            decoder.feed(VALID[0].data if VALID else b"\0")


def test_prelude_crc_checked_at_twelve_bytes() -> None:
    """smithy-go corrupted_length and botocore CORRUPTED_LENGTH declare more than they hold."""
    for vid in ("smithy-go:corrupted_length", "botocore:CORRUPTED_LENGTH"):
        [vector] = [v for v in INVALID if v.id == vid]
        data = vector.data
        decoder = EventStreamDecoder()
        assert decoder.feed(data[:11]) == []
        with pytest.raises(PreludeChecksumError):
            decoder.feed(data[11:12])


def _streaming(name: str) -> dict[str, Any]:
    assert name in STREAMING, f"streaming scenario {name} missing from the vectors"
    return STREAMING[name]


def test_botocore_partial_message() -> None:
    scenario = _streaming("botocore:partial_message")
    vector = VALID_BY_ID[f"botocore:{scenario['uses']}"]
    decoder = EventStreamDecoder()
    assert decoder.feed(vector.data[: scenario["split_at"]]) == []
    assert decoder.feed(vector.data[scenario["split_at"] :]) == [_expected(vector)]
    decoder.end()


def test_botocore_all_positive_cases_one_buffer() -> None:
    vectors = [VALID_BY_ID[f"botocore:{name}"] for name in _streaming("botocore:all_positive_cases_one_buffer")["uses"]]
    assert decode_all(b"".join(v.data for v in vectors)) == [_expected(v) for v in vectors]


@pytest.mark.parametrize("name", ["botocore:event_stream_wrapper_iteration", "botocore:initial_response"])
def test_botocore_chunked_scenarios(name: str) -> None:
    scenario = _streaming(name)
    messages = _feed_all([bytes.fromhex(c) for c in scenario["chunks_hex"]])
    expected = scenario["expected"]
    assert messages == [
        Message(dict(_json_header(h) for h in expected["headers"]), expected["payload_utf8"].encode())
    ]


def test_aws_c_multiple_messages_in_seven_byte_chunks() -> None:
    scenario = _streaming("aws-c-event-stream:multiple_messages")
    data = bytes.fromhex(scenario["encoded_hex"])
    expected = [_expected(VALID_BY_ID[f"aws-c-event-stream:{m['same_as']}"]) for m in scenario["expected_messages"]]
    assert _feed_all([data[i : i + 7] for i in range(0, len(data), 7)]) == expected


def test_smithy_rs_single_streaming_message() -> None:
    scenario = _streaming("smithy-rs:single_streaming_message")
    data = (scenario["dir"] / scenario["file"]).read_bytes()
    decoder = EventStreamDecoder()
    for i in range(len(data) - 1):
        assert decoder.feed(data[i : i + 1]) == []
    assert decoder.feed(data[-1:]) == decode_all(data)
    decoder.end()


def test_smithy_rs_multiple_streaming_messages() -> None:
    scenario = _streaming("smithy-rs:multiple_streaming_messages")
    frames = [(scenario["dir"] / f).read_bytes() for f in scenario["files"]]
    data = b"".join(frames)
    expected = [decode_all(f)[0] for f in frames]
    for size in scenario["chunk_sizes"]:
        assert _feed_all([data[i : i + size] for i in range(0, len(data), size)]) == expected


def test_every_valid_vector_in_one_stream_random_chunks() -> None:
    data = b"".join(v.data for v in VALID)
    expected = [_expected(v) for v in VALID]
    rng = random.Random(20240601)
    for _ in range(50):
        assert _feed_all(_random_chunks(data, rng)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "invalid_header_string_value_length",
        "invalid_header_string_length_cut_off",
        "invalid_header_value_type",
        "invalid_header_name_length",
        "invalid_header_name_length_too_long",
    ],
)
def test_smithy_rs_header_vectors_with_message_crc_fixed(name: str) -> None:
    """With their stale message CRC recomputed, the header-level vectors test the header parser."""
    [vector] = [v for v in INVALID if v.id == f"smithy-rs:{name}"]
    data = vector.data
    total = struct.unpack_from(">I", data)[0]
    body = data[: total - 4]
    with pytest.raises(InvalidHeaderError):
        decode_all(body + struct.pack(">I", zlib.crc32(body)))
