"""Retries: the ``Retryer`` protocol, the standard/adaptive/no-retry policies, their middleware.

One module per concern:

- :mod:`smruntime.retry.policy`: the ``Retryer`` protocol and the retryers;
- :mod:`smruntime.retry.adaptive`: adaptive mode's retryer (loaded when first used);
- :mod:`smruntime.retry.quota`: the client-wide retry quota;
- :mod:`smruntime.retry.limiter`: adaptive mode's client-side rate limiter;
- :mod:`smruntime.retry.middleware`: the Retry middleware and the headers it sends.

Every public name is importable from here, as it was before the package was split.
"""

from typing import TYPE_CHECKING

from smruntime.lazy_names import lazy_getattr
from smruntime.retry.middleware import (
    CLOCK_SKEW_CODES,
    INVOCATION_ID_HEADER,
    RETRY_METRICS_HEADER,
    SIGNATURE_CODES,
    SKEW_THRESHOLD,
    ClientRequestID,
    ClockOffset,
    Retry,
    RetryMetricsHeader,
)
from smruntime.retry.policy import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    NoRetryer,
    ReleaseToken,
    Retryer,
    StandardRetryer,
    new_retryer,
)
from smruntime.retry.quota import DEFAULT_RETRY_TOKENS, RetryQuota

if TYPE_CHECKING:
    from smruntime.retry.adaptive import AdaptiveRetryer
    from smruntime.retry.limiter import ClientRateLimiter

# isort: split
# Public names kept out of __all__, importable from here as before the split.
from smruntime.retry.policy import NO_RETRY_INCREMENT as NO_RETRY_INCREMENT
from smruntime.retry.policy import RETRY_COST as RETRY_COST
from smruntime.retry.policy import TIMEOUT_RETRY_COST as TIMEOUT_RETRY_COST
from smruntime.retry.policy import AsyncSleep as AsyncSleep
from smruntime.retry.policy import async_sleep_of as async_sleep_of
from smruntime.retry.policy import reserve_attempt as reserve_attempt

__all__ = [
    "CLOCK_SKEW_CODES",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_RETRY_TOKENS",
    "INVOCATION_ID_HEADER",
    "RETRY_METRICS_HEADER",
    "SIGNATURE_CODES",
    "SKEW_THRESHOLD",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "AdaptiveRetryer",
    "ClientRateLimiter",
    "ClientRequestID",
    "ClockOffset",
    "NoRetryer",
    "ReleaseToken",
    "Retry",
    "RetryMetricsHeader",
    "RetryQuota",
    "Retryer",
    "StandardRetryer",
    "new_retryer",
]


# Adaptive mode's classes load when first used: standard mode is the default.
__getattr__ = lazy_getattr(
    __name__, {"AdaptiveRetryer": "smruntime.retry.adaptive", "ClientRateLimiter": "smruntime.retry.limiter"}
)
