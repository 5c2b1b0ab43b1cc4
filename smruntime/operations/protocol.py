"""The rest-json protocol pieces every operation shares: headers, paths, errors."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from smruntime import errors, keys
from smruntime import middleware as _mw
from smruntime.endpoints import join_url
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.middleware import Transform
from smruntime.operations import bodies
from smruntime.retry import THROTTLING_CODES, TRANSIENT_CODES
from smruntime.stack_types import Context, DeserializeOutput, SerializeOutput

if TYPE_CHECKING:
    from smruntime.transport.async_protocol import AsyncHTTPResponse
    from smruntime.types import BodyInput

_THROTTLING = frozenset(code.lower() for code in THROTTLING_CODES)
_TRANSIENT = frozenset(code.lower() for code in TRANSIENT_CODES)

REQUEST_ID_HEADERS = ("x-amzn-RequestId", "x-amz-request-id")


def label(value: str) -> str:
    """A URI label: percent-encoded once, every reserved character included."""
    return quote(value, safe="")


@lru_cache(maxsize=256)
def operation_url(base: str, endpoint_name: str, action: str) -> str:
    """``base`` + ``/endpoints/{EndpointName}/{action}``, the name as a URI label.

    Memoized: a client calls the same few endpoints over and over, and quoting costs more
    than the rest of serializing a request.
    """
    return join_url(base, f"/endpoints/{label(endpoint_name)}/{action}")


class OperationParams(Protocol):
    """What :class:`OperationSerializer` reads of every operation's input besides its headers."""

    @property
    def endpoint_name(self) -> str: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def body(self) -> BodyInput | None: ...


ParamsT = TypeVar("ParamsT", bound=OperationParams)

HeaderBindings = tuple[tuple[str, str], ...]
"""``(input attribute, header name)`` pairs: the members an operation sends as headers."""


class OperationSerializer(Transform[_mw.SerializeInput[ParamsT, HTTPRequest], SerializeOutput], Generic[ParamsT]):
    """Builds an operation's POST: the endpoint name as a path label, header bindings, payload.

    ``default_content_type`` is sent as ``Content-Type`` when the input has none (as the Go
    SDK does); ``None`` means the operation binds its content type elsewhere (in ``headers``).
    """

    id = "OperationSerializer"
    __slots__ = ("action", "default_content_type", "has_payload", "headers")

    def __init__(
        self,
        action: str,
        headers: HeaderBindings,
        *,
        default_content_type: str | None = "application/octet-stream",
        has_payload: bool = True,
    ) -> None:
        self.action = action
        self.headers = headers
        self.default_content_type = default_content_type
        self.has_payload = has_payload

    def before(self, ctx: Context, in_: _mw.SerializeInput[ParamsT, HTTPRequest]) -> _mw.SerializeInput[ParamsT, HTTPRequest]:
        params = in_.parameters
        request = in_.request
        request.method = "POST"
        request.url = operation_url(request.url, params.endpoint_name, self.action)
        headers = request.headers
        if self.default_content_type is not None:
            headers["Content-Type"] = params.content_type if params.content_type is not None else self.default_content_type
        for attribute, header in self.headers:
            value = getattr(params, attribute)
            if value is not None:
                headers[header] = value if isinstance(value, str) else str(value)
        body = bodies.to_request_body(params.body, ctx.operation_name) if self.has_payload else None
        request.body = b"" if body is None else body
        return in_


def check_status(ctx: Context, out: DeserializeOutput) -> HTTPResponse:
    """The raw response if it is a 2xx; otherwise raise the service error it carries."""
    response: HTTPResponse = out.raw_response
    if not 200 <= response.status_code < 300:
        endpoint = ctx.get(keys.ENDPOINT)
        raise parse_error(response, ctx.operation_name, url=endpoint.url if endpoint is not None else None)
    return response


def request_id(response: HTTPResponse | AsyncHTTPResponse) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def sanitize_error_code(raw: str) -> str:
    """``ns#Code:extra`` → ``Code``."""
    code = raw.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code.strip()


def parse_error(response: HTTPResponse, operation: str, *, url: str | None = None) -> errors.APIError:
    """The service error a non-2xx response carries (the body is read and released).

    The code comes from ``X-Amzn-ErrorType`` first, then the body's ``code``/``__type``;
    it is cleaned and matched case-insensitively against the modeled errors. ``url``, the
    endpoint that answered, goes into the error, which shows it when the answer does not
    look like SageMaker's (no request ID).
    """
    raw_body = response.read()
    document: dict[str, Any] = {}
    if raw_body.strip():
        try:
            parsed = json.loads(raw_body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            parsed = None
        if isinstance(parsed, dict):
            document = parsed
        elif response.headers.get("X-Amzn-ErrorType") is None:
            origin = f" from {url}" if url else ""
            raise errors.DeserializationError(
                f"failed to decode the error body of an HTTP {response.status_code} response{origin} as a JSON object",
                snapshot=raw_body,
                http_status=response.status_code,
                operation=operation,
            )
    lowered = {str(key).lower(): value for key, value in document.items()}
    header_code = response.headers.get("X-Amzn-ErrorType")
    body_code = lowered.get("code") or lowered.get("__type")
    code = sanitize_error_code(header_code or str(body_code or "")) or "UnknownError"
    message = lowered.get("message")
    cls = errors.error_class_for_code(code)
    fields = {key: value for key, value in document.items() if str(key).lower() not in ("message", "code", "__type")}
    return cls(
        "" if message is None else str(message),
        code=cls.__name__ if cls is not errors.APIError else code,
        http_status=response.status_code,
        request_id=request_id(response),
        fault="server" if response.status_code >= 500 else "client",
        operation=operation,
        throttling=code.lower() in _THROTTLING,
        transient=code.lower() in _TRANSIENT,
        fields=fields,
        url=url,
    )

