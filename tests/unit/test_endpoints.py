"""Endpoint resolution: the rule-set table, static/VPC URLs, composition and the middleware."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
from typing import Any

import pytest

from smruntime import keys
from smruntime.endpoints import (
    DefaultEndpointResolver,
    Endpoint,
    EndpointResolverFunc,
    EndpointResolverOptions,
    EndpointRules,
    ResolveEndpoint,
    StaticEndpointResolver,
    join_url,
    with_fallback,
)
from smruntime.errors import EndpointNotFoundError, EndpointResolutionError
from smruntime.http import HTTPRequest
from smruntime.middleware import Context, SerializeInput, SerializeOutput
from smruntime.options import Options

NO_VARIANT = EndpointResolverOptions()
FIPS = EndpointResolverOptions(use_fips_endpoint=True)
DUAL = EndpointResolverOptions(use_dualstack_endpoint=True)
FIPS_DUAL = EndpointResolverOptions(use_fips_endpoint=True, use_dualstack_endpoint=True)

# From botocore's endpoint rules for sagemaker-runtime: region -> (partition, default, FIPS, dual-stack, both).
TABLE = {
    "us-east-1": (
        "aws",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "runtime-fips.sagemaker.us-east-1.amazonaws.com",
        "runtime.sagemaker.us-east-1.api.aws",
        "runtime.sagemaker-fips.us-east-1.api.aws",
    ),
    "cn-north-1": (
        "aws-cn",
        "runtime.sagemaker.cn-north-1.amazonaws.com.cn",
        "runtime.sagemaker-fips.cn-north-1.amazonaws.com.cn",
        "runtime.sagemaker.cn-north-1.api.amazonwebservices.com.cn",
        "runtime.sagemaker-fips.cn-north-1.api.amazonwebservices.com.cn",
    ),
    "us-gov-west-1": (
        "aws-us-gov",
        "runtime.sagemaker.us-gov-west-1.amazonaws.com",
        "runtime.sagemaker.us-gov-west-1.amazonaws.com",
        "runtime.sagemaker.us-gov-west-1.api.aws",
        "runtime.sagemaker-fips.us-gov-west-1.api.aws",
    ),
    "us-iso-east-1": (
        "aws-iso",
        "runtime.sagemaker.us-iso-east-1.c2s.ic.gov",
        "runtime.sagemaker-fips.us-iso-east-1.c2s.ic.gov",
        "runtime.sagemaker.us-iso-east-1.api.aws.ic.gov",
        "runtime.sagemaker-fips.us-iso-east-1.api.aws.ic.gov",
    ),
    "us-isob-east-1": (
        "aws-iso-b",
        "runtime.sagemaker.us-isob-east-1.sc2s.sgov.gov",
        "runtime.sagemaker-fips.us-isob-east-1.sc2s.sgov.gov",
        "runtime.sagemaker.us-isob-east-1.api.aws.scloud",
        "runtime.sagemaker-fips.us-isob-east-1.api.aws.scloud",
    ),
    "eu-isoe-west-1": (
        "aws-iso-e",
        "runtime.sagemaker.eu-isoe-west-1.cloud.adc-e.uk",
        "runtime.sagemaker-fips.eu-isoe-west-1.cloud.adc-e.uk",
        "runtime.sagemaker.eu-isoe-west-1.api.cloud-aws.adc-e.uk",
        "runtime.sagemaker-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk",
    ),
    "us-isof-south-1": (
        "aws-iso-f",
        "runtime.sagemaker.us-isof-south-1.csp.hci.ic.gov",
        "runtime.sagemaker-fips.us-isof-south-1.csp.hci.ic.gov",
        "runtime.sagemaker.us-isof-south-1.api.aws.hci.ic.gov",
        "runtime.sagemaker-fips.us-isof-south-1.api.aws.hci.ic.gov",
    ),
    "eusc-de-east-1": (
        "aws-eusc",
        "runtime.sagemaker.eusc-de-east-1.amazonaws.eu",
        "runtime.sagemaker-fips.eusc-de-east-1.amazonaws.eu",
        "runtime.sagemaker.eusc-de-east-1.api.amazonwebservices.eu",
        "runtime.sagemaker-fips.eusc-de-east-1.api.amazonwebservices.eu",
    ),
}
CASES = [
    (region, variant, row[0], row[column])
    for region, row in TABLE.items()
    for column, variant in ((1, NO_VARIANT), (2, FIPS), (3, DUAL), (4, FIPS_DUAL))
]

VPCE_US_EAST_1 = "https://vpce-0123456789abcdef0-abcd1234.runtime.sagemaker.us-east-1.vpce.amazonaws.com"


class CountingProvider:
    """Wraps botocore's real EndpointProvider and counts evaluations."""

    def __init__(self, inner: Any, delay: threading.Event | None = None) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []
        self.delay = delay

    def resolve_endpoint(self, **params: Any) -> Any:
        self.calls.append(params)
        if self.delay is not None:
            self.delay.wait(5)
        return self.inner.resolve_endpoint(**params)


def counting_rules(delay: threading.Event | None = None) -> tuple[list[CountingProvider], Any]:
    """A rules loader that wraps the real rules and records each load."""
    loads: list[CountingProvider] = []

    def load() -> EndpointRules:
        real = EndpointRules.load()
        provider = CountingProvider(real.provider, delay)
        loads.append(provider)
        return EndpointRules(provider, real.partition_of)

    return loads, load


@pytest.fixture(scope="module")
def default() -> DefaultEndpointResolver:
    return DefaultEndpointResolver()


# -- the default resolver -------------------------------------------------------------------


@pytest.mark.parametrize(("region", "variant", "partition", "host"), CASES)
def test_default_resolver_matches_the_rule_set_table(
    default: DefaultEndpointResolver, region: str, variant: EndpointResolverOptions, partition: str, host: str
) -> None:
    endpoint = default.resolve_endpoint(region, variant)
    assert endpoint == Endpoint(
        url=f"https://{host}", signing_region=region, signing_name="sagemaker", partition=partition, source="default"
    )


def test_unknown_region_falls_back_to_the_aws_partition(default: DefaultEndpointResolver) -> None:
    endpoint = default.resolve_endpoint("xx-mars-7", NO_VARIANT)
    assert endpoint.url == "https://runtime.sagemaker.xx-mars-7.amazonaws.com"
    assert endpoint.partition == "aws"
    assert endpoint.signing_region == "xx-mars-7"


@pytest.mark.parametrize("region", [None, ""])
def test_missing_region_says_how_to_set_one(default: DefaultEndpointResolver, region: str | None) -> None:
    with pytest.raises(EndpointResolutionError) as info:
        default.resolve_endpoint(region, NO_VARIANT)
    message = str(info.value)
    assert message.startswith("Invalid Configuration: Missing Region")
    for hint in ("region=", "AWS_REGION", "profile"):
        assert hint in message


@pytest.mark.parametrize("region", ["us-east-1/../evil", "us east 1", "-us-east-1", "evil.com#"])
def test_a_region_that_is_not_a_host_label_is_rejected(default: DefaultEndpointResolver, region: str) -> None:
    with pytest.raises(EndpointResolutionError, match="not a valid region name"):
        default.resolve_endpoint(region, NO_VARIANT)


@pytest.mark.parametrize("region", ["fips-us-east-1", "us-east-1-fips"])
def test_legacy_fips_pseudo_regions_mean_fips_in_that_region(default: DefaultEndpointResolver, region: str) -> None:
    endpoint = default.resolve_endpoint(region, NO_VARIANT)
    assert endpoint.url == "https://runtime-fips.sagemaker.us-east-1.amazonaws.com"
    assert endpoint.signing_region == "us-east-1"


def test_botocore_rule_errors_become_endpoint_resolution_errors() -> None:
    # Real botocore rules over partitions data where "aws" supports neither variant.
    from botocore.endpoint_provider import EndpointProvider
    from botocore.loaders import Loader

    loader = Loader()
    version = max(loader.list_api_versions("sagemaker-runtime", "endpoint-rule-set-1"))
    ruleset = loader.load_data(f"sagemaker-runtime/{version}/endpoint-rule-set-1")
    partitions = copy.deepcopy(loader.load_data("partitions"))
    for partition in partitions["partitions"]:
        partition["outputs"]["supportsFIPS"] = False
        partition["outputs"]["supportsDualStack"] = False
    provider = EndpointProvider(ruleset, partitions)
    resolver = DefaultEndpointResolver(lambda: EndpointRules(provider, lambda region: "aws"))

    with pytest.raises(EndpointResolutionError) as info:
        resolver.resolve_endpoint("us-east-1", FIPS_DUAL)
    assert str(info.value) == "FIPS and DualStack are enabled, but this partition does not support one or both"
    assert type(info.value.__cause__).__module__.startswith("botocore")

    with pytest.raises(EndpointResolutionError, match="FIPS is enabled but this partition does not support FIPS"):
        resolver.resolve_endpoint("us-east-1", FIPS)
    assert resolver.resolve_endpoint("us-east-1", NO_VARIANT).url == "https://runtime.sagemaker.us-east-1.amazonaws.com"


def test_auth_schemes_in_the_rules_decide_the_signing_region_and_name() -> None:
    class Found:
        url = "https://runtime.sagemaker.example.com/"
        properties = {"authSchemes": [{"name": "sigv4", "signingRegion": "eu-west-1", "signingName": "sm"}]}

    class Provider:
        def resolve_endpoint(self, **params: Any) -> Any:
            return Found()

    resolver = DefaultEndpointResolver(lambda: EndpointRules(Provider(), lambda region: "aws"))
    endpoint = resolver.resolve_endpoint("us-east-1", NO_VARIANT)
    assert (endpoint.url, endpoint.signing_region, endpoint.signing_name) == (
        "https://runtime.sagemaker.example.com",
        "eu-west-1",
        "sm",
    )


def test_rules_load_lazily_and_each_input_is_evaluated_once() -> None:
    loads, load = counting_rules()
    resolver = DefaultEndpointResolver(load)
    assert loads == []  # constructing loads nothing

    first = resolver.resolve_endpoint("us-west-2", NO_VARIANT)
    again = resolver.resolve_endpoint("us-west-2", EndpointResolverOptions())
    assert again is first
    assert len(loads) == 1
    assert loads[0].calls == [{"Region": "us-west-2", "UseFIPS": False, "UseDualStack": False}]

    fips = resolver.resolve_endpoint("us-west-2", FIPS)
    assert resolver.resolve_endpoint("us-west-2", FIPS) is fips
    resolver.resolve_endpoint("eu-west-1", NO_VARIANT)
    assert len(loads) == 1
    assert len(loads[0].calls) == 3


def test_racing_threads_evaluate_an_input_once() -> None:
    gate = threading.Event()
    loads, load = counting_rules(delay=gate)
    resolver = DefaultEndpointResolver(load)
    results: list[Endpoint] = []
    threads = [
        threading.Thread(target=lambda: results.append(resolver.resolve_endpoint("ap-south-1", NO_VARIANT)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 8
    assert all(result is results[0] for result in results)
    assert len(loads) == 1
    assert len(loads[0].calls) == 1


def test_errors_are_not_memoized() -> None:
    loads, load = counting_rules()
    resolver = DefaultEndpointResolver(load)
    for _ in range(2):
        with pytest.raises(EndpointResolutionError):
            resolver.resolve_endpoint(None, NO_VARIANT)
    assert loads == []  # a missing region is caught before the rules are needed


def test_importing_the_module_does_not_load_botocore_rules() -> None:
    code = (
        "import sys, smruntime.endpoints as e\n"
        "assert 'botocore.endpoint_provider' not in sys.modules\n"
        "assert 'botocore.loaders' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- static URLs and VPC endpoints ----------------------------------------------------------


def test_custom_url_is_used_verbatim_with_its_base_path() -> None:
    resolver = StaticEndpointResolver("http://127.0.0.1:8080/sm/v1")
    endpoint = resolver.resolve_endpoint("eu-west-1", NO_VARIANT)
    assert endpoint == Endpoint("http://127.0.0.1:8080/sm/v1", "eu-west-1", "sagemaker", "aws", "custom")
    assert resolver.resolve_endpoint("eu-west-1", FIPS) is endpoint


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("https://proxy.internal/sm/", "https://proxy.internal/sm"),
        ("https://proxy.internal/", "https://proxy.internal"),
        ("HTTPS://Proxy.Internal:8443", "https://Proxy.Internal:8443"),
        ("https://proxy.internal/sm?tenant=a", "https://proxy.internal/sm?tenant=a"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_custom_url_normalization(given: str, url: str) -> None:
    assert StaticEndpointResolver(given).resolve_endpoint("us-east-1", NO_VARIANT).url == url


def test_custom_url_without_region_has_no_signing_region() -> None:
    endpoint = StaticEndpointResolver("http://127.0.0.1:1").resolve_endpoint(None, NO_VARIANT)
    assert endpoint.signing_region is None
    assert endpoint.source == "custom"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "ftp://host/x",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "http://",
        "https://:443/x",
        "http://host:99999",
        "https://host/x#frag",
    ],
)
def test_invalid_custom_urls_are_rejected_naming_endpoint_url(url: str) -> None:
    with pytest.raises(EndpointResolutionError, match="endpoint_url"):
        StaticEndpointResolver(url)


def test_user_info_in_a_custom_url_is_rejected_without_echoing_it() -> None:
    with pytest.raises(EndpointResolutionError) as info:
        StaticEndpointResolver("https://user:s3cr3t-pw@proxy.internal/sm")
    assert "endpoint_url" in str(info.value)
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in repr(info.value)


@pytest.mark.parametrize(
    ("url", "region", "partition"),
    [
        (VPCE_US_EAST_1, "us-east-1", "aws"),
        ("https://vpce-0123-abcd-us-east-1a.runtime.sagemaker.us-east-1.vpce.amazonaws.com", "us-east-1", "aws"),
        ("https://runtime.sagemaker.eu-central-1.vpce.amazonaws.com", "eu-central-1", "aws"),
        ("https://vpce-0123-abcd.runtime-fips.sagemaker.us-east-2.vpce.amazonaws.com", "us-east-2", "aws"),
        ("https://vpce-0123-abcd.runtime.sagemaker-fips.ca-central-1.vpce.amazonaws.com", "ca-central-1", "aws"),
        ("https://vpce-0123-abcd.runtime.sagemaker.cn-north-1.vpce.amazonaws.com.cn", "cn-north-1", "aws-cn"),
        ("https://VPCE-0123-ABCD.Runtime.SageMaker.US-GOV-WEST-1.vpce.amazonaws.com/", "us-gov-west-1", "aws-us-gov"),
    ],
)
def test_vpc_endpoint_signs_for_the_region_in_its_host_name(url: str, region: str, partition: str) -> None:
    endpoint = StaticEndpointResolver(url).resolve_endpoint("us-west-2", NO_VARIANT)
    assert endpoint.signing_region == region
    assert endpoint.source == "vpce"
    assert endpoint.partition == partition
    assert endpoint.url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "https://runtime.sagemaker.us-east-1.vpce.amazonaws.com.evil.example",
        "https://runtime.sagemaker.us-east-1.amazonaws.com",
        "https://vpce-1.runtime.s3.us-east-1.vpce.amazonaws.com",
    ],
)
def test_hosts_that_only_look_like_vpc_endpoints_sign_for_the_client_region(url: str) -> None:
    endpoint = StaticEndpointResolver(url).resolve_endpoint("us-west-2", NO_VARIANT)
    assert (endpoint.signing_region, endpoint.source) == ("us-west-2", "custom")


def test_explicit_signing_region_wins_over_the_vpce_host() -> None:
    endpoint = StaticEndpointResolver(VPCE_US_EAST_1, signing_region="eu-west-3").resolve_endpoint(
        "us-west-2", NO_VARIANT
    )
    assert endpoint.signing_region == "eu-west-3"
    endpoint = StaticEndpointResolver("http://127.0.0.1:9", signing_region="eu-west-3").resolve_endpoint(
        "us-west-2", NO_VARIANT
    )
    assert endpoint.signing_region == "eu-west-3"


# -- composition ----------------------------------------------------------------------------


def test_endpoint_resolver_func_passes_region_and_options() -> None:
    seen: list[tuple[str | None, EndpointResolverOptions]] = []

    def fn(region: str | None, options: EndpointResolverOptions) -> Endpoint:
        seen.append((region, options))
        return Endpoint(f"https://{region}.example.com", signing_region=region)

    endpoint = EndpointResolverFunc(fn).resolve_endpoint("sa-east-1", DUAL)
    assert endpoint.url == "https://sa-east-1.example.com"
    assert seen == [("sa-east-1", DUAL)]


def _raising(error: Exception) -> EndpointResolverFunc:
    def fn(region: str | None, options: EndpointResolverOptions) -> Endpoint:
        raise error

    return EndpointResolverFunc(fn)


def test_with_fallback_uses_the_fallback_only_on_endpoint_not_found() -> None:
    fallback_calls: list[str | None] = []

    def fallback_fn(region: str | None, options: EndpointResolverOptions) -> Endpoint:
        fallback_calls.append(region)
        return Endpoint("https://fallback.example.com")

    fallback = EndpointResolverFunc(fallback_fn)
    found = Endpoint("https://primary.example.com")

    assert with_fallback(EndpointResolverFunc(lambda r, o: found), fallback).resolve_endpoint("x", NO_VARIANT) is found
    assert fallback_calls == []

    resolver = with_fallback(_raising(EndpointNotFoundError("no such region")), fallback)
    assert resolver.resolve_endpoint("us-east-1", NO_VARIANT).url == "https://fallback.example.com"
    assert fallback_calls == ["us-east-1"]

    for error in (EndpointResolutionError("bad config"), ValueError("boom")):
        with pytest.raises(type(error)) as info:
            with_fallback(_raising(error), fallback).resolve_endpoint("us-east-1", NO_VARIANT)
        assert info.value is error
    assert fallback_calls == ["us-east-1"]


def test_with_fallback_onto_the_default_rules(default: DefaultEndpointResolver) -> None:
    resolver = with_fallback(_raising(EndpointNotFoundError("not mine")), default)
    assert resolver.resolve_endpoint("eu-west-1", NO_VARIANT).url == "https://runtime.sagemaker.eu-west-1.amazonaws.com"


# -- the ResolveEndpoint middleware ---------------------------------------------------------


class FakeNext:
    """The rest of the chain: records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Context]] = []

    def __call__(self, ctx: Context, in_: SerializeInput) -> SerializeOutput:
        self.seen.append((in_.request.url, ctx))
        return SerializeOutput(result="done")


def run(
    options: Options, ctx: Context | None = None, middleware: ResolveEndpoint | None = None
) -> tuple[Context, FakeNext, SerializeOutput]:
    ctx = ctx or Context("InvokeEndpoint", "SageMaker Runtime", options)
    next_ = FakeNext()
    middleware = middleware or ResolveEndpoint()
    out = middleware.handle(ctx, SerializeInput(parameters=None, request=HTTPRequest()), next_)
    return ctx, next_, out


def test_middleware_with_the_default_rules() -> None:
    ctx, next_, out = run(Options(region="eu-west-1"))
    assert out.result == "done"
    assert next_.seen[0][0] == "https://runtime.sagemaker.eu-west-1.amazonaws.com"
    endpoint = ctx.get(keys.ENDPOINT)
    assert endpoint is not None and endpoint.source == "default"
    assert ctx.get(keys.SIGNING_NAME) == "sagemaker"
    assert ctx.get(keys.SIGNING_REGION) == "eu-west-1"
    assert ResolveEndpoint().id == "ResolveEndpoint"


def test_middleware_reuses_the_memoized_endpoint_across_calls() -> None:
    middleware = ResolveEndpoint()
    first, _, _ = run(Options(region="ap-northeast-1"), middleware=middleware)
    second, _, _ = run(Options(region="ap-northeast-1"), middleware=middleware)
    assert first.get(keys.ENDPOINT) is second.get(keys.ENDPOINT)
    fixed = Options(region="ap-northeast-1", endpoint_url="http://127.0.0.1:7/x/")
    third, _, _ = run(fixed, middleware=middleware)
    fourth, _, _ = run(fixed, middleware=middleware)
    assert third.get(keys.ENDPOINT) is fourth.get(keys.ENDPOINT)


def test_each_middleware_keeps_its_own_memo() -> None:
    # One per stack, so one per client: nothing resolved is shared process-wide.
    fixed = Options(region="ap-northeast-1", endpoint_url="http://127.0.0.1:7/x/")
    for options in (Options(region="ap-northeast-1"), fixed):
        first, _, _ = run(options)
        second, _, _ = run(options)
        assert first.get(keys.ENDPOINT) == second.get(keys.ENDPOINT)
        assert first.get(keys.ENDPOINT) is not second.get(keys.ENDPOINT)


def test_middleware_reads_fips_and_dualstack_from_the_call_options() -> None:
    options = Options(region="us-east-1", use_fips_endpoint=True, use_dualstack_endpoint=True)
    _, next_, _ = run(options)
    assert next_.seen[0][0] == "https://runtime.sagemaker-fips.us-east-1.api.aws"
    options.use_fips_endpoint = False  # a per-call change needs no new middleware
    _, next_, _ = run(options)
    assert next_.seen[0][0] == "https://runtime.sagemaker.us-east-1.api.aws"


def test_middleware_missing_region_names_the_operation() -> None:
    with pytest.raises(EndpointResolutionError) as info:
        run(Options(region=None))
    assert info.value.operation == "InvokeEndpoint"
    assert "Invalid Configuration: Missing Region" in str(info.value)


def test_middleware_with_endpoint_url_keeps_the_base_path() -> None:
    ctx, next_, _ = run(Options(region="us-west-2", endpoint_url="https://proxy.internal/sm/"))
    assert next_.seen[0][0] == "https://proxy.internal/sm"
    assert join_url(next_.seen[0][0], "/endpoints/x/invocations") == "https://proxy.internal/sm/endpoints/x/invocations"
    assert ctx.get(keys.SIGNING_REGION) == "us-west-2"
    endpoint = ctx.get(keys.ENDPOINT)
    assert endpoint is not None and endpoint.source == "custom"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("use_fips_endpoint", "Invalid Configuration: FIPS and custom endpoint are not supported"),
        ("use_dualstack_endpoint", "Invalid Configuration: Dualstack and custom endpoint are not supported"),
    ],
)
def test_middleware_rejects_fips_or_dualstack_with_endpoint_url(field: str, message: str) -> None:
    options = Options(region="us-east-1", endpoint_url="https://proxy.internal")
    setattr(options, field, True)
    next_ = FakeNext()
    ctx = Context("InvokeEndpoint", "SageMaker Runtime", options)
    with pytest.raises(EndpointResolutionError) as info:
        ResolveEndpoint().handle(ctx, SerializeInput(None, HTTPRequest()), next_)
    assert info.value.message == message
    assert next_.seen == []


def test_middleware_invalid_endpoint_url() -> None:
    with pytest.raises(EndpointResolutionError, match="endpoint_url"):
        run(Options(region="us-east-1", endpoint_url="ftp://files.example.com"))


def test_middleware_vpc_endpoint_signs_for_its_region_not_the_client_region() -> None:
    ctx, next_, _ = run(Options(region="us-west-2", endpoint_url=VPCE_US_EAST_1))
    assert next_.seen[0][0] == VPCE_US_EAST_1
    assert ctx.get(keys.SIGNING_REGION) == "us-east-1"
    assert ctx.get(keys.SIGNING_NAME) == "sagemaker"


def test_middleware_endpoint_resolver_option_wins_over_endpoint_url() -> None:
    resolver = StaticEndpointResolver("http://127.0.0.1:9/base", signing_region="eu-west-3")
    ctx, next_, _ = run(Options(region="us-west-2", endpoint_url="https://ignored.example", endpoint_resolver=resolver))
    assert next_.seen[0][0] == "http://127.0.0.1:9/base"
    assert ctx.get(keys.SIGNING_REGION) == "eu-west-3"


def test_middleware_keeps_signing_values_a_user_already_set() -> None:
    options = Options(region="us-west-2", endpoint_url=VPCE_US_EAST_1)
    ctx = Context("InvokeEndpoint", "SageMaker Runtime", options)
    ctx.set(keys.SIGNING_REGION, "eu-north-1")
    ctx.set(keys.SIGNING_NAME, "custom-name")
    run(options, ctx)
    assert ctx.get(keys.SIGNING_REGION) == "eu-north-1"
    assert ctx.get(keys.SIGNING_NAME) == "custom-name"


def test_middleware_endpoint_without_signing_values_uses_defaults() -> None:
    resolver = EndpointResolverFunc(lambda r, o: Endpoint("https://x.example", signing_region=None, signing_name=""))
    ctx, _, _ = run(Options(region="me-south-1", endpoint_resolver=resolver))
    assert ctx.get(keys.SIGNING_REGION) == "me-south-1"
    assert ctx.get(keys.SIGNING_NAME) == "sagemaker"


def test_middleware_no_region_anywhere_leaves_signing_region_unset() -> None:
    ctx, next_, _ = run(Options(region=None, endpoint_url="http://127.0.0.1:9"))
    assert next_.seen[0][0] == "http://127.0.0.1:9"
    assert not ctx.has(keys.SIGNING_REGION)


def test_middleware_maps_a_user_resolver_exception_with_its_cause() -> None:
    boom = KeyError("tenant")
    with pytest.raises(EndpointResolutionError) as info:
        run(Options(region="us-east-1", endpoint_resolver=_raising(boom)))
    assert info.value.__cause__ is boom
    assert info.value.operation == "InvokeEndpoint"
    assert "KeyError" in str(info.value)


def test_middleware_passes_smruntime_errors_through_unchanged() -> None:
    error = EndpointNotFoundError("nothing for this region")
    with pytest.raises(EndpointNotFoundError) as info:
        run(Options(region="us-east-1", endpoint_resolver=_raising(error)))
    assert info.value is error
    assert error.operation == "InvokeEndpoint"


def test_middleware_accepts_an_upper_case_scheme_from_a_resolver() -> None:
    resolver = EndpointResolverFunc(lambda r, o: Endpoint("HTTPS://Proxy.example/sm"))
    _, next_, _ = run(Options(region="us-east-1", endpoint_resolver=resolver))
    assert next_.seen[0][0] == "HTTPS://Proxy.example/sm"


def test_middleware_rejects_what_is_not_an_endpoint() -> None:
    resolver = EndpointResolverFunc(lambda r, o: "https://x.example")  # type: ignore[arg-type,return-value]
    with pytest.raises(EndpointResolutionError, match="not an Endpoint"):
        run(Options(region="us-east-1", endpoint_resolver=resolver))
    resolver = EndpointResolverFunc(lambda r, o: Endpoint("x.example"))
    with pytest.raises(EndpointResolutionError, match="not an http"):
        run(Options(region="us-east-1", endpoint_resolver=resolver))


# -- join_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "joined"),
    [
        ("https://proxy/sm", "/endpoints/x/invocations", "https://proxy/sm/endpoints/x/invocations"),
        ("https://proxy/sm/", "/endpoints/x/invocations", "https://proxy/sm/endpoints/x/invocations"),
        ("https://host", "/endpoints/x/invocations", "https://host/endpoints/x/invocations"),
        ("https://host/", "endpoints/x", "https://host/endpoints/x"),
        ("https://proxy/sm?tenant=a", "/endpoints/x/invocations", "https://proxy/sm/endpoints/x/invocations?tenant=a"),
        ("https://proxy/sm?tenant=a", "/endpoints/x?b=1", "https://proxy/sm/endpoints/x?tenant=a&b=1"),
        ("https://host", "/endpoints/bad%20name%21/invocations", "https://host/endpoints/bad%20name%21/invocations"),
        ("https://host/sm", "", "https://host/sm"),
    ],
)
def test_join_url(base: str, path: str, joined: str) -> None:
    assert join_url(base, path) == joined
