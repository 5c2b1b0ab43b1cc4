"""The SageMaker Runtime wire format as the local endpoint speaks it: headers, inputs, errors.

Errors go out like the service's: a JSON body ``{"Message": ...}`` (ModelError adds
``ErrorCode``, ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``), the code in
``X-Amzn-ErrorType`` and the request id in ``x-amzn-RequestId``. Errors the service model does not
declare (authentication, throttling, an oversized body) come from AWS's front end, whose
bodies spell it ``{"message": ...}``. Input validation messages
follow the AWS shape ``1 validation error detected: Value 'x' at 'member' failed to satisfy
constraint: ...``; values of sensitive members are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "BIDI_HEADERS",
    "HEADER_RULES",
    "INVOKE_ENDPOINT_HEADERS",
    "MODELED_ERRORS",
    "STREAM_HEADERS",
    "BidiParams",
    "HeaderRule",
    "InvokeParams",
    "ServiceError",
    "error_document",
    "model_error",
    "parse_bidi_params",
    "parse_invoke_params",
    "service_error_for_status",
    "throttling_error",
    "validate_endpoint_name",
    "validation_error",
]

MAX_MESSAGE = 2048
"""Message and OriginalMessage are at most 2048 characters in the service model."""

MODELED_ERRORS = frozenset({
    "ValidationError", "ModelError", "ModelNotReadyException", "InternalFailure", "ServiceUnavailable",
    "InternalDependencyException",
})
"""The service model's error shapes; their bodies carry the model's ``Message`` member."""


def error_document(message: str, fields: Mapping[str, Any] | None = None, *, key: str = "Message") -> bytes:
    """An error's JSON body: the message under ``key``, then the error's other members."""
    return json.dumps({key: message, **(fields or {})}).encode()


class ServiceError(Exception):
    """An error answered to the client: status, code (None: no X-Amzn-ErrorType) and message."""

    def __init__(self, status: int, code: str | None, message: str, *, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})

    def body(self) -> bytes:
        """The JSON error document, spelled as whoever answers this error spells it."""
        key = "Message" if self.code in MODELED_ERRORS else "message"
        return error_document(self.message, self.fields, key=key)


def validation_error(message: str) -> ServiceError:
    return ServiceError(400, "ValidationError", message)


def throttling_error() -> ServiceError:
    return ServiceError(400, "ThrottlingException", "Rate exceeded")


_STATUS_ERRORS = {
    500: ("InternalFailure", "An internal failure occurred."),
    503: ("ServiceUnavailable", "The service is unavailable. Try your request again."),
    429: ("ModelNotReadyException", "Model is not ready to serve requests. Try your request again."),
    530: ("InternalDependencyException", "An internal dependency failed. Try your request again."),
    424: ("ModelError", "Received server error (500) from primary with message \"injected fault\"."),
    400: ("ThrottlingException", "Rate exceeded"),
}


def service_error_for_status(status: int, message: str | None = None) -> ServiceError:
    """The modeled service error a status stands for (400 means throttling)."""
    if status not in _STATUS_ERRORS:
        raise ValueError(f"no service error for status {status}; use one of {sorted(_STATUS_ERRORS)}")
    code, default = _STATUS_ERRORS[status]
    fields = ({"ErrorCode": _model_error_code(500), "OriginalStatusCode": 500, "OriginalMessage": "injected fault"}
              if status == 424 else None)
    return ServiceError(status, code, message or default, fields=fields)


def _model_error_code(status: int) -> str:
    # The service answers a container's 4xx with CLIENT_ERROR_FROM_MODEL; for a 5xx (or no
    # answer) its counterpart is assumed, as no published answer shows one.
    return "CLIENT_ERROR_FROM_MODEL" if 400 <= status < 500 else "SERVER_ERROR_FROM_MODEL"


def model_error(*, status: int, original: str, container: str, endpoint: str, region: str, account: str) -> ServiceError:
    """ModelError (424) for a container that answered ``status`` (0: it did not answer) with ``original``."""
    kind = "client" if 400 <= status < 500 else "server"
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    see = (f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
           f"#logEventViewer:group={group} in account {account} for more information.")
    prefix = f"Received {kind} error ({status}) from {container} with message \""
    suffix = f"\". {see}"
    room = max(MAX_MESSAGE - len(prefix) - len(suffix), 0)
    shown = original if len(original) <= room else original[: max(room - 3, 0)] + "..."
    return ServiceError(
        424,
        "ModelError",
        prefix + shown + suffix,
        fields={
            "ErrorCode": _model_error_code(status),
            "OriginalStatusCode": status,
            "OriginalMessage": original[:MAX_MESSAGE],
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
        },
    )


# --- inputs ---------------------------------------------------------------------------------

@attrs.frozen
class InvokeParams:
    """The API headers of an invocation, by InvokeEndpoint member."""

    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None


INVOKE_ENDPOINT_HEADERS = {
    "content_type": "Content-Type",
    "accept": "Accept",
    "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "target_model": "X-Amzn-SageMaker-Target-Model",
    "target_variant": "X-Amzn-SageMaker-Target-Variant",
    "target_container_hostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "inference_id": "X-Amzn-SageMaker-Inference-Id",
    "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
    "inference_component": "X-Amzn-SageMaker-Inference-Component",
    "session_id": "X-Amzn-SageMaker-Session-Id",
    "prefix_aware_id": "X-Amzn-SageMaker-Prefix-Aware-Id",
}
"""InvokeEndpoint: InvokeParams field -> request header."""

STREAM_HEADERS = {
    **{field: header for field, header in INVOKE_ENDPOINT_HEADERS.items()
       if field not in ("target_model", "enable_explanations")},
    "accept": "X-Amzn-SageMaker-Accept",
}
"""InvokeEndpointWithResponseStream: no TargetModel or EnableExplanations; Accept moves."""

_ASCII = r"\p{ASCII}*"
_PRINT = r"\A\S[\p{Print}]*\z"
_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_COMPONENT = r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$"
_SESSION = r"^(NEW_SESSION)$|^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
_INVOCATION_PATH = r"^[A-Za-z0-9\-._]+(?:/[A-Za-z0-9\-._]+)*$"
_QUERY_PAIR = r"[a-zA-Z0-9][A-Za-z0-9_-]*=(?:[A-Za-z0-9._~\-]|%[0-9A-Fa-f]{2})+"
_QUERY_STRING = rf"^{_QUERY_PAIR}(?:&{_QUERY_PAIR})*$"

# Python equivalents of the model's (Java) patterns; \p{Print} is printable ASCII there.
_PYTHON_PATTERNS = {
    _ASCII: re.compile(r"[\x00-\x7f]*"),
    _PRINT: re.compile(r"[\x21-\x7e][\x20-\x7e]*"),
    _NAME: re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
    _COMPONENT: re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"),
    _SESSION: re.compile(r"NEW_SESSION|[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
    _INVOCATION_PATH: re.compile(_INVOCATION_PATH),
    _QUERY_STRING: re.compile(_QUERY_STRING),
}


@attrs.frozen
class HeaderRule:
    """A member's constraints as the service model states them (its Java pattern included)."""

    member: str
    max_length: int
    pattern: str
    min_length: int = 0
    sensitive: bool = False


HEADER_RULES: dict[str, HeaderRule] = {
    "content_type": HeaderRule("contentType", 1024, _ASCII),
    "accept": HeaderRule("accept", 1024, _ASCII),
    "custom_attributes": HeaderRule("customAttributes", 1024, _ASCII, sensitive=True),
    "target_model": HeaderRule("targetModel", 1024, _PRINT, min_length=1),
    "target_variant": HeaderRule("targetVariant", 63, _NAME),
    "target_container_hostname": HeaderRule("targetContainerHostname", 63, _NAME),
    "inference_id": HeaderRule("inferenceId", 64, _PRINT, min_length=1),
    "enable_explanations": HeaderRule("enableExplanations", 64, ".*", min_length=1),
    "inference_component": HeaderRule("inferenceComponentName", 63, _COMPONENT),
    "session_id": HeaderRule("sessionId", 256, _SESSION),
    "prefix_aware_id": HeaderRule("prefixAwareId", 64, _PRINT, min_length=1),
}
"""InvokeParams field -> its rule (the stream's SessionId, which refuses NEW_SESSION, is checked in ``streaming``)."""
_ENDPOINT_NAME = HeaderRule("endpointName", 63, _NAME)


def _problems(rule: HeaderRule, value: str) -> list[str]:
    shown = "Value" if rule.sensitive else f"Value '{value}'"
    where = f"{shown} at '{rule.member}' failed to satisfy constraint: Member must"
    found = []
    if len(value) > rule.max_length:
        found.append(f"{where} have length less than or equal to {rule.max_length}")
    if len(value) < rule.min_length:
        found.append(f"{where} have length greater than or equal to {rule.min_length}")
    python = _PYTHON_PATTERNS.get(rule.pattern)
    if python is not None and not python.fullmatch(value):
        found.append(f"{where} satisfy regular expression pattern: {rule.pattern}")
    return found


def _raise_if(problems: list[str]) -> None:
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        raise validation_error(f"{len(problems)} validation {noun} detected: " + "; ".join(problems))


def validate_endpoint_name(name: str) -> None:
    """ValidationError unless ``name`` is a valid EndpointName."""
    _raise_if(_problems(_ENDPOINT_NAME, name))


def parse_invoke_params(headers: Mapping[str, str], names: Mapping[str, str] = INVOKE_ENDPOINT_HEADERS) -> InvokeParams:
    """Read and validate the API headers (``names``: field -> header, case-insensitive ``headers``)."""
    return InvokeParams(**_read_headers(headers, names, HEADER_RULES))


def _read_headers(headers: Mapping[str, str], names: Mapping[str, str],
                  rules: Mapping[str, HeaderRule]) -> dict[str, str]:
    """field -> value of the headers present; a ValidationError listing every rule broken."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for field, header in names.items():
        value = headers.get(header)
        if value is None:
            continue
        problems.extend(_problems(rules[field], value))
        values[field] = value
    _raise_if(problems)
    return values


# --- InvokeEndpointWithBidirectionalStream --------------------------------------------------

@attrs.frozen
class BidiParams:
    """The API headers of a bidirectional stream."""

    target_variant: str | None = None
    model_invocation_path: str | None = None
    model_query_string: str | None = None


BIDI_HEADERS = {
    "target_variant": "X-Amzn-SageMaker-Target-Variant",
    "model_invocation_path": "X-Amzn-SageMaker-Model-Invocation-Path",
    "model_query_string": "X-Amzn-SageMaker-Model-Query-String",
}
"""InvokeEndpointWithBidirectionalStream: BidiParams field -> request header."""

BIDI_HEADER_RULES: dict[str, HeaderRule] = {
    "target_variant": HEADER_RULES["target_variant"],
    "model_invocation_path": HeaderRule("modelInvocationPath", 100, _INVOCATION_PATH),
    "model_query_string": HeaderRule("modelQueryString", 2048, _QUERY_STRING),
}


def parse_bidi_params(headers: Mapping[str, str]) -> BidiParams:
    """Read and validate a bidirectional stream's API headers (case-insensitive ``headers``)."""
    return BidiParams(**_read_headers(headers, BIDI_HEADERS, BIDI_HEADER_RULES))
