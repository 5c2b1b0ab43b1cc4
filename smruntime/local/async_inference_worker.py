"""The local endpoint's async inference queue: accepted requests, run a few at a time.

Each accepted InvokeEndpointAsync request becomes an :class:`AsyncJob`, run as an asyncio task
on the server's event loop. Per endpoint, ``max_concurrent_invocations`` jobs run at once; the
rest wait in the queue (first come, first served). A job:

1. waits for a slot; if it waited longer than its RequestTTLSeconds, it has expired and the
   expiry is written to its failure location;
2. reads its input (``InputLocation``, or the inline ``Body``) in a daemon thread, giving up
   after InvocationTimeoutSeconds (a hung mount or S3 server must not hold a slot forever);
3. runs the model as InvokeEndpoint does (``invoke.run_invocation``), with
   InvocationTimeoutSeconds as the time budget;
4. writes the model's answer to the output location (with the model's content type), or the
   error to the failure location.

Failure documents are JSON, the body the service would answer the same error with:
``{"Message": ...}``, plus ``ErrorCode``/``OriginalStatusCode``/``OriginalMessage``/``LogStreamArn``
for a model error. Durations are multiplied by the endpoint's ``time_scale`` (tests use a small one).

Shutdown: when the server stops, its event loop cancels the jobs still queued (nothing is
written for them) and waits for model threads already running; their results are dropped.
Reads and writes run in daemon threads, so one stuck in the kernel never keeps the process
from exiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import attrs

from smruntime.file_locations import in_daemon_thread
from smruntime.local.config import AsyncInferenceConfig
from smruntime.local.invoke import Invocation, join_chunks, run_invocation
from smruntime.local.routing import Target
from smruntime.local.state import EndpointRuntime
from smruntime.local.storage import JobStorage, Location, S3ClientFactory, StorageError
from smruntime.local.wire import InvokeParams, ServiceError, error_document
from smruntime.middleware.reprs import fields_repr

__all__ = ["DEFAULT_INVOCATION_TIMEOUT_SECONDS", "DEFAULT_REQUEST_TTL_SECONDS", "AsyncJob", "AsyncWorker"]

logger = logging.getLogger("smruntime.local")

DEFAULT_REQUEST_TTL_SECONDS = 6 * 60 * 60
"""RequestTTLSeconds when the request gives none (the service's default, 6 h)."""
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900
"""InvocationTimeoutSeconds when the request gives none (the service's default, 15 min)."""

OPERATION = "InvokeEndpointAsync"

WRITE_TIMEOUT_SECONDS = 60.0
"""How long writing a result or failure may take before the job gives up on it."""

T = TypeVar("T")


@attrs.frozen(eq=False)
class AsyncJob:
    """One accepted request: what to run, where its input is, where its outcome goes."""

    __repr__ = fields_repr

    inference_id: str
    endpoint: EndpointRuntime
    params: InvokeParams
    target: Target
    output: Location
    failure: Location
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    queued_at: float
    """When it was accepted, on the worker's clock (monotonic)."""
    input: Location | None = None
    body: bytes | None = attrs.field(default=None, repr=False)
    """The inline payload, for a request without InputLocation."""

    @property
    def config(self) -> AsyncInferenceConfig:
        config = self.endpoint.config.async_inference
        if config is None:  # accept time checks this; a job never exists without it
            raise RuntimeError(f"endpoint {self.endpoint.name} has no async inference config")
        return config


class AsyncWorker:
    """Runs the async jobs of every endpoint of one server; lives on the server's event loop."""

    def __init__(self, *, region: str, account: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.region = region
        self.account = account
        self.clock = clock
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._s3: dict[str | None, S3ClientFactory] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, job: AsyncJob) -> None:
        """Queue ``job``; must be called on the server's event loop."""
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"async-inference-{job.inference_id}")
        # The loop keeps only weak references to tasks: hold them until they finish.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: AsyncJob) -> None:
        config = job.config
        slots = self._slots.get(job.endpoint.name)
        if slots is None:
            slots = self._slots[job.endpoint.name] = asyncio.Semaphore(config.max_concurrent_invocations)
        async with slots:
            try:
                await self._process(job, config)
            except Exception:  # a bug here must not kill the loop's other work (cancellation passes)
                logger.exception("async inference %s of endpoint %s failed unexpectedly",
                                 job.inference_id, job.endpoint.name)

    async def _process(self, job: AsyncJob, config: AsyncInferenceConfig) -> None:
        storage = JobStorage(self._s3_factory(config.s3_endpoint_url), file_roots=config.file_roots,
                             max_bytes=config.max_input_bytes)
        budget = job.invocation_timeout_seconds * config.time_scale
        try:
            waited = self.clock() - job.queued_at
            ttl = job.request_ttl_seconds * config.time_scale
            if waited > ttl:
                await self._fail(storage, job, _expired_message(job, waited, config.time_scale))
                return
            source = job.input
            if source is not None:
                try:
                    body = await _in_thread(lambda: storage.read(source), budget, f"read {source}")
                except StorageError as error:
                    await self._fail(storage, job, f"Could not read the input of inference {job.inference_id}: {error}")
                    return
            else:
                body = job.body or b""
            try:
                result = await run_invocation(Invocation(
                    endpoint=job.endpoint.name,
                    region=self.region,
                    account=self.account,
                    timeout=budget,
                    params=job.params,
                    body=body,
                    target=job.target,
                    counters=job.endpoint.counters,
                    operation=OPERATION,
                ))
            except ServiceError as error:
                await self._fail(storage, job, error.message, error.fields)
                return
            try:
                data = join_chunks(result.body)
                await _in_thread(lambda: storage.write(job.output, data, result.content_type), WRITE_TIMEOUT_SECONDS,
                                 f"write {job.output}")
            except StorageError as error:
                await self._fail(storage, job, f"Could not write the result of inference {job.inference_id}: {error}")
                return
            logger.debug("async inference %s of endpoint %s: result at %s", job.inference_id, job.endpoint.name,
                         job.output)
        finally:
            storage.close()  # never waits: an operation still running closes the client when it ends

    async def _fail(self, storage: JobStorage, job: AsyncJob, message: str,
                    fields: dict[str, object] | None = None) -> None:
        document = error_document(message, fields)
        logger.info("async inference %s of endpoint %s failed: %s", job.inference_id, job.endpoint.name, message)
        try:
            await _in_thread(lambda: storage.write(job.failure, document, "application/json"), WRITE_TIMEOUT_SECONDS,
                             f"write {job.failure}")
        except StorageError as error:
            logger.error("async inference %s: the failure could not be recorded either: %s", job.inference_id, error)

    def _s3_factory(self, endpoint_url: str | None) -> S3ClientFactory:
        factory = self._s3.get(endpoint_url)
        if factory is None:
            factory = self._s3[endpoint_url] = S3ClientFactory(endpoint_url, self.region)
        return factory


async def _in_thread(operation: Callable[[], T], timeout: float, what: str) -> T:
    """``operation``'s result, run in a daemon thread; StorageError if it takes longer than ``timeout``."""
    future = in_daemon_thread(operation, name=f"async-inference-{what.split()[0]}")
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise StorageError(f"could not {what}: no answer within {timeout:g} s") from None


def _expired_message(job: AsyncJob, waited: float, scale: float) -> str:
    scaled = "" if scale == 1 else f" x time_scale {scale:g}"
    return (f"Inference {job.inference_id} expired: it waited {waited:.3f} s in the queue, longer than its "
            f"RequestTTLSeconds ({job.request_ttl_seconds} s{scaled}).")
