"""Keeping secrets out of logs, reprs and error messages."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

REDACTED = "<redacted>"

SECRET_HEADERS = frozenset({"authorization", "x-amz-security-token", "proxy-authorization"})
"""Headers whose values are never shown."""

SENSITIVE_HEADERS = frozenset({"x-amzn-sagemaker-custom-attributes"})
"""Headers the service model marks sensitive: shown only when bodies may be logged."""

_SIGNATURE = r"(Signature=)[0-9a-fA-F]+"  # compiled by re's cache on first use, not at import


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]], *, sensitive: bool = False) -> dict[str, str]:
    """A copy of ``headers`` with secrets replaced (and sensitive values too unless ``sensitive``)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    hidden = SECRET_HEADERS if sensitive else SECRET_HEADERS | SENSITIVE_HEADERS
    return {name: (REDACTED if name.lower() in hidden else value) for name, value in pairs}


def redact_text(text: str) -> str:
    """Hide SigV4 signatures that may appear inside free text."""
    return re.sub(_SIGNATURE, r"\1" + REDACTED, text)
