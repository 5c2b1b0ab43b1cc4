"""The asyncio shell over ``BulkScheduler``: ``AsyncClient.invoke_many``, one task per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

from smruntime.bulk.caller import limiter_of, pool_size, run_client, send_rate
from smruntime.bulk.scheduler import BulkResult, BulkRun, BulkScheduler, Record

if TYPE_CHECKING:
    from smruntime.async_client import AsyncClient



def invoke_many(
    client: AsyncClient, inputs: Iterable[Record] | AsyncIterable[Record], run: BulkRun
) -> AsyncIterator[BulkResult]:
    """``AsyncClient.invoke_many``: bad bounds or inputs raise here, before any record is read."""
    run.check_inputs(inputs)
    run = run.within(pool_size(client))
    scheduler = run.scheduler()
    caller = run_client(client) if run.adaptive else client
    records = aiter(inputs) if isinstance(inputs, AsyncIterable) else _from_iterable(iter(inputs))  # not iterable: raise now
    return _run(scheduler, caller, records, run)


async def _from_iterable(inputs: Iterator[Record]) -> AsyncIterator[Record]:
    for record in inputs:
        yield record


async def _run(
    scheduler: BulkScheduler,
    caller: AsyncClient,
    records: AsyncIterator[Record],
    run: BulkRun,
) -> AsyncIterator[BulkResult]:
    limiter = limiter_of(caller)

    async def call(index: int, record: Record) -> BulkResult:
        start = time.perf_counter()
        try:
            params = run.input(record)
            output = await caller.invoke_endpoint(params)
        except Exception as error:  # one bad record never stops the run: it is its result
            return BulkResult.failed(index, error, time.perf_counter() - start)
        return BulkResult.succeeded(index, output, time.perf_counter() - start)

    pending: set[asyncio.Task[BulkResult]] = set()
    stopped_by: Exception | None = None  # what the input raised: after the results of what was sent
    try:
        while not scheduler.done:
            while scheduler.can_send(send_rate(limiter)):
                try:
                    record = await anext(records)
                    run.check(record)
                except StopAsyncIteration:
                    scheduler.input_exhausted()
                    break
                except Exception as error:
                    stopped_by = error
                    scheduler.input_exhausted()
                    break
                pending.add(asyncio.create_task(call(scheduler.started(), record)))
            if not pending:
                continue
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                for result in scheduler.finished(task.result()):
                    yield result
        if stopped_by is not None:
            raise stopped_by
    finally:
        if pending:
            reader = asyncio.current_task()
            if reader is not None and reader.cancelling():
                # The task reading the results was cancelled (a timeout, a client gone), here or
                # in its loop's body before closing the run: its calls are too.
                for task in pending:
                    task.cancel()
            # Else the caller stopped reading early: as with threads, the calls in flight
            # finish before the run ends.
            await asyncio.gather(*pending, return_exceptions=True)
