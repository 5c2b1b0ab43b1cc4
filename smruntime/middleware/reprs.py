"""One ``__repr__`` for attrs classes, the framework's and the rest of the package's.

attrs writes and compiles a ``__repr__`` for every class as the class is created, about a
tenth of a millisecond each, and some forty classes are created before a first call returns.
:func:`fields_repr` gives the same text, worked out from ``attrs.fields`` when a repr is asked
for. A class uses it with ``__repr__ = fields_repr`` in its body, and attrs then writes none.
"""

from __future__ import annotations

import reprlib
from typing import Any

import attrs

__all__ = ["fields_repr"]


@reprlib.recursive_repr()
def fields_repr(self: Any) -> str:
    """``Name(field=value, …)`` as attrs writes it: a field's own ``repr`` callable is used, and
    ``repr=False`` fields are left out."""
    cls = type(self)
    shown = []
    for field in attrs.fields(cls):
        if field.repr is False:
            continue
        value = getattr(self, field.name, attrs.NOTHING)
        shown.append(f"{field.name}={value!r}" if field.repr is True else f"{field.name}={field.repr(value)}")
    return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({', '.join(shown)})"
