"""Which ``Host`` header values the local endpoint answers (sans-IO).

A web page can reach a server on loopback through DNS rebinding: its own name starts to
resolve to 127.0.0.1, and the browser, which believes it is talking to the page's origin,
sends requests, and reads the answers, with ``Host: <that name>``. Checking the name is
what stops it. Served are: loopback names and addresses (``localhost``, 127.0.0.0/8,
``::1``), the host the server is bound to, and the extra names it is given (``"*"``: any).
A server bound to every interface (``0.0.0.0``, ``::``) also answers any IP address and the
machine's host name: an address cannot be rebound. The port is not compared (a server may
be reached through a forwarded port), and a request without ``Host`` (HTTP/1.0; no browser
sends one) passes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = ["ANY_HOST", "HostPolicy", "is_loopback"]

ANY_HOST = "*"
"""An allowed name that turns the check off (a server behind a proxy that rewrites Host)."""

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_LOOPBACK_NAMES = frozenset({"localhost"})


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: the hosts only this machine can reach."""
    name = host.strip().strip("[]").rstrip(".").lower()
    address = _address(name)
    return address.is_loopback if address is not None else name in _LOOPBACK_NAMES


def _host_name(header: str) -> str:
    """The name in a Host header value: without port or IPv6 brackets, lower case, no final dot."""
    value = header.strip()
    if value.startswith("["):
        return value[1:].partition("]")[0].lower()
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".").lower()


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class HostPolicy:
    """The Host names a server answers; :meth:`allows` decides per request."""

    __repr__ = fields_repr

    names: frozenset[str] = attrs.field(converter=_names, factory=frozenset)
    any_address: bool = False
    """Bound to every interface: any IP address is one of ours."""

    @classmethod
    def serving(cls, bound_host: str, extra: Iterable[str] = ()) -> HostPolicy:
        """The policy for a server bound to ``bound_host``, also answering the ``extra`` names."""
        wildcard = bound_host in _WILDCARDS
        bound = socket.gethostname().lower() if wildcard else _host_name(bound_host)
        return cls(names={*_LOOPBACK_NAMES, bound, *(_host_name(name) for name in extra)}, any_address=wildcard)

    def allows(self, host: str | None) -> bool:
        """Whether a request with this Host header value (None: none) is answered."""
        if host is None or ANY_HOST in self.names:
            return True
        name = _host_name(host)
        if name in self.names:
            return True
        address = _address(name)
        return address is not None and (address.is_loopback or self.any_address)

    def describe(self) -> str:
        """The served names, for an error message."""
        shown = sorted(self.names | {"127.0.0.1", "::1"})
        return ", ".join(shown) + (" and any IP address" if self.any_address else "")
