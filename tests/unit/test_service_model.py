"""Every operation's member tables against the installed botocore's model for sagemaker-runtime.

Each operation states its input and output once, as a member table (``smruntime.service_model``);
validation, serialization, output parsing, the CLI's options and the local endpoint's checks
are derived from it. The tables are compared row by row with botocore's model, so a member the
model gains, or a limit it changes, fails here instead of going unnoticed. What is still written
by hand (the input and output classes, the clients' keyword parameters) is compared with the
tables, so it cannot drift. The derived validators are compared by behaviour: values at and
just past every length and range bound, and printable-ASCII probes for every pattern, must be
accepted or refused as the model's constraints say.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import attrs
import botocore.session
import pytest
from botocore import xform_name
from botocore.model import OperationModel, Shape, StructureShape

from smruntime import (
    AsyncClient,
    Client,
    InvokeEndpointAsyncOutput,
    InvokeEndpointOutput,
    PayloadPart,
    ResultMetadata,
    client_methods,
    errors,
    operations,
)
from smruntime import service_model as tables
from smruntime.cli import build_parser
from smruntime.eventstream import encode_message
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.local import wire
from smruntime.local.async_inference import parse_async_params
from smruntime.operations import fields
from smruntime.shapes import Member
from smruntime.shapes import Shape as Table
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


def table(name: str, side: str) -> Table:
    op = operation(name)
    return op.input if side == "input" else op.output


def model_shape(name: str, side: str) -> StructureShape:
    shape = model(name).input_shape if side == "input" else model(name).output_shape
    assert isinstance(shape, StructureShape)
    return shape


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


# --- the tables, row by row --------------------------------------------------------------------

def test_the_same_operations_at_the_same_paths() -> None:
    # The HTTP/2 service's one operation is not in this (HTTP/1.1) service's model.
    assert operations.names() == sorted([*NAMES, "InvokeEndpointWithBidirectionalStream"])
    for name in NAMES:
        serializer: Any = operation(name).new_serializer()
        assert model(name).http["method"] == "POST"
        assert model(name).http["requestUri"] == f"/endpoints/{{EndpointName}}/{serializer.action}"


def _model_row(shape: StructureShape, member: str) -> dict[str, Any]:
    """What the model says of ``member``, in the table's terms."""
    s = shape.members[member]
    location = {"uri": "uri", "header": "header", "querystring": "query"}.get(s.serialization.get("location", ""))
    if location is None:
        location = "payload" if shape.serialization.get("payload") == member else "json"
    eventstream = bool(s.serialization.get("eventstream"))
    return {
        "name": xform_name(member),
        "location": location,
        "location_name": s.serialization.get("name", member if location == "json" else None),
        "type": "eventstream" if eventstream else s.type_name,
        "required": member in shape.required_members,
        "min": s.metadata.get("min"),
        "max": s.metadata.get("max"),
        "pattern": s.metadata.get("pattern"),
        "enum": tuple(getattr(s, "enum", None) or ()),
        "sensitive": bool(s.metadata.get("sensitive")),
    }


def _table_row(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "location": member.location,
        "location_name": member.location_name,
        "type": member.type,
        "required": member.required,
        "min": member.min,
        "max": member.max,
        "pattern": None if member.pattern is None else member.pattern.model,
        "enum": member.enum,
        "sensitive": member.sensitive,
    }


SIDES = [pytest.param(name, side, id=f"{name}.{side}") for name in NAMES for side in ("input", "output")]


@pytest.mark.parametrize(("name", "side"), SIDES)
def test_each_table_states_the_model_member_by_member(name: str, side: str) -> None:
    shape = model_shape(name, side)
    rows = {member.api_name: _table_row(member) for member in table(name, side).members}
    assert sorted(rows) == sorted(shape.members), "the same members"
    for member in shape.members:
        assert rows[member] == _model_row(shape, member), member


# InvokeEndpointAsync's input keeps the clients' keyword order (the payload first), not the model's.
@pytest.mark.parametrize(("name", "side"), [p for p in SIDES if p.id != "InvokeEndpointAsync.input"])
def test_each_table_lists_its_members_in_the_model_order(name: str, side: str) -> None:
    assert [member.api_name for member in table(name, side).members] == list(model_shape(name, side).members)


def test_every_table_pattern_means_in_python_what_it_means_in_the_model() -> None:
    # The local endpoint checks ``regex`` and quotes ``model``; they must agree on every probe.
    patterns = {member.pattern for name in NAMES for side in ("input", "output")
                for member in table(name, side).members if member.pattern is not None}
    for pattern in patterns:
        expected = java_pattern(pattern.model)
        for probe in (*PROBES, "", "a;\tExpires=2026-01-01T00:00:00Z", "a; Expires=2026-01-01T00:00:00Z"):
            wider = pattern is tables.INPUT_LOCATION and probe.startswith("file://")
            assert pattern.matches(probe) == (expected.fullmatch(probe) is not None or wider), (
                pattern.model, probe)


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


# --- what is written by hand, against the tables ------------------------------------------------

_ANNOTATIONS = {"string": "str | None", "integer": "int | None", "blob": "BodyInput | None"}


BIDI = "InvokeEndpointWithBidirectionalStream"


def input_table(name: str) -> Table:
    return tables.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM if name == BIDI else table(name, "input")


def input_type(name: str) -> type[Any]:
    from smruntime.operations.bidirectional_stream_input import BidirectionalStreamInput

    return BidirectionalStreamInput if name == BIDI else operation(name).input_type


@pytest.mark.parametrize("name", [*NAMES, BIDI])
def test_each_client_method_takes_the_table_members_as_keywords(name: str) -> None:
    method = getattr(client_methods, xform_name(name))
    assert getattr(Client, xform_name(name)) is method and getattr(AsyncClient, xform_name(name)) is method
    parameters = list(inspect.signature(method).parameters.values())
    assert [p.name for p in parameters[:2]] == ["self", "input"]
    keywords = parameters[2:-1]
    members = input_table(name).held
    assert [p.name for p in keywords] == [member.name for member in members]
    for parameter, member in zip(keywords, members, strict=True):
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None, member.name
        assert parameter.annotation == _ANNOTATIONS[member.type], member.name
    assert parameters[-1].name == "options"


@pytest.mark.parametrize("name", [*NAMES, BIDI])
def test_each_input_class_has_the_table_members(name: str) -> None:
    fields = attrs.fields(input_type(name))
    members = input_table(name).held
    assert [field.name for field in fields] == [member.name for member in members]
    for field, member in zip(fields, members, strict=True):
        assert (field.default is attrs.NOTHING) == member.required, member.name
        annotation = _ANNOTATIONS[member.type]
        assert field.type == (annotation.removesuffix(" | None") if member.required else annotation), member.name
    # A sensitive member's value is never shown.
    values = {member.name: VALUES[member.name] for member in members}
    shown = repr(input_type(name)(**values))
    for member in members:
        assert (str(VALUES[member.name]) in shown) != member.sensitive, member.name


@pytest.mark.parametrize("name", NAMES)
def test_each_output_class_has_the_table_members(name: str) -> None:
    names = list(table(name, "output").names)
    if name == "InvokeEndpointWithResponseStream":
        result = ResponseStream(HTTPResponse(200, {}, b""), operation=name, content_type="c",
                                invoked_production_variant="v", custom_attributes="secret", metadata=ResultMetadata())
        assert all(hasattr(result, member) for member in names if member != "body")
        assert "secret" not in repr(result)
        return
    result_type = {"InvokeEndpoint": InvokeEndpointOutput, "InvokeEndpointAsync": InvokeEndpointAsyncOutput}[name]
    assert [field.name for field in attrs.fields(result_type) if field.name != "metadata"] == names


# Valid values for every input member, each distinct, to follow them onto the wire.
VALUES: dict[str, Any] = {
    "endpoint_name": "ep-1", "body": b"payload-bytes", "content_type": "application/x-ct", "accept": "application/x-acc",
    "custom_attributes": "attrs=secret", "target_model": "model.tar.gz", "target_variant": "variant-1",
    "target_container_hostname": "container-1", "inference_id": "inference-1", "enable_explanations": "`true`",
    "inference_component_name": "component-1", "session_id": "session-1", "prefix_aware_id": "prefix-1",
    "input_location": "s3://bucket/key", "request_ttl_seconds": 600, "invocation_timeout_seconds": 120,
    "s3_output_path_extension": "ext/path", "filename": "result.json",
    "model_invocation_path": "v1/listen", "model_query_string": "model=nova-3",
}


def _sent(name: str, **values: Any) -> HTTPRequest:
    """The request a keyword call of ``name`` sends (answered with the model's answer)."""
    sent: list[HTTPRequest] = []

    def answer(request: HTTPRequest) -> HTTPResponse:
        sent.append(request)
        return _answer(name)

    with Client(region="us-east-1", credentials=("AKIDEXAMPLE", "SECRET"),
                http_client=MockHTTPClient(answer)) as client:
        result = getattr(client, xform_name(name))(**values)
        if isinstance(result, ResponseStream):
            result.close()
    return sent[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_keyword_parameter_reaches_the_wire_where_the_table_binds_it(name: str) -> None:
    members = table(name, "input").members
    values = {member.name: VALUES[member.name] for member in members}
    if name == "InvokeEndpointAsync":
        del values["body"]  # exactly one of input_location and body
    request = _sent(name, **values)
    for member in members:
        if member.name not in values:
            continue
        value = values[member.name]
        if member.location == "header":
            assert request.headers[member.location_name] == str(value), member.name
        elif member.location == "uri":
            assert f"/endpoints/{value}/" in request.url
        else:
            assert member.location == "payload" and request.body == value


def test_a_member_default_is_sent_when_the_caller_gives_none() -> None:
    request = _sent("InvokeEndpoint", endpoint_name="ep", body=b"x")
    member = tables.INVOKE_ENDPOINT["content_type"]
    assert member.default is not None and request.headers[member.location_name] == member.default
    assert "X-Amzn-SageMaker-Content-Type" not in _sent("InvokeEndpointAsync", endpoint_name="ep", body=b"x").headers


@pytest.mark.parametrize("name", [*NAMES, BIDI])
def test_the_cli_has_one_option_per_table_member(name: str) -> None:
    subparsers = next(a for a in build_parser()._actions if a.dest == "==SUPPRESS==" and a.choices)
    command = subparsers.choices[xform_name(name).replace("_", "-")]
    options = {action.dest: action for action in command._actions}
    shape = input_table(name)
    assert "body" not in options or shape["body"].type != "eventstream"  # events go on the open stream
    for member in shape.held:
        action = options[member.name]
        assert action.option_strings == ["--" + member.name.replace("_", "-")]
        assert action.required == member.required and action.help and member.doc in action.help
        assert action.type is (int if member.type == "integer" else str)


# --- the local endpoint's checks ----------------------------------------------------------------

def _broken(member: Member) -> str:
    """A value ``member`` refuses: past its maximum (a string starts with the member's name)."""
    assert member.max is not None
    return str(member.max + 1) if member.type == "integer" else (member.name + "~" * member.max)[: member.max + 1]


@pytest.mark.parametrize("name", NAMES)
def test_the_local_endpoint_checks_every_header_member_as_its_table_says(name: str) -> None:
    members = table(name, "input").at("header")
    headers = {member.location_name: _broken(member) for member in members}
    parses = [lambda: wire.parse_invoke_params(headers, table(name, "input"))]
    if name == "InvokeEndpointAsync":  # InvokeParams holds the members it shares with InvokeEndpoint
        parses.append(lambda: parse_async_params(headers))
    said = ""
    for parse in parses:
        with pytest.raises(wire.ServiceError) as caught:
            parse()
        said += caught.value.message
    for member in members:
        assert f"at '{member.wire_name}' failed to satisfy constraint: Member must have" in said, member.name
        assert (_broken(member) in said) != member.sensitive, member.name


def test_the_local_endpoint_refuses_new_session_on_the_stream_as_the_model_does() -> None:
    shape = tables.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM
    with pytest.raises(wire.ServiceError) as caught:
        wire.parse_invoke_params({"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"}, shape)
    assert caught.value.message == (
        "1 validation error detected: Value 'NEW_SESSION' at 'sessionId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
    )
    assert wire.parse_invoke_params({"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"}).session_id == "NEW_SESSION"


def test_a_request_to_the_model_carries_every_invoke_endpoint_member() -> None:
    from smruntime.local.models import ModelRequest

    held = {wire.params_field(member) for member in tables.INVOKE_ENDPOINT.at("header")}
    assert held == set(attrs.fields_dict(wire.InvokeParams))
    assert held <= {field.name for field in attrs.fields(ModelRequest)}


def test_an_enum_member_is_checked_by_the_client_and_the_local_endpoint() -> None:
    # No member of today's model is an enum (the table test above fails when one becomes one).
    member = Member("mode", "Mode", "header", "X-Mode", max=8, enum=("FAST", "SAFE"))
    problems: list[errors.FieldProblem] = []
    for value in ("FAST", "SLOW", "TOO-LONG-VALUE"):
        fields.member_check(member)(problems, value)
    assert [(p.field, p.rule, p.detail) for p in problems] == [
        ("mode", "enum", "must be one of FAST, SAFE, got 'SLOW'"),
        ("mode", "length", "must be at most 8 characters, got 14"),
    ]
    assert wire.member_problems(member, "FAST") == []
    assert wire.member_problems(member, "SLOW") == [
        "Value 'SLOW' at 'mode' failed to satisfy constraint: Member must satisfy enum value set: [FAST, SAFE]"
    ]


# --- InvokeEndpointWithBidirectionalStream -------------------------------------------------------
# The installed botocore does not model it yet; its table is the service model's as published.
# The client's input, the local endpoint and the CLI all validate by it.


def test_the_bidirectional_input_validates_and_binds_headers_by_the_table() -> None:
    from smruntime.operations import bidirectional_stream_input as bidi

    shape = tables.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM
    too_long = {member.name: "x" * ((member.max or 0) + 1) for member in shape.at("header")}
    with pytest.raises(errors.InvalidParamsError) as caught:
        bidi.validate(bidi.BidirectionalStreamInput(endpoint_name="ep", **too_long))
    assert [problem.field for problem in caught.value.problems] == list(too_long)
    values = {"target_variant": "v1", "model_invocation_path": "v1/listen", "model_query_string": "model=nova-3"}
    headers = bidi.request_headers(bidi.BidirectionalStreamInput(endpoint_name="ep", **values))
    assert {str(member.location_name).lower(): values[member.name] for member in shape.at("header")}.items() <= headers.items()


def test_the_local_endpoint_checks_the_bidirectional_headers_by_the_table() -> None:
    shape = tables.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM
    headers = {member.location_name: "/" + "x" * (member.max or 0) for member in shape.at("header")}
    with pytest.raises(wire.ServiceError) as caught:
        wire.parse_bidi_params(headers)
    for member in shape.at("header"):
        assert f"at '{member.wire_name}' failed to satisfy constraint: Member must have length" in caught.value.message
    good = {"X-Amzn-SageMaker-Model-Invocation-Path": "v1/listen", "X-Amzn-SageMaker-Model-Query-String": "model=nova-3"}
    assert wire.parse_bidi_params(good) == wire.BidiParams(model_invocation_path="v1/listen",
                                                           model_query_string="model=nova-3")
