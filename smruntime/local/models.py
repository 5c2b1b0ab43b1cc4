"""The model interface of the local endpoint, and how model references are resolved.

A model is any callable ``(ModelRequest) -> ModelResponse | bytes | Iterator[bytes]``. It runs
in a worker thread, so it may block. Returning an iterator (a generator) lets the streaming
operation send each chunk as it is produced; InvokeEndpoint joins the chunks. A model signals
a container error by raising ``ModelFailure(status, message)``, which the endpoint answers
like the service answers a container's 4xx/5xx: ``ModelError`` (424) with
``OriginalStatusCode`` and ``OriginalMessage``. Any other exception counts as a 500 from the
container.

References, as written in a config file: a built-in name (``echo``, ``sum``, ``tokens``,
``inspect``), ``module:function`` for any importable callable, or an ``http(s)://`` URL of
a server implementing the SageMaker container contract (``GET /ping``,
``POST /invocations``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Protocol, TypeAlias

import attrs

__all__ = [
    "Model",
    "ModelFailure",
    "ModelNotReady",
    "ModelOutput",
    "ModelRequest",
    "ModelResponse",
    "ModelSpec",
    "resolve_model",
]


@attrs.frozen
class ModelRequest:
    """What the model sees: the body and the API headers SageMaker passes to a container."""

    body: bytes = attrs.field(repr=False)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component: str | None = None
    session_id: str | None = None
    """The caller's session: ``NEW_SESSION``, an open session's id, or None."""
    prefix_aware_id: str | None = None
    """The caller's routing hint for prefix-aware routing (one instance locally: nothing to route)."""
    endpoint_name: str = ""
    variant_name: str = ""
    container: str = "primary"
    """The container hostname being invoked (``primary`` for single-container variants)."""
    operation: str = "InvokeEndpoint"
    timeout: float = 60.0
    """Seconds the endpoint waits for this model before answering with a timeout ModelError."""


@attrs.frozen
class ModelResponse:
    """A model's answer; ``body`` may be an iterator of chunks for streaming."""

    body: bytes | Iterable[bytes] = attrs.field(default=b"", repr=False)
    content_type: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    session_id: str | None = None
    """On a NEW_SESSION request: the id to give the new session (the endpoint makes one if None)."""
    close_session: bool = False
    """Close the caller's session; answered with ``X-Amzn-SageMaker-Closed-Session-Id``."""


ModelOutput: TypeAlias = ModelResponse | bytes | Iterator[bytes]


class Model(Protocol):
    """Anything callable with a ModelRequest."""

    def __call__(self, request: ModelRequest, /) -> ModelOutput: ...


ModelSpec: TypeAlias = str | Model


class ModelFailure(Exception):
    """Raised by a model to answer like a container returning HTTP ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ModelNotReady(Exception):
    """Raised when a container does not pass its health check (``GET /ping``) yet."""


def resolve_model(spec: ModelSpec, search_path: Sequence[str] = ()) -> Model:
    """The callable behind a model reference (see the module docstring).

    A ``module:function`` whose module is not importable from ``sys.path`` is looked for in the
    folders of ``search_path`` (the config file's folder and the current directory, for a config
    loaded from a file). A reference that cannot be resolved is a ``ValueError`` saying what is
    missing.
    """
    if not isinstance(spec, str):
        if not callable(spec):
            raise TypeError(f"a model must be a string reference or a callable, got {type(spec).__name__}")
        return spec
    if spec.startswith(("http://", "https://")):
        from smruntime.local.container import RemoteContainer

        return RemoteContainer(spec)
    if ":" in spec:
        return _import_callable(spec, search_path)
    from smruntime.local.builtins import BUILTIN_MODELS

    factory = BUILTIN_MODELS.get(spec)
    if factory is None:
        raise ValueError(f"unknown model {spec!r}: use one of {sorted(BUILTIN_MODELS)}, 'module:function' or a URL")
    return factory()


def _import_callable(reference: str, search_path: Sequence[str]) -> Model:
    module_name, _, attribute = reference.partition(":")
    try:
        module = _import_module(module_name, search_path)
    except ModuleNotFoundError as error:
        where = f" (looked in {', '.join(search_path)} and sys.path)" if search_path else ""
        raise ValueError(f"model {reference!r}: no module named {error.name!r}{where}") from error
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"model {reference!r}: {module_name} has no attribute {part!r}") from None
    if not callable(target):
        raise ValueError(f"model {reference!r} is not callable")
    return target


def _import_module(name: str, search_path: Sequence[str]) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        top = name.partition(".")[0]
        if error.name != top or not search_path:
            raise
    # Only the top-level module is found in search_path; its submodules follow its __path__.
    spec = importlib.machinery.PathFinder.find_spec(top, list(search_path))
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {top!r}", name=top)
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[top]
        raise
    return importlib.import_module(name)
