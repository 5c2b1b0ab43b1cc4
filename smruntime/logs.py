"""Request and response logging through the ``smruntime`` logger, secrets redacted."""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Final

from smruntime import keys
from smruntime.errors import server_text
from smruntime.http import BytesBody, HTTPRequest, HTTPResponse
from smruntime.middleware import Transform
from smruntime.redaction import redact_headers, redact_json, redact_text
from smruntime.stack_types import Context, DeserializeInput, DeserializeOutput

if TYPE_CHECKING:
    import logging


class LogMode(enum.Flag):
    """What the ``smruntime`` logger records at DEBUG (secrets are always redacted)."""

    NONE = 0
    REQUEST = enum.auto()
    REQUEST_BODY = enum.auto()
    RESPONSE = enum.auto()
    RESPONSE_BODY = enum.auto()
    RETRIES = enum.auto()
    SIGNING = enum.auto()
    ALL = REQUEST | REQUEST_BODY | RESPONSE | RESPONSE_BODY | RETRIES | SIGNING


NOT_LOGGING: Final = LogMode.NONE
"""``LogMode.NONE`` as a module global, for the per-call "is anything logged?" checks: an
identity test costs a tenth of a flag's truth test or a member lookup on the enum class.
Every mode whose value is 0 is this very member."""

BODY_LOG_LIMIT = 1024
"""Bytes of a body shown in a log line; the rest is summarized."""
RESPONSE_LOG_LIMIT = 16 * 1024
"""Characters of a response line: its headers are the server's, up to megabytes of them."""


def logger_for(ctx: Context) -> logging.Logger:
    """The call's logger, else the ``smruntime`` logger (logging loads when a call first logs)."""
    logger: logging.Logger | None = getattr(ctx.options, "logger", None)
    if logger is None:
        import logging

        logger = logging.getLogger("smruntime")
    return logger


def _show_body(body: object) -> str:
    if body is None:
        return "<empty>"
    if isinstance(body, bytes):
        body = _redacted_body(body)
        shown = body[:BODY_LOG_LIMIT]
        more = f" … ({len(body)} bytes)" if len(body) > BODY_LOG_LIMIT else ""
        return repr(shown) + more
    return f"<{type(body).__name__} stream>"


REDACT_LIMIT = 1024 * 1024
"""Bytes of a logged body up to which the values of secret-named JSON keys are hidden."""


def _redacted_body(body: bytes) -> bytes:
    """``body`` with the values of its secret-named JSON keys hidden (JSON, JSON Lines and
    server-sent events; see :func:`~smruntime.redaction.redact_json`), else as it is. JSON too
    large to check is not shown."""
    if not re.match(rb"\s*[{\[d]", body):  # not JSON, JSON Lines or server-sent events
        return body
    if len(body) > REDACT_LIMIT:
        return f"<{len(body)} bytes of what may be JSON, too large to check for secrets>".encode()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    redacted = redact_json(text)
    return body if redacted == text else redacted.encode("utf-8")


class RequestResponseLogger(Transform[DeserializeInput, DeserializeOutput]):
    """Logs each attempt's request as sent and the response as received (by ``log_mode``).

    On an asyncio chain the response body it logs is already in memory (the async client
    reads every body but a live event stream before the Deserialize step), so it never waits.
    """

    id = "RequestResponseLogger"

    # The mode is read inline in both hooks: they run on every call, logging or not.

    def before(self, ctx: Context, in_: DeserializeInput) -> DeserializeInput:
        options = ctx.options
        mode: LogMode = options.log_mode if options is not None else NOT_LOGGING
        if mode is not NOT_LOGGING and mode & (LogMode.REQUEST | LogMode.REQUEST_BODY):
            request: HTTPRequest = in_.request
            line = f"{ctx.operation_name} request: {request.method} {request.url} headers={redact_headers(request.headers, sensitive=_with_bodies(mode))}"
            if mode & LogMode.REQUEST_BODY:
                line += f" body={_show_body(request.body)}"
            logger_for(ctx).debug(redact_text(line))
        return in_

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        options = ctx.options
        mode: LogMode = options.log_mode if options is not None else NOT_LOGGING
        if mode is not NOT_LOGGING and mode & (LogMode.RESPONSE | LogMode.RESPONSE_BODY):
            response: HTTPResponse = out.raw_response
            line = f"{ctx.operation_name} response: {response.status_code} headers={redact_headers(response.headers, sensitive=_with_bodies(mode))}"
            if mode & LogMode.RESPONSE_BODY and not ctx.get(keys.STREAM_RESPONSE, False):
                data = response.read()
                response.body = BytesBody(data)  # read once for the log; the deserializer reads the copy
                line += f" body={_show_body(data)}"
            logger_for(ctx).debug(redact_text(server_text(line, RESPONSE_LOG_LIMIT)))
        return out


def _with_bodies(mode: LogMode) -> bool:
    return bool(mode & (LogMode.REQUEST_BODY | LogMode.RESPONSE_BODY))
