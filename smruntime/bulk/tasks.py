"""The asyncio shell over ``BulkScheduler``: ``AsyncClient.invoke_many``, one task per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING

from smruntime.bulk.caller import limiter_of, run_client, send_rate
from smruntime.bulk.scheduler import BulkResult, BulkScheduler, as_input
from smruntime.types import InvokeEndpointInput

if TYPE_CHECKING:
    from smruntime.async_client import AsyncClient

Record = InvokeEndpointInput | bytes | str


def invoke_many(
    client: AsyncClient,
    inputs: Iterable[Record] | AsyncIterable[Record],
    *,
    endpoint_name: str | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    concurrency: int = 16,
    ordered: bool = False,
    reorder_window: int = 0,
    adaptive: bool = True,
) -> AsyncIterator[BulkResult]:
    """Invoke the endpoint once per record; yield a ``BulkResult`` per record.

    See ``AsyncClient.invoke_many``. Bad bounds raise here, before the input is read.
    """
    scheduler = BulkScheduler(concurrency, ordered=ordered, reorder_window=reorder_window)
    caller = run_client(client) if adaptive else client
    records = aiter(inputs) if isinstance(inputs, AsyncIterable) else _from_iterable(inputs)
    return _run(scheduler, caller, records, endpoint_name=endpoint_name, content_type=content_type, accept=accept)


async def _from_iterable(inputs: Iterable[Record]) -> AsyncIterator[Record]:
    for record in inputs:
        yield record


async def _run(
    scheduler: BulkScheduler,
    caller: AsyncClient,
    records: AsyncIterator[Record],
    *,
    endpoint_name: str | None,
    content_type: str | None,
    accept: str | None,
) -> AsyncIterator[BulkResult]:
    limiter = limiter_of(caller)

    async def call(index: int, record: Record) -> BulkResult:
        start = time.perf_counter()
        try:
            params = as_input(record, endpoint_name=endpoint_name, content_type=content_type, accept=accept)
            output = await caller.invoke_endpoint(params)
        except Exception as error:  # one bad record never stops the run: it is its result
            return BulkResult.failed(index, error, time.perf_counter() - start)
        return BulkResult.succeeded(index, output, time.perf_counter() - start)

    pending: set[asyncio.Task[BulkResult]] = set()
    try:
        while not scheduler.done:
            while scheduler.can_send(send_rate(limiter)):
                try:
                    record = await anext(records)
                except StopAsyncIteration:
                    scheduler.input_exhausted()
                    break
                pending.add(asyncio.create_task(call(scheduler.started(), record)))
            if not pending:
                continue
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                for result in scheduler.finished(task.result()):
                    yield result
    finally:
        # The caller stopped early (or the input raised): as with threads, the calls in flight
        # finish before the run ends (cancelled only if this wait is cancelled itself).
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
