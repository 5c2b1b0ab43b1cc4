"""The small rules evaluator gives botocore's answer (or botocore's error) for every input."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from botocore.endpoint_provider import EndpointProvider
from botocore.loaders import Loader

from smruntime.endpoint_rules import RuleError, RuleSetEvaluator, Unsupported, load_bundled
from smruntime.endpoints import DefaultEndpointResolver, EndpointResolverOptions, EndpointRules
from tests.unit.test_endpoints import TABLE

REGIONS = [*TABLE, "eu-west-3", "ap-southeast-7", "cn-northwest-1", "us-gov-east-1", "xx-nowhere-9", "mx-central-1"]
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _documents() -> tuple[dict[str, Any], dict[str, Any]]:
    loader = Loader()
    version = max(loader.list_api_versions("sagemaker-runtime", "endpoint-rule-set-1"))
    return loader.load_data(f"sagemaker-runtime/{version}/endpoint-rule-set-1"), loader.load_data("partitions")


def _outcome(provider: Any, **params: Any) -> tuple[str, Any]:
    try:
        found = provider.resolve_endpoint(**params)
    except Exception as error:  # botocore's and ours: compare the messages
        return "error", str(error)
    return "endpoint", (found.url, found.properties, found.headers)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(("fips", "dualstack"), FLAGS)
def test_bundled_rules_give_botocores_endpoint(region: str, fips: bool, dualstack: bool) -> None:
    ruleset, partitions = _documents()
    ours = load_bundled()
    assert ours is not None
    theirs = EndpointProvider(ruleset, copy.deepcopy(partitions))
    params = {"Region": region, "UseFIPS": fips, "UseDualStack": dualstack}
    assert _outcome(ours, **params) == _outcome(theirs, **params)
    assert ours.partition(region)["name"] == theirs.ruleset.rule_lib.aws_partition(region)["name"]


@pytest.mark.parametrize(("fips", "dualstack"), FLAGS[1:])
def test_rule_errors_carry_botocores_message(fips: bool, dualstack: bool) -> None:
    ruleset, partitions = _documents()
    for partition in partitions["partitions"]:
        partition["outputs"]["supportsFIPS"] = False
        partition["outputs"]["supportsDualStack"] = False
    ours = RuleSetEvaluator(ruleset, partitions)
    theirs = EndpointProvider(ruleset, copy.deepcopy(partitions))
    params = {"Region": "us-east-1", "UseFIPS": fips, "UseDualStack": dualstack}
    with pytest.raises(RuleError):
        ours.resolve_endpoint(**params)
    assert _outcome(ours, **params) == _outcome(theirs, **params)
    assert _outcome(ours, **params)[0] == "error"


def test_a_custom_endpoint_parameter_gives_botocores_answer() -> None:
    ruleset, partitions = _documents()
    ours, theirs = RuleSetEvaluator(ruleset, partitions), EndpointProvider(ruleset, copy.deepcopy(partitions))
    for fips in (False, True):
        params = {"Region": "us-east-1", "UseFIPS": fips, "UseDualStack": False, "Endpoint": "https://example.test"}
        assert _outcome(ours, **params) == _outcome(theirs, **params)


def test_an_unknown_function_is_unsupported() -> None:
    ruleset, partitions = _documents()
    strange = copy.deepcopy(ruleset)
    strange["rules"].insert(0, {"type": "error", "error": "never",
                                "conditions": [{"fn": "aws.parseArn", "argv": [{"ref": "Region"}]}]})
    with pytest.raises(Unsupported, match=r"aws\.parseArn"):
        RuleSetEvaluator(strange, partitions).resolve_endpoint(Region="us-east-1")


def test_the_rules_fall_back_to_botocore_on_anything_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(self: RuleSetEvaluator, **params: Any) -> Any:
        raise Unsupported("a function this evaluator lacks")

    monkeypatch.setattr(RuleSetEvaluator, "resolve_endpoint", unsupported)
    found = EndpointRules.load().provider.resolve_endpoint(Region="us-east-1", UseFIPS=True, UseDualStack=False)
    assert type(found).__module__.startswith("botocore")
    assert found.url == "https://runtime-fips.sagemaker.us-east-1.amazonaws.com"


def test_the_default_resolver_uses_the_bundled_rules_without_importing_botocore() -> None:
    code = (
        "import sys\n"
        "from smruntime.endpoints import DefaultEndpointResolver, EndpointResolverOptions\n"
        "e = DefaultEndpointResolver().resolve_endpoint('eu-west-1', EndpointResolverOptions(use_fips_endpoint=True))\n"
        "assert not [m for m in sys.modules if m.startswith('botocore')], sorted(sys.modules)\n"
        "print(e.url, e.partition)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://runtime-fips.sagemaker.eu-west-1.amazonaws.com aws"


def test_both_loaders_resolve_alike() -> None:
    fast, slow = DefaultEndpointResolver(EndpointRules.load), DefaultEndpointResolver(EndpointRules.load_with_botocore)
    for region in REGIONS:
        for fips, dualstack in FLAGS:
            options = EndpointResolverOptions(use_fips_endpoint=fips, use_dualstack_endpoint=dualstack)
            assert _resolve(fast, region, options) == _resolve(slow, region, options)


def _resolve(resolver: DefaultEndpointResolver, region: str, options: EndpointResolverOptions) -> Any:
    try:
        return resolver.resolve_endpoint(region, options)
    except Exception as error:
        return type(error), str(error)
