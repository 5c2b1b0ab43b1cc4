"""Where requests go and which region signs them: resolvers and the ResolveEndpoint middleware.

The default resolver evaluates the service's own endpoint rule set, as botocore ships it (every
partition, FIPS, dual-stack), so no host name is typed here: with the small evaluator in
:mod:`smruntime.endpoint_rules`, or botocore's rule engine for anything that one does not know.
The rules are read only when a default endpoint is first resolved: clients that use
``endpoint_url`` (local servers, VPC endpoints, proxies) never pay for it.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import attrs

from smruntime import keys
from smruntime.errors import EndpointNotFoundError, EndpointResolutionError, SageMakerRuntimeError
from smruntime.http import HTTPRequest
from smruntime.middleware import Transform
from smruntime.middleware.reprs import fields_repr
from smruntime.resolved_endpoint import DEFAULT_SIGNING_NAME, Endpoint
from smruntime.stack_types import Context, SerializeInput, SerializeOutput

__all__ = [
    "DEFAULT_SIGNING_NAME",
    "DefaultEndpointResolver",
    "Endpoint",
    "EndpointResolver",
    "EndpointResolverFunc",
    "EndpointResolverOptions",
    "EndpointRules",
    "ResolveEndpoint",
    "StaticEndpointResolver",
    "join_url",
    "with_fallback",
]

SERVICE_NAME = "sagemaker-runtime"
"""botocore's name for the service's data directory."""

MISSING_REGION = (
    "Invalid Configuration: Missing Region; set it with Client(region=...), "
    "the AWS_REGION environment variable, or region in your AWS config profile"
)
FIPS_AND_CUSTOM = "Invalid Configuration: FIPS and custom endpoint are not supported"
DUALSTACK_AND_CUSTOM = "Invalid Configuration: Dualstack and custom endpoint are not supported"

# What botocore accepts as a region name (botocore.utils.validate_region_name): one DNS
# label. Checked because the region becomes part of the host name.
_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")

# A VPC interface endpoint's DNS names, e.g. vpce-0123-abcd.runtime.sagemaker.us-east-1.vpce.amazonaws.com
# (also zonal "vpce-…-us-east-1a." names, FIPS spellings and the China suffix).
_VPCE_HOST = re.compile(
    r"^(?:[a-z0-9-]+\.)*runtime(?:-fips)?\.sagemaker(?:-fips)?\."
    r"(?P<region>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.vpce\.amazonaws\.com(?P<cn>\.cn)?\.?$"
)

_MEMO_LIMIT = 512
"""Entries per memo; beyond it results are still correct, just not remembered."""


@attrs.frozen
class EndpointResolverOptions:
    """The endpoint variants asked for."""

    __repr__ = fields_repr

    use_fips_endpoint: bool = attrs.field(default=False, converter=bool)
    use_dualstack_endpoint: bool = attrs.field(default=False, converter=bool)


class EndpointResolver(Protocol):
    """Anything that turns a region and options into an :class:`Endpoint`.

    Raise :class:`~smruntime.errors.EndpointNotFoundError` to let a fallback resolver try.
    """

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint: ...


# -- the default resolver: the service's rule set, evaluated by botocore --------------------


class RulesProvider(Protocol):
    """botocore's ``EndpointProvider`` as used here."""

    def resolve_endpoint(self, **params: Any) -> Any: ...


@attrs.frozen(eq=False)
class EndpointRules:
    """The service's endpoint rules: an evaluator and the region → partition lookup."""

    __repr__ = fields_repr

    provider: RulesProvider
    partition_of: Callable[[str], str]

    @classmethod
    def load(cls) -> EndpointRules:
        """The bundled rules with the small evaluator, else :meth:`load_with_botocore`."""
        from smruntime.endpoint_rules import WithFallback, load_bundled

        evaluator = load_bundled()
        if evaluator is None:
            return cls.load_with_botocore()

        def partition_of(region: str) -> str:
            return str(evaluator.partition(region)["name"])

        return cls(WithFallback(evaluator, lambda: cls.load_with_botocore().provider), partition_of)

    @classmethod
    def load_with_botocore(cls) -> EndpointRules:
        """Read the rule set and partitions with botocore's data loader (honours ~/.aws/models)."""
        try:
            from botocore.endpoint_provider import EndpointProvider
            from botocore.loaders import Loader

            loader = Loader()
            # Asking for the one service's versions and loading by path is ~100x cheaper
            # than load_service_model, which lists every service directory first.
            version = max(loader.list_api_versions(SERVICE_NAME, "endpoint-rule-set-1"))
            ruleset = loader.load_data(f"{SERVICE_NAME}/{version}/endpoint-rule-set-1")
            partitions = loader.load_data("partitions")
            provider = EndpointProvider(ruleset, partitions)
        except Exception as error:  # a broken or missing botocore install
            raise EndpointResolutionError(f"cannot load the endpoint rules from botocore: {error}") from error
        aws_partition = provider.ruleset.rule_lib.aws_partition

        def partition_of(region: str) -> str:
            return str(aws_partition(region)["name"])

        return cls(provider, partition_of)


@functools.cache
def loaded_rules() -> EndpointRules:
    """The rules, read once per process (data, as a module's code is): each client's resolver
    keeps its own memo of the endpoints it resolves."""
    return EndpointRules.load()


class DefaultEndpointResolver:
    """The service's endpoint rules for every partition, FIPS and dual-stack.

    The rules are read on first use, once per process; results are memoized per (region,
    FIPS, dual-stack), so the rule engine runs once per input. Safe to share between threads
    and clients.
    Legacy pseudo-regions (``fips-us-east-1``, ``us-east-1-fips``) mean FIPS in that region.
    """

    __slots__ = ("_load", "_lock", "_memo", "_rules")

    def __init__(self, load_rules: Callable[[], EndpointRules] = loaded_rules) -> None:
        self._load = load_rules
        self._rules: EndpointRules | None = None
        self._memo: dict[tuple[str | None, bool, bool], Endpoint] = {}
        self._lock = threading.Lock()

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint:
        key = (region, options.use_fips_endpoint, options.use_dualstack_endpoint)
        endpoint = self._memo.get(key)  # the hot path: one dict lookup, no lock
        if endpoint is not None:
            return endpoint
        with self._lock:  # one evaluation per input, even when threads race
            endpoint = self._memo.get(key)
            if endpoint is None:
                endpoint = self._evaluate(region, bool(key[1]), bool(key[2]))
                if len(self._memo) < _MEMO_LIMIT:
                    self._memo[key] = endpoint
        return endpoint

    def _evaluate(self, region: str | None, fips: bool, dualstack: bool) -> Endpoint:
        if not region:
            raise EndpointResolutionError(MISSING_REGION)
        if not _REGION.match(region):
            raise EndpointResolutionError(f"Invalid Configuration: region {region!r} is not a valid region name")
        region, fips = _strip_fips_pseudo_region(region, fips)
        rules = self._rules
        if rules is None:
            rules = self._rules = self._load()
        try:
            found = rules.provider.resolve_endpoint(Region=region, UseFIPS=fips, UseDualStack=dualstack)
        except Exception as error:  # botocore's rule errors carry the rule's own message
            raise EndpointResolutionError(str(error)) from error
        signing_region, signing_name = _auth_scheme(found.properties)
        return Endpoint(
            url=str(found.url).rstrip("/"),
            signing_region=signing_region or region,
            signing_name=signing_name or DEFAULT_SIGNING_NAME,
            partition=rules.partition_of(region),
            source="default",
        )

    def __repr__(self) -> str:
        return f"DefaultEndpointResolver(loaded={self._rules is not None}, memoized={len(self._memo)})"


def _strip_fips_pseudo_region(region: str, fips: bool) -> tuple[str, bool]:
    # As the Go SDK does: "fips-us-east-1" / "us-east-1-fips" are us-east-1 with FIPS on.
    lowered = region.lower()
    if lowered.startswith("fips-"):
        return region[5:], True
    if lowered.endswith("-fips"):
        return region[:-5], True
    return region, fips


def _auth_scheme(properties: Any) -> tuple[str | None, str | None]:
    """The signing region and name from a rule's sigv4 auth scheme, if it names one."""
    schemes = (properties or {}).get("authSchemes") or ()
    for scheme in schemes:
        if scheme.get("name") == "sigv4":  # the only scheme this client signs with
            return scheme.get("signingRegion"), scheme.get("signingName")
    return None, None


# -- a fixed URL: VPC endpoints, proxies, local servers --------------------------------------


class StaticEndpointResolver:
    """Always the same URL; a base path is kept.

    Signs for ``signing_region`` if given; else for the region in a VPC endpoint's host
    name (``vpce-….runtime.sagemaker.<region>.vpce.amazonaws.com``) whatever the client's
    region, since the service only accepts that one; else for the client's region.
    """

    __slots__ = ("_by_region", "_fixed", "signing_region", "url")

    def __init__(self, url: str, signing_region: str | None = None) -> None:
        self.url = _normalize_url(url)
        self.signing_region = signing_region or None
        host = urlsplit(self.url).hostname or ""
        match = _VPCE_HOST.match(host.lower())
        source = "vpce" if match else "custom"
        host_region = match.group("region") if match else None
        partition = _guess_partition(host_region, china=bool(match and match.group("cn")))
        fixed_region = self.signing_region or host_region
        # Endpoints are immutable, so each distinct one is built once.
        self._fixed = (
            Endpoint(self.url, fixed_region, DEFAULT_SIGNING_NAME, partition, source) if fixed_region else None
        )
        self._by_region: dict[str | None, Endpoint] = {}

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint:
        if self._fixed is not None:
            return self._fixed
        endpoint = self._by_region.get(region)
        if endpoint is None:
            endpoint = Endpoint(self.url, region or None, DEFAULT_SIGNING_NAME, _guess_partition(region), "custom")
            if len(self._by_region) < _MEMO_LIMIT:
                self._by_region[region] = endpoint
        return endpoint

    def __repr__(self) -> str:
        return f"StaticEndpointResolver({self.url!r}, signing_region={self.signing_region!r})"


def _normalize_url(url: str) -> str:
    """``url`` checked and without a trailing slash; errors name ``endpoint_url``."""
    if not isinstance(url, str) or not url.strip():
        raise EndpointResolutionError(f"invalid endpoint_url {url!r}: must be a non-empty http(s) URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as error:
        raise EndpointResolutionError(f"invalid endpoint_url {url!r}: {error}") from None
    if "@" in parts.netloc:
        # Never echo it: the user info may be a password.
        raise EndpointResolutionError("invalid endpoint_url: user info (user:password@) is not supported")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise EndpointResolutionError(f"invalid endpoint_url {url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise EndpointResolutionError(f"invalid endpoint_url {url!r}: no host")
    if parts.fragment:
        raise EndpointResolutionError(f"invalid endpoint_url {url!r}: a fragment (#…) has no meaning here")
    normalized = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return f"{normalized}?{parts.query}" if parts.query else normalized


def _guess_partition(region: str | None, *, china: bool = False) -> str:
    # Informational only (a static URL decides nothing here); avoids loading botocore.
    if china or (region or "").startswith("cn-"):
        return "aws-cn"
    if (region or "").startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# -- composition ----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class EndpointResolverFunc:
    """A resolver from a plain function ``fn(region, options) -> Endpoint``."""

    __repr__ = fields_repr

    fn: Callable[[str | None, EndpointResolverOptions], Endpoint]

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint:
        return self.fn(region, options)


@attrs.frozen(eq=False)
class _FallbackResolver:
    __repr__ = fields_repr

    primary: EndpointResolver
    fallback: EndpointResolver

    def resolve_endpoint(self, region: str | None, options: EndpointResolverOptions) -> Endpoint:
        try:
            return self.primary.resolve_endpoint(region, options)
        except EndpointNotFoundError:
            return self.fallback.resolve_endpoint(region, options)


def with_fallback(primary: EndpointResolver, fallback: EndpointResolver) -> EndpointResolver:
    """``primary``, then ``fallback`` only if ``primary`` raises :class:`EndpointNotFoundError`.

    Any other error from ``primary`` propagates: a broken resolver is not silently bypassed.
    """
    return _FallbackResolver(primary, fallback)


# -- the middleware -------------------------------------------------------------------------

_RESOLVER_OPTIONS = {
    (fips, dual): EndpointResolverOptions(fips, dual) for fips in (False, True) for dual in (False, True)
}


class ResolveEndpoint(Transform[SerializeInput, SerializeOutput]):
    """Serialize step: resolves the endpoint, sets ``request.url`` and the signing name/region.

    The resolver comes from the call's options: ``endpoint_resolver``, else ``endpoint_url``
    (a :class:`StaticEndpointResolver`), else the default rules. A signing name or region a
    user's Initialize middleware already put in the context is kept.
    """

    id = "ResolveEndpoint"
    __slots__ = ("_default", "_static")

    def __init__(self) -> None:
        # Each stack (so each client) keeps its own memo of resolved endpoints: one
        # default-rules resolver, and one fixed resolver per endpoint_url, not one per call.
        self._default: EndpointResolver = self.new_default_resolver()
        self._static = functools.lru_cache(maxsize=64)(StaticEndpointResolver)

    def before(self, ctx: Context, in_: SerializeInput) -> SerializeInput:
        request = in_.request
        if not isinstance(request, HTTPRequest):
            raise EndpointResolutionError(
                f"unknown transport type {type(request).__name__}", operation=ctx.operation_name
            )
        options = ctx.options
        region: str | None = options.region
        endpoint = self.resolve(options, region, ctx.operation_name)
        request.url = endpoint.url
        ctx.set(keys.ENDPOINT, endpoint)
        if not ctx.has(keys.SIGNING_NAME):
            ctx.set(keys.SIGNING_NAME, endpoint.signing_name or DEFAULT_SIGNING_NAME)
        if not ctx.has(keys.SIGNING_REGION):
            signing_region = endpoint.signing_region or region
            if signing_region:  # a local server with anonymous calls needs no region
                ctx.set(keys.SIGNING_REGION, signing_region)
        return in_

    def failed(self, ctx: Context, in_: SerializeInput, error: BaseException) -> None:
        endpoint = ctx.get(keys.ENDPOINT)
        region: str | None = ctx.options.region
        if isinstance(error, SageMakerRuntimeError) and endpoint is not None and endpoint.source == "default" and region:
            from smruntime.regions import note_unknown_region

            note_unknown_region(error, _strip_fips_pseudo_region(region, False)[0])

    def new_default_resolver(self) -> EndpointResolver:
        """The resolver used without ``endpoint_resolver`` or ``endpoint_url`` (a subclass
        resolves another service's)."""
        return DefaultEndpointResolver()

    def resolve(self, options: Any, region: str | None, operation: str) -> Endpoint:
        """The call's endpoint (a subclass may read other options)."""
        return resolve_with(
            options.endpoint_resolver, options.endpoint_url, self._default, options, region, operation, self._static
        )


_SCHEMES = ("https://", "http://")


def resolve_with(
    resolver: EndpointResolver | None,
    url: str | None,
    default: EndpointResolver,
    options: Any,
    region: str | None,
    operation: str,
    static: Callable[[str], EndpointResolver] = StaticEndpointResolver,
) -> Endpoint:
    """The endpoint from ``resolver``, else a fixed ``url`` through ``static`` (VPC endpoints
    sign for their own region), else ``default``; FIPS or dual-stack with a fixed URL is a
    configuration error."""
    fips = bool(options.use_fips_endpoint)
    dual = bool(options.use_dualstack_endpoint)
    try:
        if resolver is None:
            if url:
                if fips:
                    raise EndpointResolutionError(FIPS_AND_CUSTOM)
                if dual:
                    raise EndpointResolutionError(DUALSTACK_AND_CUSTOM)
                resolver = static(url)
            else:
                resolver = default
        endpoint = resolver.resolve_endpoint(region, _RESOLVER_OPTIONS[fips, dual])
    except SageMakerRuntimeError as error:
        if error.operation is None:
            error.operation = operation
        raise
    except Exception as error:  # a user's resolver: one error type at this boundary
        raise EndpointResolutionError(
            f"failed to resolve service endpoint, {type(error).__name__}: {error}", operation=operation
        ) from error
    if not isinstance(endpoint, Endpoint):
        raise EndpointResolutionError(
            f"endpoint resolver {resolver!r} returned {type(endpoint).__name__}, not an Endpoint", operation=operation
        )
    url = endpoint.url  # lower-case schemes (every resolver here writes them) pass without a copy
    if not url.startswith(_SCHEMES) and not url[:8].lower().startswith(_SCHEMES):
        raise EndpointResolutionError(
            f"resolved endpoint URL {endpoint.url!r} is not an http(s) URL", operation=operation
        )
    return endpoint


def join_url(base: str, path: str) -> str:
    """``base`` (which may carry a base path and a query) with ``path`` appended.

    ``join_url("https://proxy/sm/", "/endpoints/x/invocations")`` is
    ``https://proxy/sm/endpoints/x/invocations``. Nothing is re-encoded.
    """
    query = ""
    if "?" in base:
        base, query = base.split("?", 1)
    if "?" in path:
        path, extra = path.split("?", 1)
        query = f"{query}&{extra}" if query and extra else (query or extra)
    if path and not path.startswith("/"):
        path = "/" + path
    joined = base.rstrip("/") + path if path else base
    return f"{joined}?{query}" if query else joined
