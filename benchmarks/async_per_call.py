"""(8) asyncio: µs per call, and calls/s with 256 calls in flight, against aiobotocore.

The same loopback keep-alive server as (1). Sequential: each contender makes ``CALLS`` awaited
calls per round on one event loop, in interleaved rounds; medians of rounds. Concurrent: 256
calls gathered at once on one loop, pool of 10 connections, repeated ``CONCURRENT_ROUNDS``
times; calls/s and the connections the server accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.clients import BODY, CONTENT_TYPE, ENDPOINT_NAME
from benchmarks.common import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Section,
    median,
    paired_ratio,
    ratio,
    spread,
    standalone,
    table,
)
from benchmarks.server import LoopbackServer

CALLS = 200
ROUNDS = 10
CONCURRENCY = 256
CONCURRENT_ROUNDS = 4
POOL = 10

AsyncCall = Callable[[], Awaitable[bytes]]


def _smruntime(url: str, http_client: Any) -> Any:
    from smruntime import AsyncClient

    return AsyncClient(region=REGION, credentials=(ACCESS_KEY, SECRET_KEY), endpoint_url=url,
                       http_client=http_client)


def _smruntime_call(client: Any) -> AsyncCall:
    async def call() -> bytes:
        out = await client.invoke_endpoint(endpoint_name=ENDPOINT_NAME, body=BODY, content_type=CONTENT_TYPE)
        data: bytes = out.body
        return data

    return call


async def _aiobotocore(url: str, stack: contextlib.AsyncExitStack, pool: int = POOL) -> Any:
    import aiobotocore.session
    from aiobotocore.config import AioConfig

    session = aiobotocore.session.get_session()
    config = AioConfig(retries={"mode": "standard"}, max_pool_connections=pool)
    return await stack.enter_async_context(session.create_client(
        "sagemaker-runtime", region_name=REGION, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=config))


def _aiobotocore_call(client: Any) -> AsyncCall:
    async def call() -> bytes:
        response = await client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=BODY, ContentType=CONTENT_TYPE)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    return call


def run(server: LoopbackServer | None = None, *, calls: int = CALLS, rounds: int = ROUNDS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, calls=calls, rounds=rounds)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_measure(server, calls, rounds))
    finally:
        loop.close()


async def _measure(server: LoopbackServer, calls: int, rounds: int) -> Section:
    from smruntime.transport import AiohttpHTTPClient, AsyncFastHTTPClient

    url = server.url
    async with contextlib.AsyncExitStack() as stack:
        fast_transport = AsyncFastHTTPClient(max_pool_connections=POOL)
        aiohttp_transport = AiohttpHTTPClient(max_pool_connections=POOL)
        # A client leaves an HTTP client it was given open: closed here, after the clients.
        stack.push_async_callback(fast_transport.aclose)
        stack.push_async_callback(aiohttp_transport.aclose)
        fast = _smruntime(url, fast_transport)
        via_aiohttp = _smruntime(url, aiohttp_transport)
        stack.push_async_callback(fast.aclose)
        stack.push_async_callback(via_aiohttp.aclose)
        contenders: dict[str, AsyncCall] = {
            "aiobotocore": _aiobotocore_call(await _aiobotocore(url, stack)),
            "AsyncClient (AsyncFastHTTPClient, default)": _smruntime_call(fast),
            "AsyncClient (AiohttpHTTPClient)": _smruntime_call(via_aiohttp),
        }
        for name, call in contenders.items():
            if await call() != b"{}":
                raise SystemExit(f"{name}: unexpected answer from the benchmark server")

        # Rounds alternate the order (A B C, C B A) so no contender always runs after another.
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for index in range(rounds + 1):
            order = list(contenders) if index % 2 == 0 else list(reversed(contenders))
            for name in order:
                start = time.perf_counter()
                for _ in range(calls):
                    await contenders[name]()
                if index:  # the first round warms up
                    samples[name].append((time.perf_counter() - start) / calls)

        concurrent: dict[str, tuple[float, int]] = {}
        for name, call in contenders.items():
            before = server.accepts
            rates = []
            for _ in range(CONCURRENT_ROUNDS):
                start = time.perf_counter()
                await asyncio.gather(*(call() for _ in range(CONCURRENCY)))
                rates.append(CONCURRENCY / (time.perf_counter() - start))
            concurrent[name] = (median(rates), server.accepts - before)

    baseline = samples["aiobotocore"]
    rows = [
        (name, f"{median(values) * 1e6:,.0f}", spread(values), ratio(paired_ratio(values, baseline)),
         f"{concurrent[name][0]:,.0f}", ratio(concurrent[name][0] / concurrent["aiobotocore"][0]),
         str(concurrent[name][1]))
        for name, values in samples.items()
    ]
    data = {
        "us_per_call": {name: median(values) * 1e6 for name, values in samples.items()},
        "default_vs_aiobotocore": paired_ratio(samples["AsyncClient (AsyncFastHTTPClient, default)"], baseline),
        "concurrent_calls_per_s": {name: value[0] for name, value in concurrent.items()},
        "concurrent_connections_opened": {name: value[1] for name, value in concurrent.items()},
    }
    return Section(
        "async_per_call",
        "8. asyncio: time per call and 256 calls in flight (loopback keep-alive server)",
        table(["client", "µs per call (median)", "spread", "vs aiobotocore", f"calls/s, {CONCURRENCY} in flight",
               "vs aiobotocore", "connections opened"], rows),
        data,
        [
            f"{calls} awaited calls per round, {rounds} interleaved rounds after a warm-up round; medians.",
            f"In flight: {CONCURRENCY} calls gathered at once, {CONCURRENT_ROUNDS} times, pool of {POOL}; the server "
            "answers at once (not after 10 ms), so this measures client cost under concurrency.",
        ],
    )


if __name__ == "__main__":
    standalone(run)
