"""Waiting for an async inference: poll its output and failure locations.

Locations are ``s3://bucket/key`` (read with botocore's S3 client, so any S3-compatible
server works through ``s3_endpoint_url``) or ``file://`` paths for local use.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from smruntime import errors
from smruntime.types import InvokeEndpointAsyncOutput

Reader = Callable[[str], "bytes | None"]
"""Returns a location's bytes, or None while it does not exist yet."""


def read_file_location(location: str) -> bytes | None:
    path = Path(unquote(urlsplit(location).path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class S3Reader:
    """Reads ``s3://`` locations with a botocore S3 client (created on first use).

    ``close`` closes that client's connections when ``owned`` (it was made for this reader).
    """

    def __init__(self, client_factory: Callable[[], Any], *, owned: bool = True) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._owned = owned

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owned:
            client.close()

    def __call__(self, location: str) -> bytes | None:
        if self._client is None:
            self._client = self._factory()
        # S3 URIs carry keys verbatim, as the service and the AWS CLI print them: no unquoting.
        bucket, _, key = location[len("s3://"):].partition("/")
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except Exception as error:  # botocore's ClientError: map "not there yet" here, once
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise errors.SageMakerRuntimeError(f"could not read {location}: {error}") from error
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data


def wait(
    output: InvokeEndpointAsyncOutput,
    *,
    read_s3: Reader,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """The result bytes; raises the failure, or :class:`WaitTimeoutError`."""
    poll = _Poll(output, read_s3, timeout, poll_interval, clock)
    while True:
        result = poll.check()
        if result is not None:
            return result
        sleep(poll.next_wait())


async def await_result(
    output: InvokeEndpointAsyncOutput,
    *,
    read_s3: Reader,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> bytes:
    """:func:`wait` for asyncio: the reads run in a worker thread, the waits are awaited."""
    import asyncio

    asleep = sleep or asyncio.sleep
    poll = _Poll(output, read_s3, timeout, poll_interval, clock)
    while True:
        result = await asyncio.to_thread(poll.check)
        if result is not None:
            return result
        await asleep(poll.next_wait())


class _Poll:
    """One wait's state and rules, shared by both shells (no waiting here)."""

    def __init__(
        self, output: InvokeEndpointAsyncOutput, read_s3: Reader, timeout: float, poll_interval: float, clock: Callable[[], float]
    ) -> None:
        if output.output_location is None and output.failure_location is None:
            raise errors.SageMakerRuntimeError("the async output names neither an output nor a failure location")
        if poll_interval <= 0 or timeout < 0:
            raise errors.InvalidParamsError(
                [errors.FieldProblem("poll_interval" if poll_interval <= 0 else "timeout", "range", "must be positive")]
            )
        self.output = output
        self.read_s3 = read_s3
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.deadline = clock() + timeout

    def read(self, location: str | None) -> bytes | None:
        if location is None:
            return None
        scheme = urlsplit(location).scheme
        if scheme == "file":
            return read_file_location(location)
        if scheme == "s3":
            return self.read_s3(location)
        raise errors.SageMakerRuntimeError(f"cannot read location {location!r}: only s3:// and file:// are supported")

    def check(self) -> bytes | None:
        """The result if it is there; raises the failure if that is; None to poll again."""
        output = self.output
        result = self.read(output.output_location)
        if result is not None:
            return result
        failure = self.read(output.failure_location)
        if failure is not None:
            text = failure.decode("utf-8", "replace")
            raise errors.AsyncInferenceFailedError(
                f"async inference {output.inference_id} failed: {text[:2048]}",
                failure_location=str(output.failure_location),
                body=failure,
                inference_id=output.inference_id,
            )
        return None

    def next_wait(self) -> float:
        """Seconds until the next poll; raises :class:`WaitTimeoutError` when time is up."""
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            output = self.output
            raise errors.WaitTimeoutError(
                f"no result for async inference {output.inference_id} after {self.timeout:g} s "
                f"(output {output.output_location}, failure {output.failure_location})"
            )
        return min(self.poll_interval, remaining)
