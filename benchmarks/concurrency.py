"""(5) 16 threads sharing one client: calls per second, and connections the server accepted.

Each round builds a fresh client per contender (``max_pool_connections=10``, the default of
both), starts 16 threads that each make ``CALLS_PER_THREAD`` calls through it, and counts the
connections the server accepted during that client's life. Rounds interleave the contenders;
medians.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from benchmarks import clients
from benchmarks.common import Section, median, paired_ratio, ratio, round_order, spread, standalone, table
from benchmarks.server import LoopbackServer

THREADS = 16
CALLS_PER_THREAD = 60
ROUNDS = 8
POOL = 10

Factory = Callable[[str], tuple[Any, clients.Call]]


def _boto3(url: str) -> tuple[Any, clients.Call]:
    client = clients.boto3_client(url, max_pool_connections=POOL)
    return client, clients.boto3_call(client)


def _smruntime(url: str) -> tuple[Any, clients.Call]:
    client = clients.smruntime_client(url, max_pool_connections=POOL)
    return client, clients.smruntime_call(client)


def _smruntime_fast(url: str) -> tuple[Any, clients.Call]:
    client = clients.smruntime_client(url, fast=True, max_pool_connections=POOL)
    return client, clients.smruntime_call(client)


CONTENDERS: dict[str, Factory] = {
    "boto3": _boto3,
    "smruntime default": _smruntime,
    "smruntime fastest": _smruntime_fast,
}


def one_round(server: LoopbackServer, factory: Factory, threads: int, calls: int) -> tuple[float, int, int]:
    """(calls per second, connections opened, errors) for one client shared by ``threads`` threads."""
    before = server.accepts
    client, call = factory(server.url)
    start_line = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        start_line.wait()
        for _ in range(calls):
            try:
                call()
            except Exception as error:  # counted and reported, never silently dropped
                errors.append(error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    client.close()
    opened = server.accepts - before
    return (threads * calls - len(errors)) / elapsed, opened, len(errors)


def run(server: LoopbackServer | None = None, *, threads: int = THREADS, calls: int = CALLS_PER_THREAD,
        rounds: int = ROUNDS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, threads=threads, calls=calls, rounds=rounds)
    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    connections: dict[str, list[int]] = {name: [] for name in CONTENDERS}
    errors: dict[str, int] = dict.fromkeys(CONTENDERS, 0)
    for index in range(rounds + 1):  # round 0 warms up and is not kept
        for name, factory in round_order(CONTENDERS, index):
            rate, opened, failed = one_round(server, factory, threads, calls)
            if index:
                rates[name].append(rate)
                connections[name].append(opened)
                errors[name] += failed
    rows = [
        (name, f"{median(rates[name]):,.0f}", spread(rates[name]), ratio(paired_ratio(rates[name], rates["boto3"])),
         f"{max(connections[name])} (median {median(connections[name]):.0f})", str(errors[name]))
        for name in CONTENDERS
    ]
    data = {
        "threads": threads,
        "calls_per_thread": calls,
        "rounds": rounds,
        "max_pool_connections": POOL,
        "calls_per_s": {name: median(values) for name, values in rates.items()},
        "connections_max": {name: max(values) for name, values in connections.items()},
        "errors": errors,
        "default_vs_boto3": paired_ratio(rates["smruntime default"], rates["boto3"]),
    }
    return Section(
        "concurrency",
        f"5. {threads} threads sharing one client",
        table(["client", "calls/s (median)", "spread", "vs boto3", "connections opened (max over rounds)", "errors"],
              rows),
        data,
        [f"{threads} threads x {calls} calls per round, a fresh client per round, max_pool_connections={POOL}; "
         f"{rounds} interleaved rounds after one warm-up round; medians (ratios: medians of per-round ratios).",
         "Connections are counted by the server (accepted sockets) over each client's life."],
    )


if __name__ == "__main__":
    standalone(run)
