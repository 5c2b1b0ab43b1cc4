"""The service model as smruntime states it: one member table per operation, input and output.

Each row is the model's fact (name, location, header, constraints, sensitivity, required)
plus a doc line; ``tests/unit/test_service_model.py`` compares every row with the installed
botocore's model (InvokeEndpointWithBidirectionalStream's once botocore has it). Members
several operations share are written once below and reused.

An input table lists its members in the order of the clients' keyword parameters, which is
also the order problems are reported in: the service model's order, except for
InvokeEndpointAsync, whose keyword order names the payload (``input_location`` or ``body``)
first. An event-stream body is an ``eventstream`` payload member: the input or output object
does not hold it, and nothing validates it up front (its events are sent or read one by one).
"""

from __future__ import annotations

import attrs

from smruntime.shapes import Member, Pattern, Shape
from smruntime.validation import ASCII_HEADER_PATTERN, MAX_BODY_BYTES

# --- patterns --------------------------------------------------------------------------------
# Java's \p{Print} is printable ASCII; \S excludes a leading space. A header carries printable
# US-ASCII (and tab) only, so the client checks that where the model allows any ASCII.

_ANY_ASCII = r"[\x00-\x7f]*"
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_PRINTABLE = r"[\x21-\x7e][\x20-\x7e]*"
_VISIBLE = r"[\x20-\x7e]*"

ASCII = Pattern(r"\p{ASCII}*", _ANY_ASCII, client=ASCII_HEADER_PATTERN, text="printable US-ASCII")
VISIBLE_ASCII = Pattern(r"\p{ASCII}*", _ANY_ASCII, client=_VISIBLE, text="visible US-ASCII characters")
PRINTABLE = Pattern(r"\A\S[\p{Print}]*\z", _PRINTABLE, text="printable US-ASCII not starting with a space")
ANY = Pattern(".*", ".*", client=_VISIBLE, text="printable US-ASCII")
NAME = Pattern("^[a-zA-Z0-9](-*[a-zA-Z0-9])*", _NAME, text="^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
COMPONENT = Pattern(
    "^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?$", r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
)
SESSION = Pattern(
    "^(NEW_SESSION)$|^[a-zA-Z0-9](-*[a-zA-Z0-9])*$",
    r"NEW_SESSION|[a-zA-Z0-9](-*[a-zA-Z0-9])*",
    text="NEW_SESSION or ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$",
)
OPEN_SESSION = Pattern("^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", _NAME)
STREAM_SESSION = attrs.evolve(OPEN_SESSION, text="^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ (start sessions with InvokeEndpoint)")
NEW_SESSION_HEADER = Pattern(
    "^[a-zA-Z0-9](-*[a-zA-Z0-9])*;\\sExpires=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
    r"[a-zA-Z0-9](-*[a-zA-Z0-9])*;\sExpires=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
)
# file:// added: the local endpoint reads such inputs (the service refuses them itself).
INPUT_LOCATION = Pattern(
    "^(https|s3)://([^/]+)/?(.*)$",
    r"(?s)(https|s3)://([^/]+)/?(.*)|file://.+",
    text="^(https|s3)://([^/]+)/?(.*)$ (or file:// locally)",
)
INVOCATION_PATH = Pattern(
    r"^[A-Za-z0-9\-._]+(?:/[A-Za-z0-9\-._]+)*$",
    r"[A-Za-z0-9\-._]+(?:/[A-Za-z0-9\-._]+)*",
    text="path segments of letters, digits and -._ joined by / (no leading /)",
)
_QUERY_PAIR = r"[a-zA-Z0-9][A-Za-z0-9_-]*=(?:[A-Za-z0-9._~\-]|%[0-9A-Fa-f]{2})+"
QUERY_STRING = Pattern(
    rf"^{_QUERY_PAIR}(?:&{_QUERY_PAIR})*$",
    rf"{_QUERY_PAIR}(?:&{_QUERY_PAIR})*",
    text="name=value pairs joined by & (values percent-encoded)",
)
S3_OUTPUT_PATH_EXTENSION = Pattern("^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$", r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")
FILENAME = Pattern("^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$", r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9\-_.]*")

# --- members several operations share --------------------------------------------------------

_SAGEMAKER = "X-Amzn-SageMaker-"
MAX_INLINE_BODY_BYTES = 128_000
"""InvokeEndpointAsync's limit for an inline payload (``Body``); larger ones go through S3."""

ENDPOINT_NAME = Member("endpoint_name", "EndpointName", "uri", "EndpointName", required=True, max=63, pattern=NAME,
                       doc="the endpoint's name")
BODY = Member("body", "Body", "payload", type="blob", required=True, max=MAX_BODY_BYTES, sensitive=True, varies=True,
              doc="the payload")
CONTENT_TYPE = Member("content_type", "ContentType", "header", "Content-Type", max=1024, pattern=ASCII,
                      default="application/octet-stream", doc="the payload's MIME type")
ACCEPT = Member("accept", "Accept", "header", "Accept", max=1024, pattern=ASCII, doc="the MIME type you want the answer in")
CUSTOM_ATTRIBUTES = Member("custom_attributes", "CustomAttributes", "header", _SAGEMAKER + "Custom-Attributes", max=1024,
                           pattern=VISIBLE_ASCII, sensitive=True, varies=True,
                           doc="opaque text passed to the model (up to 1024 characters)")
TARGET_VARIANT = Member("target_variant", "TargetVariant", "header", _SAGEMAKER + "Target-Variant", max=63,
                        pattern=NAME, doc="the production variant to invoke")
TARGET_CONTAINER_HOSTNAME = Member("target_container_hostname", "TargetContainerHostname", "header",
                                   _SAGEMAKER + "Target-Container-Hostname", max=63, pattern=NAME,
                                   doc="the container to invoke on a multi-container endpoint")
INFERENCE_ID = Member("inference_id", "InferenceId", "header", _SAGEMAKER + "Inference-Id", min=1, max=64,
                      pattern=PRINTABLE, varies=True, doc="your identifier for this inference")
INFERENCE_COMPONENT_NAME = Member("inference_component_name", "InferenceComponentName", "header",
                                  _SAGEMAKER + "Inference-Component", max=63, pattern=COMPONENT,
                                  doc="the inference component to invoke")
SESSION_ID = Member("session_id", "SessionId", "header", _SAGEMAKER + "Session-Id", max=256, pattern=SESSION,
                    varies=True, doc="a stateful session's id, or NEW_SESSION to open one")
PREFIX_AWARE_ID = Member("prefix_aware_id", "PrefixAwareId", "header", _SAGEMAKER + "Prefix-Aware-Id", min=1, max=64,
                         pattern=PRINTABLE, varies=True,
                         doc="a routing hint: requests with the same prefix and id go to the same instance")

# Outputs (the client checks none of these; the local endpoint's answers keep to them).
_ANSWER_CONTENT_TYPE = Member("content_type", "ContentType", "header", "Content-Type", max=1024, pattern=ASCII,
                              doc="the answer's MIME type")
_INVOKED_PRODUCTION_VARIANT = Member("invoked_production_variant", "InvokedProductionVariant", "header",
                                     "x-Amzn-Invoked-Production-Variant", max=1024, pattern=ASCII,
                                     doc="the production variant that answered")
_ANSWER_CUSTOM_ATTRIBUTES = attrs.evolve(CUSTOM_ATTRIBUTES, varies=False, doc="opaque text the model passed back")

# --- the operations ----------------------------------------------------------------------------

INVOKE_ENDPOINT = Shape("InvokeEndpointInput", (
    ENDPOINT_NAME,
    BODY,
    CONTENT_TYPE,
    ACCEPT,
    CUSTOM_ATTRIBUTES,
    Member("target_model", "TargetModel", "header", _SAGEMAKER + "Target-Model", min=1, max=1024, pattern=PRINTABLE,
           doc="the model to invoke on a multi-model endpoint"),
    TARGET_VARIANT,
    TARGET_CONTAINER_HOSTNAME,
    INFERENCE_ID,
    Member("enable_explanations", "EnableExplanations", "header", _SAGEMAKER + "Enable-Explanations", min=1, max=64,
           pattern=ANY, doc="a JMESPath expression choosing which explanations to return"),
    INFERENCE_COMPONENT_NAME,
    SESSION_ID,
    PREFIX_AWARE_ID,
))

INVOKE_ENDPOINT_OUTPUT = Shape("InvokeEndpointOutput", (
    attrs.evolve(BODY, required=True, varies=False, doc="the model's answer"),
    _ANSWER_CONTENT_TYPE,
    _INVOKED_PRODUCTION_VARIANT,
    _ANSWER_CUSTOM_ATTRIBUTES,
    Member("new_session_id", "NewSessionId", "header", _SAGEMAKER + "New-Session-Id", max=256,
           pattern=NEW_SESSION_HEADER, doc="the session the call opened, and when it expires"),
    Member("closed_session_id", "ClosedSessionId", "header", _SAGEMAKER + "Closed-Session-Id", max=256,
           pattern=OPEN_SESSION, doc="the session the call closed"),
))

INVOKE_ENDPOINT_WITH_RESPONSE_STREAM = Shape("InvokeEndpointWithResponseStreamInput", (
    ENDPOINT_NAME,
    BODY,
    CONTENT_TYPE,
    attrs.evolve(ACCEPT, location_name=_SAGEMAKER + "Accept"),
    CUSTOM_ATTRIBUTES,
    TARGET_VARIANT,
    TARGET_CONTAINER_HOSTNAME,
    INFERENCE_ID,
    INFERENCE_COMPONENT_NAME,
    attrs.evolve(SESSION_ID, pattern=STREAM_SESSION, doc="a stateful session's id (open one with invoke-endpoint)"),
    PREFIX_AWARE_ID,
))

INVOKE_ENDPOINT_WITH_RESPONSE_STREAM_OUTPUT = Shape("InvokeEndpointWithResponseStreamOutput", (
    Member("body", "Body", "payload", type="eventstream", required=True, doc="the model's answer, part by part"),
    attrs.evolve(_ANSWER_CONTENT_TYPE, location_name=_SAGEMAKER + "Content-Type"),
    _INVOKED_PRODUCTION_VARIANT,
    _ANSWER_CUSTOM_ATTRIBUTES,
))

INVOKE_ENDPOINT_ASYNC = Shape("InvokeEndpointAsyncInput", (
    ENDPOINT_NAME,
    Member("input_location", "InputLocation", "header", _SAGEMAKER + "InputLocation", min=1, max=1024,
           pattern=INPUT_LOCATION, varies=True, doc="the payload's S3 URI (s3://bucket/key), in place of an inline body"),
    attrs.evolve(BODY, required=False, max=MAX_INLINE_BODY_BYTES,
                 doc="an inline payload up to 128,000 bytes, in place of an input location"),
    attrs.evolve(CONTENT_TYPE, location_name=_SAGEMAKER + "Content-Type", default=None),
    attrs.evolve(ACCEPT, location_name=_SAGEMAKER + "Accept"),
    CUSTOM_ATTRIBUTES,
    INFERENCE_ID,
    Member("request_ttl_seconds", "RequestTTLSeconds", "header", _SAGEMAKER + "RequestTTLSeconds", type="integer",
           min=60, max=21600, doc="how long the request may wait in the queue (60-21600)"),
    Member("invocation_timeout_seconds", "InvocationTimeoutSeconds", "header",
           _SAGEMAKER + "InvocationTimeoutSeconds", type="integer", min=1, max=3600,
           doc="how long the model may take (1-3600)"),
    Member("s3_output_path_extension", "S3OutputPathExtension", "header", _SAGEMAKER + "S3OutputPathExtension", min=1,
           max=512, pattern=S3_OUTPUT_PATH_EXTENSION, doc="a suffix for the output path"),
    Member("filename", "Filename", "header", _SAGEMAKER + "Filename", min=1, max=32, pattern=FILENAME,
           doc="the output file's name in place of the inference id"),
))

INVOKE_ENDPOINT_ASYNC_OUTPUT = Shape("InvokeEndpointAsyncOutput", (
    Member("inference_id", "InferenceId", "json", "InferenceId", max=1024, pattern=ASCII,
           doc="the inference's id (yours, or one SageMaker made)"),
    Member("output_location", "OutputLocation", "header", _SAGEMAKER + "OutputLocation", max=1024, pattern=ASCII,
           doc="where the result will appear"),
    Member("failure_location", "FailureLocation", "header", _SAGEMAKER + "FailureLocation", max=1024, pattern=ASCII,
           doc="where a failure will appear"),
))

# The events of both directions travel on the open stream: only the headers are checked up front.
INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM = Shape("InvokeEndpointWithBidirectionalStreamInput", (
    ENDPOINT_NAME,
    Member("body", "Body", "payload", type="eventstream", required=True, doc="the request's events"),
    TARGET_VARIANT,
    Member("model_invocation_path", "ModelInvocationPath", "header", _SAGEMAKER + "Model-Invocation-Path", max=100,
           pattern=INVOCATION_PATH, doc="the path the container is called on, e.g. v1/listen"),
    Member("model_query_string", "ModelQueryString", "header", _SAGEMAKER + "Model-Query-String", max=2048,
           pattern=QUERY_STRING, doc="the query the container is called with, e.g. model=nova-3"),
))

INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM_OUTPUT = Shape("InvokeEndpointWithBidirectionalStreamOutput", (
    Member("body", "Body", "payload", type="eventstream", required=True, doc="the model's events"),
    _INVOKED_PRODUCTION_VARIANT,
))
