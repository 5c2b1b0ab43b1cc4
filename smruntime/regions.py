"""Whether a region is one the endpoint rules know, for error messages only.

The endpoint rules build a URL for any well-formed region name (``us-fake-1`` gets
``runtime.sagemaker.us-fake-1.amazonaws.com``), so a mistyped region only shows when that host
does not resolve. botocore's ``partitions.json``, which the rules are evaluated with, lists each
partition's regions: a region in none of those lists is unknown to them. It is still allowed
(new regions reach the service before botocore's data), but a failure to connect says so.
"""

from __future__ import annotations

import functools

from smruntime.errors import ConnectError, SageMakerRuntimeError

__all__ = ["note_unknown_region"]


@functools.cache
def known_regions() -> frozenset[str] | None:
    """Every region botocore's partitions data lists; None when it cannot be read."""
    try:
        from botocore.loaders import Loader

        partitions = Loader().load_data("partitions")["partitions"]
        return frozenset(region for partition in partitions for region in partition.get("regions", {}))
    except Exception:  # a broken install: no hint rather than another error
        return None


def note_unknown_region(error: SageMakerRuntimeError, region: str) -> None:
    """If ``error`` is (or ends in) a failure to connect and ``region`` is unknown to the
    endpoint rules, say so at the end of its message (read only when a call failed)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ConnectError):
        cause = getattr(cause, "last_error", None) or cause.__cause__
    if cause is None:
        return
    known = known_regions()
    if known is None or region in known:
        return
    note = f"; region {region!r} is unknown to the endpoint rules (botocore's partitions data): is it misspelt?"
    if not error.message.endswith(note):
        error.message += note
