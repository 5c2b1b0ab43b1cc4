"""The live state of one local endpoint server: resolved models, faults, counters, sessions, clock."""

from __future__ import annotations

import random
import threading
import time

import attrs

from smruntime.local.config import EndpointConfig, LocalConfig, VariantConfig
from smruntime.local.counters import Counters
from smruntime.local.credentials import AcceptedKey
from smruntime.local.faults import Faults
from smruntime.local.model_refs import resolve_model
from smruntime.local.models import Model
from smruntime.local.sessions import SessionStore
from smruntime.local.sigv4_verify import Verifier
from smruntime.middleware.reprs import fields_repr

__all__ = ["ComponentRuntime", "EndpointRuntime", "LocalState", "VariantRuntime"]


@attrs.frozen
class VariantRuntime:
    """A variant with its models resolved."""

    __repr__ = fields_repr

    name: str
    weight: float
    containers: tuple[tuple[str, Model], ...]
    """(hostname, model) in pipeline order; ``(("primary", model),)`` for one container."""
    mode: str
    models: dict[str, Model]
    """TargetModel -> model, for a multi-model variant."""

    @classmethod
    def build(cls, config: VariantConfig, search_path: tuple[str, ...] = ()) -> VariantRuntime:
        if config.model is not None:
            containers: tuple[tuple[str, Model], ...] = (("primary", resolve_model(config.model, search_path)),)
        else:
            containers = tuple((host, resolve_model(spec, search_path)) for host, spec in config.containers.items())
        return cls(
            name=config.name,
            weight=config.weight,
            containers=containers,
            mode=config.inference_execution,
            models={name: resolve_model(spec, search_path) for name, spec in config.models.items()},
        )

    @property
    def multi_model(self) -> bool:
        return bool(self.models)


@attrs.frozen
class ComponentRuntime:
    """An inference component with its model resolved."""

    __repr__ = fields_repr

    name: str
    variant: str
    model: Model


class EndpointRuntime:
    """One endpoint: its config, resolved variants, faults, counters and routing RNG."""

    def __init__(self, config: EndpointConfig, seed: int | None, search_path: tuple[str, ...] = ()) -> None:
        self.config = config
        self.name = config.name
        self.variants = {variant.name: VariantRuntime.build(variant, search_path) for variant in config.variants}
        first = config.variants[0].name
        self.components = {
            component.name: ComponentRuntime(
                component.name, component.variant or first, resolve_model(component.model, search_path)
            )
            for component in config.inference_components
        }
        self.faults = Faults(config.faults)
        self.counters = Counters()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def pick_variant(self) -> VariantRuntime:
        """A variant drawn by weight."""
        candidates = [variant for variant in self.variants.values() if variant.weight > 0]
        with self._rng_lock:
            chosen = self._rng.choices(candidates, weights=[variant.weight for variant in candidates])[0]
        return chosen

    def models(self) -> list[Model]:
        """Every resolved model (to release resources on close)."""
        found: list[Model] = [component.model for component in self.components.values()]
        for variant in self.variants.values():
            found.extend(model for _, model in variant.containers)
            found.extend(variant.models.values())
        return found


class LocalState:
    """Everything the app needs at request time; shared with LocalEndpoint for faults and counters."""

    def __init__(self, config: LocalConfig, keys: tuple[AcceptedKey, ...]) -> None:
        self.config = config
        self.clock_offset = config.clock_offset_seconds
        self.endpoints = {
            endpoint.name: _endpoint_runtime(config, endpoint, index) for index, endpoint in enumerate(config.endpoints)
        }
        self.sessions = SessionStore(config.session_ttl_seconds, clock=self.now)
        self.verifier = Verifier(keys, config.region, clock=self.now)

    def now(self) -> float:
        """The server's clock: real time plus the configured offset."""
        return time.time() + self.clock_offset

    def endpoint(self, name: str) -> EndpointRuntime:
        """The endpoint called ``name``; KeyError naming the configured ones otherwise."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint {name!r}; configured: {sorted(self.endpoints)}") from None

    def close(self) -> None:
        """Release what models hold (pooled connections to remote containers)."""
        for endpoint in self.endpoints.values():
            for model in endpoint.models():
                close = getattr(model, "close", None)
                if callable(close):
                    close()


def _endpoint_runtime(config: LocalConfig, endpoint: EndpointConfig, index: int) -> EndpointRuntime:
    """The endpoint with its models loaded; a model that cannot be loaded is one line naming where."""
    try:
        return EndpointRuntime(endpoint, None if config.seed is None else config.seed + index, config.model_path)
    except (ValueError, TypeError) as error:
        where = f"{config.source}: " if config.source else ""
        raise ValueError(f"{where}endpoint {endpoint.name!r}: {error}") from error
