"""How a model reference of the local endpoint's configuration becomes a model.

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
from collections.abc import Sequence
from types import ModuleType

from smruntime.local.builtins import BUILTIN_MODELS
from smruntime.local.models import Model, ModelSpec

__all__ = ["resolve_model"]


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
        from smruntime.local.container import RemoteContainer  # here: it imports requests

        return RemoteContainer(spec)
    if "://" in spec:
        raise ValueError(f"model {spec!r}: a container URL must be http:// or https://")
    if ":" in spec:
        return _import_callable(spec, search_path)
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
    except Exception as error:  # the module itself failed (a syntax error, an exception at import)
        raise ValueError(f"model {reference!r}: importing {module_name} failed: {type(error).__name__}: {error}") from error
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
