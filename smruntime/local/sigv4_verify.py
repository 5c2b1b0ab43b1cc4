"""SigV4 verification like the service's, built on ``smruntime.auth``'s canonicalization.

One implementation signs (the client) and verifies (this module): the canonical request is
computed by ``smruntime.auth`` from the path exactly as it arrived on the wire, the raw
query, the raw header list and the payload hash, which is always the SHA-256 of the body
received.

Verification runs in two steps, so that nothing is read for a caller who is not
authenticated: :meth:`Verifier.verify_headers` checks everything but the payload before the
body is read, :meth:`Verifier.verify_body` the rest once it is. A request that declares its
payload hash in ``X-Amz-Content-SHA256`` has its signature checked in the first step with
that value, and its body must then hash to it.

SageMaker Runtime's operations sign their payload: their service model has no
``unsignedPayload`` trait, and the SDKs (botocore, the Go and Java SDKs) hash the body for
them. ``UNSIGNED-PAYLOAD`` and the ``STREAMING-*`` values of ``X-Amz-Content-SHA256`` are an
Amazon S3 feature; a service that does not take them computes the canonical request from
the body, so the signature does not match. Here such a value, or anything but a SHA-256 in
lowercase hex, is refused the same way, before the body is read. The one exception is the
bidirectional stream (``streaming_events=True``), whose events are signed one by one: its
request declares ``STREAMING-AWS4-HMAC-SHA256-EVENTS`` and is signed with that literal as
the payload hash, or declares nothing and is signed with the empty body's hash (the Rust
SDK's way); the events are then checked by ``event_verify``.

What each failure is answered with. Every authentication failure is a 403, as AWS's REST-JSON
services (Lambda, API Gateway) answer them; JSON 1.1 services answer 400 for some. Codes are
the ones AWS uses (JSON-protocol services spell the first two with an ``Exception`` suffix):

======================================  ======  ==============================  ==========================================
failure                                 status  X-Amzn-ErrorType                message
======================================  ======  ==============================  ==========================================
no Authorization header                 403     MissingAuthenticationToken      Missing Authentication Token
malformed Authorization (parts, date,   403     IncompleteSignature             what is missing or malformed
algorithm, terminator), no X-Amz-Date,
host not signed
unknown access key, wrong               403     UnrecognizedClientException     The security token included in the request
X-Amz-Security-Token                                                            is invalid.
scope date != X-Amz-Date date           403     InvalidSignatureException       Date in Credential scope does not match ...
scope service is not ``sagemaker``      403     InvalidSignatureException       Credential should be scoped to correct
                                                                                service: 'sagemaker'.
scope region is not the endpoint's      403     InvalidSignatureException       Credential should be scoped to a valid
                                                                                region, not 'R'. (+ the expected scope)
X-Amz-Date > 5 min in the past          403     InvalidSignatureException       Signature expired: D is now earlier than
                                                                                E (N - 5 min.)
X-Amz-Date > 5 min in the future        403     InvalidSignatureException       Signature not yet current: D is still
                                                                                later than E (N + 5 min.)
signature mismatch (tampered header,    403     InvalidSignatureException       The request signature we calculated does
body, path or wrong secret; a body                                              not match the signature you provided. ...
that is not the X-Amz-Content-SHA256
declared; an unsigned or streaming
payload)
======================================  ======  ==============================  ==========================================

The mismatch message goes on, as the service's does, with the canonical request and string
to sign the server computed (secret header values redacted), which is what one needs to
find a signing bug.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import attrs

from smruntime import auth
from smruntime.errors import SigningError
from smruntime.event_signing import STREAMING_EVENTS_PAYLOAD
from smruntime.local.credentials import AcceptedKey
from smruntime.local.wire import ServiceError
from smruntime.middleware.reprs import fields_repr
from smruntime.redaction import REDACTED, SECRET_HEADERS, SENSITIVE_HEADERS

__all__ = ["MAX_SKEW_SECONDS", "SIGNING_NAME", "SignedHeaders", "Verifier"]

SIGNING_NAME = "sagemaker"
MAX_SKEW_SECONDS = 5 * 60

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def _missing() -> ServiceError:
    return ServiceError(403, "MissingAuthenticationToken", "Missing Authentication Token")


def _incomplete(message: str) -> ServiceError:
    return ServiceError(403, "IncompleteSignature", message)


def _unrecognized() -> ServiceError:
    return ServiceError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")


def _invalid(message: str) -> ServiceError:
    return ServiceError(403, "InvalidSignatureException", message)


def _amz_date(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


_AMZ_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z", re.ASCII)


def _parse_amz_date(value: str) -> float:
    # Not time.strptime, three times slower (about 5 µs of the local endpoint's 350 a call).
    match = _AMZ_DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{value[:32]}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _shown(value: str) -> str:
    # The value is the caller's: shown cut short, never as a wall of text in an error message.
    return value if len(value) <= 80 else value[:77] + "..."


@attrs.frozen
class SignedHeaders:
    """A request whose headers were authenticated; its signature is settled by the body."""

    __repr__ = fields_repr

    access_key_id: str
    secret_access_key: str = attrs.field(repr=False)
    parsed: auth.Authorization = attrs.field(repr=False)
    amz_date: str
    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]] = attrs.field(repr=False)
    declared_hash: str | None
    """The X-Amz-Content-SHA256 the signature was checked with already, if the request declared one."""


class Verifier:
    """Checks a request's SigV4 signature against the accepted keys, for one region."""

    def __init__(self, keys: Iterable[AcceptedKey], region: str, clock: Callable[[], float] = time.time) -> None:
        self._keys = {key.access_key_id: key for key in keys}
        self.region = region
        self._clock = clock
        self._key_cache = auth.SigningKeyCache()

    @property
    def access_key_ids(self) -> tuple[str, ...]:
        """The accepted access key ids (never the secrets)."""
        return tuple(self._keys)

    def verify_headers(self, *, method: str, raw_path: str, raw_query: str,
                       headers: Sequence[tuple[str, str]], streaming_events: bool = False) -> SignedHeaders:
        """Everything that can be checked before the body: raise the service's ServiceError, or
        return what :meth:`verify_body` needs. With a declared payload hash, that includes the signature.

        ``streaming_events``: the request opens a signed event stream (see the module docstring).
        """
        values = {name.lower(): value for name, value in headers}
        authorization = values.get("authorization")
        if not authorization:
            raise _missing()
        try:
            parsed = auth.parse_authorization(authorization)
        except SigningError as exc:
            raise _incomplete(str(exc)) from None
        amz_date = values.get("x-amz-date")
        if not amz_date:
            raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        signed_at = _parse_amz_date(amz_date)
        if "host" not in parsed.signed_headers:
            raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        key = self._keys.get(parsed.access_key_id)
        if key is None:
            raise _unrecognized()
        if key.session_token is not None and values.get("x-amz-security-token") != key.session_token:
            raise _unrecognized()
        self._check_scope(parsed, amz_date, signed_at)
        declared = values.get("x-amz-content-sha256")
        if declared is not None:
            declared = declared.strip()
            if streaming_events and declared != STREAMING_EVENTS_PAYLOAD:
                raise _invalid(
                    f"{_MISMATCH} X-Amz-Content-SHA256 is '{_shown(declared)}': this operation's events are signed "
                    f"one by one, so it must be '{STREAMING_EVENTS_PAYLOAD}'."
                )
            if not streaming_events and not _SHA256_HEX.fullmatch(declared):
                raise _invalid(
                    f"{_MISMATCH} X-Amz-Content-SHA256 is '{_shown(declared)}': this operation's payload is signed "
                    "with its SHA-256 in lowercase hex (unsigned and streaming payloads are for Amazon S3)."
                )
        signed = SignedHeaders(
            access_key_id=parsed.access_key_id, secret_access_key=key.secret_access_key, parsed=parsed,
            amz_date=amz_date, method=method, raw_path=raw_path, raw_query=raw_query, headers=tuple(headers),
            declared_hash=declared,
        )
        if declared is not None:
            self._check_signature(signed, declared)
        return signed

    def verify_body(self, signed: SignedHeaders, body: bytes) -> str:
        """The rest, once the body is read; returns the access key id."""
        actual = auth.payload_sha256(body)
        if signed.declared_hash is None:
            self._check_signature(signed, actual)
        elif not hmac.compare_digest(actual, signed.declared_hash):
            raise _invalid(f"{_MISMATCH} The body received does not hash to the X-Amz-Content-SHA256 declared.")
        return signed.access_key_id

    def _check_signature(self, signed: SignedHeaders, payload_hash: str) -> None:
        parsed = signed.parsed
        expected = auth.compute_signature(
            secret_key=signed.secret_access_key,
            method=signed.method,
            raw_path=signed.raw_path,
            raw_query=signed.raw_query,
            headers=signed.headers,
            signed_headers=parsed.signed_headers,
            payload_hash=payload_hash,
            amz_date=signed.amz_date,
            region=parsed.region,
            service=parsed.service,
            key_cache=self._key_cache,
        )
        if not hmac.compare_digest(expected, parsed.signature):
            raise _invalid(self._mismatch_message(signed.method, signed.raw_path, signed.raw_query, signed.headers,
                                                  parsed, signed.amz_date, payload_hash))

    def _check_scope(self, parsed: auth.Authorization, amz_date: str, signed_at: float) -> None:
        if parsed.date != amz_date[:8]:
            raise _invalid(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        if parsed.service != SIGNING_NAME:
            raise _invalid(f"Credential should be scoped to correct service: '{SIGNING_NAME}'. ")
        if parsed.region != self.region:
            expected = auth.credential_scope(parsed.date, self.region, SIGNING_NAME)
            raise _invalid(
                f"Credential should be scoped to a valid region, not '{parsed.region}'. "
                f"This endpoint expects the scope '{expected}'."
            )
        now = self._clock()
        if signed_at < now - MAX_SKEW_SECONDS:
            raise _invalid(
                f"Signature expired: {amz_date} is now earlier than {_amz_date(now - MAX_SKEW_SECONDS)} "
                f"({_amz_date(now)} - 5 min.)"
            )
        if signed_at > now + MAX_SKEW_SECONDS:
            raise _invalid(
                f"Signature not yet current: {amz_date} is still later than {_amz_date(now + MAX_SKEW_SECONDS)} "
                f"({_amz_date(now)} + 5 min.)"
            )

    @staticmethod
    def _mismatch_message(method: str, raw_path: str, raw_query: str, headers: Sequence[tuple[str, str]],
                          parsed: auth.Authorization, amz_date: str, payload_hash: str) -> str:
        def canonical(pairs: Sequence[tuple[str, str]]) -> str:
            return auth.canonical_request(
                method=method, raw_path=raw_path, raw_query=raw_query, headers=pairs,
                signed_headers=parsed.signed_headers, payload_hash=payload_hash,
            )

        hidden = SECRET_HEADERS | SENSITIVE_HEADERS
        shown = canonical([(name, REDACTED if name.lower() in hidden else value) for name, value in headers])
        # The string to sign carries only a digest of the real canonical request: safe to show.
        to_sign = auth.string_to_sign(canonical_request=canonical(headers), amz_date=amz_date,
                                      region=parsed.region, service=parsed.service)
        return (f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{shown}'\n\n"
                f"The String-to-Sign should have been\n'{to_sign}'\n")
