"""What one caller may hold of the local endpoint: connections, and time to send a request.

uvicorn bounds the size of a request head but not the time it takes, nor the time a body
takes, and accepts any number of connections. ``ServerLimits`` adds what a front end has:

- ``max_connections``: a connection beyond it is answered ``503 ServiceUnavailable`` (the
  service's retryable error, so SDKs back off and retry) as soon as its request head
  arrives, and closed;
- ``header_timeout``: the time from the connection (or the end of the previous response)
  to the end of the request head; past it the connection is closed (a slowloris client,
  a connection opened and never used);
- ``body_timeout``: the time from the end of the head to the end of the body, in all (a
  body trickled a byte at a time does not reset it); past it the request is answered
  ``408`` and the connection closed. It also bounds how long the rest of a body is read
  and dropped after an early answer (403, 413).

The limits live in the HTTP protocol (:func:`limited_protocol`), below the app: they hold
whatever the app does.

The HTTP/2 listener (``h2_server``) holds to the same ``max_connections`` and
``header_timeout``; a bidirectional stream has no total time, as a session may last, but
ends once nothing has moved either way for ``stream_idle_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import attrs
import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from smruntime.middleware.reprs import fields_repr

__all__ = ["ServerLimits", "limited_protocol"]

logger = logging.getLogger("smruntime.local")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"ServerLimits.{attribute.name} must be > 0, not {value!r}")


@attrs.frozen
class ServerLimits:
    """How many connections the local endpoint holds and how long a request may take to arrive."""

    __repr__ = fields_repr

    max_connections: int = attrs.field(default=64, validator=_positive)
    header_timeout: float = attrs.field(default=20.0, validator=_positive)
    """Seconds for a request head to arrive, from the connection or the previous answer."""
    body_timeout: float = attrs.field(default=60.0, validator=_positive)
    """Seconds for a request body to arrive, in all, from the end of its head."""
    stream_idle_timeout: float = attrs.field(default=60.0, validator=_positive)
    """Seconds a bidirectional stream (HTTP/2) may go with no event either way; past it, it ends."""


_TIMEOUT_BODY = b'{"message": "The request body was not received in time."}'


def limited_protocol(limits: ServerLimits, busy_app: Any) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits``; ``busy_app`` (ASGI) answers connections over the limit."""

    class LimitedH11Protocol(_LimitedH11Protocol):
        pass

    LimitedH11Protocol.limits = limits
    LimitedH11Protocol.busy_app = staticmethod(busy_app)  # a plain function would become a method
    return LimitedH11Protocol


class _LimitedH11Protocol(H11Protocol):
    limits: ClassVar[ServerLimits]
    busy_app: ClassVar[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.app = self.busy_app  # uvicorn runs ``self.app`` for each request on this connection
        self._track()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def send_400_response(self, msg: str) -> None:
        super().send_400_response(msg)
        # uvicorn answered a request it could not parse (a broken body after a good head) and
        # closed; the app may be running for that head and must not answer too.
        self._abandon_cycle()

    def _abandon_cycle(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.response_complete = True
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    # --- deadlines ---

    def _track(self) -> None:
        """Arm the deadline of what the connection now waits for: a request head, a body, or nothing."""
        if self.transport is None or self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel()
        self._phase = phase
        if phase is not None:
            timeout = self.limits.header_timeout if phase == "head" else self.limits.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.warning("closing the connection from %s: its request %s did not arrive within %s s", peer, phase,
                       self.limits.header_timeout if phase == "head" else self.limits.body_timeout)
        if phase == "body" and self.conn.our_state is h11.SEND_RESPONSE:
            self._answer_timeout()
        self.transport.close()

    def _answer_timeout(self) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_TIMEOUT_BODY)).encode()),
                   (b"connection", b"close")]
        try:
            for event in (h11.Response(status_code=408, headers=headers, reason=b"Request Timeout"),
                          h11.Data(data=_TIMEOUT_BODY), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass  # the app answered in the meantime: closing is all that is left
        # The app still waits for the body: it is told the client left, and answers nothing.
        self._abandon_cycle()
