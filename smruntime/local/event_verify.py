"""Verification of a signed input event stream on the local endpoint (sans-IO).

The mirror of :class:`smruntime.event_signing.EventSigner`: each outer frame must carry
exactly ``:date`` and ``:chunk-signature``, and the signature must be the one chained on the
previous frame's (the first on the initial request's). A frame with an empty payload ends the
input; anything after it, a tampered, reordered, dropped or replayed frame, or a stream that
ends without that frame is refused.
"""

from __future__ import annotations

import hmac
from typing import Final

from smruntime.auth import SigningKeyCache
from smruntime.event_signing import EventDate, event_date
from smruntime.eventstream import Message, Timestamp

__all__ = ["EventSignatureError", "EventVerifier"]

_SIGNED_HEADERS: Final = frozenset({":date", ":chunk-signature"})


class EventSignatureError(Exception):
    """An input event failed verification; the message says which rule (never a signature)."""


class EventVerifier:
    """Checks the outer frames of one input stream, in arrival order."""

    __slots__ = ("_date", "_ended", "_keys", "_prior", "_secret", "region", "service")

    def __init__(
        self,
        secret_access_key: str,
        *,
        region: str,
        service: str,
        seed: str,
        key_cache: SigningKeyCache | None = None,
    ) -> None:
        self._secret = secret_access_key
        self.region = region
        self.service = service
        self._prior = seed
        self._keys = key_cache if key_cache is not None else SigningKeyCache(maxsize=2)
        self._ended = False
        self._date: EventDate | None = None

    @property
    def ended(self) -> bool:
        """Whether the signed end frame has arrived."""
        return self._ended

    def verify(self, frame: Message) -> bytes | None:
        """The inner event bytes of ``frame``, or None for the end frame.

        Raises:
            EventSignatureError: a frame after the end, wrong headers or a wrong signature.
        """
        if self._ended:
            raise EventSignatureError("an event arrived after the signed end frame")
        headers = frame.headers
        if headers.keys() != _SIGNED_HEADERS:  # compared as sets, none built
            raise EventSignatureError("an input event must carry exactly the :date and :chunk-signature headers")
        date = headers[":date"]
        signature = headers[":chunk-signature"]
        if not isinstance(date, Timestamp) or not isinstance(signature, bytes):
            raise EventSignatureError(":date must be a timestamp and :chunk-signature a byte array")
        known = self._date
        if known is None or known.millis != date.millis:
            known = self._date = event_date(self._keys, self._secret, region=self.region, service=self.service,
                                            date=date)
        expected = known.signature(self._prior, frame.payload)
        if not hmac.compare_digest(expected, signature):
            raise EventSignatureError("the event's :chunk-signature does not match (tampered, reordered or dropped)")
        self._prior = expected.hex()
        if not frame.payload:
            self._ended = True
            return None
        return frame.payload

    def finish(self) -> None:
        """Call when the request stream ends: without the signed end frame the input is incomplete."""
        if not self._ended:
            raise EventSignatureError("the input ended without the signed end frame")

    def __repr__(self) -> str:
        return f"EventVerifier(region={self.region!r}, service={self.service!r}, ended={self._ended})"
