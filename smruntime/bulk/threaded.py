"""The thread shell over ``BulkScheduler``: ``Client.invoke_many``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from smruntime.bulk.scheduler import BulkResult, BulkScheduler, as_input
from smruntime.options import Options
from smruntime.retry import AdaptiveRetryer, StandardRetryer
from smruntime.types import InvokeEndpointInput

if TYPE_CHECKING:
    from smruntime.client import Client
    from smruntime.options import OptionFunc


def adaptive_options(options: Options) -> list[OptionFunc]:
    """Per-call options that put every call of one bulk run behind one CUBIC rate limiter.

    A client already in adaptive mode has one: its own retryer gates every attempt. Otherwise
    the run gets an adaptive retryer of its own with the client's attempt limit (and retry
    quota), so throttling anywhere in the run slows every worker, and successes let it climb.
    """
    if isinstance(options.retryer, AdaptiveRetryer):
        return []
    quota = options.retryer.quota if isinstance(options.retryer, StandardRetryer) else None
    extra: dict[str, Any] = {"quota": quota} if quota is not None else {}
    retryer = AdaptiveRetryer(max_attempts=options.max_attempts or 1, **extra)

    def use_run_retryer(call: Options) -> None:
        call.retryer = retryer

    return [use_run_retryer]


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

    See ``Client.invoke_many``.
    """
    scheduler = BulkScheduler(concurrency, ordered=ordered, reorder_window=reorder_window)
    call_options = adaptive_options(client.options) if adaptive else []
    records = iter(inputs)

    def call(index: int, record: InvokeEndpointInput | bytes | str) -> BulkResult:
        start = time.perf_counter()
        try:
            params = as_input(record, endpoint_name=endpoint_name, content_type=content_type, accept=accept)
            output = client.invoke_endpoint(params, options=call_options)
        except Exception as error:  # one bad record never stops the run: it is its result
            attempts = getattr(error, "attempts", 1)
            return BulkResult(index, error=error, attempts=attempts, latency=time.perf_counter() - start)
        return BulkResult(index, output=output, attempts=output.metadata.attempts, latency=time.perf_counter() - start)

    pending: set[Future[BulkResult]] = set()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smruntime-bulk") as pool:
        try:
            while not scheduler.done:
                while scheduler.can_send():
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
