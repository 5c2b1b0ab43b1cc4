"""Stateful sessions: ``NEW_SESSION`` opens one, its id routes later calls, the model closes it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import attrs

__all__ = ["NEW_SESSION", "Session", "SessionStore", "format_new_session_header"]

NEW_SESSION = "NEW_SESSION"


@attrs.frozen
class Session:
    """An open session, pinned to the endpoint and variant that created it."""

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

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, endpoint: str, variant: str, session_id: str | None = None) -> Session:
        """A new session (with the model's id if it chose one)."""
        session = Session(
            id=session_id or str(uuid.uuid4()),
            endpoint=endpoint,
            variant=variant,
            expires=self._clock() + self.ttl_seconds,
        )
        with self._lock:
            self._sessions[session.id] = session
        return session

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
