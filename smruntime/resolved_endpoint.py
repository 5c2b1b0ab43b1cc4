"""The value an endpoint resolver returns; ``endpoints`` resolves it, ``keys`` carries it.

A module of its own so that ``keys`` can name the type without importing the resolvers (which
set the keys).
"""

from __future__ import annotations

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = ["DEFAULT_SIGNING_NAME", "Endpoint"]

DEFAULT_SIGNING_NAME = "sagemaker"


@attrs.frozen
class Endpoint:
    """A resolved endpoint: ``url`` is ``scheme://host[:port][/base-path]``, no trailing slash.

    ``signing_region`` None means "sign for the client's region".
    """

    __repr__ = fields_repr

    url: str
    signing_region: str | None = None
    signing_name: str = DEFAULT_SIGNING_NAME
    partition: str = "aws"
    source: str = "custom"
    """How it was found: ``default`` (the rule set), ``custom`` or ``vpce`` (a given URL)."""
