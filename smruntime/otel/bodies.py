"""Recording request and response bodies on a span, only when asked, and redacted first."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

Redactor = Callable[[str], str]
"""``redact(text) -> text``: what may be recorded of a body already decoded and shortened."""

SECRET_KEYS = re.compile(
    r"(?i)^(password|passwd|secret|client_secret|api[_-]?key|access[_-]?key|secret[_-]?key|"
    r"token|access_token|refresh_token|id_token|session[_-]?token|auth|authorization|credentials?)$"
)
"""JSON keys whose values :func:`redact_json` replaces (whole names only: ``max_tokens`` stays)."""

REDACTED = "<redacted>"


def redact_json(text: str) -> str:
    """The default redaction: in a JSON document, the value of every key named like a secret
    (:data:`SECRET_KEYS`) becomes ``<redacted>``; text that is not whole JSON is kept as is
    (a shortened document no longer parses, so shortening never leaks a secret it cut into:
    bodies are redacted before they are shortened)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return json.dumps(_redacted(document), ensure_ascii=False, separators=(",", ":"))


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and SECRET_KEYS.match(key) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def body_text(body: Any, limit: int, redact: Redactor) -> str:
    """What a span records of a body: UTF-8 text redacted, then cut to ``limit`` characters;
    binary or file bodies as their size or kind only."""
    if isinstance(body, str):
        text = body
    elif isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(body)} bytes, not UTF-8>"
    elif body is None:
        return ""
    else:
        return f"<{type(body).__name__}>"  # a file body is never read here: it is sent as is
    text = redact(text)
    if len(text) > limit:
        return text[:limit] + f"…<{len(text) - limit} more chars>"
    return text
