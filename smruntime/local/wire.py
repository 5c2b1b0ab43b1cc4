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
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from smruntime import service_model
from smruntime.middleware.reprs import fields_repr
from smruntime.shapes import Member, Shape

__all__ = [
    "MODELED_ERRORS",
    "BidiParams",
    "InvokeParams",
    "ServiceError",
    "error_document",
    "invoke_params_members",
    "member_problems",
    "model_error",
    "params_field",
    "parse_bidi_params",
    "parse_invoke_params",
    "read_members",
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

    __repr__ = fields_repr

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


_PARAMS_FIELDS = {"inference_component_name": "inference_component"}
"""Members whose InvokeParams field is named otherwise."""
_INVOKE_PARAMS = frozenset(attrs.fields_dict(InvokeParams))


def params_field(member: Member) -> str:
    """The InvokeParams field ``member`` is read into."""
    return _PARAMS_FIELDS.get(member.name, member.name)


def member_problems(member: Member, value: str) -> list[str]:
    """What the service would say of ``value`` for ``member`` (its row in the member table)."""
    shown = "Value" if member.sensitive else f"Value '{value}'"
    where = f"{shown} at '{member.wire_name}' failed to satisfy constraint: Member must"
    if member.type == "integer":
        try:
            number = int(value.strip())
        except ValueError:
            return [f"{where} be an integer"]
        if member.min is not None and number < member.min:
            return [f"{where} have value greater than or equal to {member.min}"]
        if member.max is not None and number > member.max:
            return [f"{where} have value less than or equal to {member.max}"]
        return []
    found: list[str] = []
    if member.max is not None and len(value) > member.max:
        found.append(f"{where} have length less than or equal to {member.max}")
    if member.min is not None and len(value) < member.min:
        found.append(f"{where} have length greater than or equal to {member.min}")
    if member.pattern is not None and not member.pattern.matches(value):
        found.append(f"{where} satisfy regular expression pattern: {member.pattern.model}")
    if member.enum and value not in member.enum:
        found.append(f"{where} satisfy enum value set: [{', '.join(member.enum)}]")
    return found


def _raise_if(problems: list[str]) -> None:
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        raise validation_error(f"{len(problems)} validation {noun} detected: " + "; ".join(problems))


def validate_endpoint_name(name: str) -> None:
    """ValidationError unless ``name`` is a valid EndpointName."""
    _raise_if(member_problems(service_model.ENDPOINT_NAME, name))


def read_members(members: Iterable[Member], headers: Mapping[str, str]) -> dict[str, Any]:
    """Read and validate the header ``members`` (case-insensitive ``headers``), by member name;
    a ValidationError lists every problem."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    # One pass over the headers rather than a case-insensitive scan of them for every member.
    by_name: dict[str, str] = {}
    for header, text in headers.items():
        by_name.setdefault(header.lower(), text)  # the first of repeated headers, as Headers.get
    for member in members:
        value = by_name.get((member.location_name or member.name).lower())
        if value is None:
            continue
        found = member_problems(member, value)
        if found:
            problems.extend(found)
        else:
            values[member.name] = int(value.strip()) if member.type == "integer" else value
    _raise_if(problems)
    return values


def parse_invoke_params(headers: Mapping[str, str], shape: Shape = service_model.INVOKE_ENDPOINT) -> InvokeParams:
    """Read and validate the header members of ``shape`` an InvokeParams holds."""
    values = read_members(invoke_params_members(shape), headers)
    return InvokeParams(**{_PARAMS_FIELDS.get(name, name): value for name, value in values.items()})


def invoke_params_members(shape: Shape) -> tuple[Member, ...]:
    """The header members of ``shape`` that InvokeParams holds (the others are the operation's own)."""
    return tuple(member for member in shape.at("header") if params_field(member) in _INVOKE_PARAMS)


# --- InvokeEndpointWithBidirectionalStream --------------------------------------------------

@attrs.frozen
class BidiParams:
    """The API headers of a bidirectional stream."""

    __repr__ = fields_repr

    target_variant: str | None = None
    model_invocation_path: str | None = None
    model_query_string: str | None = None


def parse_bidi_params(headers: Mapping[str, str]) -> BidiParams:
    """Read and validate a bidirectional stream's API headers (case-insensitive ``headers``)."""
    return BidiParams(**read_members(service_model.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM.at("header"), headers))
