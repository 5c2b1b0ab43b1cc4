"""An operation's input or output as a member table: :class:`Shape`, :class:`Member`, :class:`Pattern`.

A row states the service model's facts about one member: its name, where it travels on the
wire, its constraints, whether it is sensitive or required, and a doc line. The tables
themselves are in :mod:`smruntime.service_model`; validation, the header bindings, output
parsing, the CLI's options and the local endpoint's request checks are derived from them.
This module depends on nothing else in the package, so the client, the CLI and the local
endpoint can all read the tables.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

from smruntime.middleware.reprs import fields_repr

Location = Literal["uri", "header", "query", "payload", "json"]
"""Where a member travels: a path label, a header, a query parameter, the whole HTTP body
(``payload``), or a member of a JSON document body (``json``)."""

MemberType = Literal["string", "integer", "blob", "eventstream"]


@attrs.frozen
class Pattern:
    """A member's pattern: the model's text, and what smruntime checks in its place.

    ``model`` is the pattern as the service model states it (Java syntax); the local endpoint
    quotes it in its ValidationErrors, as the service does. ``regex`` is that pattern in
    Python, full-matched by the local endpoint. ``client`` is what the client checks before
    sending (``regex`` unless given: narrower where a header cannot carry what the model
    allows), and ``text`` how the client's problems describe it (``model`` unless given).
    The two regexes are kept as text and compiled on first use (by :mod:`re`'s own cache), so
    a program pays only for the patterns of the members it sends.
    """

    __repr__ = fields_repr

    model: str
    regex: str
    client: str = attrs.field()
    text: str = attrs.field()

    @client.default
    def _client(self) -> str:
        return self.regex

    @text.default
    def _text(self) -> str:
        return self.model

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches the model's pattern (``regex``), whole."""
        return re.fullmatch(self.regex, value) is not None


@attrs.frozen
class Member:
    """One member of an operation's input or output, as the service model states it.

    ``name`` is the Python name (the keyword parameter, the attribute), ``api_name`` the
    model's. ``location_name`` is the header name, URI label or JSON key. ``min``/``max``
    bound a string's length, an integer's value or a blob's size. ``default`` is sent in
    its header when the caller gives none. ``varies`` marks a member that changes from
    call to call (a body, an id): the others are checked once per distinct combination.
    """

    __repr__ = fields_repr

    name: str
    api_name: str
    location: Location
    location_name: str | None = None
    type: MemberType = "string"
    required: bool = False
    min: int | None = None
    max: int | None = None
    pattern: Pattern | None = None
    enum: tuple[str, ...] = ()
    sensitive: bool = False
    default: str | None = None
    varies: bool = False
    doc: str = ""

    @property
    def wire_name(self) -> str:
        """The member's name in the service's own messages (``targetVariant``)."""
        return self.api_name[0].lower() + self.api_name[1:]


@attrs.frozen
class Shape:
    """An operation's input or output: its members in order (the clients' keyword order)."""

    __repr__ = fields_repr

    name: str
    members: tuple[Member, ...]

    def __getitem__(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"{self.name} has no member {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(member.name for member in self.members)

    @property
    def held(self) -> tuple[Member, ...]:
        """The members the input or output object holds: all but an event stream, whose
        events are sent or read on the open stream."""
        return tuple(member for member in self.members if member.type != "eventstream")

    def at(self, location: Location) -> tuple[Member, ...]:
        """The members that travel at ``location``, in order."""
        return tuple(member for member in self.members if member.location == location)
