"""Signing of an input event stream (sans-IO).

The initial request is signed by the ordinary SigV4 signer with the payload hash
:data:`STREAMING_EVENTS_PAYLOAD` (``X-Amz-Content-SHA256`` carries the same literal); its hex
signature seeds a chain. Every event is then wrapped in an outer frame holding ``:date`` and
``:chunk-signature``, each signature chained on the one before, and the input ends with a
signed frame around an empty payload.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from datetime import UTC, datetime
from typing import Final, NamedTuple

from smruntime.auth import Credentials, SigningKey, SigningKeyCache, SigV4Signer, credential_scope, format_amz_date
from smruntime.eventstream import Timestamp, encode_frame, encode_message
from smruntime.http import HTTPRequest

__all__ = [
    "EVENT_ALGORITHM",
    "STREAMING_EVENTS_PAYLOAD",
    "EventDate",
    "EventSigner",
    "EventStreamClosedError",
    "chained_signature",
    "event_date",
    "event_signature",
    "event_string_to_sign",
    "seed_signature",
    "sign_initial_request",
]

STREAMING_EVENTS_PAYLOAD: Final = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
EVENT_ALGORITHM: Final = "AWS4-HMAC-SHA256-PAYLOAD"


def sign_initial_request(
    signer: SigV4Signer,
    request: HTTPRequest,
    credentials: Credentials,
    *,
    region: str,
    service: str,
    signing_time: datetime,
) -> str:
    """Sign the request that opens an input event stream; its hex signature seeds the chain.

    The ordinary SigV4 signer, with ``X-Amz-Content-SHA256`` and the canonical request's
    payload hash both :data:`STREAMING_EVENTS_PAYLOAD` (the events are signed one by one).
    """
    request.headers["X-Amz-Content-SHA256"] = STREAMING_EVENTS_PAYLOAD
    signer.sign_http(request, credentials, STREAMING_EVENTS_PAYLOAD, service, region, signing_time)
    return seed_signature(request.headers["Authorization"])


class EventStreamClosedError(RuntimeError):
    """An event was offered for signing after the signed end frame."""


def seed_signature(authorization: str) -> str:
    """The hex ``Signature=`` value of a SigV4 ``Authorization`` header: the chain's seed."""
    _, found, signature = authorization.rpartition("Signature=")
    if not found or not signature:
        raise ValueError("the Authorization header holds no Signature=")
    return signature.strip()


def event_string_to_sign(*, amz_date: str, scope: str, prior_signature: str, date_header: bytes, payload: bytes) -> str:
    """The six lines an event signature covers, joined by ``\\n`` with no trailing newline."""
    return "\n".join(
        (
            EVENT_ALGORITHM,
            amz_date,
            scope,
            prior_signature,
            hashlib.sha256(date_header).hexdigest(),
            hashlib.sha256(payload).hexdigest(),
        )
    )


def event_signature(
    *, key: bytes, amz_date: str, scope: str, prior_signature: str, date_header: bytes, payload: bytes
) -> bytes:
    """The raw 32-byte HMAC-SHA256 signature of one event under the derived ``key``."""
    sts = event_string_to_sign(
        amz_date=amz_date, scope=scope, prior_signature=prior_signature, date_header=date_header, payload=payload
    )
    return hmac.digest(key, sts.encode("utf-8"), "sha256")


def chained_signature(
    keys: SigningKeyCache,
    secret_access_key: str,
    *,
    region: str,
    service: str,
    date: Timestamp,
    prior_signature: str,
    payload: bytes,
) -> bytes:
    """The signature of one outer frame: its whole-second ``:date`` and ``payload``, chained."""
    amz_date = format_amz_date(datetime.fromtimestamp(date.millis // 1000, UTC))
    return event_signature(
        key=keys.get(secret_access_key, amz_date[:8], region, service).key,
        amz_date=amz_date,
        scope=credential_scope(amz_date[:8], region, service),
        prior_signature=prior_signature,
        date_header=_header_block(encode_message({":date": date})),
        payload=payload,
    )


class EventDate(NamedTuple):
    """What every event signed with one ``:date`` shares, worked out once for all of them."""

    millis: int  # the :date, in milliseconds since the epoch
    head: str  # the string to sign's first three lines (algorithm, date, scope), each with its newline
    key: SigningKey
    date_header: bytes  # the encoded :date header, which the outer frame's headers start with
    date_hash: str

    def signature(self, prior_signature: str, payload: bytes) -> bytes:
        """The same signature as :func:`chained_signature`, from what depends only on the date."""
        sts = f"{self.head}{prior_signature}\n{self.date_hash}\n{hashlib.sha256(payload).hexdigest()}"
        return self.key.digest(sts)


def event_date(keys: SigningKeyCache, secret_access_key: str, *, region: str, service: str,
               date: Timestamp) -> EventDate:
    """The :class:`EventDate` of ``date`` (signed in whole seconds: sub-second digits are dropped)."""
    amz_date = format_amz_date(datetime.fromtimestamp(date.millis // 1000, UTC))
    scope = credential_scope(amz_date[:8], region, service)
    date_header = _header_block(encode_message({":date": date}))
    return EventDate(
        millis=date.millis,
        head=f"{EVENT_ALGORITHM}\n{amz_date}\n{scope}\n",
        key=keys.get(secret_access_key, amz_date[:8], region, service),
        date_header=date_header,
        date_hash=hashlib.sha256(date_header).hexdigest(),
    )


class EventSigner:
    """Wraps and signs the events of one stream, in order; not thread-safe (one stream, one task).

    ``prior_signature`` starts as the seed (the initial request's hex signature) and moves on
    with every signed event. After :meth:`sign_end` nothing more is signed.
    """

    __slots__ = ("_credentials", "_date", "_ended", "_keys", "prior_signature", "region", "service")

    def __init__(
        self,
        credentials: Credentials,
        *,
        region: str,
        service: str,
        seed: str,
        key_cache: SigningKeyCache | None = None,
    ) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self.prior_signature = seed
        self._keys = key_cache if key_cache is not None else SigningKeyCache(maxsize=2)
        self._ended = False
        self._date: EventDate | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    def sign(self, message: bytes, when: datetime | None = None) -> bytes:
        """The outer frame carrying the encoded event ``message``, signed and chained."""
        if self._ended:
            raise EventStreamClosedError("no event can be signed after the end of input")
        return self._wrap(message, when)

    def sign_end(self, when: datetime | None = None) -> bytes:
        """The signed frame around an empty payload that ends the input."""
        frame = self.sign(b"", when)
        self._ended = True
        return frame

    def _wrap(self, payload: bytes, when: datetime | None) -> bytes:
        # Whole seconds: the :date header and the string to sign must show the same instant,
        # and the string to sign has no sub-second digits. (A naive ``when`` is local time.)
        millis = (int(time.time()) if when is None else math.floor(when.timestamp())) * 1000
        date = self._date
        if date is None or date.millis != millis:
            date = self._date = event_date(self._keys, self._credentials.secret_access_key, region=self.region,
                                           service=self.service, date=Timestamp(millis))
        signature = date.signature(self.prior_signature, payload)
        self.prior_signature = signature.hex()
        return encode_frame(date.date_header + _SIGNATURE_HEADER + signature, payload)

    def __repr__(self) -> str:
        return f"EventSigner(region={self.region!r}, service={self.service!r}, ended={self._ended})"


# An encoded message is prelude (12 bytes), headers, payload, CRC (4 bytes); with no payload
# the headers are everything between prelude and CRC.
_PRELUDE: Final = 12
_CRC: Final = 4


# The encoded name and type of the :chunk-signature header, whose value is always 32 bytes.
_SIGNATURE_HEADER: Final = bytes((16,)) + b":chunk-signature" + b"\x06\x00\x20"


def _header_block(frame: bytes) -> bytes:
    return frame[_PRELUDE:-_CRC]
