"""The rest-json protocol pieces every operation shares: headers, paths, errors."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

from smruntime import errors, keys
from smruntime import middleware as _mw
from smruntime.endpoints import join_url
from smruntime.http import Headers, HTTPRequest, HTTPResponse
from smruntime.middleware import Transform
from smruntime.operations import bodies
from smruntime.retry import THROTTLING_CODES, TRANSIENT_CODES
from smruntime.shapes import Member, Shape
from smruntime.stack_types import Context, DeserializeOutput, SerializeOutput

if TYPE_CHECKING:
    from smruntime.transport.async_protocol import AsyncHTTPResponse

_THROTTLING = frozenset(code.lower() for code in THROTTLING_CODES)
_TRANSIENT = frozenset(code.lower() for code in TRANSIENT_CODES)

REQUEST_ID_HEADERS = ("x-amzn-RequestId", "x-amz-request-id")


def label(value: str) -> str:
    """A URI label: percent-encoded once, every reserved character included."""
    return quote(value, safe="")


def operation_url(base: str, endpoint_name: str, action: str) -> str:
    """``base`` + ``/endpoints/{EndpointName}/{action}``, the name as a URI label."""
    return join_url(base, f"/endpoints/{label(endpoint_name)}/{action}")


ParamsT = TypeVar("ParamsT")


class OperationSerializer(Transform[_mw.SerializeInput[ParamsT, HTTPRequest], SerializeOutput], Generic[ParamsT]):
    """Builds an operation's POST from its input table: the URI label, the header members
    (a member's ``default`` sent when the input has none, as the Go SDK does), the payload."""

    id = "OperationSerializer"
    __slots__ = ("_url", "action", "defaults", "headers", "label", "payload")

    def __init__(self, action: str, input: Shape) -> None:
        self.action = action
        # Memoized per serializer, so per client (each stack gets its own): a client calls the
        # same few endpoints over and over, and quoting costs more than the rest of serializing.
        self._url = lru_cache(maxsize=256)(operation_url)
        (label,) = input.at("uri")
        self.label = label.name
        bound = input.at("header")
        self.defaults = tuple((m.name, _name(m), m.default) for m in bound if m.default is not None)
        self.headers = tuple((m.name, _name(m)) for m in bound if m.default is None)
        self.payload = next((member.name for member in input.held if member.location == "payload"), None)

    def before(self, ctx: Context, in_: _mw.SerializeInput[ParamsT, HTTPRequest]) -> _mw.SerializeInput[ParamsT, HTTPRequest]:
        params = in_.parameters
        request = in_.request
        request.method = "POST"
        request.url = self._url(request.url, getattr(params, self.label), self.action)
        headers = request.headers
        for attribute, header, default in self.defaults:
            value = getattr(params, attribute)
            headers[header] = value if value is not None else default
        for attribute, header in self.headers:
            value = getattr(params, attribute)
            if value is not None:
                headers[header] = value if isinstance(value, str) else str(value)
        payload = self.payload
        body = None if payload is None else bodies.to_request_body(getattr(params, payload), ctx.operation_name)
        request.body = b"" if body is None else body
        return in_


HeaderBindings = tuple[tuple[str, str], ...]
"""``(member, lower-case header name)`` pairs: the members an output reads from headers."""


def header_bindings(output: Shape) -> HeaderBindings:
    """The header members of ``output``, to read a response with :func:`read_headers`."""
    return tuple((member.name, _name(member).lower()) for member in output.at("header"))


def read_headers(bindings: HeaderBindings, headers: Headers) -> dict[str, str]:
    """The bound members a response's ``headers`` carry, by name; an absent one is left out
    (the output's default applies), which keeps the common answer's few values quick to pass."""
    values = headers.lower_dict()  # one pass; the lookups below are plain dict reads
    found = {}
    for name, header in bindings:  # a plain loop: quicker than a comprehension's own frame
        if header in values:
            found[name] = values[header]
    return found


def _name(member: Member) -> str:
    if member.location_name is None:
        raise ValueError(f"{member.name} is bound to a {member.location} without a name")
    return member.location_name


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
            # SageMaker always sends a request ID: without one, say what the answer likely is.
            hint = "" if request_id(response) else " (no request ID: is this a SageMaker Runtime endpoint?)"
            raise errors.DeserializationError(
                f"failed to decode the error body of an HTTP {response.status_code} response{origin} as a JSON object"
                f"{hint}",
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

