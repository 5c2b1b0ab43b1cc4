"""Names a module exports whose defining modules load only when a name is first asked for.

A package keeps every name importable from where it always was while a program that never
uses one does not pay for importing its module (nor for creating its classes)::

    __getattr__ = lazy_getattr(__name__, {"AsyncClient": "smruntime.async_client"})
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping


def lazy_getattr(module: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``module``: each name in ``homes`` is read from the
    module named there, imported on first access; any other name is an ``AttributeError``."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
