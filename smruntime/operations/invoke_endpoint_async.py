"""InvokeEndpointAsync: ``POST /endpoints/{EndpointName}/async-invocations`` → 202.

The payload waits in S3 (``input_location``); the answer names where the result or the
failure will appear. ``InferenceId`` is bound to nothing, so it comes from the JSON body.
"""

from __future__ import annotations

import json
import re

from smruntime import errors
from smruntime import validation as v
from smruntime.middleware import Transform
from smruntime.operations import fields
from smruntime.operations.protocol import OperationSerializer, check_status
from smruntime.operations.spec import Operation
from smruntime.stack_types import Context, DeserializeInput, DeserializeOutput
from smruntime.types import InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput, ResultMetadata

NAME = "InvokeEndpointAsync"
MAX_INLINE_BODY_BYTES = 128_000
"""The service model's limit for an inline payload (``Body``); larger ones go through S3."""

# The service model's pattern, plus file:// paths, which the local endpoint reads (the service
# rejects them with its own ValidationError).
INPUT_LOCATION = re.compile(r"(https|s3)://([^/]+)/?(.*)|file://.+", re.DOTALL)
S3_OUTPUT_PATH_EXTENSION = re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")
FILENAME = re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9\-_.]*")

HEADERS = (
    ("content_type", "X-Amzn-SageMaker-Content-Type"),
    ("accept", "X-Amzn-SageMaker-Accept"),
    ("custom_attributes", "X-Amzn-SageMaker-Custom-Attributes"),
    ("inference_id", "X-Amzn-SageMaker-Inference-Id"),
    ("input_location", "X-Amzn-SageMaker-InputLocation"),
    ("request_ttl_seconds", "X-Amzn-SageMaker-RequestTTLSeconds"),
    ("invocation_timeout_seconds", "X-Amzn-SageMaker-InvocationTimeoutSeconds"),
    ("s3_output_path_extension", "X-Amzn-SageMaker-S3OutputPathExtension"),
    ("filename", "X-Amzn-SageMaker-Filename"),
)


def validate(params: InvokeEndpointAsyncInput, operation: str) -> None:
    problems: list[errors.FieldProblem] = []
    fields.endpoint_name(problems, params.endpoint_name)
    if params.body is not None:
        v.body(problems, "body", params.body, max_bytes=MAX_INLINE_BODY_BYTES)
        if params.input_location is not None:
            problems.append(errors.FieldProblem("input_location", "exclusive", "give input_location or body, not both"))
    elif v.required(problems, "input_location", params.input_location):
        v.string(problems, "input_location", params.input_location, min_len=1, max_len=1024,
                 pattern=INPUT_LOCATION, pattern_text="^(https|s3)://([^/]+)/?(.*)$ (or file:// locally)")
        # It travels in a header, which carries printable US-ASCII only (tab included).
        if isinstance(params.input_location, str) and v.ASCII_HEADER_PATTERN.fullmatch(params.input_location) is None:
            problems.append(errors.FieldProblem("input_location", "pattern",
                                                "must not contain control or non-ASCII characters"))
    fields.content_type(problems, "content_type", params.content_type)
    fields.content_type(problems, "accept", params.accept)
    fields.custom_attributes(problems, params.custom_attributes)
    fields.inference_id(problems, params.inference_id)
    v.integer(problems, "request_ttl_seconds", params.request_ttl_seconds, minimum=60, maximum=21600)
    v.integer(problems, "invocation_timeout_seconds", params.invocation_timeout_seconds, minimum=1, maximum=3600)
    v.string(problems, "s3_output_path_extension", params.s3_output_path_extension, min_len=1, max_len=512,
             pattern=S3_OUTPUT_PATH_EXTENSION, pattern_text="^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
    v.string(problems, "filename", params.filename, min_len=1, max_len=32, pattern=FILENAME,
             pattern_text="^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$")
    if problems:
        raise errors.InvalidParamsError(problems, operation=operation)


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
        inference_id = document.get("InferenceId")
        out.result = InvokeEndpointAsyncOutput(
            inference_id=None if inference_id is None else str(inference_id),
            output_location=response.headers.get("X-Amzn-SageMaker-OutputLocation"),
            failure_location=response.headers.get("X-Amzn-SageMaker-FailureLocation"),
            metadata=ResultMetadata(ctx.metadata),
        )
        return out


OPERATION: Operation[InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput] = Operation(
    name=NAME,
    input_type=InvokeEndpointAsyncInput,
    validate=validate,
    serializer=OperationSerializer[InvokeEndpointAsyncInput]("async-invocations", HEADERS, default_content_type=None),
    deserializer=Deserializer(),
)
