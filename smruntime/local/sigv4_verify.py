"""SigV4 verification like the service's, built on ``smruntime.auth``'s canonicalization.

One implementation signs (the client) and verifies (this module): the canonical request is
computed by ``smruntime.auth`` from the path exactly as it arrived on the wire, the raw
query, the raw header list and the payload hash: the ``X-Amz-Content-Sha256`` header's value
when the request carries one (``UNSIGNED-PAYLOAD`` included), as AWS does, else the SHA-256
of the received body.

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
body, path or wrong secret)                                                     not match the signature you provided. ...
======================================  ======  ==============================  ==========================================

The mismatch message goes on, as the service's does, with the canonical request and string
to sign the server computed (secret header values redacted), which is what one needs to
find a signing bug.
"""

from __future__ import annotations

import calendar
import hmac
import time
from collections.abc import Callable, Iterable, Sequence

from smruntime import auth
from smruntime.errors import SigningError
from smruntime.local.credentials import AcceptedKey
from smruntime.local.wire import ServiceError
from smruntime.redaction import REDACTED, SECRET_HEADERS, SENSITIVE_HEADERS

__all__ = ["MAX_SKEW_SECONDS", "SIGNING_NAME", "Verifier"]

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


def _parse_amz_date(value: str) -> float:
    try:
        parsed = time.strptime(value, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{value[:32]}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return float(calendar.timegm(parsed))


def _payload_hash(values: dict[str, str], body: bytes) -> str:
    # A declared hash is what the client signed (UNSIGNED-PAYLOAD for a body it did not hash).
    declared = values.get("x-amz-content-sha256")
    return declared.strip() if declared else auth.payload_sha256(body)


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

    def verify(self, *, method: str, raw_path: str, raw_query: str, headers: Sequence[tuple[str, str]],
               body: bytes) -> str:
        """Raise the service's ServiceError unless the request is signed right; returns the access key id."""
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
        payload_hash = _payload_hash(values, body)
        expected = auth.compute_signature(
            secret_key=key.secret_access_key,
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            signed_headers=parsed.signed_headers,
            payload_hash=payload_hash,
            amz_date=amz_date,
            region=parsed.region,
            service=parsed.service,
            key_cache=self._key_cache,
        )
        if not hmac.compare_digest(expected, parsed.signature):
            raise _invalid(self._mismatch_message(method, raw_path, raw_query, headers, parsed, amz_date, payload_hash))
        return parsed.access_key_id

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
