"""The thread shell over ``BulkScheduler``: ``Client.invoke_many``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from smruntime.bulk.scheduler import BulkResult, BulkScheduler, as_input
from smruntime.retry import AdaptiveRetryer, StandardRetryer
from smruntime.types import InvokeEndpointInput

if TYPE_CHECKING:
    from smruntime.client import Client


def run_client(client: Client) -> Client:
    """The client a bulk run calls through: ``client``, or a sibling behind one rate limiter.

    A client already in adaptive retry mode has a CUBIC rate limiter that gates every attempt:
    the run shares it. Otherwise the run gets a sibling client on the same options and the same
    HTTP client (the same connection pool; the sibling does not own or close it) with an
    adaptive retryer of its own, keeping the client's attempt limit and retry quota, so
    throttling anywhere in the run slows every worker and successes let it climb back. A
    sibling rather than per-call options: copying and checking options on every call costs
    more than the call's own client-side work in a fast loop.
    """
    from smruntime.client import Client

    options = client.options
    if isinstance(options.retryer, AdaptiveRetryer):
        return client
    quota = options.retryer.quota if isinstance(options.retryer, StandardRetryer) else None
    extra: dict[str, Any] = {"quota": quota} if quota is not None else {}
    options.retryer = AdaptiveRetryer(max_attempts=options.max_attempts or 1, **extra)
    options.retry_mode = "adaptive"
    return Client(options=options)


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
    retryer = caller.options.retryer
    limiter = retryer.rate_limiter if isinstance(retryer, AdaptiveRetryer) else None
    concurrency = scheduler.concurrency

    def call(index: int, record: InvokeEndpointInput | bytes | str) -> BulkResult:
        start = time.perf_counter()
        try:
            params = as_input(record, endpoint_name=endpoint_name, content_type=content_type, accept=accept)
            output = caller.invoke_endpoint(params)
        except Exception as error:  # one bad record never stops the run: it is its result
            attempts = getattr(error, "attempts", 1)
            return BulkResult(index, error=error, attempts=attempts, latency=time.perf_counter() - start)
        return BulkResult(index, output=output, attempts=output.metadata.attempts, latency=time.perf_counter() - start)

    pending: set[Future[BulkResult]] = set()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smruntime-bulk") as pool:
        try:
            while not scheduler.done:
                while scheduler.can_send(limiter.rate if limiter is not None and limiter.enabled else None):
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
