"""InvokeEndpointAsync: ``POST /endpoints/{EndpointName}/async-invocations`` → 202.

The payload waits in S3 (``input_location``) or travels inline (``body``); the answer names
where the result or the failure will appear. ``InferenceId`` is bound to nothing, so it comes
from the JSON body.
"""

from __future__ import annotations

import json
import re
from functools import partial

from smruntime import errors, service_model
from smruntime import validation as v
from smruntime.middleware import Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status, header_bindings, read_headers
from smruntime.operations.spec import Operation
from smruntime.stack_types import Context, DeserializeInput, DeserializeOutput
from smruntime.types import InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput, ResultMetadata

NAME = "InvokeEndpointAsync"


def _payload(params: InvokeEndpointAsyncInput, problems: fields.Problems) -> None:
    """The payload is in ``input_location`` or ``body``: exactly one of them (the model
    requires neither, the service one); ``input_location`` travels in a header, which carries
    printable US-ASCII only (tab included)."""
    location = params.input_location
    if params.body is None and location is None:
        problems.append(errors.FieldProblem("input_location", "required", "is required (or give body, the payload itself)"))
    elif params.body is not None and location is not None:
        # The location is not the payload then: what it is wrong with is only that it is given.
        problems[:] = [problem for problem in problems if problem.field != "input_location"]
        problems.append(errors.FieldProblem("input_location", "exclusive", "give input_location or body, not both"))
    elif isinstance(location, str) and re.fullmatch(v.ASCII_HEADER_PATTERN, location) is None:
        problems.append(errors.FieldProblem("input_location", "pattern", "must not contain control or non-ASCII characters"))


# A body given with a location is refused after the body's own problems.
_ORDER = ("endpoint_name", "body", *(name for name in service_model.INVOKE_ENDPOINT_ASYNC.names if name not in ("endpoint_name", "body")))
validate = fields.validator(service_model.INVOKE_ENDPOINT_ASYNC, rules=_payload, order=_ORDER)


class Deserializer(Transform[DeserializeInput, DeserializeOutput]):
    """Any 2xx is success (the service answers 202)."""

    id = "OperationDeserializer"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        response = check_status(ctx, out)
        raw = response.read()
        try:
            document = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            document = None
        if not isinstance(document, dict):
            raise errors.DeserializationError(
                "the InvokeEndpointAsync response body is not a JSON object", snapshot=raw, operation=ctx.operation_name
            )
        values = read_headers(_HEADERS, response.headers)
        for name, key in _JSON:
            value = document.get(key)
            if value is not None:
                values[name] = str(value)
        out.result = InvokeEndpointAsyncOutput(metadata=ResultMetadata(ctx.metadata), **values)
        return out


_HEADERS = header_bindings(service_model.INVOKE_ENDPOINT_ASYNC_OUTPUT)
_JSON = tuple((member.name, member.api_name) for member in service_model.INVOKE_ENDPOINT_ASYNC_OUTPUT.at("json"))


OPERATION: Operation[InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput] = Operation(
    name=NAME,
    input_type=InvokeEndpointAsyncInput,
    input=service_model.INVOKE_ENDPOINT_ASYNC,
    output=service_model.INVOKE_ENDPOINT_ASYNC_OUTPUT,
    validate=validate,
    new_serializer=partial(OperationSerializer[InvokeEndpointAsyncInput], "async-invocations", service_model.INVOKE_ENDPOINT_ASYNC),
    deserializer=Deserializer(),
)
