"""Waiting for an async inference: poll its output and failure locations.

Locations are ``s3://bucket/key`` (read with botocore's S3 client, so any S3-compatible
server works through ``s3_endpoint_url``) or ``file://`` paths for local use.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable
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
    if output.output_location is None and output.failure_location is None:
        raise errors.SageMakerRuntimeError("the async output names neither an output nor a failure location")
    if poll_interval <= 0 or timeout < 0:
        raise errors.InvalidParamsError(
            [errors.FieldProblem("poll_interval" if poll_interval <= 0 else "timeout", "range", "must be positive")]
        )

    def read(location: str | None) -> bytes | None:
        if location is None:
            return None
        scheme = urlsplit(location).scheme
        if scheme == "file":
            return read_file_location(location)
        if scheme == "s3":
            return read_s3(location)
        raise errors.SageMakerRuntimeError(f"cannot read location {location!r}: only s3:// and file:// are supported")

    deadline = clock() + timeout
    while True:
        result = read(output.output_location)
        if result is not None:
            return result
        failure = read(output.failure_location)
        if failure is not None:
            text = failure.decode("utf-8", "replace")
            raise errors.AsyncInferenceFailedError(
                f"async inference {output.inference_id} failed: {text[:2048]}",
                failure_location=str(output.failure_location),
                body=failure,
                inference_id=output.inference_id,
            )
        remaining = deadline - clock()
        if remaining <= 0:
            raise errors.WaitTimeoutError(
                f"no result for async inference {output.inference_id} after {timeout:g} s "
                f"(output {output.output_location}, failure {output.failure_location})"
            )
        sleep(min(poll_interval, remaining))
