"""Settings every property test shares.

The suite runs on small, busy CI machines, where generating examples can be slow; Hypothesis'
"too slow" health check would then fail a test for the machine, not for the code under test.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("smruntime", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("smruntime")
