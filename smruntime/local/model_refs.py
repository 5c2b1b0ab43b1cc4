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
import urllib.parse
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
        _check_url(spec)
        from smruntime.local.container import RemoteContainer  # here: it imports requests

        return RemoteContainer(spec)
    if "://" in spec:
        scheme = spec.partition("://")[0]
        raise ValueError(f"model {spec!r}: URL scheme {scheme!r} is not supported (a container URL is http:// or https://)")
    if ":" in spec:
        return _import_callable(spec, search_path)
    factory = BUILTIN_MODELS.get(spec)
    if factory is None:
        raise ValueError(f"unknown model {spec!r}: use one of {sorted(BUILTIN_MODELS)}, 'module:function' or a URL")
    return factory()


def _check_url(url: str) -> None:
    # Checked here, or a URL without a host or with a bad port fails only when first invoked.
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise ValueError(f"model {url!r}: not a valid URL: {error}") from None
    if not parts.hostname:
        raise ValueError(f"model {url!r}: a container URL needs a host (http://host:port)")
    if any(character.isspace() or ord(character) < 0x20 for character in url):
        raise ValueError(f"model {url!r}: a URL has no spaces or control characters")


def _import_callable(reference: str, search_path: Sequence[str]) -> Model:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"model {reference!r}: give both a module and a function (module:function)")
    try:
        module = _import_module(module_name, search_path)
    except ModuleNotFoundError as error:
        where = f" (looked in {', '.join(search_path)} and sys.path)" if search_path else ""
        raise ValueError(f"model {reference!r}: no module named {error.name!r}{where}") from error
    except (Exception, SystemExit) as error:  # the module itself failed: a syntax error, an exception, sys.exit()
        # One line: a message may span several, and may be empty.
        detail = " ".join(str(error).split())
        failure = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise ValueError(f"model {reference!r}: importing {module_name} failed: {failure}") from error
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
