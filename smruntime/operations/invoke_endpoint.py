"""InvokeEndpoint: ``POST /endpoints/{EndpointName}/invocations`` → 200 with the model's answer."""

from __future__ import annotations

from smruntime import errors
from smruntime import validation as v
from smruntime.middleware import Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status
from smruntime.operations.spec import Operation
from smruntime.stack_types import Context, DeserializeInput, DeserializeOutput
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
    ("prefix_aware_id", "X-Amzn-SageMaker-Prefix-Aware-Id"),
)


MEMBERS = (
    "endpoint_name",
    "body",
    "content_type",
    "accept",
    "custom_attributes",
    "target_model",
    "target_variant",
    "target_container_hostname",
    "inference_id",
    "enable_explanations",
    "inference_component_name",
    "session_id",
    "prefix_aware_id",
)
"""The input's members in the service model's order, the order problems are reported in."""

# The members that name the endpoint, the formats and the target repeat from call to call, so
# each distinct combination is checked once; the body and the per-request members (custom
# attributes, inference id, session id, prefix-aware id) are checked on every call.
_PASSED = v.PassedValues()


def validate(params: InvokeEndpointInput, operation: str) -> None:
    """Every constraint of the service model, reported together."""
    problems: list[errors.FieldProblem] = []
    repeated = (
        params.endpoint_name,
        params.content_type,
        params.accept,
        params.target_model,
        params.target_variant,
        params.target_container_hostname,
        params.enable_explanations,
        params.inference_component_name,
    )
    if repeated not in _PASSED:
        fields.endpoint_name(problems, params.endpoint_name)
        fields.content_type(problems, "content_type", params.content_type)
        fields.content_type(problems, "accept", params.accept)
        fields.target_model(problems, params.target_model)
        fields.name_field(problems, "target_variant", params.target_variant)
        fields.name_field(problems, "target_container_hostname", params.target_container_hostname)
        fields.enable_explanations(problems, params.enable_explanations)
        fields.inference_component_name(problems, params.inference_component_name)
        if not problems:
            _PASSED.add(repeated)
    fields.body(problems, params.body)
    fields.custom_attributes(problems, params.custom_attributes)
    fields.inference_id(problems, params.inference_id)
    fields.prefix_aware_id(problems, params.prefix_aware_id)
    fields.session_id(problems, params.session_id, allow_new=True)
    if problems:
        fields.in_member_order(problems, MEMBERS)
        raise errors.InvalidParamsError(problems, operation=operation)


class Deserializer(Transform[DeserializeInput, DeserializeOutput]):
    """Turns a 200 into :class:`InvokeEndpointOutput`; anything else into a service error."""

    id = "OperationDeserializer"

    def after(self, ctx: Context, in_: DeserializeInput, out: DeserializeOutput) -> DeserializeOutput:
        response = check_status(ctx, out)
        headers = response.headers.lower_dict()  # one pass; the lookups below are plain dict reads
        body = response.read()
        out.result = InvokeEndpointOutput(
            body=body,
            content_type=headers.get("content-type"),
            invoked_production_variant=headers.get("x-amzn-invoked-production-variant"),
            custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
            new_session_id=_first(headers.get("x-amzn-sagemaker-new-session-id")),
            closed_session_id=_first(headers.get("x-amzn-sagemaker-closed-session-id")),
            metadata=ResultMetadata(ctx.metadata),
        )
        return out


def _first(value: str | None) -> str | None:
    return None if value is None else value.split(",", 1)[0].strip()


OPERATION: Operation[InvokeEndpointInput, InvokeEndpointOutput] = Operation(
    name=NAME,
    input_type=InvokeEndpointInput,
    validate=validate,
    serializer=OperationSerializer[InvokeEndpointInput]("invocations", HEADERS, default_content_type=DEFAULT_CONTENT_TYPE),
    deserializer=Deserializer(),
)
