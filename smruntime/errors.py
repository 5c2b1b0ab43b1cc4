"""The errors of a call: every one derives from :class:`SageMakerRuntimeError`.

::

    SageMakerRuntimeError
    ├── InvalidParamsError            client-side validation, before any I/O
    ├── StackError                    an invalid middleware stack mutation
    ├── EndpointResolutionError
    │   └── EndpointNotFoundError     lets ``with_fallback`` try the next resolver
    ├── CredentialsError
    ├── SigningError
    ├── SerializationError
    ├── DeserializationError          keeps a short snapshot of the bad body
    ├── TransportError
    │   ├── ConnectError
    │   │   └── ConnectTimeoutError
    │   │       └── PoolTimeoutError  no pooled connection came free in time (never retried)
    │   ├── ReadTimeoutError
    │   ├── ConnectionClosedError
    │   ├── ResponseTooLargeError     a body read whole is over ``max_response_body_size``
    │   └── ClientClosedError         the client (or its HTTP client) is closed (never retried)
    ├── APIError                      a service error: code, message, status, request id
    │   ├── ValidationError
    │   ├── ModelError
    │   ├── ModelNotReadyException
    │   ├── InternalFailure
    │   ├── ServiceUnavailable
    │   ├── InternalDependencyException
    │   ├── ModelStreamError
    │   └── InternalStreamFailure
    ├── MaxAttemptsExceededError      the last attempt's error is its ``__cause__``
    ├── RetryQuotaExceededError       the error that could not be retried is its ``__cause__``
    ├── EventStreamError              a malformed or truncated event-stream frame
    │   ├── ChecksumMismatchError
    │   │   ├── PreludeChecksumError
    │   │   └── MessageChecksumError
    │   ├── InvalidLengthError
    │   ├── InvalidHeaderError
    │   └── TruncatedStreamError      cut off mid-frame, connection lost, or stalled
    ├── AsyncInferenceFailedError     an async inference wrote its failure location
    └── WaitTimeoutError              no async result appeared in time

Text a server sent (a service error's message and code) is kept to
:data:`MAX_SERVER_TEXT` characters, control characters escaped, by :func:`server_text`.

Errors carry retry facts (``retryable``, ``throttling``, ``timeout``) so that retry
policies never parse messages, and ``operation`` names the call that raised them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final, Iterable, Literal

import attrs

from smruntime.middleware import errors as _middleware_errors
from smruntime.middleware.reprs import fields_repr

Fault = Literal["client", "server"]

__all__ = [
    "MAX_SERVER_TEXT",
    "APIError",
    "AsyncInferenceFailedError",
    "ChecksumMismatchError",
    "ClientClosedError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "CredentialsError",
    "DeserializationError",
    "EndpointNotFoundError",
    "EndpointResolutionError",
    "EventStreamError",
    "FieldProblem",
    "InternalDependencyException",
    "InternalFailure",
    "InternalStreamFailure",
    "InvalidHeaderError",
    "InvalidLengthError",
    "InvalidParamsError",
    "MaxAttemptsExceededError",
    "MessageChecksumError",
    "ModelError",
    "ModelNotReadyException",
    "ModelStreamError",
    "PoolTimeoutError",
    "PreludeChecksumError",
    "ReadTimeoutError",
    "ResponseTooLargeError",
    "RetryQuotaExceededError",
    "SageMakerRuntimeError",
    "SerializationError",
    "ServiceUnavailable",
    "SigningError",
    "StackError",
    "TransportError",
    "TruncatedStreamError",
    "ValidationError",
    "WaitTimeoutError",
    "error_class_for_code",
    "server_text",
]

MAX_SERVER_TEXT: Final = 2048
"""The most characters of a server's text (an error message, a code) an error keeps."""

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides and
# isolates that can make a log line read as something else. A pattern string, compiled by re's
# cache on first use: only error paths need it, and compiling it at import costs a cold start.
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in "\t\n\r":
        return repr(char)[1:-1]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def server_text(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """``text`` from a server, fit for an error message or a log line: control characters
    escaped (``\\x1b``, ``\\u202e``…) and at most ``limit`` characters of it kept."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} characters more)"
    return re.sub(_UNPRINTABLE, _escape, text)


SERVICE_ID: Final = "SageMaker Runtime"
HTTP2_SERVICE_ID: Final = "SageMaker Runtime HTTP2"
_HTTP2_OPERATIONS: Final = frozenset({"InvokeEndpointWithBidirectionalStream"})


def service_id(operation: str | None) -> str:
    """The service an operation belongs to: SageMaker Runtime HTTP2 for the bidirectional
    stream, which that service alone serves; SageMaker Runtime for the others."""
    return HTTP2_SERVICE_ID if operation in _HTTP2_OPERATIONS else SERVICE_ID


class SageMakerRuntimeError(Exception):
    """Base of every error raised by smruntime."""

    throttling: bool = False
    timeout: bool = False

    def __init__(self, message: str = "", *, operation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation

    @property
    def retryable(self) -> bool:
        """Whether a retry policy may try the call again after this error."""
        return False

    def describe(self) -> str:
        """The error without the ``operation error …`` prefix."""
        return self.message

    def __str__(self) -> str:
        if self.operation:
            return f"operation error {service_id(self.operation)}: {self.operation}, {self.describe()}"
        return self.describe()


def _describe(error: BaseException) -> str:
    return error.describe() if isinstance(error, SageMakerRuntimeError) else f"{type(error).__name__}: {error}"


@attrs.frozen
class FieldProblem:
    """One broken rule of one input field."""

    __repr__ = fields_repr

    field: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.detail} ({self.rule})"


class InvalidParamsError(SageMakerRuntimeError):
    """The input broke the service model's constraints; lists every problem."""

    def __init__(self, problems: Iterable[FieldProblem], *, operation: str | None = None) -> None:
        self.problems = tuple(problems)
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid input: {lines}", operation=operation)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.problems)


class StackError(SageMakerRuntimeError, _middleware_errors.StackError):
    """A middleware stack mutation broke a rule (empty, duplicate or unknown ID), or a
    middleware cannot run on its client's chain (sync-only on ``AsyncClient``).

    The framework's :class:`smruntime.middleware.StackError` is its base: the stacks a client
    builds raise this class, so both ``except`` clauses catch it.
    """


class EndpointResolutionError(SageMakerRuntimeError):
    """No endpoint could be resolved, or the endpoint configuration is invalid."""


class EndpointNotFoundError(EndpointResolutionError):
    """A resolver has no endpoint for this input; ``with_fallback`` tries the next one."""


class CredentialsError(SageMakerRuntimeError):
    """Credentials could not be found or loaded."""


class SigningError(SageMakerRuntimeError):
    """The request could not be signed."""


class SerializationError(SageMakerRuntimeError):
    """The input could not be turned into an HTTP request."""


class DeserializationError(SageMakerRuntimeError):
    """The response could not be parsed; ``snapshot`` holds its first bytes."""

    SNAPSHOT_LIMIT: ClassVar[int] = 1024

    def __init__(
        self, message: str, *, snapshot: bytes = b"", http_status: int | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message, operation=operation)
        self.snapshot = snapshot[: self.SNAPSHOT_LIMIT]
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        # A gateway's HTML error page for 500/502/503/504 is as transient as a JSON one.
        return self.http_status in APIError.retryable_status


class TransportError(SageMakerRuntimeError):
    """The HTTP exchange failed below the protocol level.

    ``request_sent`` says whether the whole request may have reached the server: only
    errors with ``request_sent`` false are safe to retry for a non-idempotent call.
    """

    request_sent: bool = True

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation)
        if request_sent is not None:
            self.request_sent = request_sent

    @property
    def retryable(self) -> bool:
        return not self.request_sent


class ConnectError(TransportError):
    """The connection could not be established (refused, DNS, TLS)."""

    request_sent = False


class ConnectTimeoutError(ConnectError):
    """Connecting took longer than ``connect_timeout``."""

    timeout = True


class PoolTimeoutError(ConnectTimeoutError):
    """Every one of the HTTP client's ``max_pool_connections`` connections to the origin stayed
    busy for ``connect_timeout``.

    The request was never sent, but it is not retried: the client itself is saturated (more
    concurrent calls than connections), and another wait would only spend the retry quota.
    """

    @property
    def retryable(self) -> bool:
        return False


class ReadTimeoutError(TransportError):
    """The server did not answer within ``read_timeout`` after the request was sent."""

    timeout = True


class ConnectionClosedError(TransportError):
    """The connection was closed or reset before a complete response arrived."""


class ResponseTooLargeError(TransportError):
    """A response body read whole (not streamed) is longer than the client's
    ``max_response_body_size``; the connection was dropped without reading the rest."""


class ClientClosedError(TransportError):
    """The client is closed: a call made after ``close()``, one that was waiting for a pooled
    connection of its HTTP client when that closed (the request was not sent), or an HTTP/2
    stream open when its client closed (``request_sent`` then). Never retried: the client is
    shutting down.
    """

    request_sent = False

    @property
    def retryable(self) -> bool:
        return False


class APIError(SageMakerRuntimeError):
    """An error answered by the service (or an unmodeled error code)."""

    default_fault: ClassVar[Fault] = "client"
    default_status: ClassVar[int] = 0
    retryable_status: ClassVar[frozenset[int]] = frozenset({500, 502, 503, 504})

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        fault: Fault | None = None,
        operation: str | None = None,
        throttling: bool = False,
        transient: bool = False,
        fields: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        # The message and code come from the server: no 10 MB message, no terminal escapes.
        super().__init__(server_text(message), operation=operation)
        self.code = server_text(code, 256) if code else type(self).__name__
        self.http_status = http_status if http_status is not None else self.default_status
        self.request_id = request_id
        self.fault: Fault = fault or self.default_fault
        self.throttling = throttling
        self.transient = transient
        self.fields = dict(fields or {})
        self.url = url  # the endpoint that answered, when known

    @property
    def retryable(self) -> bool:
        return self.throttling or self.transient or self.http_status in self.retryable_status

    def describe(self) -> str:
        detail = f"{self.code}: {self.message}" if self.message else self.code
        if not self.http_status:  # an exception event of a stream whose response was a 200
            parts = ["event stream error"]
        else:
            scheme = "http" if self.url is not None and self.url.startswith("http://") else "https"
            parts = [f"{scheme} response error StatusCode: {self.http_status}"]
        if self.request_id:
            parts.append(f"RequestID: {self.request_id}")
        elif self.url is not None:
            # SageMaker always sends a request ID: without one, say who answered.
            parts.append(f"URL: {self.url}")
            if self.code == "UnknownError":
                detail += " (the answer names no error code: is this a SageMaker Runtime endpoint?)"
        return ", ".join(parts) + f", {detail}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"http_status={self.http_status!r}, request_id={self.request_id!r})"
        )


class ValidationError(APIError):
    """The service rejected the input (HTTP 400)."""

    default_status = 400


class ModelError(APIError):
    """The model container answered with an error (HTTP 424)."""

    default_status = 424

    @property
    def original_status_code(self) -> int | None:
        value = self.fields.get("OriginalStatusCode")
        return int(value) if value is not None else None

    @property
    def original_message(self) -> str | None:
        value = self.fields.get("OriginalMessage")
        return None if value is None else str(value)

    @property
    def log_stream_arn(self) -> str | None:
        value = self.fields.get("LogStreamArn")
        return None if value is None else str(value)


class ModelNotReadyException(APIError):
    """The model is not ready yet (HTTP 429); wait and try again."""

    default_status = 429


class InternalFailure(APIError):
    """The service failed (HTTP 500)."""

    default_status = 500
    default_fault = "server"


class ServiceUnavailable(APIError):
    """The service is unavailable (HTTP 503)."""

    default_status = 503
    default_fault = "server"


class InternalDependencyException(APIError):
    """A dependency of the service failed (HTTP 530)."""

    default_status = 530
    default_fault = "server"


class ModelStreamError(APIError):
    """The model failed while streaming; ``error_code`` says how."""

    @property
    def error_code(self) -> str | None:
        value = self.fields.get("ErrorCode")
        return None if value is None else str(value)


class InternalStreamFailure(APIError):
    """The stream failed inside the service; try the request again."""

    default_fault = "server"


class MaxAttemptsExceededError(SageMakerRuntimeError):
    """Every allowed attempt failed; the last error is ``__cause__``."""

    def __init__(self, attempts: int, last_error: BaseException, *, operation: str | None = None) -> None:
        super().__init__(f"exceeded maximum number of attempts, {attempts}, {_describe(last_error)}", operation=operation)
        self.attempts = attempts
        self.last_error = last_error


class RetryQuotaExceededError(SageMakerRuntimeError):
    """The client's retry quota is spent; the error that was not retried is ``__cause__``."""

    def __init__(self, available: int, requested: int, last_error: BaseException, *, operation: str | None = None) -> None:
        super().__init__(
            f"retry quota exceeded, {available} available, {requested} requested, {_describe(last_error)}",
            operation=operation,
        )
        self.available = available
        self.requested = requested
        self.last_error = last_error


class EventStreamError(SageMakerRuntimeError):
    """An event-stream frame was malformed, oversized or cut off."""


class ChecksumMismatchError(EventStreamError):
    """A CRC-32 in a frame does not match the bytes it covers."""

    def __init__(self, message: str, *, expected: int = 0, computed: int = 0) -> None:
        super().__init__(message)
        self.expected = expected
        self.computed = computed


class PreludeChecksumError(ChecksumMismatchError):
    """The prelude CRC does not match the frame's first 8 bytes."""


class MessageChecksumError(ChecksumMismatchError):
    """The message CRC does not match the frame."""


class InvalidLengthError(EventStreamError):
    """A length in the prelude is impossible or over a limit."""


class InvalidHeaderError(EventStreamError):
    """A header is malformed: bad type, bad length, overrun, duplicate name or bad UTF-8."""


class TruncatedStreamError(EventStreamError):
    """The stream ended in the middle of a frame, or its connection was lost or stalled
    (then the transport error is ``__cause__``; a stall past ``read_timeout`` sets ``timeout``)."""


class AsyncInferenceFailedError(SageMakerRuntimeError):
    """An async inference failed; ``failure_location`` holds what the endpoint wrote."""

    def __init__(self, message: str, *, failure_location: str, body: bytes, inference_id: str | None = None) -> None:
        super().__init__(message)
        self.failure_location = failure_location
        self.body = body
        self.inference_id = inference_id


class WaitTimeoutError(SageMakerRuntimeError):
    """Neither the output nor the failure location appeared within the timeout."""

    timeout = True


_MODELED: dict[str, type[APIError]] = {
    cls.__name__.lower(): cls
    for cls in (
        ValidationError,
        ModelError,
        ModelNotReadyException,
        InternalFailure,
        ServiceUnavailable,
        InternalDependencyException,
        ModelStreamError,
        InternalStreamFailure,
    )
}


def error_class_for_code(code: str) -> type[APIError]:
    """The modeled error class for a service error code (case-insensitive), else APIError."""
    return _MODELED.get(code.lower(), APIError)
