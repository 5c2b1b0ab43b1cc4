"""The access keys the local endpoint accepts.

In order: the credentials it is given; else those botocore's default chain finds where it runs
(so the user's boto3, AWS CLI and smruntime work against it unchanged); else the AWS
documentation's example pair ``AKIDEXAMPLE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = ["EXAMPLE_CREDENTIALS", "AcceptedKey", "CredentialsInput", "default_chain_keys", "resolve_credentials"]

EXAMPLE_CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
"""The AWS documentation's example key pair: accepted here, never by AWS."""


@attrs.frozen
class AcceptedKey:
    """One accepted access key; the secret and token never appear in a repr."""

    __repr__ = fields_repr

    access_key_id: str
    secret_access_key: str = attrs.field(repr=False)
    session_token: str | None = attrs.field(default=None, repr=False)
    """If set, requests must carry it in ``X-Amz-Security-Token``."""


CredentialsInput: TypeAlias = object
"""A (key, secret[, token]) tuple, an object with access key attributes, a {key: secret}
mapping, or several of these in a list."""


def resolve_credentials(given: CredentialsInput | None = None) -> tuple[AcceptedKey, ...]:
    """The accepted keys for ``given`` (see the module docstring for the fallbacks)."""
    if given is not None:
        keys = _keys(given)
        if not keys:
            raise ValueError("credentials: no access key given")
        return keys
    return default_chain_keys() or (AcceptedKey(*EXAMPLE_CREDENTIALS),)


def default_chain_keys() -> tuple[AcceptedKey, ...]:
    """The credentials botocore's default chain finds here, if any."""
    import botocore.session  # lazily: botocore costs ~150 ms to import

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        return ()
    frozen = credentials.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        return ()
    return (AcceptedKey(frozen.access_key, frozen.secret_key, frozen.token or None),)


def _keys(given: Any) -> tuple[AcceptedKey, ...]:
    one = _one_key(given)
    if one is not None:
        return (one,)
    if isinstance(given, Mapping):
        return tuple(AcceptedKey(str(key), str(secret)) for key, secret in given.items())
    if isinstance(given, Iterable) and not isinstance(given, str | bytes):
        keys: list[AcceptedKey] = []
        for item in given:
            key = _one_key(item)
            if key is None:
                raise TypeError(f"credentials: cannot use {type(item).__name__} as an access key")
            keys.append(key)
        return tuple(keys)
    raise TypeError(f"credentials: cannot use {type(given).__name__} as an access key")


def _one_key(value: Any) -> AcceptedKey | None:
    if isinstance(value, AcceptedKey):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3) and all(isinstance(part, str) for part in value):
        return AcceptedKey(*value)
    # smruntime's, botocore's and boto3's credential objects, by their attribute names.
    for key_attr, secret_attr, token_attr in (("access_key_id", "secret_access_key", "session_token"),
                                              ("access_key", "secret_key", "token")):
        if hasattr(value, key_attr) and hasattr(value, secret_attr):
            return AcceptedKey(getattr(value, key_attr), getattr(value, secret_attr),
                               getattr(value, token_attr, None) or None)
    return None
