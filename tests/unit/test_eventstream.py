"""The event-stream codec: round trips, corruption, truncation, limits and the decoder's API."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import struct
import uuid
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smruntime.errors import EventStreamError
from smruntime.eventstream import (
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS_LENGTH,
    MAX_PAYLOAD_LENGTH,
    ChecksumMismatchError,
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

# ------------------------------------------------------------------------------------------
# Helpers


def prelude(total: int, headers_length: int) -> bytes:
    """A 12-byte prelude with a correct CRC, whatever the lengths say."""
    lengths = struct.pack(">II", total, headers_length)
    return lengths + struct.pack(">I", zlib.crc32(lengths))


def raw_frame(header_block: bytes, payload: bytes = b"") -> bytes:
    """A frame around arbitrary header bytes, with correct lengths and CRCs."""
    body = prelude(16 + len(header_block) + len(payload), len(header_block)) + header_block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def fix_crcs(data: bytes) -> bytes:
    """Recompute both CRCs of a frame occupying all of ``data`` (at least 16 bytes)."""
    head = data[:8] + struct.pack(">I", zlib.crc32(data[:8]))
    body = head + data[12:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def outcome(chunks: list[bytes]) -> tuple[list[Message], EventStreamError | None]:
    """Feed every chunk then end(); the messages produced and the error raised, if any."""
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    try:
        for chunk in chunks:
            messages += decoder.feed(chunk)
        decoder.end()
    except EventStreamError as err:
        return messages, err
    return messages, None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


ALL_TYPES = Message(
    {
        "true": True,
        "false": False,
        "byte": Int8(-49),
        "short": Int16(-20000),
        "int": Int32(40972),
        "long": Int64(-(2**63)),
        "bytes": b"I'm a little teapot!",
        "string": "héllo ✓",
        "time": Timestamp(8675309),
        "uuid": uuid.UUID(bytes=bytes(range(1, 17))),
    },
    b"{'foo':'bar'}",
)
EMPTY = Message({}, b"")
PART = Message({":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"}, b"x" * 64)
# Over the decoder's 256 KiB large-frame threshold; random bytes, so that a misplaced piece shows.
LARGE = Message(dict(PART.headers), random.Random(3).randbytes(300 * 1024))

# ------------------------------------------------------------------------------------------
# Strategies

names = st.text(min_size=1, max_size=12)  # at most 48 UTF-8 bytes, under the 255 limit
values: st.SearchStrategy[HeaderValue] = st.one_of(
    st.booleans(),
    st.integers(-(2**7), 2**7 - 1).map(Int8),
    st.integers(-(2**15), 2**15 - 1).map(Int16),
    st.integers(-(2**31), 2**31 - 1).map(Int32),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.integers(-(2**63), 2**63 - 1).map(Timestamp),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.uuids(),
)
messages = st.builds(Message, st.dictionaries(names, values, max_size=8), st.binary(max_size=200))
FAST = settings(max_examples=150, deadline=None, database=None)

# ------------------------------------------------------------------------------------------
# Round trips


@FAST
@given(messages)
def test_round_trip(message: Message) -> None:
    data = message.encode()
    [decoded] = decode_all(data)
    assert decoded == message
    assert list(decoded.headers) == list(message.headers)
    assert all(type(decoded.headers[k]) is type(v) for k, v in message.headers.items())
    assert decoded.encode() == data


@FAST
@given(st.lists(messages, min_size=1, max_size=5), st.lists(st.integers(0, 10_000), max_size=12))
def test_round_trip_stream_in_random_chunks(batch: list[Message], cuts: list[int]) -> None:
    data = b"".join(m.encode() for m in batch)
    assert outcome(split(data, cuts)) == (batch, None)


@FAST
@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_messages_come_out_as_soon_as_complete(batch: list[Message], data: st.DataObject) -> None:
    frames = [m.encode() for m in batch]
    stream = b"".join(frames)
    ends = [sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))]
    size = data.draw(st.integers(1, 64))
    decoder = EventStreamDecoder()
    seen: list[Message] = []
    for start in range(0, len(stream), size):
        seen += decoder.feed(stream[start : start + size])
        fed = min(start + size, len(stream))
        assert seen == batch[: sum(1 for e in ends if e <= fed)]
    decoder.end()


def test_integers_decode_as_their_wire_width() -> None:
    [decoded] = decode_all(ALL_TYPES.encode())
    assert decoded == ALL_TYPES
    assert decoded.headers["int"] != Int64(40972)  # width is part of the value
    assert decoded.headers["int"] == Int32(40972)


def test_large_header_section_round_trips() -> None:
    """A section over the parse cache's size goes through the uncached path."""
    message = Message({"big": b"b" * 5000, "small": Int16(7), "s": "x" * 3000}, b"p")
    assert decode_all(message.encode()) == [message]


def test_each_message_gets_its_own_headers_dict() -> None:
    first, second = decode_all(PART.encode() * 2)
    first.headers[":event-type"] = "changed"
    assert second.headers[":event-type"] == "PayloadPart"
    assert decode_all(PART.encode()) == [PART]


def test_header_parse_cache_stays_correct_past_its_size() -> None:
    batch = [Message({"n": f"value-{i % 100}", "k": Int32(i % 100)}, b"") for i in range(300)]
    assert decode_all(b"".join(m.encode() for m in batch)) == batch


# ------------------------------------------------------------------------------------------
# Corruption and truncation


@pytest.mark.parametrize("message", [ALL_TYPES, EMPTY, PART], ids=["all-types", "empty", "part"])
def test_every_single_bit_flip_is_detected(message: Message) -> None:
    data = message.encode()
    for bit in range(len(data) * 8):
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        produced, error = outcome([bytes(corrupt)])
        assert isinstance(error, ChecksumMismatchError), f"bit {bit}: {error!r}"
        assert produced == []


def test_bit_flips_in_a_stream_never_yield_a_wrong_message() -> None:
    batch = [PART, ALL_TYPES]
    data = b"".join(m.encode() for m in batch)
    rng = random.Random(7)
    for bit in range(len(data) * 8):
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        produced, error = outcome(split(bytes(corrupt), [rng.randrange(len(data)) for _ in range(3)]))
        assert error is not None, f"bit {bit} not detected"
        assert produced == batch[: len(produced)] and len(produced) < len(batch)


def test_every_truncation_is_detected_at_end() -> None:
    frames = [ALL_TYPES.encode(), EMPTY.encode(), PART.encode()]
    data = b"".join(frames)
    boundaries = {0, len(frames[0]), len(frames[0]) + len(frames[1]), len(data)}
    for cut in range(len(data)):
        produced, error = outcome([data[:cut]])
        complete = sum(1 for b in sorted(boundaries)[1:] if b <= cut)
        assert produced == [ALL_TYPES, EMPTY, PART][:complete]
        if cut in boundaries:
            assert error is None
        else:
            assert isinstance(error, TruncatedStreamError), f"cut at {cut}: {error!r}"


def test_truncation_error_says_where() -> None:
    data = EMPTY.encode() + PART.encode()
    decoder = EventStreamDecoder()
    decoder.feed(data[:-3])
    with pytest.raises(TruncatedStreamError, match=rf"{len(data) - 16 - 3} of the {len(data) - 16} bytes.*offset 16"):
        decoder.end()
    decoder = EventStreamDecoder()
    decoder.feed(data[:5])
    with pytest.raises(TruncatedStreamError, match="5 of the 12 bytes of a frame's prelude"):
        decoder.end()


def test_prelude_crc_is_checked_with_twelve_bytes() -> None:
    # total_length changed to 16 MiB: the decoder must not wait for 16 MiB to say so.
    data = bytearray(PART.encode())
    data[1] = 0xFF
    decoder = EventStreamDecoder()
    assert decoder.feed(bytes(data[:11])) == []
    with pytest.raises(PreludeChecksumError, match="prelude CRC mismatch") as info:
        decoder.feed(bytes(data[11:12]))
    assert info.value.expected != info.value.computed


def test_message_crc_error_names_the_frame() -> None:
    first = PART.encode()
    second = bytearray(ALL_TYPES.encode())
    second[-10] ^= 0x01
    with pytest.raises(MessageChecksumError, match=rf"{len(second)}-byte frame at stream offset {len(first)}"):
        decode_all(first + bytes(second))


def test_good_messages_before_a_bad_frame_are_returned_first() -> None:
    bad = bytearray(PART.encode())
    bad[20] ^= 0x40
    decoder = EventStreamDecoder()
    assert decoder.feed(EMPTY.encode() + ALL_TYPES.encode() + bytes(bad)) == [EMPTY, ALL_TYPES]
    with pytest.raises(MessageChecksumError) as info:
        decoder.end()
    with pytest.raises(EventStreamError, match="failed earlier") as again:
        decoder.feed(EMPTY.encode())
    assert again.value.__cause__ is info.value
    with pytest.raises(EventStreamError, match="failed earlier"):
        decoder.end()


# ------------------------------------------------------------------------------------------
# Limits: decoding


@pytest.mark.parametrize("total", range(16))
def test_total_length_below_sixteen_is_rejected(total: int) -> None:
    with pytest.raises(InvalidLengthError, match=f"total_length {total} is below"):
        EventStreamDecoder().feed(prelude(total, 0))


@pytest.mark.parametrize(
    ("total", "headers_length", "match"),
    [
        (20, 5, "headers_length 5 is over total_length - 16 = 4"),
        (16, 1, "headers_length 1 is over"),
        (16 + MAX_HEADERS_LENGTH + 1, MAX_HEADERS_LENGTH + 1, f"over the {MAX_HEADERS_LENGTH}-byte limit"),
        (16 + MAX_PAYLOAD_LENGTH + 1, 0, f"payload length {MAX_PAYLOAD_LENGTH + 1} is over"),
        (2**32 - 1, 0, "payload length"),
    ],
)
def test_bad_lengths_are_rejected_from_the_prelude_alone(total: int, headers_length: int, match: str) -> None:
    with pytest.raises(InvalidLengthError, match=match):
        EventStreamDecoder().feed(prelude(total, headers_length))


def test_lengths_at_the_limits_pass_the_prelude() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(prelude(16 + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH, MAX_HEADERS_LENGTH)) == []
    assert decoder.buffered == 12
    with pytest.raises(TruncatedStreamError):
        decoder.end()


BAD_HEADERS = {
    "empty name": (b"\x00", "empty name"),
    "name overruns": (b"\x05abc", "overruns"),
    "no type byte": (b"\x03abc", "overruns"),
    "type 10": (b"\x01a\x0a", "unknown value type 10"),
    "type 255": (b"\x01a\xff", "unknown value type 255"),
    "string length cut": (b"\x01a\x07\x00", "value length .* overruns"),
    "string overruns": (b"\x01a\x07\x00\x05abc", "5-byte value .* overruns"),
    "bytes overruns": (b"\x01a\x06\x00\x03ab", "3-byte value .* overruns"),
    "string over limit": (b"\x01a\x07\x80\x00" + b"x" * 32768, "value length 32768 .* over the 32767-byte limit"),
    "bytes over limit": (b"\x01a\x06\xff\xff" + b"x" * 65535, "value length 65535"),
    "int8 cut": (b"\x01a\x02", "1-byte value"),
    "int16 cut": (b"\x01a\x03\x00", "2-byte value"),
    "int32 cut": (b"\x01a\x04\x00\x00\x00", "4-byte value"),
    "int64 cut": (b"\x01a\x05" + bytes(7), "8-byte value"),
    "timestamp cut": (b"\x01a\x08" + bytes(7), "8-byte value"),
    "uuid cut": (b"\x01a\x09" + bytes(15), "uuid"),
    "name not UTF-8": (b"\x02\xff\xfe\x00", "not valid UTF-8"),
    "string not UTF-8": (b"\x01a\x07\x00\x02\xc3\x28", "not valid UTF-8"),
    "duplicate name": (b"\x01a\x00\x01b\x00\x01a\x01", "duplicate header 'a'"),
}


@pytest.mark.parametrize("padded", [False, True], ids=["cached-path", "large-section-path"])
@pytest.mark.parametrize("case", list(BAD_HEADERS), ids=list(BAD_HEADERS))
def test_bad_headers_are_rejected(case: str, padded: bool) -> None:
    block, match = BAD_HEADERS[case]
    if padded:  # a valid 2 KiB header first: the section is past the parse cache's limit
        block = b"\x03pad\x06\x08\x00" + bytes(2048) + block
    with pytest.raises(InvalidHeaderError, match=match):
        decode_all(raw_frame(block, b"payload"))


def test_header_error_offsets_are_stream_offsets() -> None:
    first = PART.encode()
    bad = raw_frame(b"\x01a\x00\x01a\x00")
    # frame offset + 12-byte prelude + the first 3-byte header
    with pytest.raises(InvalidHeaderError, match=f"duplicate header 'a' at stream offset {len(first) + 15}"):
        decode_all(first + bad)
    padded = b"\x03pad\x06\x08\x00" + bytes(2048)
    with pytest.raises(InvalidHeaderError, match=f"stream offset {len(first) + 12 + len(padded) + 2}"):
        decode_all(first + raw_frame(padded + b"\x01a\x0a"))


def test_header_values_at_the_limits_decode() -> None:
    block = bytes([255]) + b"n" * 255 + b"\x07\x7f\xff" + b"v" * 32767 + b"\x01e\x06\x00\x00" + b"\x01s\x07\x00\x00"
    [message] = decode_all(raw_frame(block))
    assert message.headers == {"n" * 255: "v" * 32767, "e": b"", "s": ""}


# ------------------------------------------------------------------------------------------
# Limits: encoding


def test_encode_rejects_bad_names() -> None:
    with pytest.raises(InvalidHeaderError, match=r"must be 1\.\.255"):
        encode_message({"": True})
    with pytest.raises(InvalidHeaderError, match="256 bytes"):
        encode_message({"n" * 256: True})
    with pytest.raises(InvalidHeaderError, match="256 bytes"):
        encode_message({"é" * 128: True})  # 128 characters, 256 bytes
    with pytest.raises(InvalidHeaderError, match="not valid UTF-8"):
        encode_message({"\ud800": True})
    assert decode_all(encode_message({"n" * MAX_HEADER_NAME_LENGTH: True}))[0].headers == {"n" * 255: True}


def test_encode_rejects_oversized_values() -> None:
    limit = MAX_HEADER_VALUE_LENGTH
    assert decode_all(encode_message({"s": "v" * limit, "b": b"b" * limit}))
    with pytest.raises(InvalidHeaderError, match=f"value is {limit + 1} bytes"):
        encode_message({"s": "v" * (limit + 1)})
    with pytest.raises(InvalidHeaderError, match=f"value is {limit + 1} bytes"):
        encode_message({"b": b"b" * (limit + 1)})
    with pytest.raises(InvalidHeaderError, match="value is 32768 bytes"):
        encode_message({"s": "é" * 16384})  # the limit counts UTF-8 bytes
    with pytest.raises(InvalidHeaderError, match="not valid UTF-8"):
        encode_message({"s": "\udcff"})


def test_encode_headers_section_limit() -> None:
    # Four headers of 1 + 1 + 1 + 2 + 32763 bytes each: exactly 128 KiB.
    exact: dict[str, HeaderValue] = {name: b"x" * 32763 for name in "abcd"}
    [message] = decode_all(encode_message(exact))
    assert message.headers == exact
    over: dict[str, HeaderValue] = {name: b"x" * 32763 for name in ("ab", "b", "c", "d")}
    with pytest.raises(InvalidLengthError, match=f"headers section is {MAX_HEADERS_LENGTH + 1} bytes"):
        encode_message(over)


def test_payload_limit() -> None:
    payload = bytes(MAX_PAYLOAD_LENGTH)
    data = encode_message({}, payload)
    assert decode_all(data)[0].payload == payload
    with pytest.raises(InvalidLengthError, match=f"payload is {MAX_PAYLOAD_LENGTH + 1} bytes"):
        encode_message({}, payload + b"\0")


@pytest.mark.parametrize("value", [1, 2**40, 1.5, None, bytearray(b"x"), dt.datetime.now(dt.UTC)])
def test_encode_rejects_untyped_values(value: object) -> None:
    with pytest.raises(TypeError, match="header 'h'"):
        encode_message({"h": value})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("cls", "bits"), [(Int8, 8), (Int16, 16), (Int32, 32), (Int64, 64), (Timestamp, 64)]
)
def test_integer_wrappers_check_their_range(cls: type[Int8], bits: int) -> None:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert decode_all(encode_message({"lo": cls(low), "hi": cls(high)}))[0].headers == {"lo": cls(low), "hi": cls(high)}
    for bad in (low - 1, high + 1):
        with pytest.raises(ValueError, match="outside"):
            cls(bad)
    with pytest.raises(TypeError):
        cls(True)


# ------------------------------------------------------------------------------------------
# Random garbage: only EventStreamError, and anything accepted re-encodes exactly


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(i, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 2 and buf:
            del buf[i : i + rng.randint(1, 4)]
        elif len(buf) >= 8:  # rewrite a length field
            field = rng.choice((0, 4))
            struct.pack_into(">I", buf, field, rng.choice((0, 15, 16, len(buf), len(buf) + 1, rng.randrange(2**32))))
    return bytes(buf)


def test_random_garbage_raises_only_event_stream_errors() -> None:
    rng = random.Random(1234)
    seeds = [m.encode() for m in (ALL_TYPES, EMPTY, PART, Message({"a": "b", "c": Int8(1)}, b"xyz"))]
    accepted = rejected = 0
    for round_ in range(4000):
        kind = round_ % 4
        if kind == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif kind == 1:
            data = _mutate(rng.choice(seeds), rng)
        else:
            # Mutated, then re-checksummed so the length and header checks are what is tested.
            data = _mutate(rng.choice(seeds), rng)
            if len(data) >= 16:
                if kind == 2:
                    data = struct.pack(">I", len(data)) + data[4:]
                data = fix_crcs(data)
            if rng.random() < 0.3:
                data += rng.choice(seeds)
        try:
            produced, error = outcome(split(data, [rng.randrange(len(data) + 1) for _ in range(rng.randrange(4))]))
        except Exception as exc:  # the point: nothing else may escape
            pytest.fail(f"round {round_}: {type(exc).__name__}: {exc} for {data.hex()}")
        if error is None:
            accepted += 1
            assert b"".join(m.encode() for m in produced) == data, data.hex()
        else:
            rejected += 1
    assert accepted > 100 and rejected > 2000  # both sides of the parser were exercised


# ------------------------------------------------------------------------------------------
# Decoder API


def test_feed_accepts_bytearray_and_memoryview_and_copies_them() -> None:
    data = PART.encode()
    reused = bytearray(data[:30])
    decoder = EventStreamDecoder()
    assert decoder.feed(reused) == []
    reused[:] = b"\0" * 30  # the caller reuses its buffer
    assert decoder.feed(memoryview(data)[30:]) == [PART]
    decoder.end()


def test_feed_counts_bytes_of_a_memoryview_with_wide_items() -> None:
    data = PART.encode() + LARGE.encode()
    words = len(data) // 4 * 4
    decoder = EventStreamDecoder()
    assert decoder.feed(memoryview(data[:8]).cast("I")) == []
    assert decoder.buffered == 8
    # A large frame is CRC'd chunk by chunk as it arrives, so a miscounted chunk would break it.
    assert decoder.feed(memoryview(data[8:words]).cast("I")) == [PART]
    assert decoder.feed(data[words:]) == [LARGE]
    decoder.end()


def test_empty_feeds_and_repeated_end() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b"") == []
    assert decoder.buffered == 0
    decoder.end()
    decoder.end()
    with pytest.raises(EventStreamError, match="after end"):
        decoder.feed(b"x")
    assert decode_all(b"") == []


def test_buffered_counts_the_incomplete_frame() -> None:
    data = EMPTY.encode() + PART.encode()
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:20]) == [EMPTY]
    assert decoder.buffered == 4
    assert decoder.feed(data[20:]) == [PART]
    assert decoder.buffered == 0


def test_large_frame_in_small_chunks_is_joined_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 MiB in 4 KiB chunks: the buffer is assembled once per frame, not once per chunk.

    Re-copying the buffer per chunk (botocore's way) would copy ~32 GiB; this counts the
    joins instead of timing them (performance lives in benchmarks/).
    """
    message = Message({":event-type": "PayloadPart"}, bytes(range(256)) * 65536)
    data = message.encode()
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    decoder = EventStreamDecoder()
    drains = 0
    original = EventStreamDecoder._drain

    def counting(self: EventStreamDecoder) -> list[Message]:
        nonlocal drains
        drains += 1
        return original(self)

    monkeypatch.setattr(EventStreamDecoder, "_drain", counting)
    produced = [m for chunk in chunks for m in decoder.feed(chunk)]
    decoder.end()
    assert produced == [message]
    assert drains <= 2  # once for the prelude, once for the whole frame


# ------------------------------------------------------------------------------------------
# Large frames: CRC'd chunk by chunk as they arrive, then only the payload is joined


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.integers(0, 2 * len(LARGE.encode())), max_size=12))
def test_large_frames_in_random_chunks_round_trip(cuts: list[int]) -> None:
    batch = [PART, LARGE, EMPTY, LARGE, PART]
    assert outcome(split(b"".join(m.encode() for m in batch), cuts)) == (batch, None)


def _large_frame_cuts() -> dict[str, list[int]]:
    """Chunkings that put a chunk edge on each boundary the large-frame path keeps track of."""
    size = len(LARGE.encode())
    at = len(PART.encode())  # LARGE's stream offset in PART + LARGE + PART
    return {
        "prelude-alone": [at, at + 12, at + 4096, at + size],
        "prelude-split": [at + 5, at + 100_000, at + size + 3],
        "crc-split": [at + 20, at + size - 2],
        "crc-alone": [at + 64, at + size - 4],
        "crc-chunk-carries-next-frame": [at + 64, at + size - 1],
        "ends-on-chunk-edge": [at + 1000, at + size],
        "crc-exactly-one-chunk": [at + 4096, at + size - 4, at + size],
        "crc-and-one-more-byte": [at + 4096, at + size - 4, at + size + 1],
        "payload-ends-one-byte-before-edge": [at + 4096, at + size - 3],
        "next-prelude-exactly-in-last-chunk": [at + 64, at + size + 12],
        "one-byte-last": [at + 1000, at + size - 1, at + size],
        "next-prelude-split": [at + 1000, at + size + 7],
        "64k-chunks": list(range(0, 3 * size, 65536)),
    }


@pytest.mark.parametrize("cuts", list(_large_frame_cuts().values()), ids=list(_large_frame_cuts()))
def test_large_frame_chunk_edges(cuts: list[int]) -> None:
    batch = [PART, LARGE, PART]
    assert outcome(split(b"".join(m.encode() for m in batch), cuts)) == (batch, None)


@pytest.mark.parametrize("cuts", list(_large_frame_cuts().values()), ids=list(_large_frame_cuts()))
def test_large_frame_corruption_is_detected_wherever_the_chunks_fall(cuts: list[int]) -> None:
    data = PART.encode() + LARGE.encode() + PART.encode()
    at, size = len(PART.encode()), len(LARGE.encode())
    # The header section, each side of every cut, the payload's last byte and the CRC itself.
    spots = {at + 13, at + size - 5, *(at + size - k for k in range(1, 5))}
    spots |= {c + d for c in cuts for d in (-1, 0) if at + 12 <= c + d < at + size}
    for spot in sorted(spots):
        corrupt = bytearray(data)
        corrupt[spot] ^= 0x10
        produced, error = outcome(split(bytes(corrupt), cuts))
        assert isinstance(error, MessageChecksumError), f"byte {spot - at} of the frame: {error!r}"
        assert produced == [PART]


@pytest.mark.parametrize("damage", ["frame", "prelude"])
def test_a_large_frame_before_a_bad_frame_in_its_last_chunk_is_returned_first(damage: str) -> None:
    """The chunk that completes a large frame also holds a corrupt frame, or only its prelude."""
    bad = bytearray(PART.encode())
    expected: type[ChecksumMismatchError]
    if damage == "frame":
        bad[20] ^= 0x40
        expected = MessageChecksumError
    else:
        bad[5] ^= 0x01
        del bad[12:]
        expected = PreludeChecksumError
    data = LARGE.encode() + bytes(bad)
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:100_000]) == []
    assert decoder.feed(data[100_000:]) == [LARGE]
    with pytest.raises(expected):
        decoder.end()
    with pytest.raises(EventStreamError, match="failed earlier"):
        decoder.feed(PART.encode())


def test_large_frame_checksum_error_names_the_frame() -> None:
    data = bytearray(PART.encode() + LARGE.encode())
    data[-100] ^= 0x01
    produced, error = outcome(split(bytes(data), list(range(0, len(data), 65536))))
    assert produced == [PART]
    assert isinstance(error, MessageChecksumError)
    assert f"{len(LARGE.encode())}-byte frame at stream offset {len(PART.encode())}" in str(error)
    assert error.expected != error.computed


# ------------------------------------------------------------------------------------------
# Message helpers and value types


def test_message_properties() -> None:
    message = Message(
        {
            ":message-type": "exception",
            ":event-type": "PayloadPart",
            ":exception-type": "ModelStreamError",
            ":content-type": "application/json",
            ":error-code": "code",
            ":error-message": "text",
        }
    )
    assert (message.message_type, message.event_type, message.exception_type) == (
        "exception",
        "PayloadPart",
        "ModelStreamError",
    )
    assert (message.content_type, message.error_code, message.error_message) == ("application/json", "code", "text")
    other = Message({":message-type": Int32(1)})
    assert other.message_type is None and other.event_type is None and other.payload == b""


def test_message_repr_shortens_large_payloads() -> None:
    assert "(100000 bytes)" in repr(Message({}, bytes(100_000)))
    assert repr(Message({}, b"ab")) == "Message(headers={}, payload=b'ab')"


def test_timestamp_conversions() -> None:
    when = dt.datetime(2024, 2, 29, 12, 30, 15, 123999, tzinfo=dt.UTC)
    stamp = Timestamp.from_datetime(when)
    assert stamp.millis == 1709209815123
    assert stamp.datetime == when.replace(microsecond=123000)
    assert Timestamp.from_datetime(dt.datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=dt.UTC)).millis == -1
    tz = dt.timezone(dt.timedelta(hours=2))
    assert Timestamp.from_datetime(dt.datetime(1970, 1, 1, 2, tzinfo=tz)).millis == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        Timestamp.from_datetime(dt.datetime(2024, 1, 1))
    assert int(Timestamp(5)) == 5
