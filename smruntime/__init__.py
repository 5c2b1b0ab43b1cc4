"""smruntime: a SageMaker Runtime client built as an explicit middleware stack.

::

    from smruntime import Client

    with Client(region="us-east-1") as client:
        out = client.invoke_endpoint(endpoint_name="my-endpoint", body=b"...", content_type="application/json")
        print(out.body, out.metadata.request_id)
"""

from smruntime.client import Client
from smruntime.options import LogMode, Options
from smruntime.types import (
    InvokeEndpointAsyncInput,
    InvokeEndpointAsyncOutput,
    InvokeEndpointInput,
    InvokeEndpointOutput,
    InvokeEndpointWithResponseStreamInput,
    PayloadPart,
    ResultMetadata,
)
from smruntime.version import __version__

__all__ = [
    "Client",
    "InvokeEndpointAsyncInput",
    "InvokeEndpointAsyncOutput",
    "InvokeEndpointInput",
    "InvokeEndpointOutput",
    "InvokeEndpointWithResponseStreamInput",
    "LogMode",
    "Options",
    "PayloadPart",
    "ResultMetadata",
    "__version__",
]
