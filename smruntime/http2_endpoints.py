"""Endpoint rules of the HTTP/2 service (SageMaker Runtime HTTP2), which serves the
bidirectional stream.

The seven named partitions serve it on port 8443 (``runtime-fips`` for FIPS); any other
partition falls back to the standard regional form without a port (FIPS on the ``sagemaker``
label). Partition data (DNS suffixes, FIPS and dual-stack support) comes from botocore's
``partitions`` file, read on first use.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Final, Mapping

from smruntime.endpoints import _REGION, MISSING_REGION, Endpoint, EndpointResolverOptions
from smruntime.errors import EndpointResolutionError

__all__ = ["HTTP2_PARTITIONS", "Http2EndpointResolver"]

HTTP2_PARTITIONS: Final = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-f", "aws-eusc"})
"""The partitions whose rules name the HTTP/2 service's own host and port 8443."""

PartitionOf = Callable[[str], Mapping[str, Any]]


@functools.cache
def _botocore_partitions() -> PartitionOf:
    """botocore's partitions, read once per process (data, as a module's code is)."""
    try:
        from botocore.endpoint_provider import RuleSetStandardLibrary
        from botocore.loaders import Loader

        library = RuleSetStandardLibrary(Loader().load_data("partitions"))
    except Exception as error:  # a broken or missing botocore install
        raise EndpointResolutionError(f"cannot load the partitions data from botocore: {error}") from error
    partition: PartitionOf = library.aws_partition
    return partition


class Http2EndpointResolver:
    """Resolves the HTTP/2 service's endpoint for a region, FIPS and dual-stack."""

    __slots__ = ("_load", "_lock", "_partition_of")

    def __init__(self, load_partitions: Callable[[], PartitionOf] = _botocore_partitions) -> None:
        self._load = load_partitions
        self._partition_of: PartitionOf | None = None
        self._lock = threading.Lock()

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint:
        if not region:
            raise EndpointResolutionError(MISSING_REGION)
        if not _REGION.match(region):  # it becomes part of a host name
            raise EndpointResolutionError(f"Invalid Configuration: region {region!r} is not a valid region name")
        with self._lock:
            if self._partition_of is None:
                self._partition_of = self._load()
        partition = self._partition_of(region)
        fips, dualstack = options.use_fips_endpoint, options.use_dualstack_endpoint
        name = str(partition["name"])
        suffix = partition["dualStackDnsSuffix"] if dualstack else partition["dnsSuffix"]
        if name in HTTP2_PARTITIONS:
            host = f"runtime{'-fips' if fips else ''}.sagemaker.{region}.{suffix}:8443"
        else:
            _check_support(partition, fips, dualstack)
            host = f"runtime.sagemaker{'-fips' if fips else ''}.{region}.{suffix}"
        return Endpoint(url=f"https://{host}", signing_region=region, partition=name, source="default")

    def __repr__(self) -> str:
        return f"Http2EndpointResolver(loaded={self._partition_of is not None})"


def _check_support(partition: Mapping[str, Any], fips: bool, dualstack: bool) -> None:
    no_fips = fips and not partition.get("supportsFIPS")
    no_dualstack = dualstack and not partition.get("supportsDualStack")
    if fips and dualstack and (no_fips or no_dualstack):
        raise EndpointResolutionError("FIPS and DualStack are enabled, but this partition does not support one or both")
    if no_fips:
        raise EndpointResolutionError("FIPS is enabled but this partition does not support FIPS")
    if no_dualstack:
        raise EndpointResolutionError("DualStack is enabled but this partition does not support DualStack")
