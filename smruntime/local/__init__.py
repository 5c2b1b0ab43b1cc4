"""The local SageMaker-compatible endpoint: a real HTTP server speaking the SageMaker Runtime API.

Start one with ``LocalEndpoint`` (tests, notebooks) or ``smruntime serve``; configure it from
code (``LocalConfig``/``EndpointConfig``/``VariantConfig``) or a TOML file (format in
``smruntime.local.config``); write models against ``smruntime.local.models``, and
bidirectional ones (InvokeEndpointWithBidirectionalStream, on the HTTP/2 port) against
``smruntime.local.bidi_models``.
"""

from smruntime.local.app import LocalApp, create_app
from smruntime.local.bidi_models import BidiRequest, TurnTaking
from smruntime.local.bidi_wire import Part
from smruntime.local.builtins import TokenStreamer
from smruntime.local.config import (
    AsyncInferenceConfig,
    EndpointConfig,
    FaultConfig,
    InferenceComponentConfig,
    LocalConfig,
    VariantConfig,
    default_config,
    load_config,
)
from smruntime.local.container import RemoteContainer
from smruntime.local.counters import Counters, CounterSnapshot
from smruntime.local.credentials import EXAMPLE_CREDENTIALS, AcceptedKey
from smruntime.local.faults import Faults
from smruntime.local.h2_server import TLSFiles
from smruntime.local.hosts import HostPolicy
from smruntime.local.limits import ServerLimits
from smruntime.local.models import Model, ModelFailure, ModelRequest, ModelResponse
from smruntime.local.server import LocalEndpoint, serve

__all__ = [
    "EXAMPLE_CREDENTIALS",
    "AcceptedKey",
    "AsyncInferenceConfig",
    "BidiRequest",
    "CounterSnapshot",
    "Counters",
    "EndpointConfig",
    "FaultConfig",
    "Faults",
    "HostPolicy",
    "InferenceComponentConfig",
    "LocalApp",
    "LocalConfig",
    "LocalEndpoint",
    "Model",
    "ModelFailure",
    "ModelRequest",
    "ModelResponse",
    "Part",
    "RemoteContainer",
    "ServerLimits",
    "TLSFiles",
    "TokenStreamer",
    "TurnTaking",
    "VariantConfig",
    "create_app",
    "default_config",
    "load_config",
    "serve",
]
