"""What both bulk shells call through: the run's client, behind one shared rate limiter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from smruntime.retry import AdaptiveRetryer, ClientRateLimiter, StandardRetryer

if TYPE_CHECKING:
    from smruntime.client import BaseClient

C = TypeVar("C", bound="BaseClient")


def run_client(client: C) -> C:
    """The client a bulk run calls through: ``client``, or a sibling behind one rate limiter.

    A client already in adaptive retry mode has a CUBIC rate limiter that gates every attempt:
    the run shares it. Otherwise the run gets a sibling client of the same class, on the same
    options and the same HTTP client (the same connection pool; the sibling does not own or
    close it) with an adaptive retryer of its own, keeping the client's attempt limit and retry
    quota, so throttling anywhere in the run slows every call and successes let it climb back.
    A sibling rather than per-call options: copying and checking options on every call costs
    more than the call's own client-side work in a fast loop.
    """
    options = client.options
    if isinstance(options.retryer, AdaptiveRetryer):
        return client
    quota = options.retryer.quota if isinstance(options.retryer, StandardRetryer) else None
    extra: dict[str, Any] = {"quota": quota} if quota is not None else {}
    options.retryer = AdaptiveRetryer(max_attempts=options.max_attempts or 1, **extra)
    options.retry_mode = "adaptive"
    return type(client)(options=options)


def pool_size(client: BaseClient) -> int | None:
    """How many connections the client's HTTP client keeps per origin, when it says."""
    options = client.options
    http = options.http_client
    size = getattr(http, "max_pool_connections", None) if http is not None else options.max_pool_connections
    return size if isinstance(size, int) and size > 0 else None


def limiter_of(client: BaseClient) -> ClientRateLimiter | None:
    """The rate limiter every call of ``client`` passes, if its retryer has one."""
    retryer = client.options.retryer
    return retryer.rate_limiter if isinstance(retryer, AdaptiveRetryer) else None


def send_rate(limiter: ClientRateLimiter | None) -> float | None:
    """The send-rate limit in force (for ``BulkScheduler.can_send``), None while there is none."""
    return limiter.rate if limiter is not None and limiter.enabled else None
