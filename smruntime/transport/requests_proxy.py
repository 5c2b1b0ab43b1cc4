"""Pools for origins behind a proxy, from requests' adapter (imported only when a proxy is in play)."""

from __future__ import annotations

from typing import Any, cast

import requests
import requests.adapters
import urllib3.connectionpool

__all__ = ["ProxyAdapter"]


class ProxyAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, whose proxy pools use the given pool classes (connections that tag
    their failures, pools whose close() wakes their waiters)."""

    def __init__(self, pool_classes: dict[str, type[Any]], **settings: Any) -> None:
        self._pool_classes = pool_classes
        super().__init__(**settings)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        new = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if new and not proxy.lower().startswith("socks"):  # SOCKS pools have their own classes
            manager.pool_classes_by_scheme = dict(self._pool_classes)
        return manager

    def pool_for(self, scheme: str, netloc: str, proxy: str, verify: bool | str) -> urllib3.connectionpool.HTTPConnectionPool:
        """The pool for an origin through ``proxy``, with requests' TLS settings for ``verify``."""
        origin = f"{scheme}://{netloc}/"
        prepared = requests.PreparedRequest()
        prepared.url = origin
        pool = self.get_connection_with_tls_context(prepared, verify, proxies={scheme: proxy})
        self.cert_verify(pool, origin, verify, None)  # type: ignore[no-untyped-call]
        return cast(urllib3.connectionpool.HTTPConnectionPool, pool)
