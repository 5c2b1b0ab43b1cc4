"""Bulk scoring: ``smruntime batch`` against a ThreadPoolExecutor + boto3, and its memory.

``python -m benchmarks.bulk [--records N] [--memory-records N]``

1. Throughput: ``--records`` records (10,000) through the local endpoint (``smruntime serve``
   in its own process) whose ``slow`` model answers after 20 ms. ``smruntime batch
   --concurrency 64`` (a process of its own, timed from start to exit, so it pays its own
   import and start-up) against ``ThreadPoolExecutor(64)`` + boto3 (``max_pool_connections=64``)
   in this process. The limit is 64 calls / 20 ms = 3,200 records/s.
3. Throttling: ``--throttled-records`` records (6,000) through the ``capped`` endpoint, which
   throttles every request beyond 300 per second (``throttle_above``), with ``--max-attempts
   10``. Reported: records answered, throttled attempts, the rate over the whole run and over
   its second half (after the limiter settled), as a fraction of the 300/s allowed.
2. Memory: ``--memory-records`` records (1,000,000) streamed from a file through the ``fast``
   model (no delay); the batch process's resident set is sampled every 0.1 s, and the growth
   is its peak minus the first sample after the first result was written.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import clients
from benchmarks.common import isolate_aws_env, subprocess_env

CONCURRENCY = 64
DELAY = 0.020
CAPACITY = 300  # requests/s the "capped" endpoint allows; it throttles the rest
CONFIG = """
[[endpoints]]
name = "slow"
model = "echo"
[endpoints.faults]
latency = 0.02

[[endpoints]]
name = "fast"
model = "echo"

[[endpoints]]
name = "capped"
model = "echo"
[endpoints.faults]
throttle_above = %d
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``smruntime serve`` in a process of its own."""

    def __init__(self, folder: Path) -> None:
        config = folder / "endpoints.toml"
        config.write_text(CONFIG % CAPACITY)
        self.url = f"http://127.0.0.1:{_free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "smruntime", "serve", "--port", port, "--config", str(config)],
            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the local endpoint did not start")

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)


def write_input(path: Path, records: int) -> None:
    with path.open("w") as out:
        for index in range(records):
            out.write(json.dumps({"i": index}) + "\n")


def run_batch(url: str, endpoint: str, source: Path, output: Path, sample_rss: bool = False,
              extra: tuple[str, ...] = (), progress: list[tuple[float, int]] | None = None) -> tuple[float, int]:
    """Seconds ``smruntime batch`` took, and its RSS growth in bytes (when sampled); with
    ``progress``, (seconds, results written) samples."""
    output.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "smruntime", "batch", "--endpoint-url", url, "--endpoint-name", endpoint,
            "--input", str(source), "--output", str(output), "--concurrency", str(CONCURRENCY), "--no-progress",
            *extra]
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    baseline = peak = 0
    while process.poll() is None:
        if sample_rss:
            rss = _rss(process.pid)
            if not baseline and output.exists() and output.stat().st_size:
                baseline = rss
            peak = max(peak, rss)
        if progress is not None and output.exists():
            progress.append((time.perf_counter() - start, output.read_bytes().count(b"\n")))
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    summary = process.stderr.read().strip() if process.stderr else ""
    print(f"  {summary}")
    return seconds, (peak - baseline if baseline else 0)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_boto3(url: str, records: int) -> float:
    client = clients.boto3_client(url, max_pool_connections=CONCURRENCY)

    def call(index: int) -> bytes:
        body = json.dumps({"i": index}).encode()
        data: bytes = client.invoke_endpoint(EndpointName="slow", Body=body, ContentType="application/json")["Body"].read()
        return data

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in pool.map(call, range(records)):
            pass
    return time.perf_counter() - start


def throttled_run(url: str, folder: Path, records: int) -> None:
    source, output = folder / "capped.jsonl", folder / "capped-out.jsonl"
    write_input(source, records)
    samples: list[tuple[float, int]] = []
    seconds, _ = run_batch(url, "capped", source, output, extra=("--max-attempts", "10"), progress=samples)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    answered = sum(line["status"] == "ok" for line in lines)
    retried = sum(line["attempts"] - 1 for line in lines)
    half = [(t, n) for t, n in samples if n >= records // 2]
    settled = (half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0]) if len(half) > 1 and half[-1][0] > half[0][0] else 0.0
    print(f"throttling, {records} records, endpoint allows {CAPACITY}/s:")
    print(f"  {answered}/{records} answered, {retried} throttled attempts retried")
    print(f"  {records / seconds:.0f} records/s over the run ({records / seconds / CAPACITY:.0%}),"
          f" {settled:.0f}/s over its second half ({settled / CAPACITY:.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--throttled-records", type=int, default=6_000)
    args = parser.parse_args(argv)
    isolate_aws_env()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", clients.ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", clients.SECRET_KEY)
    limit = CONCURRENCY / DELAY
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        server = Server(folder)
        try:
            if args.records:
                source = folder / "in.jsonl"
                write_input(source, args.records)
                boto3_seconds = run_boto3(server.url, args.records)
                batch_seconds, _ = run_batch(server.url, "slow", source, folder / "out.jsonl")
                batch_rate, boto3_rate = args.records / batch_seconds, args.records / boto3_seconds
                print(f"throughput, {args.records} records, model 20 ms, {CONCURRENCY} in flight (limit {limit:.0f}/s):")
                print(f"  smruntime batch        {batch_rate:8.0f} records/s  ({batch_rate / limit:.0%} of the limit)")
                print(f"  ThreadPool(64)+boto3   {boto3_rate:8.0f} records/s  ({boto3_rate / limit:.0%} of the limit)")
                print(f"  ratio                  {batch_rate / boto3_rate:8.2f}x")
            if args.throttled_records:
                throttled_run(server.url, folder, args.throttled_records)
            if args.memory_records:
                big = folder / "big.jsonl"
                write_input(big, args.memory_records)
                seconds, growth = run_batch(server.url, "fast", big, folder / "big-out.jsonl", sample_rss=True)
                print(f"memory, {args.memory_records} records streamed, model answers at once:")
                print(f"  peak RSS growth {growth / 2**20:.1f} MiB (goal <= 64 MiB), {args.memory_records / seconds:.0f} records/s")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
