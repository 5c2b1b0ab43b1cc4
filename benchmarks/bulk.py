"""(9) Bulk scoring: ``smruntime batch`` against a ThreadPoolExecutor + boto3, throttling, memory.

``python -m benchmarks.bulk [--records N] [--throttled-records N] [--memory-records N]``; in
``make bench`` as one section (fewer memory records there, see ``MAKE_BENCH_MEMORY_RECORDS``).

1. Throughput: ``--records`` records (10,000) through the local endpoint (``smruntime serve
   --no-access-log`` in its own process) whose ``slow`` model answers after 20 ms. ``smruntime batch
   --concurrency 64`` (a process of its own, timed from start to exit, so it pays its own
   import and start-up) against ``ThreadPoolExecutor(64)`` + boto3 (``max_pool_connections=64``)
   in this process, in ``ROUNDS`` interleaved rounds (boto3 first, then batch first); medians.
   The limit is 64 calls / 20 ms = 3,200 records/s. Where the time goes: the CPU seconds per
   record of each client (its process's user + system time) and of the server in the same run.
2. Throttling: ``--throttled-records`` records (6,000) through the ``capped`` endpoint, which
   throttles every request beyond 300 per second (``throttle_above``), with ``--max-attempts
   10``. Reported: records answered, throttled attempts, the rate over the whole run and over
   its second half (after the limiter settled), as a fraction of the 300/s allowed.
3. Memory: ``--memory-records`` records (1,000,000) streamed from a file through the ``fast``
   model (no delay); the batch process's resident set is sampled every 0.1 s, and the growth
   is its peak minus the first sample after the first result was written.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import attrs

from benchmarks import clients
from benchmarks.common import Section, median, paired_ratio, ratio, round_order, standalone, subprocess_env, table

CONCURRENCY = 64
DELAY = 0.020
CAPACITY = 300  # requests/s the "capped" endpoint allows; it throttles the rest
ROUNDS = 2
MAKE_BENCH_MEMORY_RECORDS = 200_000  # the RSS growth is flat in the count; 1,000,000 takes minutes
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
            # No access log: a line per call would cost the server about a tenth of its CPU, on the
            # CPUs the client being measured runs on.
            [sys.executable, "-m", "smruntime", "serve", "--port", port, "--http2-port", "0", "--config", str(config),
             "--no-access-log"],
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

    def cpu(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)


def write_input(path: Path, records: int) -> None:
    with path.open("w") as out:
        for index in range(records):
            out.write(json.dumps({"i": index}) + "\n")


@attrs.frozen
class Run:
    """One timed run: wall seconds, CPU seconds of the client and of the server, RSS growth."""

    seconds: float
    client_cpu: float
    server_cpu: float
    rss_growth: int = 0
    summary: str = ""


def run_batch(server: Server, endpoint: str, source: Path, output: Path, sample_rss: bool = False,
              extra: tuple[str, ...] = (), progress: list[tuple[float, int]] | None = None) -> Run:
    """``smruntime batch`` in a process of its own, timed from start to exit; with ``progress``,
    (seconds, results written) samples."""
    output.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "smruntime", "batch", "--endpoint-url", server.url, "--endpoint-name", endpoint,
            "--input", str(source), "--output", str(output), "--concurrency", str(CONCURRENCY), "--no-progress",
            *extra]
    children, served = _cpu_children(), server.cpu()
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
    if process.returncode:
        raise RuntimeError(f"smruntime batch failed: {summary}")
    return Run(seconds, _cpu_children() - children, server.cpu() - served, peak - baseline if baseline else 0, summary)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_boto3(server: Server, records: int) -> Run:
    client = clients.boto3_client(server.url, max_pool_connections=CONCURRENCY)

    def call(index: int) -> bytes:
        body = json.dumps({"i": index}).encode()
        data: bytes = client.invoke_endpoint(EndpointName="slow", Body=body, ContentType="application/json")["Body"].read()
        return data

    mine, served = _cpu_self(), server.cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in pool.map(call, range(records)):
            pass
    return Run(time.perf_counter() - start, _cpu_self() - mine, server.cpu() - served)


def throughput(server: Server, folder: Path, records: int, rounds: int = ROUNDS) -> dict[str, Any]:
    source = folder / "in.jsonl"
    write_input(source, records)
    contenders: dict[str, Callable[[], Run]] = {
        "ThreadPool(64)+boto3": lambda: run_boto3(server, records),
        "smruntime batch": lambda: run_batch(server, "slow", source, folder / "out.jsonl"),
    }
    runs: dict[str, list[Run]] = {name: [] for name in contenders}
    for index in range(rounds):
        for name, contender in round_order(contenders, index):
            runs[name].append(contender())
    rates = {name: [records / run.seconds for run in done] for name, done in runs.items()}
    return {
        "records": records,
        "rounds": rounds,
        "limit_per_s": CONCURRENCY / DELAY,
        "records_per_s": {name: median(values) for name, values in rates.items()},
        "batch_vs_boto3": paired_ratio(rates["smruntime batch"], rates["ThreadPool(64)+boto3"]),
        "client_cpu_ms": {name: median([run.client_cpu / records * 1e3 for run in done]) for name, done in runs.items()},
        "server_cpu_ms": {name: median([run.server_cpu / records * 1e3 for run in done]) for name, done in runs.items()},
    }


def throttled(server: Server, folder: Path, records: int) -> dict[str, Any]:
    source, output = folder / "capped.jsonl", folder / "capped-out.jsonl"
    write_input(source, records)
    samples: list[tuple[float, int]] = []
    run = run_batch(server, "capped", source, output, extra=("--max-attempts", "10"), progress=samples)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    half = [(t, n) for t, n in samples if n >= records // 2]
    settled = (half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0]) if len(half) > 1 and half[-1][0] > half[0][0] else 0.0
    return {
        "records": records,
        "allowed_per_s": CAPACITY,
        "answered": sum(line["status"] == "ok" for line in lines),
        "throttled_attempts": sum(line["attempts"] - 1 for line in lines),
        "run_per_s": records / run.seconds,
        "settled_per_s": settled,
    }


def memory(server: Server, folder: Path, records: int) -> dict[str, Any]:
    big = folder / "big.jsonl"
    write_input(big, records)
    run = run_batch(server, "fast", big, folder / "big-out.jsonl", sample_rss=True)
    return {"records": records, "peak_growth_mib": run.rss_growth / 2**20, "records_per_s": records / run.seconds}


def measure(records: int, throttled_records: int, memory_records: int) -> Section:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", clients.ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", clients.SECRET_KEY)
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        server = Server(folder)
        try:
            if records:
                data["throughput"] = throughput(server, folder, records)
            if throttled_records:
                data["throttling"] = throttled(server, folder, throttled_records)
            if memory_records:
                data["memory"] = memory(server, folder, memory_records)
        finally:
            server.close()
    return Section("bulk", "11. Bulk scoring: smruntime batch", _table(data), data, _notes(data))


def _table(data: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    if "throughput" in data:
        speed = data["throughput"]
        limit = speed["limit_per_s"]
        for name, rate in speed["records_per_s"].items():
            rows.append((f"{speed['records']:,} records, model 20 ms, 64 in flight: {name}",
                         f"{rate:,.0f} records/s ({rate / limit:.0%} of {limit:,.0f}/s)",
                         f"client {speed['client_cpu_ms'][name]:.2f} ms, server {speed['server_cpu_ms'][name]:.2f} ms"))
        rows.append(("batch / boto3 (paired rounds)", ratio(speed["batch_vs_boto3"]), ""))
    if "throttling" in data:
        capped = data["throttling"]
        allowed = capped["allowed_per_s"]
        rows.append((f"throttling endpoint ({allowed}/s allowed), {capped['records']:,} records",
                     f"{capped['answered']:,} answered; {capped['run_per_s']:,.0f}/s over the run "
                     f"({capped['run_per_s'] / allowed:.0%}), {capped['settled_per_s']:,.0f}/s settled "
                     f"({capped['settled_per_s'] / allowed:.0%})", f"{capped['throttled_attempts']:,} throttled attempts"))
    if "memory" in data:
        big = data["memory"]
        rows.append((f"{big['records']:,} records streamed, model answers at once",
                     f"peak RSS growth {big['peak_growth_mib']:.1f} MiB", f"{big['records_per_s']:,.0f} records/s"))
    return table(["run", "result", "CPU per record"], rows, "lll")


def _notes(data: dict[str, Any]) -> list[str]:
    if "throughput" not in data:
        return []
    speed = data["throughput"]
    server = speed["server_cpu_ms"]["smruntime batch"]
    ceiling, limit = 1000 / server, speed["limit_per_s"]
    if ceiling < limit:
        reach = f"the model's limit ({limit:,.0f}/s) is out of reach here, and the comparison is between what " \
                "each client costs per record"
    else:
        reach = f"only just above the model's limit ({limit:,.0f}/s) with a whole core to itself, which it shares " \
                "with the client here"
    return [
        "CPU per record: user + system seconds of the client's process and of the server's, over the run. "
        "Client and server share the machine's CPUs with each other (and with whatever else runs).",
        f"The local endpoint is one Python process: at {server:.2f} ms of CPU per call it cannot answer more than "
        f"{ceiling:,.0f} calls/s, whoever sends them: {reach}.",
    ]


def run() -> Section:
    """The ``make bench`` section."""
    return measure(10_000, 6_000, MAKE_BENCH_MEMORY_RECORDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--throttled-records", type=int, default=6_000)
    args = parser.parse_args(argv)
    standalone(lambda: measure(args.records, args.throttled_records, args.memory_records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
