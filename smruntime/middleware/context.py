"""The per-call context: values that flow down the stack and metadata that flows up."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

import attrs

T = TypeVar("T")
OptionsT = TypeVar("OptionsT")
T_co = TypeVar("T_co", covariant=True)
D = TypeVar("D")


@attrs.frozen(eq=False)
class StackKey(Generic[T_co]):
    """A typed key for a value that flows down the stack (compared by identity)."""

    name: str

    def __repr__(self) -> str:
        return f"StackKey({self.name!r})"


@attrs.frozen(eq=False)
class MetadataKey(Generic[T_co]):
    """A typed key for result metadata that flows up to the caller."""

    name: str

    def __repr__(self) -> str:
        return f"MetadataKey({self.name!r})"


class Metadata:
    """Result metadata: typed key/value pairs set by middleware for the caller."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[MetadataKey[Any], Any] = {}

    @overload
    def get(self, key: MetadataKey[T]) -> T | None: ...
    @overload
    def get(self, key: MetadataKey[T], default: D) -> T | D: ...
    def get(self, key: MetadataKey[Any], default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: MetadataKey[T], value: T) -> None:
        self._values[key] = value

    def has(self, key: MetadataKey[Any]) -> bool:
        return key in self._values

    def clone(self) -> Metadata:
        copy = Metadata()
        copy._values = dict(self._values)
        return copy

    def as_dict(self) -> dict[str, Any]:
        """The values by key name, for display."""
        return {key.name: value for key, value in self._values.items()}

    def __repr__(self) -> str:
        return f"Metadata({self.as_dict()!r})"


@attrs.define(slots=True, eq=False)
class Context(Generic[OptionsT]):
    """One call's context: who is calling, with which options, and typed values.

    Values set with :meth:`set` are visible to every middleware that runs later in the
    same call; ``metadata`` is what the call reports back to its caller. ``Context[Options]``
    types ``options`` for an SDK's own middleware; bare, it is ``Any``.
    """

    operation_name: str
    service_id: str = ""
    options: OptionsT = None  # type: ignore[assignment]  # every SDK call sets it
    metadata: Metadata = attrs.field(factory=Metadata)
    _values: dict[StackKey[Any], Any] = attrs.field(factory=dict, alias="values")

    @overload
    def get(self, key: StackKey[T]) -> T | None: ...
    @overload
    def get(self, key: StackKey[T], default: D) -> T | D: ...
    def get(self, key: StackKey[Any], default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: StackKey[T], value: T) -> None:
        self._values[key] = value

    def has(self, key: StackKey[Any]) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        names = sorted(key.name for key in self._values)
        return f"Context(operation_name={self.operation_name!r}, values={names!r})"
