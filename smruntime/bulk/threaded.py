"""The thread shell over ``BulkScheduler``: ``Client.invoke_many``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from queue import SimpleQueue
from typing import TYPE_CHECKING

from smruntime.bulk.caller import limiter_of, run_client, send_rate
from smruntime.bulk.scheduler import BulkResult, BulkScheduler, as_input
from smruntime.types import InvokeEndpointInput

if TYPE_CHECKING:
    from smruntime.client import Client


def invoke_many(
    client: Client,
    inputs: Iterable[InvokeEndpointInput | bytes | str],
    *,
    endpoint_name: str | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    concurrency: int = 16,
    ordered: bool = False,
    reorder_window: int = 0,
    adaptive: bool = True,
) -> Iterator[BulkResult]:
    """Invoke the endpoint once per record; yield a ``BulkResult`` per record.

    See ``Client.invoke_many``. Bad bounds raise here, before the input is read.
    """
    scheduler = BulkScheduler(concurrency, ordered=ordered, reorder_window=reorder_window)
    caller = run_client(client) if adaptive else client
    return _run(scheduler, caller, iter(inputs), endpoint_name=endpoint_name, content_type=content_type, accept=accept)


def _run(
    scheduler: BulkScheduler,
    caller: Client,
    records: Iterator[InvokeEndpointInput | bytes | str],
    *,
    endpoint_name: str | None,
    content_type: str | None,
    accept: str | None,
) -> Iterator[BulkResult]:
    limiter = limiter_of(caller)

    def call(index: int, record: InvokeEndpointInput | bytes | str) -> BulkResult:
        start = time.perf_counter()
        try:
            params = as_input(record, endpoint_name=endpoint_name, content_type=content_type, accept=accept)
            output = caller.invoke_endpoint(params)
        except Exception as error:  # one bad record never stops the run: it is its result
            return BulkResult.failed(index, error, time.perf_counter() - start)
        return BulkResult.succeeded(index, output, time.perf_counter() - start)

    # Worker threads take records from one queue and put results on another: two SimpleQueue
    # operations per call. A ThreadPoolExecutor with concurrent.futures.wait costs more than
    # the call itself at high concurrency (a Future per call, and every wait locks every
    # pending future).
    work: SimpleQueue[tuple[int, InvokeEndpointInput | bytes | str] | None] = SimpleQueue()
    done: SimpleQueue[BulkResult] = SimpleQueue()

    def worker() -> None:
        while (job := work.get()) is not None:
            done.put(call(*job))

    workers: list[threading.Thread] = []
    try:
        while not scheduler.done:
            while scheduler.can_send(send_rate(limiter)):
                try:
                    record = next(records)
                except StopIteration:
                    scheduler.input_exhausted()
                    break
                work.put((scheduler.started(), record))
                if len(workers) < scheduler.in_flight:  # one thread per call in flight, made as needed
                    thread = threading.Thread(target=worker, name=f"smruntime-bulk-{len(workers)}", daemon=True)
                    thread.start()
                    workers.append(thread)
            if scheduler.in_flight:
                yield from scheduler.finished(done.get())
    finally:
        # The caller stopped early (or the input raised): don't start what is queued; the
        # calls in flight finish before the run ends.
        while not work.empty():
            work.get_nowait()
        for _ in workers:
            work.put(None)
        for thread in workers:
            thread.join()
