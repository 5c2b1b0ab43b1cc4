"""Event-stream decoding: smruntime's EventStreamDecoder against botocore's EventStreamBuffer.

Run alone (``python benchmarks/bench_eventstream.py``); prints a Markdown table. Each figure is
the best of several runs in this one process, so both decoders see the same machine state.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

try:
    import smruntime.eventstream as es
except ImportError:  # run from a checkout without installing: use the repository beside us
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import smruntime.eventstream as es

from botocore.eventstream import EventStreamBuffer

# What SageMaker's InvokeEndpointWithResponseStream sends for each PayloadPart.
_PART_HEADERS: dict[str, es.HeaderValue] = {
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
    ":message-type": "event",
}


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _ours(chunks: list[bytes]) -> int:
    decoder = es.EventStreamDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.end()
    return count


def _botocore(chunks: list[bytes]) -> int:
    buffer = EventStreamBuffer()
    count = 0
    for chunk in chunks:
        buffer.add_data(chunk)
        for _message in buffer:
            count += 1
    return count


def _time(fn: Callable[[list[bytes]], int], chunks: list[bytes], expected: int) -> float:
    start = time.perf_counter()
    got = fn(chunks)
    elapsed = time.perf_counter() - start
    if got != expected:
        raise SystemExit(f"{fn.__name__} decoded {got} messages, expected {expected}")
    return elapsed


def _race(chunks: list[bytes], expected: int, runs: int) -> tuple[float, float]:
    """Best times of (smruntime, botocore), alternating runs so that load spikes hit both."""
    ours = boto = float("inf")
    for _ in range(runs):
        ours = min(ours, _time(_ours, chunks, expected))
        boto = min(boto, _time(_botocore, chunks, expected))
    return ours, boto


def _many_small(headers_for: Callable[[int], dict[str, es.HeaderValue]], count: int) -> list[bytes]:
    payload = bytes(range(64))
    stream = b"".join(es.encode_message(headers_for(i), payload) for i in range(count))
    return _chunks(stream, 4096)


def main() -> None:
    count = 20_000
    rows: list[tuple[str, str, str, str]] = []
    cases: list[tuple[str, Callable[[int], dict[str, es.HeaderValue]]]] = [
        ("64 B payloads, SageMaker PayloadPart headers, 4 KiB chunks", lambda i: _PART_HEADERS),
        (
            "64 B payloads, headers differ per message, 4 KiB chunks",
            lambda i: {**_PART_HEADERS, "seq": es.Int64(i), "id": f"part-{i}"},
        ),
        ("64 B payloads, no headers, 4 KiB chunks", lambda i: {}),
    ]
    for label, headers_for in cases:
        chunks = _many_small(headers_for, count)
        ours, boto = _race(chunks, count, 5)
        rows.append((label, f"{count / ours:,.0f} msg/s", f"{count / boto:,.0f} msg/s", f"{boto / ours:.1f}x"))

    big = es.encode_message(_PART_HEADERS, b"\x5a" * (16 * 1024 * 1024))
    for chunk_size, label in ((16 * 1024, "16 KiB"), (64 * 1024, "64 KiB")):
        chunks = _chunks(big, chunk_size)
        ours, boto = _race(chunks, 1, 3)
        rows.append(
            (f"one 16 MiB message, {label} chunks", f"{ours * 1e3:.1f} ms", f"{boto * 1e3:.1f} ms", f"{boto / ours:.1f}x")
        )

    print(f"Python {sys.version.split()[0]}; best of 3-5 alternating runs each\n")
    print("| case | smruntime | botocore | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
