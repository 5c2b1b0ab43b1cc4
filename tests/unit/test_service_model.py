"""Every operation against the installed botocore's service model for sagemaker-runtime.

The expectations come from smruntime's own declarations (each operation's input type, header
bindings, member order and validator; the output types; the local endpoint's header rules) and
are compared with botocore's model, so a member the model gains, or a limit it changes, fails
here instead of going unnoticed. The validators are compared by behaviour: values at and just
past every length and range bound, and printable-ASCII probes for every pattern, must be
accepted or refused as the model's constraints say.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import botocore.session
import pytest
from botocore import xform_name
from botocore.model import OperationModel, Shape, StructureShape

from smruntime import Client, PayloadPart, errors, operations
from smruntime.eventstream import encode_message
from smruntime.http import HTTPResponse
from smruntime.local import wire
from smruntime.local.async_inference import ASYNC_HEADERS
from smruntime.streaming import ResponseStream
from smruntime.transport import MockHTTPClient

MODEL = botocore.session.get_session().get_service_model("sagemaker-runtime")
NAMES = sorted(MODEL.operation_names)

# A valid input to vary one member of at a time. InvokeEndpointAsync takes its payload from
# InputLocation or Body, exactly one of them (the model requires neither, the service one).
VALID: dict[str, dict[str, Any]] = {
    "InvokeEndpoint": {"endpoint_name": "ep", "body": b"x"},
    "InvokeEndpointWithResponseStream": {"endpoint_name": "ep", "body": b"x"},
    "InvokeEndpointAsync": {"endpoint_name": "ep", "input_location": "s3://bucket/key"},
}
EXCLUSIVE = {
    ("InvokeEndpointAsync", "body"): ("input_location", "s3://bucket/key"),
    ("InvokeEndpointAsync", "input_location"): ("body", b"x"),
}

# Where smruntime knowingly accepts more than the model: the local endpoint reads file:// inputs.
WIDER = {("InvokeEndpointAsync", "input_location"): re.compile(r"file://.+")}

# Printable-ASCII values that tell the model's patterns apart (header values carry nothing else).
PROBES = (
    "a", "A1", "a-b", "a--b", "-a", "a-", "a_b", "a b", " a", "a ", "NEW_SESSION", "NEW_SESSION2", "x.y",
    "x.y.z", "a/b", "s3://bucket/key", "https://host/path", "s3:x", "https:x", "file:///tmp/x", "~!@#$%^&*()",
    "'quoted'", "`true`", '{"a": 1}', "trace=abc; x=1",
)


def operation(name: str) -> operations.Operation:
    return operations.get(name)


def model(name: str) -> OperationModel:
    return MODEL.operation_model(name)


def members(shape: StructureShape | None) -> dict[str, Shape]:
    return dict(shape.members) if shape is not None else {}


def header_bindings(name: str) -> dict[str, str]:
    """Input field -> the header it is sent in, as the operation's serializer declares it."""
    serializer: Any = operation(name).serializer
    bindings = dict(serializer.headers)
    if serializer.default_content_type is not None:
        bindings["content_type"] = "Content-Type"
    return bindings


def input_fields(name: str) -> list[str]:
    return [field.name for field in attrs.fields(operation(name).input_type)]


def java_pattern(pattern: str) -> re.Pattern[str]:
    """The model's (Java) pattern in Python, for printable-ASCII values."""
    for java, python in (
        (r"[\p{Print}]", r"[\x20-\x7e]"), (r"\p{Print}", r"[\x20-\x7e]"), (r"\p{ASCII}", r"[\x00-\x7f]"), (r"\z", r"\Z"),
    ):
        pattern = pattern.replace(java, python)
    return re.compile(pattern, re.DOTALL)


def model_accepts(shape: Shape, value: Any) -> bool:
    bounds = shape.metadata
    size = value if isinstance(value, int) else len(value)
    if size < bounds.get("min", 0 if not isinstance(value, int) else -(2**63)):
        return False
    if "max" in bounds and size > bounds["max"]:
        return False
    return "pattern" not in bounds or java_pattern(bounds["pattern"]).fullmatch(value) is not None


def accepts(name: str, field: str, value: Any) -> bool:
    """Whether the operation's validator takes ``value`` for ``field`` (its other members valid)."""
    values = {**VALID[name], field: value}
    if (name, field) in EXCLUSIVE:
        other, valid = EXCLUSIVE[name, field]
        values[other] = valid if value is None else None
    op = operation(name)
    try:
        op.validate(op.input_type(**values), name)
    except errors.InvalidParamsError as error:
        return field not in error.fields
    return True


def candidates(shape: Shape) -> list[Any]:
    """Values at and just past the bounds (shaped to pass the pattern), and the pattern probes."""
    bounds = shape.metadata
    if shape.type_name == "integer":
        return [bounds["min"] - 1, bounds["min"], bounds["max"], bounds["max"] + 1]
    if shape.type_name == "blob":
        return [b"x" * bounds["max"], b"x" * (bounds["max"] + 1)] if "max" in bounds else [b"x"]
    pattern = java_pattern(bounds["pattern"]) if "pattern" in bounds else None
    lengths = {bounds.get("min", 0), max(bounds.get("min", 0) - 1, 0), bounds["max"], bounds["max"] + 1}
    values: list[Any] = list(PROBES)
    for length in sorted(lengths):
        seeds = ["", *PROBES]
        shaped = (seed + "a" * (length - len(seed)) for seed in seeds if len(seed) <= length)
        values.append(next((s for s in shaped if pattern is None or pattern.fullmatch(s)), "a" * length))
    return values


# --- operations and members -------------------------------------------------------------------

def test_the_same_operations_at_the_same_paths() -> None:
    # The HTTP/2 service's one operation is not in this (HTTP/1.1) service's model.
    assert operations.names() == sorted([*NAMES, "InvokeEndpointWithBidirectionalStream"])
    for name in NAMES:
        serializer: Any = operation(name).serializer
        assert model(name).http["method"] == "POST"
        assert model(name).http["requestUri"] == f"/endpoints/{{EndpointName}}/{serializer.action}"


@pytest.mark.parametrize("name", NAMES)
def test_every_input_member_is_a_field_of_the_input_type(name: str) -> None:
    assert sorted(input_fields(name)) == sorted(xform_name(member) for member in members(model(name).input_shape))


@pytest.mark.parametrize("name", NAMES)
def test_every_member_travels_where_the_model_binds_it(name: str) -> None:
    shape = model(name).input_shape
    assert shape is not None
    headers = {xform_name(member): s.serialization["name"] for member, s in members(shape).items()
               if s.serialization.get("location") == "header"}
    assert header_bindings(name) == headers  # the exact header names, and no header the model lacks
    labels = [member for member, s in members(shape).items() if s.serialization.get("location") == "uri"]
    assert labels == ["EndpointName"]  # the path label the serializer fills in
    assert shape.serialization["payload"] == "Body"
    assert operation(name).serializer.has_payload  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["InvokeEndpoint", "InvokeEndpointWithResponseStream"])
def test_problems_are_reported_in_the_model_member_order(name: str) -> None:
    module = __import__(f"smruntime.operations.{xform_name(name)}", fromlist=["MEMBERS"])
    assert tuple(xform_name(member) for member in members(model(name).input_shape)) == module.MEMBERS


# --- constraints -------------------------------------------------------------------------------

def _constrained() -> list[Any]:
    return [pytest.param(name, xform_name(member), shape, id=f"{name}.{member}") for name in NAMES
            for member, shape in members(model(name).input_shape).items()]


@pytest.mark.parametrize(("name", "field", "shape"), _constrained())
def test_the_validator_enforces_the_model_constraints(name: str, field: str, shape: Shape) -> None:
    enum = getattr(shape, "enum", None)
    assert not enum, f"{name}.{field} is an enum now: validate it against {enum}"
    required = {xform_name(member) for member in model(name).input_shape.required_members}  # type: ignore[union-attr]
    assert accepts(name, field, None) == (field not in required), f"{name}.{field} required: {field in required}"
    wider = WIDER.get((name, field))
    for value in candidates(shape):
        expected = model_accepts(shape, value)
        if wider is not None and isinstance(value, str) and wider.fullmatch(value):
            expected = True
        shown = value if isinstance(value, int) or len(value) <= 80 else f"<{len(value)} long>"
        assert accepts(name, field, value) == expected, f"{name}.{field} = {shown!r}"


# --- outputs -----------------------------------------------------------------------------------

def _answer(name: str) -> HTTPResponse:
    """A 2xx carrying every output member where the model binds it (value: the member's name)."""
    shape = model(name).output_shape
    headers = {s.serialization["name"]: member for member, s in members(shape).items()
               if s.serialization.get("location") == "header"}
    unbound = {member: member for member, s in members(shape).items()
               if "location" not in s.serialization and member != "Body"}
    if name == "InvokeEndpointWithResponseStream":
        body = encode_message({":message-type": "event", ":event-type": "PayloadPart",
                               ":content-type": "application/octet-stream"}, b"part")
    else:
        body = b"Body" if "Body" in members(shape) else json.dumps(unbound).encode()  # unbound: the JSON body
    return HTTPResponse(model(name).http.get("responseCode", 200), headers, body)


@pytest.mark.parametrize("name", NAMES)
def test_every_output_member_comes_back_from_where_the_model_binds_it(name: str) -> None:
    http = MockHTTPClient(lambda request: _answer(name))
    with Client(region="us-east-1", credentials=("AKIDEXAMPLE", "SECRET"), http_client=http) as client:
        op = operation(name)
        result = getattr(client, xform_name(name))(op.input_type(**VALID[name]))
    for member, shape in members(model(name).output_shape).items():
        if shape.serialization.get("eventstream"):
            assert isinstance(result, ResponseStream) and list(result) == [PayloadPart(b"part")]
        elif member == "Body":
            assert result.body == b"Body"
        else:
            assert getattr(result, xform_name(member)) == member, member
    if isinstance(result, ResponseStream):
        result.close()
    else:
        fields = {field.name for field in attrs.fields(type(result))} - {"metadata"}
        assert fields == {xform_name(member) for member in members(model(name).output_shape)}


# --- errors ------------------------------------------------------------------------------------

def test_every_modeled_error_has_its_class_and_the_local_endpoint_spells_its_message_as_the_model() -> None:
    shapes = {shape.name: shape for name in NAMES for shape in model(name).error_shapes}
    http_errors = {error for error, shape in shapes.items() if "httpStatusCode" in shape.metadata.get("error", {})}
    assert http_errors == wire.MODELED_ERRORS
    for error, shape in shapes.items():
        assert errors.error_class_for_code(error).__name__ == error
        assert "Message" in shape.members
    sent = wire.model_error(status=400, original="bad", container="primary", endpoint="ep", region="us-east-1",
                            account="123456789012")
    document = json.loads(sent.body())
    assert set(shapes["ModelError"].members) <= set(document)
    assert document["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL"


# --- the local endpoint's declarations --------------------------------------------------------

@pytest.mark.parametrize(("name", "declared"), [
    ("InvokeEndpoint", wire.INVOKE_ENDPOINT_HEADERS),
    ("InvokeEndpointWithResponseStream", wire.STREAM_HEADERS),
])
def test_the_local_endpoint_reads_every_header_member(name: str, declared: dict[str, str]) -> None:
    headers = {s.serialization["name"] for s in members(model(name).input_shape).values()
               if s.serialization.get("location") == "header"}
    assert set(declared.values()) == headers


def test_the_local_endpoint_reads_the_async_headers_it_shares_with_invoke_endpoint() -> None:
    headers = {s.serialization["name"] for s in members(model("InvokeEndpointAsync").input_shape).values()
               if s.serialization.get("location") == "header"}
    assert set(ASYNC_HEADERS.values()) <= headers


def test_the_local_endpoint_checks_the_model_constraints() -> None:
    by_header = {s.serialization["name"]: (member, s) for member, s in members(model("InvokeEndpoint").input_shape).items()
                 if s.serialization.get("location") == "header"}
    for field, header in wire.INVOKE_ENDPOINT_HEADERS.items():
        member, shape = by_header[header]
        rule = wire.HEADER_RULES[field]
        assert rule.member == member[0].lower() + member[1:]
        assert (rule.min_length, rule.max_length, rule.pattern) == (
            shape.metadata.get("min", 0), shape.metadata["max"], shape.metadata["pattern"]), field
        assert rule.sensitive == bool(shape.metadata.get("sensitive")), field


def test_a_request_to_the_model_carries_every_invoke_endpoint_member() -> None:
    from smruntime.local.models import ModelRequest

    received = {field.name for field in attrs.fields(ModelRequest)}
    assert set(wire.INVOKE_ENDPOINT_HEADERS) <= received
    assert set(attrs.fields_dict(wire.InvokeParams)) == set(wire.INVOKE_ENDPOINT_HEADERS)
