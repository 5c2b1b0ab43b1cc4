"""InvokeEndpoint: ``POST /endpoints/{EndpointName}/invocations`` → 200 with the model's answer."""

from __future__ import annotations

from smruntime import errors
from smruntime.middleware import Context, DeserializeInput, DeserializeOutput, Next
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status
from smruntime.operations.spec import Operation
from smruntime.types import InvokeEndpointInput, InvokeEndpointOutput, ResultMetadata

NAME = "InvokeEndpoint"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

HEADERS = (
    ("accept", "Accept"),
    ("custom_attributes", "X-Amzn-SageMaker-Custom-Attributes"),
    ("target_model", "X-Amzn-SageMaker-Target-Model"),
    ("target_variant", "X-Amzn-SageMaker-Target-Variant"),
    ("target_container_hostname", "X-Amzn-SageMaker-Target-Container-Hostname"),
    ("inference_id", "X-Amzn-SageMaker-Inference-Id"),
    ("enable_explanations", "X-Amzn-SageMaker-Enable-Explanations"),
    ("inference_component_name", "X-Amzn-SageMaker-Inference-Component"),
    ("session_id", "X-Amzn-SageMaker-Session-Id"),
)


def validate(params: InvokeEndpointInput, operation: str) -> None:
    """Every constraint of the service model, reported together."""
    problems: list[errors.FieldProblem] = []
    fields.endpoint_name(problems, params.endpoint_name)
    fields.body(problems, params.body)
    fields.content_type(problems, "content_type", params.content_type)
    fields.content_type(problems, "accept", params.accept)
    fields.custom_attributes(problems, params.custom_attributes)
    fields.target_model(problems, params.target_model)
    fields.name_field(problems, "target_variant", params.target_variant)
    fields.name_field(problems, "target_container_hostname", params.target_container_hostname)
    fields.inference_id(problems, params.inference_id)
    fields.enable_explanations(problems, params.enable_explanations)
    fields.inference_component_name(problems, params.inference_component_name)
    fields.session_id(problems, params.session_id, allow_new=True)
    if problems:
        raise errors.InvalidParamsError(problems, operation=operation)


class Deserializer:
    """Turns a 200 into :class:`InvokeEndpointOutput`; anything else into a service error."""

    id = "OperationDeserializer"

    def handle(self, ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
        out = next(ctx, in_)
        response = check_status(ctx, out)
        headers = response.headers
        body = response.read()
        out.result = InvokeEndpointOutput(
            body=body,
            content_type=headers.get("Content-Type"),
            invoked_production_variant=headers.get("x-Amzn-Invoked-Production-Variant"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            new_session_id=_first(headers.get("X-Amzn-SageMaker-New-Session-Id")),
            closed_session_id=_first(headers.get("X-Amzn-SageMaker-Closed-Session-Id")),
            metadata=ResultMetadata(ctx.metadata),
        )
        return out


def _first(value: str | None) -> str | None:
    return None if value is None else value.split(",", 1)[0].strip()


OPERATION = Operation(
    name=NAME,
    input_type=InvokeEndpointInput,
    validate=validate,
    serializer=OperationSerializer("invocations", HEADERS, default_content_type=DEFAULT_CONTENT_TYPE),
    deserializer=Deserializer(),
)
