"""Stateful sessions: ``NEW_SESSION`` opens one, its id routes later calls, the model closes it.

The store is bounded: opening a session drops the expired ones first, and when
``max_sessions`` are still open, the oldest gives way (a later call with its id is answered
like one with an expired id). A caller opening sessions in a loop costs memory up to the
bound, never more.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = ["DEFAULT_MAX_SESSIONS", "NEW_SESSION", "Session", "SessionStore", "format_new_session_header"]

NEW_SESSION = "NEW_SESSION"
DEFAULT_MAX_SESSIONS = 10_000
"""Sessions one server keeps open at most."""


@attrs.frozen
class Session:
    """An open session, pinned to the endpoint and variant that created it."""

    __repr__ = fields_repr

    id: str
    endpoint: str
    variant: str
    expires: float


def format_new_session_header(session: Session) -> str:
    """``<id>; Expires=YYYY-MM-DDTHH:MM:SSZ``, the NewSessionId shape in the service model."""
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.expires))
    return f"{session.id}; Expires={expires}"


class SessionStore:
    """Open sessions, shared by every endpoint of one server; thread-safe."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time, *,
                 max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.ttl_seconds = ttl_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[str, Session] = {}  # in opening order: the oldest first
        self._lock = threading.Lock()

    def open(self, endpoint: str, variant: str, session_id: str | None = None) -> Session:
        """A new session (with the model's id if it chose one)."""
        now = self._clock()
        session = Session(
            id=session_id or str(uuid.uuid4()),
            endpoint=endpoint,
            variant=variant,
            expires=now + self.ttl_seconds,
        )
        with self._lock:
            self._sessions.pop(session.id, None)  # a reused id moves to the end
            self._make_room(now)
            self._sessions[session.id] = session
        return session

    def _make_room(self, now: float) -> None:
        # With one TTL, opening order is expiry order: expired sessions are at the front.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.expires > now:
                break
            del self._sessions[oldest.id]
        if len(self._sessions) < self.max_sessions:
            return
        # Full: a clock that stepped back may have left expired sessions further in; then the oldest go.
        for expired in [key for key, session in self._sessions.items() if session.expires <= now]:
            del self._sessions[expired]
        while len(self._sessions) >= self.max_sessions:
            del self._sessions[next(iter(self._sessions))]

    def get(self, endpoint: str, session_id: str) -> Session | None:
        """The open session with this id on this endpoint; None if unknown, closed or expired."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires <= self._clock():
                del self._sessions[session_id]
                session = None
        return session if session is not None and session.endpoint == endpoint else None

    def close(self, session_id: str) -> bool:
        """Close a session; False if it was not open."""
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
