"""Validation derived from an operation's member table.

Each member becomes one check (its type, bounds, pattern and enum, or "is required"); an
operation's validator runs them all and reports every problem at once, in member order.
"""

from __future__ import annotations

import operator
from functools import cache
from typing import Any, Callable

from smruntime import errors
from smruntime import validation as v
from smruntime.operations import model
from smruntime.operations.spec import Member, Shape

Problems = v.Problems
Check = Callable[[Problems, Any], None]
Rules = Callable[[Any, Problems], None]
"""Checks beyond single members (one of two members, say), run after the members' own."""


def member_check(member: Member) -> Check:
    """The check of one member's value, as its row in the table states it.

    An absent optional member returns at once: most calls set only a few of them.
    """
    name, required = member.name, member.required
    checker = _value_check(member)

    def check(problems: Problems, value: Any) -> None:
        if value is None:
            if required:
                problems.append(errors.FieldProblem(name, "required", "is required"))
            return
        checker(problems, value)

    return check


def _value_check(member: Member) -> Check:
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
    # A pattern that refuses the empty string makes it a length problem, as a minimum would.
    min_len = minimum or (1 if regex is not None and regex.fullmatch("") is None else 0)
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


def validator(shape: Shape, rules: Rules | None = None) -> Callable[[Any, str], None]:
    """``validate(params, operation)`` for ``shape``: every constraint, reported together.

    The members that do not vary (the endpoint name, the formats, the target) repeat from
    call to call, so each distinct combination of them is checked once; the varying ones
    (the body, ids, custom attributes) are checked on every call.
    """
    repeated = tuple(member for member in shape.members if not member.varies)
    varying = tuple(member for member in shape.members if member.varies)
    repeated_values = _getter(repeated)
    varying_values = _getter(varying)
    repeated_checks = tuple(member_check(member) for member in repeated)
    varying_checks = tuple(member_check(member) for member in varying)
    order = shape.names
    passed = v.PassedValues()

    def validate(params: Any, operation: str) -> None:
        problems: Problems = []
        values = repeated_values(params)
        if values not in passed:
            for check, value in zip(repeated_checks, values, strict=True):
                check(problems, value)
            if not problems:
                passed.add(values)
        for check, value in zip(varying_checks, varying_values(params), strict=True):
            check(problems, value)
        if rules is not None:
            rules(params, problems)
        if problems:
            in_member_order(problems, order)
            raise errors.InvalidParamsError(problems, operation=operation)

    return validate


def _getter(members: tuple[Member, ...]) -> Callable[[Any], tuple[Any, ...]]:
    names = [member.name for member in members]
    if len(names) > 1:
        return operator.attrgetter(*names)  # one C call for the whole tuple
    return lambda params: tuple(getattr(params, name) for name in names)


def in_member_order(problems: Problems, members: tuple[str, ...]) -> None:
    """Sort ``problems`` into the input's member order (each member reports at most one)."""
    problems.sort(key=lambda problem: members.index(problem.field) if problem.field in members else len(members))


# The checks of members other operations' inputs share, for an input not yet stated as a table.
endpoint_name = member_check(model.ENDPOINT_NAME)




def name_field(problems: Problems, field: str, value: Any) -> None:
    """A name-shaped member (a variant, a container hostname)."""
    _name_check(field)(problems, value)


@cache
def _name_check(field: str) -> Check:
    return member_check(Member(field, field, "header", max=63, pattern=model.NAME))
