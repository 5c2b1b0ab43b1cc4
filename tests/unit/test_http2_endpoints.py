"""The HTTP/2 service's endpoint rules, against the test cases of its service model."""

from __future__ import annotations

import pytest

from smruntime.endpoints import EndpointResolverOptions
from smruntime.errors import EndpointResolutionError
from smruntime.http2_endpoints import Http2EndpointResolver

RESOLVER = Http2EndpointResolver()


@pytest.mark.parametrize(
    ("region", "fips", "dualstack", "url"),
    [
        ("us-east-1", False, False, "https://runtime.sagemaker.us-east-1.amazonaws.com:8443"),
        ("us-east-1", False, True, "https://runtime.sagemaker.us-east-1.api.aws:8443"),
        ("us-east-1", True, False, "https://runtime-fips.sagemaker.us-east-1.amazonaws.com:8443"),
        ("us-east-1", True, True, "https://runtime-fips.sagemaker.us-east-1.api.aws:8443"),
        ("cn-northwest-1", False, False, "https://runtime.sagemaker.cn-northwest-1.amazonaws.com.cn:8443"),
        ("eusc-de-east-1", False, False, "https://runtime.sagemaker.eusc-de-east-1.amazonaws.eu:8443"),
        ("us-iso-east-1", False, False, "https://runtime.sagemaker.us-iso-east-1.c2s.ic.gov:8443"),
        ("us-isob-east-1", False, False, "https://runtime.sagemaker.us-isob-east-1.sc2s.sgov.gov:8443"),
        ("us-isof-south-1", False, False, "https://runtime.sagemaker.us-isof-south-1.csp.hci.ic.gov:8443"),
        ("us-gov-west-1", False, False, "https://runtime.sagemaker.us-gov-west-1.amazonaws.com:8443"),
        ("eu-isoe-west-1", False, False, "https://runtime.sagemaker.eu-isoe-west-1.cloud.adc-e.uk"),
        ("eu-isoe-west-1", True, False, "https://runtime.sagemaker-fips.eu-isoe-west-1.cloud.adc-e.uk"),
    ],
)
def test_the_service_models_endpoint_cases(region: str, fips: bool, dualstack: bool, url: str) -> None:
    endpoint = RESOLVER.resolve_endpoint(region, EndpointResolverOptions(fips, dualstack))
    assert endpoint.url == url
    assert endpoint.signing_region == region


def test_a_missing_region_is_refused() -> None:
    with pytest.raises(EndpointResolutionError, match="Missing Region"):
        RESOLVER.resolve_endpoint(None, EndpointResolverOptions())


def test_a_region_that_is_no_host_label_is_refused() -> None:
    with pytest.raises(EndpointResolutionError, match="not a valid region name"):
        RESOLVER.resolve_endpoint("us-east-1.evil.example/", EndpointResolverOptions())


def test_a_fallback_partition_without_fips_is_refused() -> None:
    def partition(region: str) -> dict[str, object]:
        return {"name": "aws-new", "dnsSuffix": "example", "dualStackDnsSuffix": "ds.example", "supportsFIPS": False}

    resolver = Http2EndpointResolver(lambda: partition)
    with pytest.raises(EndpointResolutionError, match="does not support FIPS"):
        resolver.resolve_endpoint("xx-new-1", EndpointResolverOptions(use_fips_endpoint=True))
    with pytest.raises(EndpointResolutionError, match="one or both"):
        resolver.resolve_endpoint("xx-new-1", EndpointResolverOptions(True, True))
