"""The thread shell over ``BulkScheduler``: ``Client.invoke_many``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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

    pending: set[Future[BulkResult]] = set()
    with ThreadPoolExecutor(max_workers=scheduler.concurrency, thread_name_prefix="smruntime-bulk") as pool:
        try:
            while not scheduler.done:
                while scheduler.can_send(send_rate(limiter)):
                    try:
                        record = next(records)
                    except StopIteration:
                        scheduler.input_exhausted()
                        break
                    pending.add(pool.submit(call, scheduler.started(), record))
                if not pending:
                    continue
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield from scheduler.finished(future.result())
        finally:
            # The caller stopped early (or the input raised): don't start what is queued.
            for future in pending:
                future.cancel()
