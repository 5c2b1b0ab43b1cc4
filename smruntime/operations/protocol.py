"""The rest-json protocol pieces every operation shares: headers, paths, errors."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from smruntime import errors
from smruntime.endpoints import join_url
from smruntime.http import HTTPResponse
from smruntime.retry import THROTTLING_CODES, TRANSIENT_CODES

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


def request_id(response: HTTPResponse) -> str | None:
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


def parse_error(response: HTTPResponse, operation: str) -> errors.APIError:
    """The service error a non-2xx response carries (the body is read and released).

    The code comes from ``X-Amzn-ErrorType`` first, then the body's ``code``/``__type``;
    it is cleaned and matched case-insensitively against the modeled errors.
    """
    raw_body = response.read()
    document: dict[str, Any] = {}
    if raw_body.strip():
        try:
            parsed = json.loads(raw_body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            document = parsed
        elif response.headers.get("X-Amzn-ErrorType") is None:
            raise errors.DeserializationError(
                f"failed to decode the error body of an HTTP {response.status_code} response as a JSON object",
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
    )

