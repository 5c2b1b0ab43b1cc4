"""Credentials, AWS Signature Version 4 and the signing middleware, one module per concern.

- :mod:`smruntime.auth.credentials`: credentials and their providers;
- :mod:`smruntime.auth.sigv4`: the sans-IO SigV4 pieces and the signer;
- :mod:`smruntime.auth.authorization`: parsing an ``Authorization`` header (servers only,
  loaded on first use);
- :mod:`smruntime.auth.middleware`: ComputePayloadHash and Signing.

Every public name is importable from here, as it was before the package was split.
"""

from typing import TYPE_CHECKING

from smruntime.auth.credentials import (
    ANONYMOUS,
    AnonymousCredentials,
    BotocoreCredentialsProvider,
    Credentials,
    CredentialsProvider,
    DefaultCredentialsProvider,
    StaticCredentialsProvider,
    credentials_provider,
)
from smruntime.auth.middleware import ComputePayloadHash, Signing
from smruntime.auth.sigv4 import (
    ALGORITHM,
    EMPTY_SHA256,
    UNSIGNED_HEADERS,
    UNSIGNED_PAYLOAD,
    HTTPSigner,
    SigningKey,
    SigningKeyCache,
    SigV4Signer,
    canonical_query,
    canonical_request,
    canonical_uri,
    compute_signature,
    credential_scope,
    format_amz_date,
    format_authorization,
    payload_sha256,
    signing_key,
    string_to_sign,
)

# isort: split
# Public names kept out of __all__, importable from here as before the split.
from smruntime.auth.sigv4 import DEFAULT_SIGNING_NAME as DEFAULT_SIGNING_NAME
from smruntime.auth.sigv4 import TERMINATOR as TERMINATOR
from smruntime.auth.sigv4 import SigningTrace as SigningTrace
from smruntime.lazy_names import lazy_getattr

if TYPE_CHECKING:
    from smruntime.auth.authorization import Authorization, parse_authorization

__getattr__ = lazy_getattr(__name__, dict.fromkeys(("Authorization", "parse_authorization"), "smruntime.auth.authorization"))

__all__ = [
    "ALGORITHM",
    "ANONYMOUS",
    "EMPTY_SHA256",
    "UNSIGNED_HEADERS",
    "UNSIGNED_PAYLOAD",
    "AnonymousCredentials",
    "Authorization",
    "BotocoreCredentialsProvider",
    "ComputePayloadHash",
    "Credentials",
    "CredentialsProvider",
    "DefaultCredentialsProvider",
    "HTTPSigner",
    "SigV4Signer",
    "Signing",
    "SigningKey",
    "SigningKeyCache",
    "StaticCredentialsProvider",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "compute_signature",
    "credential_scope",
    "credentials_provider",
    "format_amz_date",
    "format_authorization",
    "parse_authorization",
    "payload_sha256",
    "signing_key",
    "string_to_sign",
]
