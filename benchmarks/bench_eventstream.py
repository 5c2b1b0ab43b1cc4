"""(4) Event-stream decoding: smruntime's EventStreamDecoder against botocore's EventStreamBuffer.

Both decode the same bytes, fed in the same chunks, in interleaved rounds (ours and botocore's,
then botocore's and ours, …); medians. Small messages: 20 000 frames with 64-byte payloads. Large: one frame with
a 16 MiB payload, fed in 16 KiB and in 64 KiB chunks.
"""

from __future__ import annotations

import time
from typing import Callable

from botocore.eventstream import EventStreamBuffer

import smruntime.eventstream as es
from benchmarks.common import Section, interleave, median, standalone, table

SMALL_MESSAGES = 20_000
SMALL_ROUNDS = 8
LARGE_ROUNDS = 6

# What SageMaker's InvokeEndpointWithResponseStream sends for each PayloadPart.
PART_HEADERS: dict[str, es.HeaderValue] = {
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
    ":message-type": "event",
}


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def ours(chunks: list[bytes]) -> int:
    decoder = es.EventStreamDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.end()
    return count


def botocore(chunks: list[bytes]) -> int:
    buffer = EventStreamBuffer()
    count = 0
    for chunk in chunks:
        buffer.add_data(chunk)
        for _message in buffer:
            count += 1
    return count


def _timed(decode: Callable[[list[bytes]], int], chunks: list[bytes], expected: int) -> Callable[[], float]:
    def batch() -> float:
        start = time.perf_counter()
        got = decode(chunks)
        elapsed = time.perf_counter() - start
        if got != expected:
            raise SystemExit(f"{decode.__name__} decoded {got} messages, expected {expected}")
        return elapsed

    return batch


def _race(chunks: list[bytes], expected: int, rounds: int) -> tuple[float, float]:
    """Median seconds of (smruntime, botocore) over interleaved rounds."""
    samples = interleave(
        {"smruntime": _timed(ours, chunks, expected), "botocore": _timed(botocore, chunks, expected)}, rounds
    )
    return median(samples["smruntime"]), median(samples["botocore"])


def run(*, small: int = SMALL_MESSAGES) -> Section:
    rows: list[tuple[str, str, str, str]] = []
    data: dict[str, dict[str, float]] = {}
    cases: list[tuple[str, str, Callable[[int], dict[str, es.HeaderValue]]]] = [
        ("small_payloadpart", "64 B payloads, SageMaker PayloadPart headers, 4 KiB chunks", lambda i: PART_HEADERS),
        ("small_varied", "64 B payloads, headers differ per message, 4 KiB chunks",
         lambda i: {**PART_HEADERS, "seq": es.Int64(i), "id": f"part-{i}"}),
        ("small_bare", "64 B payloads, no headers, 4 KiB chunks", lambda i: {}),
    ]
    payload = bytes(range(64))
    for key, label, headers_for in cases:
        stream = b"".join(es.encode_message(headers_for(i), payload) for i in range(small))
        mine, theirs = _race(_split(stream, 4096), small, SMALL_ROUNDS)
        data[key] = {"smruntime_msgs_per_s": small / mine, "botocore_msgs_per_s": small / theirs,
                     "speedup": theirs / mine}
        rows.append((label, f"{small / mine:,.0f} msg/s", f"{small / theirs:,.0f} msg/s", f"{theirs / mine:.1f}x"))

    big = es.encode_message(PART_HEADERS, b"\x5a" * (16 * 1024 * 1024))
    for size, label in ((16 * 1024, "16 KiB"), (64 * 1024, "64 KiB")):
        mine, theirs = _race(_split(big, size), 1, LARGE_ROUNDS)
        data[f"large_{size // 1024}k"] = {"smruntime_ms": mine * 1e3, "botocore_ms": theirs * 1e3,
                                          "speedup": theirs / mine}
        rows.append((f"one 16 MiB message, {label} chunks", f"{mine * 1e3:.1f} ms", f"{theirs * 1e3:.1f} ms",
                     f"{theirs / mine:.1f}x"))
    return Section(
        "eventstream",
        "4. Event-stream decoding (smruntime vs botocore)",
        table(["case", "smruntime", "botocore", "speed-up"], rows),
        {"cases": data, "small_messages": small, "small_rounds": SMALL_ROUNDS, "large_rounds": LARGE_ROUNDS},
        [f"{small:,} messages per small case, {SMALL_ROUNDS} interleaved rounds; the 16 MiB cases "
         f"{LARGE_ROUNDS} rounds; medians. Both decoders check every CRC."],
    )


if __name__ == "__main__":
    standalone(run)
