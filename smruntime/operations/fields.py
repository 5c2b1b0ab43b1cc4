"""Validation derived from an operation's member table.

Each member becomes one check (its type, bounds, pattern and enum, or "is required"); an
operation's validator runs them all and reports every problem at once, in member order.
"""

from __future__ import annotations

import operator
from functools import cache
from typing import Any, Callable

from smruntime import errors, service_model
from smruntime import validation as v
from smruntime.shapes import Member, Shape

Problems = v.Problems
Check = Callable[[Problems, Any], None]
Rules = Callable[[Any, Problems], None]
"""Checks beyond single members (one of two members, say), run after the members' own."""


def member_check(member: Member) -> Check:
    """The check of one member, as its row in the table states it ("is required" included)."""
    name, required = member.name, member.required
    check_value = value_check(member)

    def check(problems: Problems, value: Any) -> None:
        if value is not None:
            check_value(problems, value)
        elif required:
            problems.append(errors.FieldProblem(name, "required", "is required"))

    return check


def value_check(member: Member) -> Check:
    """The check of a value given for ``member``: its type, bounds, pattern and enum."""
    name, minimum, maximum = member.name, member.min, member.max
    if member.type == "blob":
        max_bytes = maximum if maximum is not None else v.MAX_BODY_BYTES
        return lambda problems, value: v.body(problems, name, value, max_bytes=max_bytes)
    if member.type == "integer":
        low = minimum if minimum is not None else -(2**63)
        high = maximum if maximum is not None else 2**63 - 1
        return lambda problems, value: v.integer(problems, name, value, minimum=low, maximum=high)
    pattern = member.pattern
    regex = None if pattern is None else pattern.client
    text = "" if pattern is None else pattern.text
    min_len = minimum or 0
    sensitive, enum = member.sensitive, member.enum

    def check(problems: Problems, value: Any) -> None:
        v.string(problems, name, value, min_len=min_len, max_len=maximum, pattern=regex, pattern_text=text,
                 sensitive=sensitive)

    if not enum:
        return check

    def check_enum(problems: Problems, value: Any) -> None:
        found = len(problems)
        check(problems, value)
        if len(problems) == found and value not in enum:
            shown = "another value" if sensitive else repr(value)
            problems.append(errors.FieldProblem(name, "enum", f"must be one of {', '.join(enum)}, got {shown}"))

    return check_enum


def validator(
    shape: Shape, rules: Rules | None = None, order: tuple[str, ...] | None = None
) -> Callable[[Any, str], None]:
    """``validate(params, operation)`` for ``shape``: every constraint, reported together, in
    ``order`` (the table's unless given).

    The members that do not vary (the endpoint name, the formats, the target) repeat from
    call to call, so each distinct combination of them is checked once. The payload is
    checked on every call, and so are the other varying members (ids, custom attributes):
    they are optional, and most calls leave them out, which one comparison finds.
    """
    members = shape.held
    payload = next((member for member in members if member.location == "payload"), None)
    repeated = [member for member in members if not member.varies and member is not payload]
    varying = [member for member in members if member.varies and member is not payload]
    if any(member.required for member in varying):
        raise ValueError(f"{shape.name}: a required member varies, so it cannot be skipped when absent")
    repeated_values, varying_values = _getter(repeated), _getter(varying)
    # (check, index into the values) pairs: a loop over a ready tuple is quicker than a zip.
    repeated_checks = tuple((member_check(member), index) for index, member in enumerate(repeated))
    varying_checks = tuple((value_check(member), index) for index, member in enumerate(varying))
    absent = (None,) * len(varying)
    payload_name = "" if payload is None else payload.name
    payload_check = None if payload is None else member_check(payload)
    order = order or shape.names
    passed = v.PassedValues()

    def validate(params: Any, operation: str) -> None:
        problems: Problems = []
        values = repeated_values(params)
        if values not in passed:
            for check, index in repeated_checks:
                check(problems, values[index])
            if not problems:
                passed.add(values)
        if payload_check is not None:
            payload_check(problems, getattr(params, payload_name))
        values = varying_values(params)
        if values != absent:
            for check, index in varying_checks:
                value = values[index]
                if value is not None:
                    check(problems, value)
        if rules is not None:
            rules(params, problems)
        if problems:
            in_member_order(problems, order)
            raise errors.InvalidParamsError(problems, operation=operation)

    return validate


def _getter(members: list[Member]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of ``members`` in one tuple (one C call for two or more)."""
    names = [member.name for member in members]
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        name = names[0]
        return lambda params: (getattr(params, name),)
    return lambda params: ()


def in_member_order(problems: Problems, members: tuple[str, ...]) -> None:
    """Sort ``problems`` into the input's member order (each member reports at most one)."""
    problems.sort(key=lambda problem: members.index(problem.field) if problem.field in members else len(members))


# The checks of members other operations' inputs share, for an input not yet stated as a table.
endpoint_name = member_check(service_model.ENDPOINT_NAME)


def name_field(problems: Problems, field: str, value: Any) -> None:
    """A name-shaped member (a variant, a container hostname)."""
    _name_check(field)(problems, value)


@cache
def _name_check(field: str) -> Check:
    return member_check(Member(field, field, "header", max=63, pattern=service_model.NAME))
