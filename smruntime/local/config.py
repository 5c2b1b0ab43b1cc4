"""What the local endpoint hosts: endpoints, variants, models and faults, from TOML or code.

A TOML file::

    region = "us-east-1"              # requests must be signed for this region
    account_id = "123456789012"       # shows up in error messages and log-stream ARNs
    verify_signatures = true
    max_event_bytes = 16777216        # the largest input event of a bidirectional stream
    seed = 7                          # makes weighted variant routing repeatable

    [[endpoints]]                     # one variant, "AllTraffic", serving a built-in model
    name = "sum"
    model = "sum"

    [[endpoints]]                     # weighted production variants
    name = "ab"
    container_timeout = 5.0
    [[endpoints.variants]]
    name = "a"
    model = "echo"
    weight = 3
    [[endpoints.variants]]
    name = "b"
    model = "mypackage.models:predict"   # any Python callable
    weight = 1

    [[endpoints]]                     # a multi-model endpoint: TargetModel picks the model
    name = "mme"
    [[endpoints.variants]]
    models = { "sum.tar.gz" = "sum", "echo.tar.gz" = "echo" }

    [[endpoints]]                     # multi-container, direct invocation by hostname
    name = "multi"
    [[endpoints.variants]]
    inference_execution = "Direct"
    containers = { first = "echo", second = "http://127.0.0.1:9000" }

    [[endpoints]]                     # inference components on a variant
    name = "ic"
    [[endpoints.variants]]
    name = "AllTraffic"
    [[endpoints.inference_components]]
    name = "ic-sum"
    model = "sum"

    [endpoints.faults]                # faults armed when the server starts (per endpoint)
    fail_next = 2
    fail_status = 503
    latency = 0.05

    [[endpoints]]                     # InvokeEndpointAsync: results on S3 (or file:// paths)
    name = "sum-async"
    model = "sum"
    [endpoints.async_inference]
    s3_output_path = "s3://my-bucket/async-output"
    s3_failure_path = "s3://my-bucket/async-failures"   # default: under s3_output_path
    s3_endpoint_url = "http://127.0.0.1:5000"          # any S3-compatible server; omit for AWS
    input_root = "file:///srv/async-inputs"            # the one folder file:// inputs may come from
    max_concurrent_invocations = 4

Model references are strings (a built-in name, ``module:function``, or an ``http(s)://``
container URL); in code they may also be any callable (see ``smruntime.local.models``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

import attrs

from smruntime.file_locations import MAX_ASYNC_PAYLOAD_BYTES, file_path
from smruntime.local.models import ModelSpec
from smruntime.middleware.reprs import fields_repr

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "MAX_BODY_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_FAULT_COUNT",
    "AsyncInferenceConfig",
    "EndpointConfig",
    "FaultConfig",
    "InferenceComponentConfig",
    "LocalConfig",
    "VariantConfig",
    "as_config",
    "config_from_dict",
    "default_config",
    "demo_config",
    "load_config",
]

MAX_BODY_BYTES = 6 * 1024 * 1024
"""InvokeEndpoint's request body limit (BodyBlob max in the service model): 6,291,456 bytes."""

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The AWS event-stream libraries' payload limit (16 MiB): no larger event reaches a model."""

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_CONTAINER_TIMEOUT = 60.0
"""The service gives a container 60 s to answer an invocation."""
MAX_FAULT_COUNT: Final = 1_000_000
"""The most requests, streams or parts one fault can count (each scheduled request is held)."""
_MAX_SECONDS: Final = 10**9
"""The longest duration (or clock offset) a configuration takes, about 31 years: longer ones
overflow the clocks and timers they are added to (a session's Expires date, a socket timeout)."""

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$")

ExecutionMode = Literal["Serial", "Direct"]


def _check_name(kind: str, value: str, pattern: re.Pattern[str] = _NAME) -> None:
    if not value or len(value) > 63 or not pattern.match(value):
        raise ValueError(f"invalid {kind} {value!r}: 1-63 characters matching {pattern.pattern}")


def check_fault_count(name: str, value: int) -> None:
    """A fault's count of requests, streams or parts: each scheduled one is held until it comes."""
    if not 0 <= value <= MAX_FAULT_COUNT:
        raise ValueError(f"{name} must be a number >= 0 and <= {MAX_FAULT_COUNT}, got {value}")


def _check_seconds(name: str, value: float, *, positive: bool = False, signed: bool = False) -> None:
    """A duration: finite and at most _MAX_SECONDS; > 0 if ``positive``, either sign if ``signed``."""
    low = -_MAX_SECONDS if signed else 0
    if not ((low < value) if positive else (low <= value)) or not value <= _MAX_SECONDS:  # nan fails both
        rule = f"between {low} and {_MAX_SECONDS}" if signed else f"{'>' if positive else '>='} 0 and <= {_MAX_SECONDS}"
        raise ValueError(f"{name} must be a number of seconds {rule}, got {value}")


def _frozen_mapping(value: Mapping[str, ModelSpec] | None) -> Mapping[str, ModelSpec]:
    # A read-only view, so a frozen config cannot be changed through its mappings.
    return MappingProxyType(dict(value or {}))


def _name_validator(kind: str, pattern: re.Pattern[str] = _NAME) -> Any:
    def check(_instance: object, _attribute: object, value: str) -> None:
        _check_name(kind, value, pattern)

    return check


@attrs.frozen(hash=False)
class VariantConfig:
    """A production variant: one model, several containers, or a multi-model set.

    Exactly one of ``model`` (a single container, named ``primary``), ``containers``
    (hostname -> model, in pipeline order) or ``models`` (TargetModel -> model) is given,
    unless the variant only hosts inference components.
    """

    __repr__ = fields_repr

    name: str = attrs.field(default="AllTraffic", validator=_name_validator("variant name"))
    model: ModelSpec | None = None
    weight: float = attrs.field(default=1.0, converter=float)
    containers: Mapping[str, ModelSpec] = attrs.field(factory=dict, converter=_frozen_mapping)
    inference_execution: ExecutionMode = attrs.field(default="Serial")
    models: Mapping[str, ModelSpec] = attrs.field(factory=dict, converter=_frozen_mapping)

    @weight.validator
    def _check_weight(self, _attribute: object, value: float) -> None:
        if not 0 <= value < math.inf:
            raise ValueError(f"variant {self.name!r}: weight must be a number >= 0, got {value}")

    @inference_execution.validator
    def _check_mode(self, _attribute: object, value: str) -> None:
        if value not in ("Serial", "Direct"):
            raise ValueError(f"variant {self.name!r}: inference_execution must be 'Serial' or 'Direct', got {value!r}")

    def __attrs_post_init__(self) -> None:
        given = [kind for kind, present in (("model", self.model is not None), ("containers", bool(self.containers)),
                                            ("models", bool(self.models))) if present]
        if len(given) > 1:
            raise ValueError(f"variant {self.name!r}: give only one of model, containers, models (got {given})")
        for hostname in self.containers:
            try:
                _check_name("container hostname", hostname)
            except ValueError as error:
                raise ValueError(f"variant {self.name!r}: {error}") from None

    @property
    def hosts_model(self) -> bool:
        """True if requests can be served by the variant itself (not only by inference components)."""
        return self.model is not None or bool(self.containers) or bool(self.models)


@attrs.frozen(hash=False)
class InferenceComponentConfig:
    """An inference component: a model deployed onto one of the endpoint's variants."""

    __repr__ = fields_repr

    name: str = attrs.field(validator=_name_validator("inference component name", _COMPONENT_NAME))
    model: ModelSpec
    variant: str | None = None
    """The variant that hosts it; the endpoint's first variant when omitted."""


@attrs.frozen
class FaultConfig:
    """Faults armed when the server starts; change them at run time with ``LocalEndpoint.faults``."""

    __repr__ = fields_repr

    fail_next: int = 0
    fail_status: int = 503
    throttle_next: int = 0
    reset_next: int = 0
    latency: float = 0.0
    break_stream_after: int | None = None
    fail_stream_after: int | None = None
    """Response and bidirectional streams: an InternalStreamFailure event after this many parts."""
    throttle_above: float | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("fail_next", "throttle_next", "reset_next", "break_stream_after", "fail_stream_after"):
            value = getattr(self, name)
            if value is not None:
                check_fault_count(name, value)
        _check_seconds("latency", self.latency)
        if self.throttle_above is not None and not 0 < self.throttle_above < math.inf:
            raise ValueError(f"throttle_above must be a number > 0 (requests/s), got {self.throttle_above}")
        if not 400 <= self.fail_status <= 599:
            raise ValueError(f"fail_status must be an HTTP error status (400-599), got {self.fail_status}")


@attrs.frozen
class AsyncInferenceConfig:
    """Where InvokeEndpointAsync writes results and failures (``s3://`` or ``file://``).

    ``s3_endpoint_url`` points the endpoint's S3 client at any S3-compatible server (moto,
    MinIO); None means AWS S3. Failures go under ``s3_failure_path``, else under
    ``s3_output_path``. ``max_concurrent_invocations`` models run at once; later requests wait
    in the queue. ``time_scale`` multiplies RequestTTLSeconds and InvocationTimeoutSeconds
    (and their defaults, 6 h and 900 s): a test sets ``0.01`` to make a 60 s TTL expire after
    0.6 s, since the API does not allow less than 60 s.

    A ``file://`` InputLocation is read only inside ``input_root`` (a ``file://`` folder) or
    the ``file://`` output and failure folders; any other is a ValidationError. No input is
    read past ``max_input_bytes`` (the service's 1 GB).
    """

    __repr__ = fields_repr

    s3_output_path: str
    s3_failure_path: str | None = None
    s3_endpoint_url: str | None = None
    max_concurrent_invocations: int = 4
    time_scale: float = attrs.field(default=1.0, converter=float)
    input_root: str | None = None
    max_input_bytes: int = MAX_ASYNC_PAYLOAD_BYTES

    def __attrs_post_init__(self) -> None:
        for name, path in (("s3_output_path", self.s3_output_path), ("s3_failure_path", self.s3_failure_path)):
            if path is not None and not path.startswith(("s3://", "file://")):
                raise ValueError(f"{name} must be an s3:// or file:// location, got {path!r}")
        if self.input_root is not None and not (self.input_root.startswith("file://")
                                                and file_path(self.input_root).startswith("/")):
            raise ValueError(f"input_root must be a file:/// folder, got {self.input_root!r}")
        if self.s3_endpoint_url is not None and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"s3_endpoint_url must be an http:// or https:// URL, got {self.s3_endpoint_url!r}")
        if self.max_input_bytes < 1:
            raise ValueError(f"max_input_bytes must be >= 1, got {self.max_input_bytes}")
        if self.max_concurrent_invocations < 1:
            raise ValueError(f"max_concurrent_invocations must be >= 1, got {self.max_concurrent_invocations}")
        # It multiplies durations of up to 6 h (RequestTTLSeconds): 1000 keeps them within _MAX_SECONDS.
        if not 0 < self.time_scale <= 1000:
            raise ValueError(f"time_scale must be a number > 0 and <= 1000, got {self.time_scale}")

    @property
    def file_roots(self) -> tuple[str, ...]:
        """The folders a ``file://`` InputLocation may name: the input root and ``file://`` result folders."""
        locations = (self.input_root, self.s3_output_path, self.s3_failure_path)
        return tuple(file_path(location) for location in locations if location and location.startswith("file://"))


def _variant_tuple(value: Iterable[VariantConfig]) -> tuple[VariantConfig, ...]:
    return tuple(value)


def _component_tuple(value: Iterable[InferenceComponentConfig]) -> tuple[InferenceComponentConfig, ...]:
    return tuple(value)


@attrs.frozen(hash=False)
class EndpointConfig:
    """One endpoint: its variants, inference components, container timeout and faults."""

    __repr__ = fields_repr

    name: str = attrs.field(validator=_name_validator("endpoint name"))
    variants: tuple[VariantConfig, ...] = attrs.field(converter=_variant_tuple)
    inference_components: tuple[InferenceComponentConfig, ...] = attrs.field(default=(), converter=_component_tuple)
    container_timeout: float = attrs.field(default=DEFAULT_CONTAINER_TIMEOUT, converter=float)
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    async_inference: AsyncInferenceConfig | None = None

    def __attrs_post_init__(self) -> None:
        if not self.variants:
            raise ValueError(f"endpoint {self.name!r}: at least one variant is required")
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint {self.name!r}: duplicate variant names {names}")
        _check_seconds(f"endpoint {self.name!r}: container_timeout", self.container_timeout, positive=True)
        components = [component.name for component in self.inference_components]
        if len(set(components)) != len(components):
            raise ValueError(f"endpoint {self.name!r}: duplicate inference component names {components}")
        for component in self.inference_components:
            if component.variant is not None and component.variant not in names:
                raise ValueError(f"endpoint {self.name!r}: inference component {component.name!r}: "
                                 f"unknown variant {component.variant!r}")
        if not self.inference_components:
            idle = [variant.name for variant in self.variants if not variant.hosts_model]
            if idle:
                raise ValueError(f"endpoint {self.name!r}: variants {idle} have no model")
            if not any(variant.weight > 0 for variant in self.variants):
                raise ValueError(f"endpoint {self.name!r}: at least one variant needs a weight > 0")
        # Each weight is finite, but routing draws from their total: 1e308 + 1e308 is not.
        total = sum(variant.weight for variant in self.variants)
        if not math.isfinite(total):
            raise ValueError(f"endpoint {self.name!r}: the variant weights must add up to a finite number, got {total}")

    @classmethod
    def serving(cls, name: str, model: ModelSpec, *, variant: str = "AllTraffic", **kwargs: Any) -> EndpointConfig:
        """An endpoint with a single variant serving ``model``."""
        return cls(name=name, variants=(VariantConfig(name=variant, model=model),), **kwargs)


def _endpoint_tuple(value: Iterable[EndpointConfig]) -> tuple[EndpointConfig, ...]:
    return tuple(value)


@attrs.frozen(hash=False)
class LocalConfig:
    """Everything the local endpoint hosts and how strictly it checks requests."""

    __repr__ = fields_repr

    endpoints: tuple[EndpointConfig, ...] = attrs.field(converter=_endpoint_tuple)
    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    verify_signatures: bool = True
    max_body_bytes: int = MAX_BODY_BYTES
    max_event_bytes: int = MAX_EVENT_BYTES
    """The largest input event of a bidirectional stream, whole frame included (past it: ValidationError)."""
    seed: int | None = None
    """Seeds weighted variant routing; None draws from the OS."""
    session_ttl_seconds: float = 20 * 60
    clock_offset_seconds: float = 0.0
    """Added to the server's clock: simulates a server whose clock disagrees with the client's."""
    model_path: tuple[str, ...] = ()
    """Folders searched for ``module:function`` models not importable from ``sys.path``."""
    source: str | None = None
    """The file this configuration was read from, named in its error messages."""

    def __attrs_post_init__(self) -> None:
        names = [endpoint.name for endpoint in self.endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate endpoint names: {duplicates}")
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.region):
            raise ValueError(f"region must be a region name such as 'us-east-1', got {self.region!r}")
        if not re.fullmatch(r"[0-9]{12}", self.account_id):
            raise ValueError(f"account_id must be 12 digits, got {self.account_id!r}")
        for name in ("max_body_bytes", "max_event_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        _check_seconds("session_ttl_seconds", self.session_ttl_seconds, positive=True)
        _check_seconds("clock_offset_seconds", self.clock_offset_seconds, signed=True)

    def endpoint(self, name: str) -> EndpointConfig | None:
        """The endpoint called ``name``, if configured."""
        return next((endpoint for endpoint in self.endpoints if endpoint.name == name), None)


def default_config() -> LocalConfig:
    """What the local endpoint hosts when given no configuration: ``echo``, ``sum`` and ``tokens``."""
    return LocalConfig(endpoints=tuple(EndpointConfig.serving(name, name) for name in ("echo", "sum", "tokens")))


def demo_config(scratch: str | os.PathLike[str]) -> LocalConfig:
    """The default endpoints (``tokens`` paced at 0.12 s a word) plus ``sum-async``, which
    reads ``file://`` inputs from ``scratch`` and writes async results under it."""
    root = Path(scratch)
    sum_async = EndpointConfig.serving(
        "sum-async",
        "sum",
        async_inference=AsyncInferenceConfig(
            s3_output_path=(root / "async-output").as_uri(), s3_failure_path=(root / "async-failures").as_uri(),
            input_root=root.as_uri(),
        ),
    )
    # Tokens paced like a model generating them, so the demo shows them arriving one by one.
    from smruntime.local.builtins import TokenStreamer

    paced_tokens = EndpointConfig.serving("tokens", TokenStreamer(delay=0.12))
    base = default_config()
    kept = tuple(endpoint for endpoint in base.endpoints if endpoint.name != "tokens")
    return attrs.evolve(base, endpoints=(*kept, paced_tokens, sum_async))


def as_config(config: LocalConfig | str | os.PathLike[str] | None) -> LocalConfig:
    """A LocalConfig from a LocalConfig, a TOML file path, or None (the default endpoints)."""
    if config is None:
        return default_config()
    if isinstance(config, LocalConfig):
        return config
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    raise TypeError(f"config must be a LocalConfig, a TOML file path or None, not {type(config).__name__}")


def load_config(path: str | os.PathLike[str]) -> LocalConfig:
    """Read a TOML configuration file (format in this module's docstring)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"config file {os.fspath(path)}: {error.strerror or error}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{os.fspath(path)} is not valid TOML: {error}") from None
    try:
        config = config_from_dict(data)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{os.fspath(path)}: {error}") from None
    # Models named module:function live beside the config file, or where serve was started.
    beside, here = str(Path(path).resolve().parent), os.getcwd()
    folders = (beside,) if beside == here else (beside, here)
    return attrs.evolve(config, model_path=folders, source=os.fspath(path))


def config_from_dict(data: Mapping[str, Any]) -> LocalConfig:
    """Build a LocalConfig from parsed TOML (or any plain dict of the same shape)."""
    known = {"endpoints", "region", "account_id", "verify_signatures", "max_body_bytes", "max_event_bytes", "seed",
             "session_ttl_seconds", "clock_offset_seconds"}
    _reject_unknown("configuration", data, known)
    options = _checked("configuration", {key: value for key, value in data.items() if key != "endpoints"}, LocalConfig)
    items = _tables("configuration: endpoints", data.get("endpoints", []), "[[endpoints]]")
    endpoints = tuple(_endpoint_from_dict(number, item) for number, item in enumerate(items, 1))
    config = _made("configuration", LocalConfig, {"endpoints": endpoints, **options})
    if not endpoints:  # a server that answers every call with "no such endpoint"
        raise ValueError("configuration: no endpoints; add an [[endpoints]] table with a name and a model")
    return config


def _endpoint_from_dict(number: int, data: Mapping[str, Any]) -> EndpointConfig:
    if "name" not in data:
        raise ValueError(f"endpoint #{number}: name is required")
    name = data["name"]
    with _within(f"endpoint {name!r}"):
        _reject_unknown("", data, {"name", "model", "variants", "inference_components", "container_timeout", "faults",
                                   "async_inference"})
        _checked("", {key: data[key] for key in ("name", "container_timeout") if key in data}, EndpointConfig)
        if "model" in data and "variants" in data:
            raise ValueError("give either model or variants, not both")
        if "model" not in data and "variants" not in data:
            raise ValueError("give model = … (a built-in model, module:function or a URL), "
                             "or [[endpoints.variants]] tables")
        if "model" in data:
            variants: tuple[VariantConfig, ...] = (VariantConfig(model=_model("model", data["model"])),)
        else:
            tables = _tables("variants", data.get("variants", []), "[[endpoints.variants]]")
            variants = tuple(_variant_from_dict(item) for item in tables)
        tables = _tables("inference_components", data.get("inference_components", []),
                         "[[endpoints.inference_components]]")
        components = tuple(_component_from_dict(item) for item in tables)
        kwargs: dict[str, Any] = {}
        if "container_timeout" in data:
            kwargs["container_timeout"] = data["container_timeout"]
        for key, cls in (("faults", FaultConfig), ("async_inference", AsyncInferenceConfig)):
            if key in data:
                table = _table(key, data[key], f"[endpoints.{key}]")
                kwargs[key] = _made(key, cls, _checked(key, table, cls))
        return EndpointConfig(name=name, variants=variants, inference_components=components, **kwargs)


def _variant_from_dict(data: Mapping[str, Any]) -> VariantConfig:
    where = f"variant {data.get('name', 'AllTraffic')!r}"
    fields = _checked(where, data, VariantConfig)
    with _within(where):
        if "model" in fields:
            fields["model"] = _model("model", fields["model"])
        for key, names in (("containers", "hostname"), ("models", "TargetModel")):
            if key in fields:
                table = _table(key, fields[key], f"{{ {names} = model, ... }}")
                fields[key] = {name: _model(f"{key}.{name}", spec) for name, spec in table.items()}
    return _made("", VariantConfig, fields)


def _component_from_dict(data: Mapping[str, Any]) -> InferenceComponentConfig:
    where = f"inference component {data.get('name', '?')!r}"
    fields = _checked(where, data, InferenceComponentConfig)
    if "model" in fields:
        with _within(where):
            fields["model"] = _model("model", fields["model"])
    return _made(where, InferenceComponentConfig, fields)


def _model(key: str, value: Any) -> str:
    """A model reference as a file gives it: a string (resolved when the endpoint starts)."""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string (a built-in model, module:function or a URL), got {value!r}")
    return value


def _table(key: str, value: Any, form: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a table ({form}), got {value!r}")
    return value


def _tables(key: str, value: Any, form: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ValueError(f"{key} must be an array of tables ({form}), got {value!r}")
    return value


@contextlib.contextmanager
def _within(where: str) -> Iterator[None]:
    """Prefix a complaint raised inside with ``where`` (once: not if it already names it)."""
    try:
        yield
    except (TypeError, ValueError) as error:
        text = str(error)
        raise ValueError(text if not where or text.startswith(f"{where}:") else f"{where}: {text}") from None


_T = TypeVar("_T", bound=attrs.AttrsInstance)


def _made(where: str, cls: type[_T], fields: Mapping[str, Any]) -> _T:
    """``cls(**fields)``, its complaint (a missing field, a bad value) prefixed with ``where``."""
    with _within(where):
        missing = [field.name for field in attrs.fields(cls) if field.default is attrs.NOTHING and field.name not in fields]
        if missing:
            raise ValueError(f"{', '.join(missing)} is required")
        return cls(**fields)


def _reject_unknown(where: str, data: Mapping[str, Any], known: set[str]) -> None:
    # A typo in a config file should fail loudly, not be silently ignored.
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{_at(where)}unknown keys {unknown} (known: {sorted(known)})")


def _at(where: str) -> str:
    return f"{where}: " if where else ""


# The plain field types a TOML value is checked against ("float" takes integers too).
_PLAIN_TYPES: Final[dict[str, tuple[type, ...]]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
_PLAIN_NAMES: Final = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def _checked(where: str, data: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """``data``, once each key is a field of ``cls`` and each value of a plain field (str,
    int, float, bool, or None where allowed) has its type: a TOML typo fails here, named."""
    fields = attrs.fields_dict(cls)
    _reject_unknown(where, data, set(fields))
    for key, value in data.items():
        names = [part.strip() for part in str(fields[key].type).split("|")]
        if not all(name in _PLAIN_TYPES or name == "None" for name in names):
            continue  # a model, a mapping: checked where it is used
        allowed = tuple(kind for name in names if name != "None" for kind in _PLAIN_TYPES[name])
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            wanted = " or ".join(_PLAIN_NAMES[name] for name in names if name != "None")
            raise ValueError(f"{_at(where)}{key} must be {wanted}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # TOML has inf and nan
            raise ValueError(f"{_at(where)}{key} must be a finite number, got {value!r}")
    return dict(data)
