"""The service model's member constraints, shared by the three operations."""

from __future__ import annotations

from typing import Any

from smruntime import validation as v

Problems = v.Problems

# Optional members return at once when absent: most calls set only a few of them, and each
# check below is a keyword-heavy call.

_NAME_TEXT = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"


def endpoint_name(problems: Problems, value: Any) -> None:
    if v.required(problems, "endpoint_name", value):
        v.string(problems, "endpoint_name", value, min_len=1, max_len=63, pattern=v.NAME_PATTERN, pattern_text=_NAME_TEXT)


def body(problems: Problems, value: Any) -> None:
    if v.required(problems, "body", value):
        v.body(problems, "body", value)


def content_type(problems: Problems, field: str, value: Any) -> None:
    if value is None:
        return
    v.string(problems, field, value, max_len=1024, pattern=v.ASCII_HEADER_PATTERN, pattern_text="printable US-ASCII")


def custom_attributes(problems: Problems, value: Any) -> None:
    if value is None:
        return
    v.string(
        problems,
        "custom_attributes",
        value,
        max_len=1024,
        pattern=v.VISIBLE_ASCII_PATTERN,
        pattern_text="visible US-ASCII characters",
        sensitive=True,
    )


def target_model(problems: Problems, value: Any) -> None:
    if value is None:
        return
    v.string(problems, "target_model", value, min_len=1, max_len=1024, pattern=v.PRINTABLE_PATTERN,
             pattern_text="printable US-ASCII not starting with a space")


def name_field(problems: Problems, field: str, value: Any) -> None:
    if value is None:
        return
    v.string(problems, field, value, min_len=1, max_len=63, pattern=v.NAME_PATTERN, pattern_text=_NAME_TEXT)


def inference_id(problems: Problems, value: Any) -> None:
    _printable_id(problems, "inference_id", value)


def prefix_aware_id(problems: Problems, value: Any) -> None:
    _printable_id(problems, "prefix_aware_id", value)


def _printable_id(problems: Problems, field: str, value: Any) -> None:
    if value is None:
        return
    v.string(problems, field, value, min_len=1, max_len=64, pattern=v.PRINTABLE_PATTERN,
             pattern_text="printable US-ASCII not starting with a space")


def enable_explanations(problems: Problems, value: Any) -> None:
    if value is None:
        return
    v.string(problems, "enable_explanations", value, min_len=1, max_len=64, pattern=v.VISIBLE_ASCII_PATTERN,
             pattern_text="printable US-ASCII")


def inference_component_name(problems: Problems, value: Any) -> None:
    if value is None:
        return
    v.string(problems, "inference_component_name", value, min_len=1, max_len=63, pattern=v.COMPONENT_PATTERN,
             pattern_text="^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def session_id(problems: Problems, value: Any, *, allow_new: bool) -> None:
    if value is None:
        return
    if allow_new:
        v.string(problems, "session_id", value, min_len=1, max_len=256, pattern=v.SESSION_PATTERN,
                 pattern_text="NEW_SESSION or ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
    else:
        v.string(problems, "session_id", value, min_len=1, max_len=256, pattern=v.STREAM_SESSION_PATTERN,
                 pattern_text="^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ (start sessions with InvokeEndpoint)")


def in_member_order(problems: Problems, members: tuple[str, ...]) -> None:
    """Sort ``problems`` into the input's member order (each member reports at most one)."""
    problems.sort(key=lambda problem: members.index(problem.field) if problem.field in members else len(members))
