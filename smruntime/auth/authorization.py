"""Parsing a SigV4 ``Authorization`` header: what a server does with one (the local endpoint, the
HTTP/2 mock). A client only writes them (:mod:`smruntime.auth.sigv4`), so this is loaded on
first use.
"""

from __future__ import annotations

import attrs

from smruntime.auth.sigv4 import ALGORITHM, TERMINATOR, credential_scope
from smruntime.errors import SigningError
from smruntime.middleware.reprs import fields_repr
from smruntime.redaction import REDACTED

__all__ = ["Authorization", "parse_authorization"]


@attrs.frozen
class Authorization:
    """A parsed SigV4 ``Authorization`` header."""

    __repr__ = fields_repr

    algorithm: str
    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str = attrs.field(repr=lambda _: REDACTED)

    @property
    def scope(self) -> str:
        return credential_scope(self.date, self.region, self.service)


_HEX = frozenset("0123456789abcdef")


def parse_authorization(value: str) -> Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``.

    Raises :class:`SigningError` naming the part that is missing or malformed.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigningError(f"Authorization: unsupported algorithm {algorithm[:32]!r}, expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep:
            raise SigningError(f"Authorization: malformed component {name[:32]!r}, expected Name=value")
        if name in fields:
            raise SigningError(f"Authorization: {name} appears twice")
        fields[name] = field_value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise SigningError(f"Authorization: missing {required}")
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise SigningError("Authorization: Credential must be access_key_id/date/region/service/aws4_request")
    access_key_id, date, region, service, terminator = credential
    if len(date) != 8 or not date.isdigit():
        raise SigningError(f"Authorization: Credential date {date[:16]!r} is not YYYYMMDD")
    if terminator != TERMINATOR:
        raise SigningError(f"Authorization: Credential must end in {TERMINATOR}, not {terminator[:32]!r}")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(signed) or any(name != name.lower() for name in signed):
        raise SigningError("Authorization: SignedHeaders must be non-empty lower-case names separated by ';'")
    signature = fields["Signature"]
    if len(signature) != 64 or not _HEX.issuperset(signature):
        raise SigningError("Authorization: Signature must be 64 lower-case hex digits")
    return Authorization(algorithm, access_key_id, date, region, service, terminator, signed, signature)


