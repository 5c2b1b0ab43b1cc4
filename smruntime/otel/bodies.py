"""Recording request and response bodies on a span, only when asked, and redacted first."""

from __future__ import annotations

import json
from typing import Any, Callable

Redactor = Callable[[str], str]
"""``redact(text) -> text``: what may be recorded of a body already decoded and shortened."""

SECRET_KEYS = frozenset({
    "password", "passwd", "passphrase", "secret", "clientsecret", "apikey", "xapikey", "accesskey", "secretkey",
    "secretaccesskey", "awssecretaccesskey", "awssessiontoken", "privatekey", "token", "accesstoken", "refreshtoken", "idtoken", "sessiontoken",
    "securitytoken", "xamzsecuritytoken", "bearertoken", "auth", "authorization", "proxyauthorization",
    "credential", "credentials", "cookie", "setcookie",
})
"""JSON keys whose values :func:`redact_json` replaces, compared lower-cased without ``_``,
``-``, ``.`` or spaces: ``accessToken``, ``access_token`` and ``X-Api-Key`` all match, as whole
names only (``max_tokens`` stays)."""

_SEPARATORS = str.maketrans("", "", "_-. ")


def is_secret_key(key: str) -> bool:
    """Whether a JSON key names a secret (:data:`SECRET_KEYS`)."""
    return key.lower().translate(_SEPARATORS) in SECRET_KEYS


REDACTED = "<redacted>"


def redact_json(text: str) -> str:
    """The default redaction: in a JSON document, the value of every key named like a secret
    (:data:`SECRET_KEYS`) becomes ``<redacted>``. Text that is not one JSON document is taken
    line by line, so JSON Lines and server-sent events (``data: {...}``) are redacted too; a
    line that is not JSON is kept as it is. Bodies are redacted before they are shortened."""
    whole = _redacted_document(text)
    if whole is not None:
        return whole
    lines = text.split("\n")
    for index, line in enumerate(lines):
        head, document = ("data: ", line[5:]) if line.startswith("data:") else ("", line)
        found = _redacted_document(document)
        if found is not None:
            lines[index] = head + found
    return "\n".join(lines)


def _redacted_document(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        document = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return json.dumps(_redacted(document), ensure_ascii=False, separators=(",", ":"))


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


STREAM_CAPTURE_LIMIT = 1024 * 1024
"""Bytes of a streamed answer kept for recording; past it the capture stops at a line's end."""


def stream_capture(captured: bytearray, data: bytes) -> bool:
    """Add a part of a streamed answer to what is kept; False once the capture is complete.

    At most :data:`STREAM_CAPTURE_LIMIT` bytes are kept, and a capture cut short ends at its
    last complete line, so every line kept can be redacted whole.
    """
    room = STREAM_CAPTURE_LIMIT - len(captured)
    if len(data) < room:
        captured += data
        return True
    cut = data.rfind(b"\n", 0, room)
    if cut >= 0:
        captured += data[: cut + 1]
    return False


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
