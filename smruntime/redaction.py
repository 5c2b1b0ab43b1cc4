"""Keeping secrets out of logs, reprs, error messages and recorded bodies: the one place that
says what a secret looks like."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

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


SECRET_KEYS = frozenset({
    "password", "passwd", "passphrase", "secret", "clientsecret", "apisecret", "apikey", "xapikey",
    "accesskey", "secretkey", "secretaccesskey", "privatekey", "signingkey", "encryptionkey", "token", "accesstoken",
    "refreshtoken", "idtoken", "sessiontoken", "securitytoken", "bearertoken", "apitoken", "authtoken", "bearer",
    "jwt", "auth", "authorization", "credential", "credentials", "cookie", "connectionstring",
})
"""Names of JSON keys whose values :func:`redact_json` replaces, compared lower-cased without
``_``, ``-``, ``.`` or spaces, so ``accessToken``, ``access_token`` and ``Access-Token`` are one
name. A key matches when it is one of these names or ends with one (``db_password``,
``OPENAI_API_KEY``, ``X-Auth-Token``, ``set-cookie``), except ``token`` and ``auth``, which
match only whole: ``eos_token`` and ``max_tokens`` are a model's settings, not secrets."""

_SEPARATORS = str.maketrans("", "", "_-. ")
_SECRET_ENDINGS = tuple(sorted(SECRET_KEYS - {"token", "auth"}))
_MODEL_TOKENS = frozenset({
    "eostoken", "bostoken", "padtoken", "unktoken", "septoken", "clstoken", "masktoken", "starttoken", "endtoken",
    "stoptoken", "nexttoken", "decoderstarttoken", "lasttoken", "firsttoken",
})
"""Names ending with ``token`` that are a model's settings or output, not credentials."""


def is_secret_key(key: str) -> bool:
    """Whether a JSON key names a secret (:data:`SECRET_KEYS`; also ``HF_TOKEN``,
    ``github_token`` and other ``…token`` names but a model's own: ``eos_token``, ``pad_token``…)."""
    name = key.lower().translate(_SEPARATORS)
    return (name in SECRET_KEYS or name.endswith(_SECRET_ENDINGS)
            or name.removesuffix("s").endswith(_SECRET_ENDINGS)  # api_keys, passwords, secrets
            or (name.endswith("token") and name not in _MODEL_TOKENS))


def redact_json(text: str) -> str:
    """The default redaction: in a JSON document, the value of every key named like a secret
    (:data:`SECRET_KEYS`) becomes ``<redacted>``. Text that is not one JSON document is taken
    line by line, so JSON Lines and server-sent events (``data: {...}``) are redacted too; a
    line that is not JSON, or names no secret, is kept as it is (a redacted document is written
    compactly). Bodies are redacted before they are shortened."""
    whole = _redacted_document(text)
    if whole is not None:
        return whole
    lines = text.split("\n")
    for index, line in enumerate(lines):
        head, document = ("data: ", line[5:]) if line.startswith("data:") else ("", line)
        found = _redacted_document(document)
        if found is not None and found is not document:
            lines[index] = head + found
    return "\n".join(lines)


def _redacted_document(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        document = json.loads(stripped)
    except ValueError:
        return None
    except RecursionError:
        return TOO_DEEP
    try:
        if not _names_a_secret(document):
            return text
        return json.dumps(_redacted(document), ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # valid JSON, nested deeper than can be walked: none of it is shown
        return TOO_DEEP


TOO_DEEP = "<redacted: JSON nested too deeply to check for secrets>"
"""What :func:`redact_json` gives for a document it cannot walk."""


def _names_a_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any((isinstance(key, str) and is_secret_key(key)) or _names_a_secret(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_names_a_secret(item) for item in value)
    return False


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value
