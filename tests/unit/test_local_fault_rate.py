"""The local endpoint's fixed-capacity fault: requests beyond a rate are throttled."""

from __future__ import annotations

import pytest

from smruntime.local.config import FaultConfig
from smruntime.local.faults import Faults


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def throttled(faults: Faults, count: int) -> int:
    return sum(faults.take().error is not None for _ in range(count))


def test_requests_beyond_the_rate_are_throttled_and_the_bucket_refills() -> None:
    clock = Clock()
    faults = Faults(FaultConfig(throttle_above=50), clock=clock)
    assert throttled(faults, 8) == 3  # a burst of 0.1 s: five requests
    clock.now += 0.04  # two more tokens
    assert throttled(faults, 3) == 1
    error = faults.take().error
    assert error is not None and error.code == "ThrottlingException"
    faults.clear()
    assert throttled(faults, 100) == 0


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="throttle_above must be positive"):
        Faults().throttle_above(0)
