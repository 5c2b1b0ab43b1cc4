"""smruntime: a SageMaker Runtime client built as an explicit middleware stack.

::

    from smruntime import Client

    with Client(region="us-east-1") as client:
        out = client.invoke_endpoint(endpoint_name="my-endpoint", body=b"...", content_type="application/json")
        print(out.body, out.metadata.request_id)
"""

from typing import TYPE_CHECKING

from smruntime.client import Client
from smruntime.lazy_names import lazy_getattr
from smruntime.logs import LogMode
from smruntime.options import Options
from smruntime.types import InvokeEndpointInput, InvokeEndpointOutput, ResultMetadata
from smruntime.version import __version__

if TYPE_CHECKING:
    from smruntime.async_client import AsyncClient
    from smruntime.types import (
        InvokeEndpointAsyncInput,
        InvokeEndpointAsyncOutput,
        InvokeEndpointWithResponseStreamInput,
        PayloadPart,
        RequestPayloadPart,
        ResponsePayloadPart,
    )

# Names whose modules a program calling through Client does not need load on first use.
_LAZY = {
    "ANONYMOUS": "smruntime.auth",
    "AsyncBidirectionalStream": "smruntime.bidirectional",
    "AsyncClient": "smruntime.async_client",
    "AsyncResponseStream": "smruntime.streaming",
    "BidirectionalStream": "smruntime.bidirectional",
    "Credentials": "smruntime.auth",
    "FastHTTPClient": "smruntime.transport",
    "InvokeEndpointAsyncInput": "smruntime.types",
    "InvokeEndpointAsyncOutput": "smruntime.types",
    "InvokeEndpointWithResponseStreamInput": "smruntime.types",
    "MockHTTPClient": "smruntime.transport",
    "PayloadPart": "smruntime.types",
    "RequestPayloadPart": "smruntime.types",
    "RequestsHTTPClient": "smruntime.transport",
    "ResponsePayloadPart": "smruntime.types",
    "ResponseStream": "smruntime.streaming",
    "StaticEndpointResolver": "smruntime.endpoints",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "ANONYMOUS",
    "AsyncBidirectionalStream",
    "AsyncClient",
    "AsyncResponseStream",
    "BidirectionalStream",
    "Client",
    "Credentials",
    "FastHTTPClient",
    "InvokeEndpointAsyncInput",
    "InvokeEndpointAsyncOutput",
    "InvokeEndpointInput",
    "InvokeEndpointOutput",
    "InvokeEndpointWithResponseStreamInput",
    "LogMode",
    "MockHTTPClient",
    "Options",
    "PayloadPart",
    "RequestPayloadPart",
    "RequestsHTTPClient",
    "ResponsePayloadPart",
    "ResponseStream",
    "ResultMetadata",
    "StaticEndpointResolver",
    "__version__",
]
