"""The thread shell over ``BulkScheduler``: ``Client.invoke_many``."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterable, Iterable, Iterator
from queue import SimpleQueue
from typing import TYPE_CHECKING

from smruntime import errors
from smruntime.bulk.caller import limiter_of, pool_size, run_client, send_rate
from smruntime.bulk.scheduler import BulkResult, BulkRun, BulkScheduler, Record

if TYPE_CHECKING:
    from smruntime.client import Client


def invoke_many(client: Client, inputs: Iterable[Record] | AsyncIterable[Record], run: BulkRun) -> Iterator[BulkResult]:
    """``Client.invoke_many``: bad bounds or inputs raise here, before any record is read."""
    if isinstance(inputs, AsyncIterable):
        raise errors.InvalidParamsError(
            [errors.FieldProblem("inputs", "type", "is an async iterable: run it with AsyncClient.invoke_many")]
        )
    run.check_inputs(inputs)
    run = run.within(pool_size(client))
    scheduler = run.scheduler()
    caller = run_client(client) if run.adaptive else client
    return _run(scheduler, caller, iter(inputs), run)


def _run(
    scheduler: BulkScheduler,
    caller: Client,
    records: Iterator[Record],
    run: BulkRun,
) -> Iterator[BulkResult]:
    limiter = limiter_of(caller)

    def call(index: int, record: Record) -> BulkResult:
        start = time.perf_counter()
        try:
            params = run.input(record)
            output = caller.invoke_endpoint(params)
        except Exception as error:  # one bad record never stops the run: it is its result
            return BulkResult.failed(index, error, time.perf_counter() - start)
        return BulkResult.succeeded(index, output, time.perf_counter() - start)

    # Worker threads take records from one queue and put results on another: two SimpleQueue
    # operations per call. A ThreadPoolExecutor with concurrent.futures.wait costs more than
    # the call itself at high concurrency (a Future per call, and every wait locks every
    # pending future).
    work: SimpleQueue[tuple[int, Record] | None] = SimpleQueue()
    done: SimpleQueue[BulkResult] = SimpleQueue()

    def worker() -> None:
        while (job := work.get()) is not None:
            done.put(call(*job))

    workers: list[threading.Thread] = []
    stopped_by: Exception | None = None  # what the input raised: after the results of what was sent
    try:
        while not scheduler.done:
            while scheduler.can_send(send_rate(limiter)):
                try:
                    record = next(records)
                    run.check(record)
                except StopIteration:
                    scheduler.input_exhausted()
                    break
                except Exception as error:
                    stopped_by = error
                    scheduler.input_exhausted()
                    break
                work.put((scheduler.started(), record))
                if len(workers) < scheduler.in_flight:  # one thread per call in flight, made as needed
                    thread = threading.Thread(target=worker, name=f"smruntime-bulk-{len(workers)}", daemon=True)
                    thread.start()
                    workers.append(thread)
            if scheduler.in_flight:
                yield from scheduler.finished(done.get())
        if stopped_by is not None:
            raise stopped_by
    finally:
        # The caller stopped early: don't start what is queued; the calls in flight finish
        # before the run ends.
        while not work.empty():
            work.get_nowait()
        for _ in workers:
            work.put(None)
        for thread in workers:
            thread.join()
