"""Which variant, container(s) or model serve an invocation.

In order: an inference component named by ``X-Amzn-SageMaker-Inference-Component`` (required
on endpoints that host components); an open session's variant; ``TargetVariant``; otherwise
a variant drawn by weight. Within the variant: ``TargetModel`` on a multi-model variant,
``TargetContainerHostname`` on a multi-container variant in Direct mode, every container in
order in Serial mode. Anything that does not resolve is a 400 ValidationError.
"""

from __future__ import annotations

import attrs

from smruntime.local.models import Model
from smruntime.local.sessions import NEW_SESSION, Session, SessionStore
from smruntime.local.state import EndpointRuntime, VariantRuntime
from smruntime.local.wire import InvokeParams, validation_error
from smruntime.middleware.reprs import fields_repr

__all__ = ["Target", "route"]


@attrs.frozen
class Target:
    """Where one invocation goes."""

    __repr__ = fields_repr

    variant: str
    calls: tuple[tuple[str, Model], ...]
    """(container hostname, model): one entry, or a Serial pipeline's containers in order."""
    component: str | None = None
    session: Session | None = None


def route(endpoint: EndpointRuntime, params: InvokeParams, sessions: SessionStore, *, account: str) -> Target:
    """The target for an invocation, or a ValidationError the service would give."""
    session = _session(endpoint, params, sessions)
    if endpoint.components:
        return _component_target(endpoint, params, session)
    if params.inference_component:
        raise validation_error(
            "Inference Component Name header is not allowed for endpoints to which you dont plan to deploy "
            "inference components. Please remove the Inference Component Name header and try again."
        )
    if session is not None:
        variant = endpoint.variants[session.variant]
    elif params.target_variant:
        found = endpoint.variants.get(params.target_variant)
        if found is None:
            raise validation_error(
                f"Variant {params.target_variant} not found for endpoint {endpoint.name} of account {account}. "
                f"Available variants: {', '.join(endpoint.variants)}."
            )
        variant = found
    else:
        variant = endpoint.pick_variant()
    return Target(variant=variant.name, calls=_calls(endpoint, variant, params), session=session)


def _session(endpoint: EndpointRuntime, params: InvokeParams, sessions: SessionStore) -> Session | None:
    if not params.session_id or params.session_id == NEW_SESSION:
        return None
    session = sessions.get(endpoint.name, params.session_id)
    if session is None:
        raise validation_error(
            f"Session id {params.session_id} is not valid for endpoint {endpoint.name}: it is unknown, "
            "closed or expired. Start a session with SessionId NEW_SESSION."
        )
    return session


def _component_target(endpoint: EndpointRuntime, params: InvokeParams, session: Session | None) -> Target:
    if not params.inference_component:
        raise validation_error(
            "Inference Component Name header is required for endpoints to which you plan to deploy inference "
            "components. Please include Inference Component Name header or consider using SageMaker models."
        )
    component = endpoint.components.get(params.inference_component)
    if component is None:
        raise validation_error(
            f"Inference Component {params.inference_component} not found for endpoint {endpoint.name}."
        )
    return Target(variant=component.variant, calls=((component.name, component.model),),
                  component=component.name, session=session)


def _calls(endpoint: EndpointRuntime, variant: VariantRuntime, params: InvokeParams) -> tuple[tuple[str, Model], ...]:
    hostname = params.target_container_hostname
    if variant.multi_model:
        if not params.target_model:
            raise validation_error(f"TargetModel is required to invoke multi-model endpoint {endpoint.name}.")
        model = variant.models.get(params.target_model)
        if model is None:
            raise validation_error(
                f"Failed to download model data for TargetModel {params.target_model}: endpoint {endpoint.name} "
                "has no such model."
            )
        return (("primary", model),)
    if len(variant.containers) == 1:
        if hostname:
            raise validation_error(
                f"TargetContainerHostname is only supported by multi-container endpoints; "
                f"endpoint {endpoint.name} has one container."
            )
        return variant.containers
    if variant.mode == "Serial":
        if hostname:
            raise validation_error(
                f"TargetContainerHostname is only supported by multi-container endpoints with Direct "
                f"invocation; endpoint {endpoint.name} runs its containers in Serial."
            )
        return variant.containers
    if not hostname:
        raise validation_error(
            f"TargetContainerHostname is required to invoke multi-container endpoint {endpoint.name} "
            "with Direct invocation."
        )
    for name, model in variant.containers:
        if name == hostname:
            return ((name, model),)
    raise validation_error(
        f"Container {hostname} not found in endpoint {endpoint.name}. "
        f"Available containers: {', '.join(name for name, _ in variant.containers)}."
    )
