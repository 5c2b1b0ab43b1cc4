"""Adaptive retry mode: the standard retries plus a client-side rate limiter.

Loaded when first used: standard mode is the default.
"""

from __future__ import annotations

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.retry.limiter import ClientRateLimiter
from smruntime.retry.policy import ReleaseToken, StandardRetryer

__all__ = [
    "AdaptiveRetryer",
]


def _new_limiter(retryer: AdaptiveRetryer) -> ClientRateLimiter:
    return ClientRateLimiter(clock=retryer.clock, sleep=retryer.sleep)


@attrs.frozen(eq=False)
class AdaptiveRetryer(StandardRetryer):
    """Adaptive mode: standard retries plus a client-side rate limiter that slows after throttles."""

    __repr__ = fields_repr

    rate_limiter: ClientRateLimiter = attrs.field(
        default=attrs.Factory(_new_limiter, takes_self=True), kw_only=True
    )

    def get_attempt_token(self) -> ReleaseToken:
        self.rate_limiter.acquire()
        return self.rate_limiter.update

    def reserve_attempt_token(self) -> tuple[float, ReleaseToken]:
        return self.rate_limiter.reserve(), self.rate_limiter.update

    def attempt_wait_left(self) -> float:
        return self.rate_limiter.wait_left()
