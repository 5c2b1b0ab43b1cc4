"""Waiting for an async inference: poll its output and failure locations.

Locations are ``s3://bucket/key`` (read with botocore's S3 client, so any S3-compatible
server works through ``s3_endpoint_url``) or ``file://`` paths for local use.

The locations come from the endpoint's answer, so the endpoint (or anything between it and
the client) chooses what is read. The service only ever names ``s3://`` objects; a ``file://``
location is read only when the caller named a folder it trusts (``file_root``), and only a
regular file inside it. No read returns more than the service's 1 GB payload limit.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any, Awaitable, Callable

from smruntime import errors
from smruntime.file_locations import (
    MAX_ASYNC_PAYLOAD_BYTES,
    UnsafeFileError,
    file_path,
    in_daemon_thread,
    read_confined,
    read_stream_bounded,
)
from smruntime.types import InvokeEndpointAsyncOutput

Reader = Callable[[str], "bytes | None"]
"""Returns a location's bytes, or None while it does not exist yet."""

FILE_ROOT_ADVICE = "Pass file_root= (a folder you trust) to read file:// results from it."


def read_file_location(location: str, root: str | os.PathLike[str], timeout: float) -> bytes | None:
    """A ``file://`` location's bytes if it is a regular file inside ``root``; None if it does not exist yet.

    The read runs in a daemon thread and is given up after ``timeout`` seconds (a stale mount).
    """
    path = file_path(location)
    future = in_daemon_thread(lambda: read_confined(path, (root,), max_bytes=MAX_ASYNC_PAYLOAD_BYTES),
                              name="smruntime-async-result")
    try:
        return future.result(timeout=timeout)
    except FileNotFoundError:
        return None
    except concurrent.futures.TimeoutError:
        raise errors.WaitTimeoutError(f"reading {_shown(location)} took longer than {timeout:g} s") from None
    except UnsafeFileError as error:
        raise errors.SageMakerRuntimeError(f"will not read the endpoint's location: {error}") from None
    except OSError as error:
        raise errors.SageMakerRuntimeError(f"could not read {_shown(location)}: {error.strerror or error}") from None


def _shown(location: str) -> str:
    # The endpoint chose this text: quoted, and only its start.
    return repr(location[:256])


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
            return read_stream_bounded(body, response.get("ContentLength"), MAX_ASYNC_PAYLOAD_BYTES)
        except UnsafeFileError as error:
            raise errors.SageMakerRuntimeError(f"will not read {location}: {error}") from None
        finally:
            body.close()


class Poll:
    """One wait for an async inference's result: its rules (in :meth:`check` and
    :meth:`next_wait`, which never wait) and the two ways to wait, :meth:`wait` and
    :meth:`await_result`."""

    def __init__(
        self,
        output: InvokeEndpointAsyncOutput,
        read_s3: Reader,
        timeout: float,
        poll_interval: float,
        file_root: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
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
        self.file_root = file_root
        self.clock = clock
        self.deadline = clock() + timeout

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> bytes:
        """Poll until the result or the failure appears, or time is up."""
        while True:
            result = self.check()
            if result is not None:
                return result
            sleep(self.next_wait())

    async def await_result(self, sleep: Callable[[float], Awaitable[None]] | None = None) -> bytes:
        """:meth:`wait` for asyncio: the reads run in a worker thread, the waits are awaited."""
        import asyncio

        asleep = sleep or asyncio.sleep
        while True:
            result = await asyncio.to_thread(self.check)
            if result is not None:
                return result
            await asleep(self.next_wait())
    def read(self, location: str | None) -> bytes | None:
        if location is None:
            return None
        if location.startswith("s3://"):
            return self.read_s3(location)
        if not location.startswith("file://"):
            raise errors.SageMakerRuntimeError(
                f"cannot read location {_shown(location)}: only s3:// and file:// are supported")
        if self.file_root is None:
            raise errors.SageMakerRuntimeError(
                f"the endpoint named the local file {_shown(location)} as a result location; the service only names "
                f"s3:// objects. {FILE_ROOT_ADVICE}")
        return read_file_location(location, self.file_root, max(self.deadline - self.clock(), self.poll_interval))

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
