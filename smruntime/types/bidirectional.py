"""The events of a bidirectional stream, each way."""

from __future__ import annotations

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.types import _body_repr


@attrs.frozen
class RequestPayloadPart:
    """One event sent on a bidirectional stream.

    ``data_type`` is ``UTF8`` or ``BINARY`` (None: the service treats it as ``BINARY``);
    ``completion_state`` is ``PARTIAL`` or ``COMPLETE`` (None: ``COMPLETE``); ``p`` is
    padding that hides the payload's true length.
    """

    __repr__ = fields_repr

    bytes: bytes = attrs.field(repr=_body_repr)
    data_type: str | None = None
    completion_state: str | None = None
    p: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class ResponsePayloadPart:
    """One event received on a bidirectional stream, with the headers the model set."""

    __repr__ = fields_repr

    bytes: bytes = attrs.field(repr=_body_repr)
    data_type: str | None = None
    completion_state: str | None = None
    p: str | None = attrs.field(default=None, repr=False)
