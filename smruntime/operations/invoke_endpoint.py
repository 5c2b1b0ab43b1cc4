"""InvokeEndpoint: ``POST /endpoints/{EndpointName}/invocations`` → 200 with the model's answer."""

from __future__ import annotations

from functools import partial

from smruntime import service_model
from smruntime.middleware import Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status, header_bindings, read_headers
from smruntime.operations.spec import Operation
from smruntime.stack_types import Context, DeserializeInput, DeserializeOutput
from smruntime.types import InvokeEndpointInput, InvokeEndpointOutput, ResultMetadata

NAME = "InvokeEndpoint"

validate = fields.validator(service_model.INVOKE_ENDPOINT)


class Deserializer(Transform[DeserializeInput, DeserializeOutput]):
    """Turns a 200 into :class:`InvokeEndpointOutput`; anything else into a service error."""

    id = "OperationDeserializer"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        response = check_status(ctx, out)
        values = read_headers(_HEADERS, response.headers)
        for name in _SESSION_IDS:
            if name in values:
                values[name] = _first(values[name])
        out.result = InvokeEndpointOutput(body=response.read(), metadata=ResultMetadata(ctx.metadata), **values)
        return out


_HEADERS = header_bindings(service_model.INVOKE_ENDPOINT_OUTPUT)
_SESSION_IDS = ("new_session_id", "closed_session_id")


def _first(value: str) -> str:
    return value.split(",", 1)[0].strip()


OPERATION: Operation[InvokeEndpointInput, InvokeEndpointOutput] = Operation(
    name=NAME,
    input_type=InvokeEndpointInput,
    input=service_model.INVOKE_ENDPOINT,
    output=service_model.INVOKE_ENDPOINT_OUTPUT,
    validate=validate,
    new_serializer=partial(OperationSerializer[InvokeEndpointInput], "invocations", service_model.INVOKE_ENDPOINT),
    deserializer=Deserializer(),
)
