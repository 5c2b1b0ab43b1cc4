"""(9) asyncio: 256 calls in flight on one event loop against a server that answers after 10 ms.

Where waiting, not client cost, is most of a call: the benchmark server holds every answer
for ``DELAY`` seconds. Each contender gets a client with a pool of ``POOL`` connections and,
per round, ``CONCURRENCY`` tasks on one loop, each making ``CALLS_PER_TASK`` calls one after
another (so ``CONCURRENCY`` calls are in flight the whole time). Interleaved rounds (A B C,
C B A, …) after a warm-up round; calls/s is the median of the rounds, the ratio the median of
per-round ratios. The server counts the connections each contender opened over all its rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from benchmarks.async_per_call import AsyncCall, _aiobotocore, _aiobotocore_call, _smruntime, _smruntime_call
from benchmarks.common import Section, median, paired_ratio, ratio, round_order, spread, standalone, table
from benchmarks.server import LoopbackServer

DELAY = 0.010
CONCURRENCY = 256
CALLS_PER_TASK = 4
POOL = 100
ROUNDS = 6
DEFAULT = "AsyncClient (AsyncFastHTTPClient, default)"


def run(server: LoopbackServer | None = None, *, rounds: int = ROUNDS, pool: int = POOL) -> Section:
    """``server``, if given, must hold its answers for ``DELAY`` (a plain one is not used)."""
    if server is None or server.delay != DELAY:
        with LoopbackServer(delay=DELAY) as own:
            return run(own, rounds=rounds, pool=pool)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_measure(server, rounds, pool))
    finally:
        loop.close()


async def _batch(call: AsyncCall) -> float:
    """Calls per second with ``CONCURRENCY`` calls in flight."""

    async def worker() -> None:
        for _ in range(CALLS_PER_TASK):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return CONCURRENCY * CALLS_PER_TASK / (time.perf_counter() - start)


async def _measure(server: LoopbackServer, rounds: int, pool: int) -> Section:
    from smruntime.transport import AiohttpHTTPClient, AsyncFastHTTPClient

    url = server.url
    async with contextlib.AsyncExitStack() as stack:
        transports = (AsyncFastHTTPClient(max_pool_connections=pool), AiohttpHTTPClient(max_pool_connections=pool))
        for transport in transports:  # a client closes only the HTTP client it made itself
            stack.push_async_callback(transport.aclose)
        fast, via_aiohttp = (_smruntime(url, transport) for transport in transports)
        contenders: dict[str, AsyncCall] = {
            "aiobotocore": _aiobotocore_call(await _aiobotocore(url, stack, pool)),
            DEFAULT: _smruntime_call(fast),
            "AsyncClient (AiohttpHTTPClient)": _smruntime_call(via_aiohttp),
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        opened = dict.fromkeys(contenders, 0)
        for index in range(rounds + 1):  # the first round warms up (and opens the pools)
            for name, call in round_order(contenders, index):
                before = server.accepts
                rate = await _batch(call)
                opened[name] += server.accepts - before
                if index:
                    samples[name].append(rate)

    baseline = samples["aiobotocore"]
    versus = {name: paired_ratio(values, baseline) for name, values in samples.items()}
    rows = [
        (name, f"{median(values):,.0f}", spread(values), ratio(versus[name]), str(opened[name]))
        for name, values in samples.items()
    ]
    ceiling = pool / DELAY
    data: dict[str, Any] = {
        "delay_s": DELAY,
        "concurrency": CONCURRENCY,
        "max_pool_connections": pool,
        "calls_per_s": {name: median(values) for name, values in samples.items()},
        "vs_aiobotocore": versus,
        "default_vs_aiobotocore": versus[DEFAULT],
        "connections_opened": opened,
    }
    return Section(
        "async_concurrency",
        f"9. asyncio: {CONCURRENCY} calls in flight, server answers after {DELAY * 1000:g} ms",
        table(["client", "calls/s (median)", "spread", "vs aiobotocore", "connections opened"], rows),
        data,
        [
            f"{CONCURRENCY} tasks on one event loop, {CALLS_PER_TASK} calls each per round; {rounds} interleaved "
            f"rounds after a warm-up round. max_pool_connections={pool}, so no client can pass "
            f"{ceiling:,.0f} calls/s (its connections each answer every {DELAY * 1000:g} ms); below that, "
            "client CPU per call sets the rate.",
            "Connections opened: what the server accepted from each client over all its rounds, warm-up included.",
        ],
    )


if __name__ == "__main__":
    standalone(run)
