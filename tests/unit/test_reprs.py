"""``fields_repr``: the text attrs would write, without a ``__repr__`` compiled per class."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import attrs

from smruntime.middleware.reprs import fields_repr
from tests.package_modules import MODULES


def _hidden(value: Any) -> str:
    return f"<{len(value)} bytes>"


@attrs.define
class _Generated:
    name: str
    body: bytes = attrs.field(repr=_hidden)
    secret: str = attrs.field(default="s", repr=False)
    later: int = attrs.field(init=False)
    inner: Any = None


@attrs.define
class _Shared:
    __repr__ = fields_repr

    name: str
    body: bytes = attrs.field(repr=_hidden)
    secret: str = attrs.field(default="s", repr=False)
    later: int = attrs.field(init=False)
    inner: Any = None


def test_it_writes_what_attrs_writes() -> None:
    generated, shared = _Generated("a", b"xyz", inner=[1]), _Shared("a", b"xyz", inner=[1])
    assert _attrs_compiled(type(generated).__repr__)  # the reference is attrs' own
    assert repr(shared) == repr(generated).replace("_Generated", "_Shared")
    assert repr(shared) == "_Shared(name='a', body=<3 bytes>, later=NOTHING, inner=[1])"  # unset: as attrs shows it
    generated.later = shared.later = 7
    assert repr(shared) == repr(generated).replace("_Generated", "_Shared")


def test_an_object_that_holds_itself_is_shown_once() -> None:
    generated, shared = _Generated("a", b""), _Shared("a", b"")
    generated.inner, shared.inner = generated, shared
    assert repr(shared) == repr(generated).replace("_Generated", "_Shared") == (
        repr(shared).split("inner=")[0] + "inner=...)"
    )


def _attrs_compiled(function: Any) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and "attrs generated" in code.co_filename


def test_no_class_of_the_package_has_an_attrs_compiled_repr() -> None:
    compiled = []
    for name in MODULES:
        if name.endswith(".__main__"):  # runs the CLI when imported
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed
            continue
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == name and attrs.has(cls) and _attrs_compiled(cls.__repr__):
                compiled.append(f"{name}.{cls.__qualname__}")
    assert compiled == [], "add `__repr__ = fields_repr` to the class body"
