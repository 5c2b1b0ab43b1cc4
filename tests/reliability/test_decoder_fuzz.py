"""The event-stream decoder under fuzz: mutated and random frames, fed in random chunks.

A seeded generator (the same inputs on every run, so a failure can be replayed) makes well
over 100,000 inputs from valid frames: bit flips, cuts, insertions, deletions, and mutations
that re-compute the CRCs so the length checks and the header parser see the garbage too.
Each input goes through a fresh decoder in random chunk sizes, then ``end()``. The only
exception allowed is ``EventStreamError``. Memory is watched with tracemalloc (a frame that
claims 24 MiB must not make the decoder allocate 24 MiB) and ``buffered`` never exceeds what
was fed. A hang fails through pytest-timeout.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
import uuid
import zlib
from collections.abc import Callable, Iterator

import pytest

from smruntime.errors import EventStreamError, SageMakerRuntimeError
from smruntime.eventstream import (
    MAX_HEADERS_LENGTH,
    MAX_PAYLOAD_LENGTH,
    EventStreamDecoder,
    HeaderValue,
    Int8,
    Int16,
    Int32,
    Int64,
    Message,
    Timestamp,
    encode_message,
)
from smruntime.http import HTTPResponse
from smruntime.streaming import ResponseStream, message_error
from smruntime.types import ResultMetadata

CASES = 100_000
MEMORY_CASES = 5_000
LARGE_CASES = 200
MEMORY_LIMIT = 8 * 1024 * 1024  # far below the 24 MiB a hostile length field claims

Mutation = Callable[[random.Random, bytearray], bytearray]


# --- valid frames ------------------------------------------------------------------------


def _header_value(rng: random.Random) -> HeaderValue:
    kind = rng.randrange(10)
    if kind == 0:
        return True
    if kind == 1:
        return False
    if kind == 2:
        return Int8(rng.randint(-128, 127))
    if kind == 3:
        return Int16(rng.randint(-(2**15), 2**15 - 1))
    if kind == 4:
        return Int32(rng.randint(-(2**31), 2**31 - 1))
    if kind == 5:
        return Int64(rng.randint(-(2**63), 2**63 - 1))
    if kind == 6:
        return rng.randbytes(rng.randint(0, 40))
    if kind == 7:
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF)])) for _ in range(rng.randint(0, 20)))
    if kind == 8:
        return Timestamp(rng.randint(-(2**62), 2**62))
    return uuid.UUID(bytes=rng.randbytes(16))


def _frame(rng: random.Random, payload_size: int = 200) -> bytes:
    if rng.random() < 0.3:  # the frames SageMaker actually sends
        headers: dict[str, HeaderValue] = {
            ":message-type": "event",
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
        }
    else:
        headers = {f"h{index}-{rng.randrange(1000)}": _header_value(rng) for index in range(rng.randint(0, 6))}
    return encode_message(headers, rng.randbytes(rng.randint(0, payload_size)))


# --- mutations ---------------------------------------------------------------------------


def _with_prelude_crc(data: bytearray) -> bytearray:
    if len(data) >= 12:
        data[8:12] = struct.pack(">I", zlib.crc32(bytes(data[:8])))
    return data


def _with_crcs(data: bytearray) -> bytearray:
    """Both CRCs recomputed for the lengths the frame now claims, when they fit."""
    _with_prelude_crc(data)
    if len(data) >= 16:
        (total,) = struct.unpack_from(">I", data, 0)
        if 16 <= total <= len(data):
            data[total - 4 : total] = struct.pack(">I", zlib.crc32(bytes(data[: total - 4])))
    return data


def _index(rng: random.Random, size: int) -> int:
    return int(rng.random() * size)  # randrange's exactness is not needed here, and it is slow


def flip_bits(rng: random.Random, data: bytearray) -> bytearray:
    for _ in range(1 + _index(rng, 4)):
        data[_index(rng, len(data))] ^= 1 << _index(rng, 8)
    return data


def cut(rng: random.Random, data: bytearray) -> bytearray:
    return data[: _index(rng, len(data))]


def insert(rng: random.Random, data: bytearray) -> bytearray:
    at = _index(rng, len(data) + 1)
    return data[:at] + rng.randbytes(1 + _index(rng, 16)) + data[at:]


def delete(rng: random.Random, data: bytearray) -> bytearray:
    at = _index(rng, len(data))
    return data[:at] + data[at + 1 + _index(rng, 16) :]


HOSTILE_TOTALS = [0, 15, 16, MAX_PAYLOAD_LENGTH + 16, MAX_PAYLOAD_LENGTH + MAX_HEADERS_LENGTH + 16, 2**32 - 1]
HOSTILE_HEADER_LENGTHS = [0, 1, MAX_HEADERS_LENGTH, MAX_HEADERS_LENGTH + 1, 2**32 - 1]


def hostile_lengths(rng: random.Random, data: bytearray) -> bytearray:
    """A believable prelude claiming other lengths: up to the limits, or far over them."""
    if len(data) < 12:
        return flip_bits(rng, data)
    totals = [*HOSTILE_TOTALS, len(data) - 1, len(data) + 1, rng.getrandbits(32)]
    header_lengths = [*HOSTILE_HEADER_LENGTHS, rng.getrandbits(17)]
    total = totals[_index(rng, len(totals))] % 2**32
    data[0:8] = struct.pack(">II", total, header_lengths[_index(rng, len(header_lengths))])
    return _with_prelude_crc(data)


def garbage_headers(rng: random.Random, data: bytearray) -> bytearray:
    """Random bytes in the headers section, CRCs fixed: only the header parser can object."""
    if len(data) < 16:
        return flip_bits(rng, data)
    (total, headers_length) = struct.unpack_from(">II", data, 0)
    if 12 + headers_length > len(data):  # an earlier mutation broke the lengths already
        return flip_bits(rng, data)
    if headers_length == 0:
        grow = 1 + _index(rng, 30)
        data = data[:12] + rng.randbytes(grow) + data[12:]
        total, headers_length = (total + grow) % 2**32, grow
        data[0:8] = struct.pack(">II", total, headers_length)
    else:
        for _ in range(1 + _index(rng, 6)):
            data[12 + _index(rng, headers_length)] = rng.getrandbits(8)
    return _with_crcs(data)


def random_bytes(rng: random.Random, data: bytearray) -> bytearray:
    return bytearray(rng.randbytes(_index(rng, 300)))


MUTATIONS: list[Mutation] = [flip_bits, cut, insert, delete, hostile_lengths, garbage_headers, random_bytes]
CHUNK_SIZES = [1, 5, 12, 13, 64, 1000, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30]
"""How inputs are fed: byte by byte, across the 12-byte prelude, or whole (most often)."""


def _decode(data: bytes, chunk: int) -> list[Message]:
    """Feed ``data`` in ``chunk``-byte pieces; checks ``buffered`` never exceeds what was fed."""
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    for start in range(0, len(data), chunk):
        messages += decoder.feed(data[start : start + chunk])
        assert decoder.buffered <= start + chunk
    decoder.end()
    return messages


def _use(message: Message) -> None:
    """What the client does with a decoded message; none of it may raise."""
    _ = (message.message_type, message.event_type, message.exception_type, message.content_type)
    _ = (message.error_code, message.error_message, repr(message))
    error = message_error(message, "InvokeEndpointWithResponseStream", None)
    if error is not None:
        _ = str(error), repr(error)


def _mutants(rng: random.Random, count: int) -> Iterator[tuple[bytes, int]]:
    """``count`` mutated inputs, each with the chunk size to feed it in."""
    pool = [_frame(rng) for _ in range(400)]
    for _ in range(count):
        data = bytearray(pool[_index(rng, len(pool))])
        if rng.random() < 0.2:  # good frames around the mutant
            data = bytearray(pool[_index(rng, len(pool))]) + data + pool[_index(rng, len(pool))]
        for _ in range(1 + (rng.random() < 0.3)):
            if data:
                data = MUTATIONS[_index(rng, len(MUTATIONS))](rng, data)
        chunk = CHUNK_SIZES[_index(rng, len(CHUNK_SIZES))]
        yield bytes(data), chunk if chunk > 1 or rng.random() < 0.2 else 2


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_mutated_and_random_frames_raise_only_event_stream_errors() -> None:
    outcomes = {"decoded": 0, "rejected": 0}
    unexpected: list[str] = []
    for case, (data, chunk) in enumerate(_mutants(random.Random(20240607), CASES)):
        try:
            for message in _decode(data, chunk):
                _use(message)
        except EventStreamError:
            outcomes["rejected"] += 1
        except Exception as error:  # collected, so that one run shows every kind
            if len(unexpected) < 10:
                unexpected.append(f"case {case}: {type(error).__name__}: {error} for {data[:64]!r}")
        else:
            outcomes["decoded"] += 1
    assert unexpected == []
    assert outcomes["rejected"] > CASES // 2
    assert outcomes["decoded"] > 0  # e.g. a cut exactly between two frames is still a valid stream


@pytest.mark.timeout(120)
def test_memory_stays_bounded_under_fuzz() -> None:
    """The same kind of input under tracemalloc (slower, so fewer cases)."""
    tracemalloc.start()
    try:
        for data, chunk in _mutants(random.Random(11), MEMORY_CASES):
            try:
                _decode(data, chunk)
            except EventStreamError:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT


@pytest.mark.timeout(120)
def test_large_frames_split_in_chunks_under_fuzz() -> None:
    """Frames of 256 KiB and more take the decoder's split-frame path; fuzz them too."""
    rng = random.Random(7)
    pool = [_frame(rng, payload_size=600 * 1024) for _ in range(8)]
    for _ in range(LARGE_CASES):
        data = bytearray(rng.choice(pool))
        mutate = rng.choice([flip_bits, cut, insert, delete, garbage_headers])
        data = mutate(rng, data)
        decoder = EventStreamDecoder()
        step = rng.choice([4096, 65536, 100_000])
        try:
            for start in range(0, len(data), step):
                for message in decoder.feed(bytes(data[start : start + step])):
                    _use(message)
            decoder.end()
        except EventStreamError:
            continue


@pytest.mark.timeout(120)
def test_random_streams_through_the_response_stream_raise_only_library_errors() -> None:
    """What a caller iterating a stream can see: events, or a SageMakerRuntimeError."""
    rng = random.Random(99)
    pool = [_frame(rng) for _ in range(200)]
    exception_frame = encode_message(
        {":message-type": "exception", ":exception-type": "ModelStreamError", ":content-type": "application/json"},
        b'{"Message": "boom", "ErrorCode": "StreamBroken"}',
    )
    pool.append(exception_frame)
    for _ in range(10_000):
        frames = b"".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
        data = bytearray(frames)
        if rng.random() < 0.8:
            data = rng.choice(MUTATIONS)(rng, data)
        step = rng.choice(CHUNK_SIZES)
        stream = ResponseStream(
            HTTPResponse(200),
            operation="InvokeEndpointWithResponseStream",
            content_type=None,
            invoked_production_variant=None,
            custom_attributes=None,
            metadata=ResultMetadata(),
            chunks=iter([bytes(data[i : i + step]) for i in range(0, len(data), step)]),
        )
        try:
            with stream:
                for part in stream:
                    assert isinstance(part.bytes, bytes)
        except SageMakerRuntimeError:
            pass
        assert stream.closed


def test_a_frame_claiming_24_mib_allocates_only_what_arrived() -> None:
    decoder = EventStreamDecoder()
    prelude = struct.pack(">II", MAX_PAYLOAD_LENGTH + 16, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    tracemalloc.start()
    try:
        decoder.feed(prelude)
        for _ in range(100):
            decoder.feed(b"x" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == 12 + 100 * 1000
    assert peak < 2 * 1024 * 1024
    with pytest.raises(EventStreamError):
        decoder.end()
